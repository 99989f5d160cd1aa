#pragma once
/// @file error.hpp
/// The typed errors engram throws. Every message names the bad value and what was expected.

#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>

namespace engram::inline v0 {

/// Base of every error engram throws.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Bad input from the caller: missing scope, malformed JSON, unknown operator, out-of-range option.
class validation_error : public error {
 public:
  using error::error;
};

/// An id that names no memory. Thrown by operations that need the memory to exist (update, delete, history
/// is not one of them: the history of a deleted memory stays readable).
class not_found : public error {
 public:
  explicit not_found(std::string what_missing) : error(std::move(what_missing)) {}
};

/// A vector whose dimension differs from the one the index, store or embedder uses.
class dimension_mismatch : public error {
 public:
  dimension_mismatch(std::size_t expected, std::size_t actual, const std::string& where)
      : error(where + ": dimension mismatch: expected " + std::to_string(expected) + ", got " +
              std::to_string(actual)),
        expected_(expected),
        actual_(actual) {}
  [[nodiscard]] std::size_t expected() const noexcept { return expected_; }
  [[nodiscard]] std::size_t actual() const noexcept { return actual_; }

 private:
  std::size_t expected_;
  std::size_t actual_;
};

/// The durable store failed or refused (I/O error, corrupt file, lock held by another process).
class storage_error : public error {
 public:
  using error::error;
};

/// A remote provider (embedding or chat server) failed after its retries.
class provider_error : public error {
 public:
  explicit provider_error(const std::string& message, int status = 0, std::string body_excerpt = {})
      : error(message), status_(status), body_(std::move(body_excerpt)) {}
  /// HTTP status code, or 0 when no response arrived (connection refused, timeout).
  [[nodiscard]] int status() const noexcept { return status_; }
  /// The first bytes of the response body, for diagnosis.
  [[nodiscard]] const std::string& body_excerpt() const noexcept { return body_; }

 private:
  int status_;
  std::string body_;
};

}  // namespace engram::inline v0
