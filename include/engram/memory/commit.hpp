#pragma once
/// @file memory/commit.hpp
/// Commit: a write batch is staged in the store under the memory's write lock (the commit point: if it throws,
/// nothing derived changed), and made durable after. Stores with a two-phase commit (file_store's append +
/// sync; postgres_store's group commit) let writers share fsyncs: the durability wait happens after the lock is
/// released.
///
/// Meanwhile a reader may meet the staged change in the derived state, so each read notes the newest ticket staged
/// in the partitions it read (`seen`) and waits for it (`await_durable`) after releasing its lock, before it
/// answers: no answer ever shows a change a crash could still take back. A read of a partition with nothing in
/// flight pays one atomic load.

#include <engram/detail/catalog.hpp>
#include <engram/detail/rw_mutex.hpp>
#include <engram/capabilities.hpp>
#include <engram/ids.hpp>
#include <engram/write_batch.hpp>

#include <algorithm>
#include <atomic>
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
  /// For a memory whose write lock is `lock`.
  explicit committer(const rw_mutex& lock) : lock_(lock) {}

  /// Commits `b` while the write lock is held, before the derived state changes: `catalog` says which partitions
  /// it changes, so that reads of them wait until it is durable. @returns the ticket make_durable() waits for.
  std::uint64_t stage(Store& store, const write_batch& b, const scope_catalog& catalog) {
    const auto ticket = stage(store, b);
    if constexpr (two_phase_store<Store>) {
      indexed(b, ticket, catalog);  // a new scope has no partition yet: see indexed()
      for (const auto& id : b.erases)
        if (const auto slot = catalog.slot_of(id)) staged_in(catalog.partition_of(*slot), ticket);
    } else {
      (void)catalog;
    }
    return ticket;
  }

  /// After the derived state took batch `b` (staged with `ticket`), still under the write lock: notes the
  /// partitions its records created (a scope's first memory).
  void indexed(const write_batch& b, std::uint64_t ticket, const scope_catalog& catalog) {
    if constexpr (two_phase_store<Store>) {
      for (const auto& r : b.upserts)
        if (const auto p = catalog.find_partition(r)) staged_in(*p, ticket);
    } else {
      (void)b;
      (void)ticket;
      (void)catalog;
    }
  }

  /// With the partition cache a scope may be loaded from the store while a change to it is staged (postgres_store
  /// with group_commit): every read then waits for everything staged.
  void wait_for_all_staged(bool on) noexcept { all_ = on; }

  /// Commits `b`, which changes no memory (a dequeue), while the write lock is held. @returns its ticket.
  std::uint64_t stage(Store& store, const write_batch& b) {
    if constexpr (two_phase_store<Store>) {
      std::uint64_t ticket = 0;
      if constexpr (requires { store.append(b, &feed_duplicates_, [] { return true; }); })
        // a store that may also COMMIT synchronously (postgres_store's group commit): deferring the flush pays an
        // extra statement after the lock, worth it only when others wait for the lock
        ticket = store.append(b, &feed_duplicates_, [this] { return lock_.contended(); });
      else if constexpr (change_feed_store<Store>)
        ticket = store.append(b, &feed_duplicates_);  // see take_feed_duplicates
      else
        ticket = store.append(b);
      last_.store(std::max(last_.load(std::memory_order_relaxed), ticket), std::memory_order_release);
      return ticket;
    } else if constexpr (change_feed_store<Store>) {
      feed_duplicates_ = store.apply(b);  // see take_feed_duplicates
      return 0;
    } else {
      store.apply(b);
      return 0;
    }
  }

  /// Releases the write lock, then returns once the batch staged with `ticket` is durable. Readers that meet the
  /// change meanwhile wait for the same sync before they answer (seen / await_durable).
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

  /// The partition ids were cleared (reset): they will name other scopes. Under the write lock.
  void partitions_cleared() { staged_.clear(); }

  /// The newest ticket staged in any of `partitions` (under a shared or the write lock): what a read of them
  /// waits for. 0 when nothing needs waiting for.
  [[nodiscard]] std::uint64_t seen(std::span<const partition_id> partitions) const {
    std::uint64_t t = 0;
    if constexpr (two_phase_store<Store>)
      for (const auto p : partitions)
        if (p < staged_.size()) t = std::max(t, staged_[p]);
    return all_ ? last_.load(std::memory_order_acquire) : t;
  }

  /// What a read met: the newest ticket staged in the partitions it names (see read()).
  class seen_tickets {
   public:
    explicit seen_tickets(const committer& c) : c_(c) {}
    /// Notes partitions the read reads (under the lock); @returns them.
    template <class Partitions>
    Partitions operator()(Partitions partitions) {
      ticket_ = std::max(ticket_, c_.seen(std::span<const partition_id>(partitions.data(), partitions.size())));
      return partitions;
    }
    /// Notes a read that cannot name its partitions (history, a lookup in the store): it met anything staged.
    void anywhere() { ticket_ = std::max(ticket_, c_.last_.load(std::memory_order_acquire)); }
    [[nodiscard]] std::uint64_t ticket() const noexcept { return ticket_; }

   private:
    const committer& c_;
    std::uint64_t ticket_ = 0;
  };

  /// Runs read f(seen_tickets&) under a shared lock of `mtx`, then, without the lock, waits until what it noted
  /// is durable. @returns what f returned. @throws storage_error when the store failed to make it durable.
  template <class F>
  auto read(const Store& store, rw_mutex& mtx, F&& f) const {
    seen_tickets seen(*this);
    auto out = [&] {
      std::shared_lock lock(mtx);
      return f(seen);
    }();
    await_durable(store, seen.ticket());
    return out;
  }

  /// A read f() that cannot name its partitions (a count, history, a lookup in the store): as read(), waiting for
  /// everything staged.
  template <class F>
  auto read_anywhere(const Store& store, rw_mutex& mtx, F&& f) const {
    return read(store, mtx, [&](seen_tickets& seen) {
      seen.anywhere();
      return f();
    });
  }

  /// A read of the store alone, f(): as read_anywhere() for a two-phase store; for the others, as it is and without
  /// the lock (their changes are durable when staged).
  template <class F>
  auto read_store(const Store& store, rw_mutex& mtx, F&& f) const {
    if constexpr (two_phase_store<Store>) {
      return read_anywhere(store, mtx, std::forward<F>(f));
    } else {
      (void)store;
      (void)mtx;
      return f();
    }
  }

  /// Returns once every change staged up to `ticket` is durable (call without the memory's lock). Cheap when it
  /// already is. @throws storage_error when the store failed to make it durable.
  void await_durable(const Store& store, std::uint64_t ticket) const {
    if constexpr (two_phase_store<Store>) {
      if (ticket != 0) store.sync(ticket);
    } else {
      (void)store;
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
  /// Notes that partition `p` holds a change staged with `ticket`.
  void staged_in(partition_id p, std::uint64_t ticket) {
    if (p >= staged_.size()) staged_.resize(std::size_t{p} + 1, 0);
    staged_[p] = std::max(staged_[p], ticket);
  }

  const rw_mutex& lock_;
  std::vector<duplicate_record> feed_duplicates_;
  std::vector<std::uint64_t> staged_;  ///< per partition id, the newest ticket staged in it (two-phase stores)
  std::atomic<std::uint64_t> last_{0};  ///< the newest ticket staged
  bool all_ = false;                    ///< every read waits for last_ (wait_for_all_staged)
};

}  // namespace engram::inline v0::detail
