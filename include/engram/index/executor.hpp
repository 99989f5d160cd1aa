#pragma once
/// @file index/executor.hpp
/// Executors: where an index runs the parts of one large scan. The library starts no thread of its own; a
/// user who wants one query spread over several cores constructs a thread_pool_executor and hands it to the
/// index (flat_index_options::executor). The default, serial_executor, runs everything on the calling thread.

#include <algorithm>  // std::min
#include <concepts>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>  // std::exception_ptr
#include <memory>     // std::addressof
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace engram::inline v0 {

/// A non-owning reference to a callable `void(std::size_t)`: the tasks one executor call runs. Valid while
/// the callable it was made from lives (an executor call returns only when every task has run).
class bulk_task {
 public:
  template <class F>
    requires std::invocable<F&, std::size_t> && (!std::same_as<std::remove_cvref_t<F>, bulk_task>)
  bulk_task(F& f) noexcept  // NOLINT(google-explicit-constructor): a reference, made where it is passed
      : object_(std::addressof(f)), call_([](void* o, std::size_t i) { (*static_cast<F*>(o))(i); }) {}

  void operator()(std::size_t i) const { call_(object_, i); }

 private:
  void* object_;
  void (*call_)(void*, std::size_t);
};

/// Runs tasks 0 .. count-1 of one call, possibly at once on several threads, and returns when all have run
/// (rethrowing the first exception a task threw). `concurrency()` is how many tasks may run at once: an
/// index splits a scan into at most that many parts. `bulk` may be called from several threads at once.
template <class E>
concept executor = requires(E& e, const E& ce, std::size_t count, bulk_task task) {
  { ce.concurrency() } -> std::convertible_to<std::size_t>;
  e.bulk(count, task);
};

/// The do-nothing executor: every task runs on the calling thread, in order.
struct serial_executor {
  [[nodiscard]] static constexpr std::size_t concurrency() noexcept { return 1; }
  static void bulk(std::size_t count, bulk_task task) {
    for (std::size_t i = 0; i < count; ++i) task(i);
  }
};

/// A fixed set of threads that the calling thread joins: `thread_pool_executor pool(4)` starts 3 workers,
/// and each bulk() call runs its tasks on them and on the caller. Calls from several threads share the
/// workers (each caller keeps working on its own tasks, so a call never waits on another's). The destructor
/// joins the workers; no bulk() call may be running then.
class thread_pool_executor {
 public:
  /// `threads`: tasks run at once per call, the caller included (0 means std::thread::hardware_concurrency()).
  explicit thread_pool_executor(std::size_t threads) {
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    workers_.reserve(threads - 1);
    for (std::size_t i = 1; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }
  thread_pool_executor(const thread_pool_executor&) = delete;
  thread_pool_executor& operator=(const thread_pool_executor&) = delete;
  ~thread_pool_executor() {
    {
      const std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }

  [[nodiscard]] std::size_t concurrency() const noexcept { return workers_.size() + 1; }

  void bulk(std::size_t count, bulk_task task) {
    if (count == 0) return;
    job j{task, count};
    std::unique_lock lock(mutex_);
    if (count > 1 && !workers_.empty()) {
      queue_.push_back(&j);
      wake_.notify_all();
    }
    while (j.next < j.count) run_one(j, lock);
    // the tasks workers took are still running: wait for them (they notify under the mutex)
    j.done_cv.wait(lock, [&] { return j.done == j.count; });
    if (j.error) std::rethrow_exception(j.error);
  }

 private:
  struct job {
    job(bulk_task t, std::size_t n) noexcept : task(t), count(n) {}
    bulk_task task;
    std::size_t count;
    std::size_t next = 0;  // the first task not yet taken
    std::size_t done = 0;  // tasks finished
    std::exception_ptr error;
    std::condition_variable done_cv;
  };

  /// Takes the next task of `j` (holding `lock`), runs it without the lock, and records it finished.
  void run_one(job& j, std::unique_lock<std::mutex>& lock) {
    const std::size_t i = j.next++;
    if (j.next == j.count) std::erase(queue_, &j);
    lock.unlock();
    std::exception_ptr error;
    try {
      j.task(i);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    if (error && !j.error) j.error = error;
    // notify while holding the mutex: the caller cannot return (and destroy j) before we release it
    if (++j.done == j.count) j.done_cv.notify_all();
  }

  void work() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      run_one(*queue_.front(), lock);
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<job*> queue_;  // calls with tasks not yet taken, oldest first
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

/// A non-owning handle to any executor, so that a non-template index can hold one. Default: serial. The
/// executor must outlive every search that uses the handle.
class executor_ref {
 public:
  executor_ref() noexcept = default;
  template <executor E>
    requires(!std::same_as<std::remove_cvref_t<E>, executor_ref>)
  executor_ref(E& e) noexcept  // NOLINT(google-explicit-constructor): a reference, made where it is passed
      : object_(std::addressof(e)),
        concurrency_([](void* o) -> std::size_t { return static_cast<E*>(o)->concurrency(); }),
        bulk_([](void* o, std::size_t n, bulk_task t) { static_cast<E*>(o)->bulk(n, t); }) {}

  [[nodiscard]] std::size_t concurrency() const { return object_ ? concurrency_(object_) : 1; }
  void bulk(std::size_t count, bulk_task task) const {
    if (object_)
      bulk_(object_, count, task);
    else
      serial_executor::bulk(count, task);
  }

 private:
  void* object_ = nullptr;
  std::size_t (*concurrency_)(void*) = nullptr;
  void (*bulk_)(void*, std::size_t, bulk_task) = nullptr;
};

}  // namespace engram::inline v0
