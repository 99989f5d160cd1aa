#pragma once
/// @file async/pending_list.hpp
/// The in-memory image of a store's pending queue (add_async entries awaiting extraction), kept in the order
/// the entries were first enqueued. Shared by memory_store and file_store.

#include <engram/write_batch.hpp>

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

namespace engram::inline v0::detail {

/// Pending adds in enqueue order. Not thread-safe: the owning store guards it with its own lock.
/// Lookups are linear: the queue holds what awaits extraction (bounded by the memory's async queue, plus the
/// failed entries kept for inspection), not the memories themselves.
class pending_list {
 public:
  /// Applies a batch's queue changes: `enqueued` first (an entry whose id is already queued replaces it in
  /// place, keeping its position), then `dequeued` (unknown ids are ignored).
  void apply(const std::vector<pending_add>& enqueued, const std::vector<std::string>& dequeued) {
    for (const auto& p : enqueued) {
      auto it = std::find_if(items_.begin(), items_.end(), [&](const pending_add& q) { return q.id == p.id; });
      if (it != items_.end())
        *it = p;
      else
        items_.push_back(p);
    }
    for (const auto& id : dequeued)
      std::erase_if(items_, [&](const pending_add& q) { return q.id == id; });
  }

  /// Calls f(const pending_add&) for every entry, oldest first.
  template <class F>
  void for_each(F&& f) const {
    for (const auto& p : items_) f(p);
  }

  [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
  void clear() noexcept { items_.clear(); }

 private:
  std::vector<pending_add> items_;
};

}  // namespace engram::inline v0::detail
