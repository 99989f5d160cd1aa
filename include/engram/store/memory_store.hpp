#pragma once
/// @file store/memory_store.hpp
/// A volatile store: records and history in process memory. For tests, caches and short-lived agents.

#include <engram/async/pending_list.hpp>
#include <engram/detail/identity_check.hpp>
#include <engram/detail/record_table.hpp>
#include <engram/error.hpp>
#include <engram/record.hpp>
#include <engram/scope.hpp>
#include <engram/write_batch.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace engram::inline v0 {

/// Records and history held in memory; everything is lost when it is destroyed.
/// Thread-safe: every member may be called concurrently. Movable, not copyable.
class memory_store {
 public:
  /// Records and pending adds are kept whole, their tenant and extra scope keys too (scope_keyed_store).
  static constexpr bool keeps_scope_keys = true;

  memory_store() : s_(std::make_unique<state>()) {}

  /// Records the embedder identity on first use; afterwards a different one is refused
  /// (dimension_mismatch for another size, validation_error for another name or a narrower scope key set).
  void bind(const store_identity& id) {
    std::unique_lock lock(s_->mtx);
    if (!s_->identity || detail::check_same_identity(*s_->identity, id, "memory_store")) s_->identity = id;
  }

  /// The identity bound so far, if any.
  [[nodiscard]] std::optional<store_identity> identity() const {
    std::shared_lock lock(s_->mtx);
    return s_->identity;
  }

  /// Applies the batch under one lock: concurrent readers see all of it or none of it.
  void apply(const write_batch& b) {
    std::unique_lock lock(s_->mtx);
    std::vector<scope> touched;  // scope_selection_version: every scope the batch writes
    for (const auto& r : b.upserts) touched.push_back(r.scope());
    for (const auto& id : b.erases)
      if (auto r = s_->table.get(id)) touched.push_back(r->scope());
    s_->table.apply(b);
    for (const auto& s : touched) ++s_->versions[s];
    s_->pending.apply(b.enqueued, b.dequeued);
  }

  [[nodiscard]] std::optional<record> get(std::string_view id) const {
    std::shared_lock lock(s_->mtx);
    return s_->table.get(id);
  }

  /// Calls f(const record&) for every record, in no particular order. f must not call back into the store.
  template <class F>
  void for_each(F&& f) const {
    std::shared_lock lock(s_->mtx);
    s_->table.for_each(f);
  }

  /// Calls f(const record&, std::span<const float> embedding) for every record, in no particular order, without
  /// copying (the span is the record's embedding). f must not call back into the store.
  template <class F>
  void for_each_vector(F&& f) const {
    std::shared_lock lock(s_->mtx);
    s_->table.for_each_vector(f);
  }

  /// The events of one memory id, oldest first; empty when the id never existed.
  [[nodiscard]] std::vector<history_event> history(std::string_view memory_id) const {
    std::shared_lock lock(s_->mtx);
    return s_->table.history(memory_id);
  }

  /// Calls f(const pending_add&) for every pending add, oldest first. f must not call back into the store.
  template <class F>
  void for_each_pending(F&& f) const {
    std::shared_lock lock(s_->mtx);
    s_->pending.for_each(f);
  }

  /// Erases every record and every history event (the identity and the pending queue stay).
  void clear() {
    std::unique_lock lock(s_->mtx);
    s_->table.clear();
    for (auto& [s, v] : s_->versions) ++v;
  }

  /// Erases every record query scope `q` selects with its history (engram::purging_store); the pending queue
  /// stays. Nothing outlives the call but freed memory. @returns how many records. @throws validation_error
  /// for an empty `q`. O(records held).
  std::size_t purge(const scope& q) {
    if (q.empty()) throw validation_error("memory_store: purge needs a scope (user_id, agent_id or run_id)");
    std::unique_lock lock(s_->mtx);
    auto [kept, gone] = s_->table.without(q);
    s_->table = std::move(kept);
    for (auto& [s, v] : s_->versions)
      if (q.selects(s)) ++v;
    return gone.size();
  }

  /// Calls f(const record&) for every record query scope `q` selects (every record when `q` is empty), in no
  /// particular order. f must not call back into the store. O(records held).
  template <class F>
  void for_each_in_scope(const scope& q, F&& f) const {
    std::shared_lock lock(s_->mtx);
    s_->table.for_each([&](const record& r) {
      if (q.covers(r.scope())) f(r);
    });
  }

  /// A number that changes whenever a record `q` selects (every record when `q` is empty) is written or
  /// erased. O(scopes ever written).
  [[nodiscard]] std::uint64_t scope_selection_version(const scope& q) const {
    std::shared_lock lock(s_->mtx);
    std::uint64_t sum = 0;
    for (const auto& [s, v] : s_->versions)
      if (q.covers(s)) sum += v;
    return sum;
  }

  /// Adds search hits to the memories' access counts (see the access_count_store concept): ids not held are
  /// ignored; the records, their history and the scope versions are not touched.
  void add_access(std::span<const access_increment> increments) {
    std::unique_lock lock(s_->mtx);
    for (const auto& a : increments)
      if (a.count) s_->table.add_access(a.memory_id, a.count);
  }

  /// Calls f(const std::string& id, std::uint32_t count) for every memory query scope `q` selects (every memory
  /// when `q` is empty) whose access count is not zero. f must not call back into the store.
  template <class F>
  void for_each_access_count(const scope& q, F&& f) const {
    std::shared_lock lock(s_->mtx);
    s_->table.for_each_access([&](const record& r, std::uint32_t n) {
      if (q.covers(r.scope())) f(r.id, n);
    });
  }

  [[nodiscard]] std::size_t size() const {
    std::shared_lock lock(s_->mtx);
    return s_->table.size();
  }

 private:
  struct state {
    mutable std::shared_mutex mtx;
    detail::record_table table;  // records and history
    std::optional<store_identity> identity;
    detail::pending_list pending;  // add_async entries awaiting extraction
    std::map<scope, std::uint64_t> versions;  // batches that wrote each exact scope
  };
  std::unique_ptr<state> s_;
};

}  // namespace engram::inline v0
