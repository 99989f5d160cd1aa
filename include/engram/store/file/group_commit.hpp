#pragma once
/// @file store/file/group_commit.hpp
/// Sharing one flush between concurrent writers: the first waiting writer becomes the leader and does the
/// work of everyone queued behind it (durability::group_commit, and file_store::sync).
///
/// When several writers were active at the end of the previous flush, a new leader first waits (at most half
/// that flush's duration, and 2 ms) for as many to have queued: without it, writers returning from one flush
/// miss the next, and the rounds alternate between two halves of them. A lone writer never waits.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <mutex>
#include <vector>

namespace engram::inline v0::detail {

/// Leader/follower rounds over items of type `Item` (what a writer hands in). Thread-safe.
/// @tparam Item what commit() queues; the leader's write callable sees every item of its round.
template <class Item>
class group_commit {
 public:
  using duration = std::chrono::steady_clock::duration;

  /// Queues `item` and returns once a round has written it: the caller either waits for a leader or leads,
  /// calling write(const std::vector<const Item*>& round, duration& flush_time), which writes and flushes the
  /// round and sets how long the flush took. An exception from write is rethrown to every writer of the round.
  template <class Write>
  void commit(const Item& item, Write&& write) {
    waiter me{&item, false, nullptr, {}};
    std::unique_lock lk(mtx_);
    queue_.push_back(&me);
    gather_cv_.notify_one();
    while (!me.done) {
      if (leader_) {
        me.cv.wait(lk);
        continue;
      }
      leader_ = true;
      gather(lk, [&] { return queue_.size(); });
      std::vector<waiter*> round;
      round.swap(queue_);
      lk.unlock();
      std::vector<const Item*> items;
      items.reserve(round.size());
      for (const auto* w : round) items.push_back(w->item);
      std::exception_ptr err;
      duration flush_time{};
      try {
        write(items, flush_time);
      } catch (...) {
        err = std::current_exception();
      }
      lk.lock();
      last_flush_ = flush_time;
      last_round_ = round.size() + queue_.size();  // the writers it served and those that came meanwhile
      for (auto* w : round) {
        w->done = true;
        w->error = err;
        if (w != &me) w->cv.notify_one();
      }
      leader_ = false;
      if (!queue_.empty()) queue_.front()->cv.notify_one();  // the next leader
    }
    if (me.error) std::rethrow_exception(me.error);
  }

  /// Returns once done() holds: the caller either waits for the flush in progress or leads one, calling
  /// flush(duration& flush_time), until done() holds. An std::exception from flush is rethrown, to this
  /// caller and to every later one (the flush's outcome is unknown: nothing is durable any more).
  template <class Done, class Flush>
  void sync(Done&& done, Flush&& flush) {
    std::unique_lock lk(mtx_);
    ++sync_waiters_;
    gather_cv_.notify_one();
    struct leave {
      group_commit& g;
      ~leave() { --g.sync_waiters_; }  // mtx_ is held again whenever the loop is left
    } guard{*this};
    while (!done()) {
      if (sync_error_) std::rethrow_exception(sync_error_);
      if (syncing_) {
        sync_cv_.wait(lk);
        continue;
      }
      syncing_ = true;
      gather(lk, [&] { return sync_waiters_; });
      lk.unlock();
      std::exception_ptr err;
      duration flush_time{};
      try {
        flush(flush_time);
      } catch (const std::exception&) {
        err = std::current_exception();
      }
      lk.lock();
      last_flush_ = flush_time;
      last_round_ = sync_waiters_;  // the writers it served and those that came meanwhile
      syncing_ = false;
      if (err) sync_error_ = err;
      sync_cv_.notify_all();
    }
  }

 private:
  struct waiter {
    const Item* item;
    bool done = false;
    std::exception_ptr error;
    std::condition_variable cv;  // woken when done, or to become the next leader
  };

  /// Called by a new leader holding mtx_: when several writers were active at the end of the last flush,
  /// waits until `gathered()` of them are waiting again, at most half that flush's duration (and 2 ms).
  template <class Count>
  void gather(std::unique_lock<std::mutex>& lk, Count gathered) {
    if (last_round_ <= 1 || gathered() >= last_round_) return;
    const auto wait = std::min<duration>(last_flush_ / 2, std::chrono::milliseconds(2));
    gather_cv_.wait_for(lk, wait, [&] { return gathered() >= last_round_; });
  }

  std::mutex mtx_;
  std::vector<waiter*> queue_;  // commit() writers waiting for a round
  bool leader_ = false;
  bool syncing_ = false;  // a sync() flush is in progress
  std::condition_variable sync_cv_;
  std::exception_ptr sync_error_;
  std::size_t sync_waiters_ = 0;  // callers inside sync()
  std::size_t last_round_ = 0;    // writers active at the end of the last flush (served or waiting)
  duration last_flush_{};         // how long that flush took
  std::condition_variable gather_cv_;  // a leader gathering writers waits here; arriving writers notify it
};

}  // namespace engram::inline v0::detail
