#pragma once
/// @file detail/rw_mutex.hpp
/// The memory's reader-writer lock: searches share it, writes take it alone, and a write waits for searches
/// only so long. A reader-preferring lock (glibc's std::shared_mutex) let a steady stream of searches starve an
/// add; a writer-preferring one stops every new search as soon as an add waits, so each add parks and wakes
/// every search that arrives meanwhile, which costs more than the add on a busy machine. Here searches keep
/// entering while a writer waits, for at most `patience`; after that new searches wait until a writer has run.
/// Not recursive: a thread holding it shared must not take it again (with a writer waiting past its patience
/// in between it would wait for itself), so callbacks run under it (a reranker) must not call back into it.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>

namespace engram::inline v0::detail {

class rw_mutex {
 public:
  using clock = std::chrono::steady_clock;
  /// How long searches may keep entering while a writer waits.
  static constexpr std::chrono::microseconds default_patience{500};

  explicit rw_mutex(std::chrono::microseconds patience = default_patience) : patience_(patience) {}
  rw_mutex(const rw_mutex&) = delete;
  rw_mutex& operator=(const rw_mutex&) = delete;

  void lock() {
    std::unique_lock l(m_);
    if (waiting_writers_++ == 0) first_wait_ = clock::now();
    writers_cv_.wait(l, [&] { return !writer_ && readers_ == 0; });
    writer_ = true;
    // the next waiting writer's patience starts now: searches get their turn between two writes
    if (--waiting_writers_ > 0) first_wait_ = clock::now();
  }
  bool try_lock() {
    std::lock_guard l(m_);
    if (writer_ || readers_ > 0) return false;
    writer_ = true;
    return true;
  }
  void unlock() {
    {
      std::lock_guard l(m_);
      writer_ = false;
    }
    writers_cv_.notify_one();
    readers_cv_.notify_all();
  }
  void lock_shared() {
    std::unique_lock l(m_);
    if (!can_read()) {
      ++waiting_readers_;
      readers_cv_.wait(l, [&] { return can_read(); });
      --waiting_readers_;
    }
    ++readers_;
  }
  bool try_lock_shared() {
    std::lock_guard l(m_);
    if (!can_read()) return false;
    ++readers_;
    return true;
  }
  void unlock_shared() {
    bool last = false;
    {
      std::lock_guard l(m_);
      last = --readers_ == 0 && waiting_writers_ > 0;
    }
    if (last) writers_cv_.notify_one();
  }

  /// Whether any thread waits for the lock now (a writer, or a reader held back by a writer): what a store's
  /// group commit asks before a COMMIT under the lock (memory/commit.hpp).
  [[nodiscard]] bool contended() const {
    std::lock_guard l(m_);
    return waiting_writers_ > 0 || waiting_readers_ > 0;
  }

  /// Writers waiting for the lock now (for tests and diagnostics).
  [[nodiscard]] std::size_t waiting_writers() {
    std::lock_guard l(m_);
    return waiting_writers_;
  }

 private:
  // under m_
  bool can_read() const {
    return !writer_ && (waiting_writers_ == 0 || clock::now() - first_wait_ < patience_);
  }

  mutable std::mutex m_;
  std::condition_variable readers_cv_, writers_cv_;
  std::size_t readers_ = 0, waiting_writers_ = 0, waiting_readers_ = 0;
  bool writer_ = false;
  clock::time_point first_wait_{};
  std::chrono::microseconds patience_;
};

}  // namespace engram::inline v0::detail
