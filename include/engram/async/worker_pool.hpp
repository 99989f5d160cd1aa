#pragma once
/// @file async/worker_pool.hpp
/// A fixed set of threads, started once on demand and joined on destruction.

#include <cstddef>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace engram::inline v0::detail {

/// Runs `n` threads, each calling one loop function until it returns. The loop must return once its owner
/// asks it to stop (the pool does not interrupt it). Thread-safe; not movable (threads may capture it).
class worker_pool {
 public:
  worker_pool() = default;
  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;
  ~worker_pool() { join(); }

  /// Starts `n` threads running `loop()`, unless started before (then does nothing). @returns true when it
  /// started them.
  template <class Loop>
  bool start(std::size_t n, Loop loop) {
    std::lock_guard lock(mtx_);
    if (started_) return false;
    started_ = true;
    threads_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) threads_.emplace_back(loop);
    return true;
  }

  /// Waits for every thread's loop to return. Call after asking the loops to stop.
  void join() {
    std::vector<std::thread> ts;
    {
      std::lock_guard lock(mtx_);
      ts.swap(threads_);
    }
    for (auto& t : ts)
      if (t.joinable()) t.join();
  }

 private:
  std::mutex mtx_;
  std::vector<std::thread> threads_;
  bool started_ = false;
};

}  // namespace engram::inline v0::detail
