#pragma once
/// @file memory/feed_sync.hpp
/// Change-feed sync, for stores several nodes write (change_feed_store, e.g. postgres_store): before each read
/// and write the memory polls the changes other nodes made since its last poll and applies them to its derived
/// state. Two atomic loads when nothing is pending.

#include <engram/detail/rw_mutex.hpp>
#include <engram/capabilities.hpp>

#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

namespace engram::inline v0::detail {

/// The changes one poll reported: ids to re-read, or everything ("*": a feed gap, or a clear()).
struct feed_changes {
  std::vector<std::string> ids;
  bool everything = false;
  bool after_outage = false;  ///< the previous poll failed: the node may have missed anything
};

/// Where a memory stands in its store's change feed.
class feed_sync {
 public:
  /// The position to start from: the store's, read before the memory reads the store on open, so that nothing
  /// written meanwhile is missed.
  template <class Store>
  void start(const Store& store) {
    if constexpr (change_feed_store<Store>) position_ = store.change_position();
  }

  /// Polls and applies other nodes' changes under `mtx` (taken exclusively only when some are pending).
  /// `apply(feed_changes&)` runs under the write lock. The new position is kept only once every change it
  /// covers is applied: if the store fails part way (a dropped connection), the next poll reports the same
  /// changes again, flagged after_outage.
  template <class Store, class Apply>
  void catch_up(const Store& store, detail::rw_mutex& mtx, Apply&& apply) {
    if constexpr (change_feed_store<Store>) {
      if (!store.changes_pending()) return;
      std::unique_lock lock(mtx);
      if (!store.changes_pending()) return;  // another thread caught up meanwhile
      feed_changes changes;
      changes.after_outage = interrupted_;
      std::uint64_t next = 0;
      try {
        next = store.poll_changes(position_, [&](const std::string& id) {
          if (id == "*")
            changes.everything = true;
          else
            changes.ids.push_back(id);
        });
        apply(changes);
      } catch (...) {
        interrupted_ = true;
        throw;
      }
      interrupted_ = false;
      position_ = next;
    } else {
      (void)store;
      (void)mtx;
      (void)apply;
    }
  }

 private:
  std::uint64_t position_ = 0;  // the last position polled
  bool interrupted_ = false;    // a poll failed; the next one reports after_outage
};

}  // namespace engram::inline v0::detail
