#pragma once
/// @file async/options.hpp
/// Settings and outcomes of the two-phase add (basic_memory::add_async / flush).

#include <engram/scope.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace engram::inline v0 {

/// How basic_memory processes the adds accepted by add_async. Every member has a default.
struct async_options {
  /// Background threads running extraction + add (started on the first add_async, or on open when the store
  /// holds pending adds). At least 1.
  std::size_t workers = 2;
  /// Entries waiting in memory for a worker. When it is full, add_async blocks until a worker takes one
  /// (backpressure); entries resumed from the store on open and retries are never refused.
  std::size_t queue_capacity = 256;
  /// Waiting entries of one scope with equal options are merged into one add of up to this many entries
  /// (their messages concatenated in order, at most memory_limits::max_messages): one extraction for them.
  std::size_t max_batch = 8;
  /// Processing attempts of an entry before it is kept as failed (left in the store's queue, reported by
  /// flush() and failed_adds(), never processed again unless retry_failed() is called). At least 1.
  std::uint32_t max_attempts = 5;
  /// Wait before the second attempt; doubled for each further one, at most max_backoff.
  std::chrono::milliseconds initial_backoff{250};
  std::chrono::milliseconds max_backoff{30'000};
};

/// A pending add that exhausted its attempts (or failed validation): it stays in the store's queue.
struct failed_add {
  std::string id;                 ///< the id add_async returned
  engram::scope scope;
  std::uint32_t attempts = 0;     ///< attempts made
  std::string error;              ///< what the last attempt threw

  friend bool operator==(const failed_add&, const failed_add&) = default;
};

/// What flush() found once the queue was empty.
struct flush_result {
  std::vector<failed_add> failed;  ///< every entry kept as failed (those of earlier flushes too), oldest first

  [[nodiscard]] bool ok() const noexcept { return failed.empty(); }
};

}  // namespace engram::inline v0
