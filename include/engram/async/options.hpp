#pragma once
/// @file async/options.hpp
/// Settings and outcomes of the two-phase add (basic_memory::add_async / flush).

#include <engram/scope.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace engram::inline v0 {

struct async_outcome;  // what on_processed is told: memory/async_outcome.hpp

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

  /// Progress callbacks, both optional. They are called by the worker threads, so:
  /// - several may run at once (different scopes are processed in parallel): they must be thread-safe;
  /// - entries of one scope are reported in the order they are processed, and an entry's on_started calls come
  ///   before its on_processed call;
  /// - no lock of the memory is held: they may read the memory (get, search, get_all) or call add(), but must
  ///   not call flush() (it waits for the very batch being reported) nor add_async() (it may block on a full
  ///   queue that only the workers empty), and should return quickly (the worker waits for them);
  /// - an exception they throw is caught and ignored: the entry's outcome does not change;
  /// - what they use must outlive the memory: the workers stop in its destructor, and entries resumed from the
  ///   store may be reported while its constructor still runs;
  /// - an entry may be reported before add_async has returned its id to the caller (a worker can take it at
  ///   once): a caller that records ids must expect callbacks for ids it has not recorded yet.
  /// flush() returns only after every on_processed call for the entries it waited for has returned.

  /// Called when a worker starts an attempt at an entry (every attempt: a retried entry is reported again),
  /// with the id add_async returned, before extraction.
  std::function<void(const std::string& id)> on_started{};
  /// Called once per entry when its outcome is final: its add was committed (the memories it made are
  /// searchable when this runs), or it is kept as failed (out of attempts, or invalid input). An attempt that
  /// will be retried is not reported here. Entries merged into one add are reported one by one, each with
  /// that add's result.
  std::function<void(const async_outcome&)> on_processed{};
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
