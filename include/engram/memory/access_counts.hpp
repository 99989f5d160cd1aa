#pragma once
/// @file memory/access_counts.hpp
/// How often search returned each memory: the `access` ranking term. A search only counts (atomics by slot,
/// and the hits not yet written gathered by id); the store's counts are written by a background flusher once
/// memory_config::access_flush_interval has passed since the last write, by flush_access_counts() and when the
/// memory is destroyed. A search never writes to the store.

#include <engram/capabilities.hpp>
#include <engram/ids.hpp>
#include <engram/record.hpp>
#include <engram/scope.hpp>
#include <engram/write_batch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace engram::inline v0::detail {

/// Access counts of one memory. Thread-safe as documented per member.
class access_counts {
 public:
  /// Writes gathered hits to the store; throws what the store throws.
  using writer = std::function<void(std::span<const access_increment>)>;

  explicit access_counts(std::chrono::milliseconds interval) : interval_(interval) {}
  access_counts(const access_counts&) = delete;
  access_counts& operator=(const access_counts&) = delete;
  ~access_counts() { stop(); }

  /// Where gathered hits go (none: they are counted in memory only). Set before the first search.
  void set_writer(writer w) { write_ = std::move(w); }

  // ---- counts by slot: resized under the owner's write lock, read and bumped under its read lock ----------

  /// Sets the count of `slot` (growing the table), e.g. 0 for a newly indexed memory.
  void set(slot_id slot, std::uint32_t n) {
    while (by_slot_.size() <= slot) by_slot_.emplace_back(0u);
    by_slot_[slot].store(n, std::memory_order_relaxed);
  }
  /// Adds `n` to the count of `slot`, saturating.
  void add(slot_id slot, std::uint32_t n) { set(slot, saturated(std::uint64_t{get(slot)} + n)); }
  [[nodiscard]] std::uint32_t get(slot_id slot) const noexcept {
    return slot < by_slot_.size() ? by_slot_[slot].load(std::memory_order_relaxed) : 0u;
  }
  /// Forgets every count, written or not (reset()).
  void clear() {
    by_slot_.clear();
    std::lock_guard lock(mtx_);
    pending_.clear();
  }
  /// Forgets the counts by slot only (the index is rebuilt; the counts are loaded again).
  void clear_slots() { by_slot_.clear(); }

  // ---- hits --------------------------------------------------------------------------------------------------

  /// Counts a search's hits: slots (in the table, under the owner's read lock) via `slot_of(id)`, and, when a
  /// writer is set, the hits to be written. Wakes the flusher when the interval has passed. No store I/O.
  template <class SlotOf>
  void note(const std::vector<search_hit>& hits, SlotOf&& slot_of) {
    for (const auto& h : hits)
      if (auto slot = slot_of(h.record.id); slot && *slot < by_slot_.size())
        by_slot_[*slot].fetch_add(1, std::memory_order_relaxed);
    if (!write_ || hits.empty()) return;
    bool due = false;
    {
      std::lock_guard lock(mtx_);
      for (const auto& h : hits) {
        auto it = pending_.find(h.record.id);
        if (it == pending_.end()) {
          if (pending_.size() >= pending_limit) continue;
          it = pending_.try_emplace(h.record.id, access_increment{h.record.id, h.record.scope(), 0}).first;
        }
        if (it->second.count != 0xFFFFFFFFu) ++it->second.count;
      }
      due = std::chrono::steady_clock::now() - written_at_ >= interval_;
      if (!flusher_.joinable() && !stopping_) flusher_ = std::thread([this] { flush_loop(); });
    }
    if (due) wake_.notify_one();
  }

  /// Sets the counts of the indexed memories query scope `q` selects (every one when empty) from `store` (when
  /// it keeps counts), plus the hits gathered and not written yet; `slot_of(id)` names their slots.
  template <class Store, class SlotOf>
  void load(const Store& store, const scope& q, SlotOf&& slot_of) {
    if constexpr (access_count_store<Store>) {
      store.for_each_access_count(q, [&](const std::string& id, std::uint32_t n) {
        if (auto slot = slot_of(id)) set(*slot, n);
      });
    }
    for_each_unwritten(q, slot_of, [&](slot_id slot, std::uint32_t n) { add(slot, n); });
  }

  /// Calls f(slot, count) for the hits gathered and not written yet of the memories `q` selects (every one
  /// when empty), `slot_of` naming their slots.
  template <class SlotOf, class F>
  void for_each_unwritten(const scope& q, SlotOf&& slot_of, F&& f) const {
    std::lock_guard lock(mtx_);
    for (const auto& [id, inc] : pending_)
      if (q.covers(inc.owner))
        if (auto slot = slot_of(id)) f(*slot, inc.count);
  }

  /// Writes the gathered hits now (flush_access_counts()). One writer at a time.
  /// @throws what the store throws; the hits stay gathered for the next try.
  void flush() {
    std::lock_guard one(flush_mtx_);
    flush_locked();
  }

  /// Stops the flusher (it writes what is gathered first, if it can). Idempotent.
  void stop() noexcept {
    {
      std::lock_guard lock(mtx_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (flusher_.joinable()) flusher_.join();
  }

 private:
  static constexpr std::size_t pending_limit = 100000;  // ids gathered at most while the store fails

  static std::uint32_t saturated(std::uint64_t n) noexcept {
    return n > 0xFFFFFFFFu ? 0xFFFFFFFFu : static_cast<std::uint32_t>(n);
  }

  void flush_locked() {
    if (!write_) return;
    std::vector<access_increment> batch;
    {
      std::lock_guard lock(mtx_);
      written_at_ = std::chrono::steady_clock::now();
      batch.reserve(pending_.size());
      for (auto& [id, inc] : pending_) batch.push_back(std::move(inc));
      pending_.clear();
    }
    if (batch.empty()) return;
    try {
      write_(std::span<const access_increment>(batch));
    } catch (...) {
      std::lock_guard lock(mtx_);
      for (auto& inc : batch) {
        auto [it, fresh] = pending_.try_emplace(inc.memory_id, inc);
        if (!fresh) it->second.count = saturated(std::uint64_t{it->second.count} + inc.count);
      }
      throw;
    }
  }

  /// The flusher: writes the gathered hits once the interval has passed since the last write.
  void flush_loop() {
    std::unique_lock lock(mtx_);
    bool failed = false;
    while (!stopping_) {
      // after a failed write, at least a second passes before the next try (interval 0 would spin)
      const auto due_at = written_at_ + (failed ? std::max<std::chrono::milliseconds>(interval_, std::chrono::seconds{1}) : interval_);
      if (pending_.empty() || std::chrono::steady_clock::now() < due_at) {
        if (pending_.empty())
          wake_.wait(lock);
        else
          wake_.wait_until(lock, due_at);
        continue;
      }
      lock.unlock();
      {
        std::lock_guard one(flush_mtx_);
        try {
          flush_locked();
          failed = false;
        } catch (...) {  // kept for the next try (flush_access_counts() reports the error)
          failed = true;
        }
      }
      lock.lock();
    }
  }

  std::chrono::milliseconds interval_;
  writer write_;
  std::deque<std::atomic<std::uint32_t>> by_slot_;  // each indexed memory's count (stored + this process's hits)
  mutable std::mutex mtx_;                          // guards pending_, written_at_, stopping_, flusher_ start
  std::mutex flush_mtx_;                            // one writer of counts at a time
  std::condition_variable wake_;
  std::unordered_map<std::string, access_increment> pending_;  // hits not written yet, by memory id
  std::chrono::steady_clock::time_point written_at_ = std::chrono::steady_clock::now();
  bool stopping_ = false;
  std::thread flusher_;
};

}  // namespace engram::inline v0::detail
