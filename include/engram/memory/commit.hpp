#pragma once
/// @file memory/commit.hpp
/// Commit: a write batch is staged in the store under the memory's write lock (the commit point: if it throws,
/// nothing derived changed), and made durable after. Stores with a two-phase commit (file_store's append +
/// sync) let writers share fsyncs: the durability wait happens after the lock is released.

#include <engram/detail/rw_mutex.hpp>
#include <engram/capabilities.hpp>
#include <engram/write_batch.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <mutex>
#include <shared_mutex>
#include <utility>
#include <vector>

namespace engram::inline v0::detail {

/// Stages and makes durable the batches of one memory over `Store`.
template <class Store>
class committer {
 public:
  /// Commits `b` while the write lock is held. @returns the ticket make_durable() waits for.
  std::uint64_t stage(Store& store, const write_batch& b) {
    if constexpr (two_phase_store<Store>) {
      return store.append(b);
    } else if constexpr (change_feed_store<Store>) {
      feed_duplicates_ = store.apply(b);  // see take_feed_duplicates
      return 0;
    } else {
      store.apply(b);
      return 0;
    }
  }

  /// Releases the write lock, then returns once the batch staged with `ticket` is durable. Readers may see a
  /// change a moment before it is durable; a call never returns before its own change is.
  void make_durable(Store& store, std::unique_lock<rw_mutex>& lock, std::uint64_t ticket) {
    if constexpr (two_phase_store<Store>) {
      lock.unlock();
      store.sync(ticket);
    } else {
      (void)store;
      (void)lock;
      (void)ticket;
    }
  }

  /// Removes pending adds that produced no memory from the store's queue, in one batch: staged under `mtx` held
  /// exclusively, durable on return.
  void dequeue(Store& store, detail::rw_mutex& mtx, std::span<const std::string> ids) {
    write_batch b;
    b.dequeued.assign(ids.begin(), ids.end());
    std::unique_lock lock(mtx);
    make_durable(store, lock, stage(store, b));
  }

  /// The new records the last stage() saw a shared store drop as duplicates of records another node added
  /// meanwhile (empty for other stores). Under the write lock.
  std::vector<duplicate_record> take_feed_duplicates() { return std::exchange(feed_duplicates_, {}); }

 private:
  std::vector<duplicate_record> feed_duplicates_;
};

}  // namespace engram::inline v0::detail
