#pragma once
/// @file detail/rw_mutex.hpp
/// The memory's reader-writer lock, fair to writers. glibc's std::shared_mutex is a default pthread rwlock,
/// which prefers readers: under a steady stream of searches an add waited until no search was running at all,
/// however long that took. Here a waiting writer stops new readers from entering (glibc's writer-preferring
/// rwlock kind), so an add waits only for the searches already running. Elsewhere it is std::shared_mutex.
/// Not recursive: a thread holding it shared must not take it again (with a writer waiting in between it would
/// wait for itself), so callbacks run under it (a reranker) must not call back into the memory.

#include <shared_mutex>
#include <system_error>

#if defined(__GLIBC__)
#include <pthread.h>
#endif

namespace engram::inline v0::detail {

#if defined(__GLIBC__)
class rw_mutex {
 public:
  rw_mutex() {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    const int rc = pthread_rwlock_init(&rw_, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0) throw std::system_error(rc, std::generic_category(), "pthread_rwlock_init");
  }
  ~rw_mutex() { pthread_rwlock_destroy(&rw_); }
  rw_mutex(const rw_mutex&) = delete;
  rw_mutex& operator=(const rw_mutex&) = delete;

  void lock() { check(pthread_rwlock_wrlock(&rw_), "pthread_rwlock_wrlock"); }
  bool try_lock() noexcept { return pthread_rwlock_trywrlock(&rw_) == 0; }
  void unlock() noexcept { pthread_rwlock_unlock(&rw_); }
  void lock_shared() { check(pthread_rwlock_rdlock(&rw_), "pthread_rwlock_rdlock"); }
  bool try_lock_shared() noexcept { return pthread_rwlock_tryrdlock(&rw_) == 0; }
  void unlock_shared() noexcept { pthread_rwlock_unlock(&rw_); }

 private:
  static void check(int rc, const char* what) {
    if (rc != 0) throw std::system_error(rc, std::generic_category(), what);  // EDEADLK, EAGAIN: a bug
  }
  pthread_rwlock_t rw_;
};
#else
using rw_mutex = std::shared_mutex;
#endif

}  // namespace engram::inline v0::detail
