#pragma once
/// @file memory/partition_cache.hpp
/// The partition cache (memory_config::partition_cache_bytes > 0, over a scope_loading_store): which query
/// scopes are loaded into the memory's derived state, pinned while an operation uses them, and evicted least
/// recently used when the estimated bytes they hold exceed the budget.
///
/// The unit loaded is a query scope as operations name it (user("alice"), a user and agent, or "every scope"
/// for the calls without one): a loaded scope holds every record it selects, so its partitions are complete and
/// a search over them is the search the eager mode does. Loaded scopes may overlap (a record is indexed once); a
/// partition is dropped when no loaded scope selects it any more.
/// Locking (the owner's mutex): a scope is loaded under the write lock (readers wait; the store is read
/// meanwhile), then pinned (an atomic count) until the operation that needed it returns: eviction, done under
/// the write lock, skips pinned scopes, so a search never sees a scope half gone. A pinned scope may still be
/// reloaded by re-validation (under the write lock), which leaves it complete. LRU order is an atomic tick
/// stamped on every use (under the read lock). When the estimated bytes exceed the budget, the unpinned scopes
/// used least recently are evicted: after a load, and when an operation unpins with the cache over budget (so a
/// scope larger than the whole budget is loaded, used, and evicted after).
/// Freshness: the change feed re-reads changed records of loaded scopes only; after a feed gap or an outage the
/// owner re-validates: every loaded scope whose scope_selection_version moved since it was loaded is reloaded.

#include <engram/detail/rw_mutex.hpp>
#include <engram/ids.hpp>
#include <engram/record.hpp>
#include <engram/scope.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace engram::inline v0 {

/// What the partition cache did (basic_memory::cache_stats()); all zero when it is off.
struct partition_cache_stats {
  std::uint64_t loads = 0;      ///< scopes loaded from the store, re-validation reloads included
  std::uint64_t evictions = 0;  ///< scopes evicted to stay within memory_config::partition_cache_bytes
  std::size_t bytes = 0;        ///< estimated bytes the loaded scopes hold now (vectors, texts, keyword postings)
  std::size_t scopes = 0;       ///< scopes loaded now
};

namespace detail {

/// The loaded scopes and their byte estimate. The loading itself is the owner's, through `Ops`:
///   std::uint64_t version(const scope& q)    the store's scope_selection_version(q)
///   void load(const scope& q)                indexes the records q selects that are not indexed yet
///   void drop(const scope& q, bool keep_loaded)  unindexes the partitions q selects (with keep_loaded,
///                                            those no loaded scope selects any more)
class partition_cache {
  struct region {
    std::uint64_t version = 0;  // the store's scope_selection_version read before loading
    bool complete = false;      // false while loading, or after a load failed: reloaded on next use
    std::atomic<std::uint64_t> last_use{0};
    std::atomic<std::uint32_t> pins{0};
  };

 public:
  /// Keeps a loaded scope from eviction while an operation uses it; calls the owner's trim when released with
  /// the cache over budget.
  class pin {
   public:
    pin() = default;
    pin(partition_cache* c, region* r) noexcept : c_(c), r_(r) {}
    pin(pin&& o) noexcept : c_(std::exchange(o.c_, nullptr)), r_(std::exchange(o.r_, nullptr)) {}
    pin(const pin&) = delete;
    pin& operator=(const pin&) = delete;
    pin& operator=(pin&&) = delete;
    ~pin() {
      if (!r_) return;
      r_->pins.fetch_sub(1, std::memory_order_acq_rel);
      if (c_->over_budget() && c_->trim_) c_->trim_();
    }

   private:
    partition_cache* c_ = nullptr;
    region* r_ = nullptr;
  };

  /// Turns the cache on with a budget; `trim` (never throws) takes the owner's write lock and calls
  /// evict_over_budget.
  void enable(std::size_t budget, std::function<void()> trim) {
    budget_ = budget;
    trim_ = std::move(trim);
  }
  [[nodiscard]] bool enabled() const noexcept { return budget_ > 0; }
  [[nodiscard]] bool over_budget() const noexcept { return bytes_.load(std::memory_order_relaxed) > budget_; }

  /// A pin on a complete loaded scope selecting everything `q` selects, or an empty optional. Under the owner's
  /// lock (shared or exclusive).
  [[nodiscard]] std::optional<pin> pin_loaded(const scope& q) {
    region* r = find_covering(q);
    if (!r) return std::nullopt;
    return pin_of(*r);
  }

  /// Pins query scope `q`, loading it first when it is not loaded (or incomplete). Takes `mtx` (the owner's):
  /// shared to find it, exclusive to load it.
  template <class Ops>
  pin pin_or_load(const scope& q, detail::rw_mutex& mtx, const Ops& ops) {
    {
      std::shared_lock lock(mtx);
      if (auto p = pin_loaded(q)) return std::move(*p);
    }
    std::unique_lock lock(mtx);
    if (auto p = pin_loaded(q)) return std::move(*p);  // loaded by another thread meanwhile
    return load(q, ops);
  }

  /// When over budget: takes `mtx` exclusively and evicts. Never throws.
  template <class Ops>
  void trim(detail::rw_mutex& mtx, const Ops& ops) noexcept {
    if (!over_budget()) return;
    try {
      std::unique_lock lock(mtx);
      evict_over_budget(ops);
    } catch (...) {  // eviction is an optimisation: it is tried again on the next unpin or load
    }
  }

  /// Loads query scope `q` (not loaded, or incomplete) and pins it, then evicts over budget. Under the write lock.
  template <class Ops>
  pin load(const scope& q, const Ops& ops) {
    auto [it, fresh] = regions_.try_emplace(q, nullptr);
    if (fresh) {
      it->second = std::make_unique<region>();
      bytes_.fetch_add(region_overhead, std::memory_order_relaxed);
    }
    fill(it->first, *it->second, !fresh, ops);
    auto p = pin_of(*it->second);
    evict_over_budget(ops);
    return p;
  }

  /// True when a loaded scope selects records of exact scope `e` (they are indexed). Under the owner's lock.
  [[nodiscard]] bool is_loaded(const scope& e) const {
    if (regions_.empty()) return false;
    return for_each_wider(e, [&](const scope& w) { return regions_.count(w) != 0; });
  }

  /// Evicts the unpinned loaded scopes used least recently while over budget. Under the write lock.
  template <class Ops>
  void evict_over_budget(const Ops& ops) {
    while (over_budget()) {
      auto victim = regions_.end();
      for (auto it = regions_.begin(); it != regions_.end(); ++it)
        if (it->second->pins.load(std::memory_order_acquire) == 0 &&
            (victim == regions_.end() || it->second->last_use.load(std::memory_order_relaxed) <
                                             victim->second->last_use.load(std::memory_order_relaxed)))
          victim = it;
      if (victim == regions_.end()) return;  // everything loaded is in use
      const scope q = victim->first;
      regions_.erase(victim);
      bytes_.fetch_sub(region_overhead, std::memory_order_relaxed);
      ops.drop(q, true);
      evictions_.fetch_add(1, std::memory_order_relaxed);
    }
  }

  /// Reloads every loaded scope whose version moved (or that is incomplete). Under the write lock.
  /// @returns how many were reloaded. @throws what the store throws (the scopes not checked are reloaded on
  ///          next use).
  template <class Ops>
  std::size_t revalidate(const Ops& ops) {
    std::size_t reloaded = 0;
    try {
      for (auto& [q, r] : regions_) {
        if (r->complete && ops.version(q) == r->version) continue;
        fill(q, *r, true, ops);
        ++reloaded;
      }
    } catch (...) {
      for (auto& [q, r] : regions_) r->complete = false;
      throw;
    }
    return reloaded;
  }

  /// Keeps the byte estimate: `r` now in `slot`, or nothing (null). Under the write lock.
  void track_bytes(slot_id slot, const record* r) {
    if (slot_bytes_.size() <= slot) slot_bytes_.resize(std::size_t{slot} + 1, 0);
    const std::size_t now = r ? record_bytes(*r) : 0;
    bytes_.fetch_add(now, std::memory_order_relaxed);
    bytes_.fetch_sub(slot_bytes_[slot], std::memory_order_relaxed);
    slot_bytes_[slot] = static_cast<std::uint32_t>(now);
  }

  /// After the memory was emptied (reset()): the loaded scopes stay loaded, complete and empty.
  void emptied() {
    slot_bytes_.clear();
    bytes_.store(regions_.size() * region_overhead, std::memory_order_relaxed);
  }

  [[nodiscard]] partition_cache_stats stats() const {
    return {loads_.load(std::memory_order_relaxed), evictions_.load(std::memory_order_relaxed),
            bytes_.load(std::memory_order_relaxed), regions_.size()};
  }

 private:
  /// Bytes counted per loaded scope besides its records (its map entry), so empty scopes are evicted too.
  static constexpr std::size_t region_overhead = 256;

  /// Estimated bytes one indexed record costs: its vector, its text and about as much again in keyword
  /// postings, its id in the catalog, and a fixed part (catalog entry, filter columns, expiry, counters).
  static std::size_t record_bytes(const record& r) {
    return r.embedding.size() * sizeof(float) + 2 * r.memory.size() + r.id.size() + 96;
  }

  /// True when some exact scope could be selected by both query scopes (an empty one selects every scope).
  static bool overlap(const scope& a, const scope& b) {
    if (a.empty() || b.empty()) return true;
    auto agree = [](std::string_view x, std::string_view y) { return x.empty() || y.empty() || x == y; };
    auto extras_agree = [&](std::string_view lines, const scope& other) {
      for (std::string_view rest = lines; !rest.empty();) {
        const auto line = rest.substr(0, rest.find('\n'));
        const auto eq = line.find('=');
        if (!agree(line.substr(eq + 1), detail::scope_line_value(other.extra, line.substr(0, eq)))) return false;
        rest.remove_prefix(std::min(rest.size(), line.size() + 1));
      }
      return true;
    };
    return a.tenant == b.tenant && agree(a.user_id, b.user_id) && agree(a.agent_id, b.agent_id) &&
           agree(a.run_id, b.run_id) && extras_agree(a.extra, b);
  }

  /// The query scopes that select every record `q` selects: `q` with some of its ids blanked (its tenant alone,
  /// then the empty scope, "every scope", last). Calls f(scope) for each until it returns true.
  template <class F>
  static bool for_each_wider(const scope& q, F&& f) {
    for (int mask = 15; mask >= 0; --mask) {
      if (((mask & 1) && q.user_id.empty()) || ((mask & 2) && q.agent_id.empty()) || ((mask & 4) && q.run_id.empty()) ||
          ((mask & 8) && q.extra.empty()))
        continue;  // the same scope as a mask without that bit
      scope w{(mask & 1) ? q.user_id : std::string(), (mask & 2) ? q.agent_id : std::string(),
              (mask & 4) ? q.run_id : std::string(), q.tenant, (mask & 8) ? q.extra : std::string()};
      if (w.empty()) {  // no id left: every scope of the tenant, then every scope
        if (!w.tenant.empty() && f(w)) return true;
        w = scope{};
      }
      if (f(w)) return true;
    }
    return false;
  }

  region* find_covering(const scope& q) const {
    if (regions_.empty()) return nullptr;
    region* found = nullptr;
    for_each_wider(q, [&](const scope& w) {
      auto it = regions_.find(w);
      if (it == regions_.end() || !it->second->complete) return false;
      found = it->second.get();
      return true;
    });
    return found;
  }

  pin pin_of(region& r) {
    r.pins.fetch_add(1, std::memory_order_acq_rel);
    r.last_use.store(tick_.fetch_add(1, std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return pin(this, &r);
  }

  /// (Re)loads the records `q` selects. With `drop_first`, the partitions `q` selects are emptied first (a
  /// reload: they may be stale). On failure they are dropped and every loaded scope overlapping `q` is marked
  /// incomplete (reloaded on next use); the error propagates.
  template <class Ops>
  void fill(const scope& q, region& r, bool drop_first, const Ops& ops) {
    r.complete = false;
    try {
      r.version = ops.version(q);  // before reading: a write meanwhile moves it again
      if (drop_first) ops.drop(q, false);
      ops.load(q);
    } catch (...) {
      ops.drop(q, false);
      for (auto& [w, other] : regions_)
        if (overlap(w, q)) other->complete = false;
      throw;
    }
    r.complete = true;
    loads_.fetch_add(1, std::memory_order_relaxed);
  }

  std::size_t budget_ = 0;
  std::function<void()> trim_;
  std::map<scope, std::unique_ptr<region>> regions_;  // the loaded query scopes
  std::vector<std::uint32_t> slot_bytes_;             // record_bytes of each indexed slot
  std::atomic<std::size_t> bytes_{0};
  std::atomic<std::uint64_t> tick_{0};
  std::atomic<std::uint64_t> loads_{0};
  std::atomic<std::uint64_t> evictions_{0};
};

}  // namespace detail
}  // namespace engram::inline v0
