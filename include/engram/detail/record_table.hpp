#pragma once
/// @file detail/record_table.hpp
/// The in-memory state of memory_store and file_store: records by id and each memory's history, with the
/// reads both stores serve (get, for_each, history) and the batch application they share, each record's
/// access count (the access_count_store concept), and the owner scope of each history whose record was erased
/// (so that a purge of that scope takes it: history_event names no scope).

#include <engram/detail/slot_hash_set.hpp>
#include <engram/record.hpp>
#include <engram/write_batch.hpp>

#include <algorithm>  // std::sort, std::binary_search
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace engram::inline v0::detail {

/// Records in one flat vector and histories in another, each found by id through an open-addressing index
/// (no node and no key copy per record). Erasing moves the last record into the hole, so iteration order is
/// unspecified. Not thread-safe: the owning store's lock guards it. Records (upsert) and histories (append) are
/// separate members: after reserve(), one thread may fill the records while another fills the histories (opening
/// a snapshot); erase() touches both.
///
/// A record's vector is either its own `embedding` or, when inserted with upsert_external(), floats held by the
/// caller (file_store: the mapped snapshot), which must outlive the table's use of them. Readers see no
/// difference: get() and for_each() hand out records with their embedding; for_each_vector() gives the vector
/// as a span without copying it.
///
/// A history's owner is its record's scope. While the record is held, the record says it; erase() notes it for
/// the history (4 bytes per history: an index into a table of the distinct owner scopes), so that without(q)
/// drops the histories of memories q selects also once they are deleted. An owner is unknown when the record
/// was never held here (file_store: deleted before a snapshot of format 5 or older).
class record_table {
 public:
  /// The record with this id (embedding filled in), or std::nullopt. O(1) expected.
  [[nodiscard]] std::optional<record> get(std::string_view id) const {
    const auto at = index_of(id);
    if (at == slot_hash_set::none) return std::nullopt;
    std::optional<record> out(records_[at]);
    if (const auto& x = external_[at]; x.data) out->embedding.assign(x.data, x.data + x.size);
    return out;
  }

  /// Calls f(const record&) for every record, in no particular order (a record with an external vector is
  /// handed out as a copy holding it).
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < records_.size(); ++i) {
      if (const auto& x = external_[i]; x.data) {
        record copy = records_[i];
        copy.embedding.assign(x.data, x.data + x.size);
        f(static_cast<const record&>(copy));
      } else {
        f(records_[i]);
      }
    }
  }

  /// Calls f(const record&, std::span<const float> embedding) for every record, in no particular order, without
  /// copying anything: use the span, the record's own `embedding` member may be empty.
  template <class F>
  void for_each_vector(F&& f) const {
    for (std::size_t i = 0; i < records_.size(); ++i) f(records_[i], vector_at(i));
  }

  /// The events of one memory id, oldest first; empty when the id never existed.
  [[nodiscard]] std::vector<history_event> history(std::string_view memory_id) const {
    const auto at = history_at(memory_id);
    return at == slot_hash_set::none ? std::vector<history_event>{} : histories_[at];
  }

  /// Calls f(const history_event&) for every event: each memory's events oldest first, memories in no
  /// particular order (deleted memories included).
  template <class F>
  void for_each_history(F&& f) const {
    for (const auto& events : histories_)
      for (const auto& e : events) f(e);
  }

  /// Inserts `r`, or replaces the record with its id. O(1) expected (amortised).
  void upsert(record r) { upsert_external(std::move(r), {}); }

  /// As upsert(), the record's vector being `vector` (r.embedding is ignored and dropped when `vector` is not
  /// empty): the floats are not copied, the caller keeps them alive and unchanged as long as the table may read
  /// them. O(1) expected (amortised).
  void upsert_external(record r, std::span<const float> vector) {
    const external x{vector.empty() ? nullptr : vector.data(), vector.size()};
    if (x.data) r.embedding = {};
    const auto h = key_hash(r.id);
    const auto at = records_at_.find(h, [&](std::uint32_t i) { return records_[i].id == r.id; });
    if (at != slot_hash_set::none) {  // replaced: its access count stays
      records_[at] = std::move(r);
      external_[at] = x;
      return;
    }
    records_.push_back(std::move(r));
    external_.push_back(x);
    access_.push_back(0);
    records_at_.insert(h, static_cast<std::uint32_t>(records_.size() - 1));
  }

  /// Removes the record with this id, its history (if any) keeping its scope as owner; a no-op when there is
  /// none. O(1) expected.
  void erase(std::string_view id) {
    const auto h = key_hash(id);
    const auto at = records_at_.find(h, [&](std::uint32_t i) { return records_[i].id == id; });
    if (at == slot_hash_set::none) return;
    if (const auto hist = history_at(id); hist != slot_hash_set::none) {
      const auto& r = records_[at];
      owners_[hist] = intern(r.scope());
    }
    records_at_.erase(h, at);
    const auto last = static_cast<std::uint32_t>(records_.size() - 1);
    if (at != last) {
      records_at_.replace(key_hash(records_[last].id), last, at);
      records_[at] = std::move(records_[last]);
      external_[at] = external_[last];
      access_[at] = access_[last];
    }
    records_.pop_back();
    external_.pop_back();
    access_.pop_back();
  }

  /// Adds `n` to the access count of the record with this id (saturating); a no-op when there is none.
  /// Returns whether the record exists.
  bool add_access(std::string_view id, std::uint32_t n) {
    const auto at = index_of(id);
    if (at == slot_hash_set::none) return false;
    const std::uint64_t sum = std::uint64_t{access_[at]} + n;
    access_[at] = sum > 0xFFFFFFFFu ? 0xFFFFFFFFu : static_cast<std::uint32_t>(sum);
    return true;
  }

  /// Calls f(const record&, std::uint32_t count) for every record whose access count is not zero, in no
  /// particular order (the record's embedding may be empty: see for_each_vector).
  template <class F>
  void for_each_access(F&& f) const {
    for (std::size_t i = 0; i < records_.size(); ++i)
      if (access_[i]) f(records_[i], access_[i]);
  }

  /// Appends `e` to the history of e.memory_id. O(1) expected (amortised).
  void append(history_event e) {
    const auto h = key_hash(e.memory_id);
    const auto at = histories_at_.find(h, [&](std::uint32_t i) { return histories_[i].front().memory_id == e.memory_id; });
    if (at != slot_hash_set::none) {
      histories_[at].push_back(std::move(e));
      return;
    }
    histories_.emplace_back().push_back(std::move(e));
    owners_.push_back(no_owner);
    histories_at_.insert(h, static_cast<std::uint32_t>(histories_.size() - 1));
  }

  /// Notes `owner` as the scope of the memory with this id, for its history; a no-op when it has none (opening a
  /// snapshot, after its histories). O(1) expected.
  void set_owner(std::string_view memory_id, const scope& owner) {
    if (const auto at = history_at(memory_id); at != slot_hash_set::none)
      owners_[at] = intern(owner);
  }

  /// Calls f(const std::string& memory_id, const scope& owner) for every history with an owner noted (that of a
  /// record erased since, mostly), in no particular order.
  template <class F>
  void for_each_owner(F&& f) const {
    for (std::size_t i = 0; i < histories_.size(); ++i)
      if (owners_[i] != no_owner) f(histories_[i].front().memory_id, scopes_[owners_[i]]);
  }

  /// The scope of the record with this id, or std::nullopt. O(1) expected.
  [[nodiscard]] std::optional<scope> scope_of(std::string_view id) const {
    const auto at = index_of(id);
    return at == slot_hash_set::none ? std::nullopt : std::optional<scope>(records_[at].scope());
  }

  /// Applies the batch's upserts, events and erases, in that order (its pending-queue part is the store's): the
  /// events before the erases, so that a DELETE event's history exists when its record's erase notes the owner.
  void apply(const write_batch& b) {
    for (const auto& r : b.upserts) upsert(r);
    for (const auto& e : b.events) append(e);
    for (const auto& id : b.erases) erase(id);
  }
  /// As above, moving the records and events out of `b` (replaying a decoded log entry).
  void apply(write_batch&& b) {
    for (auto& r : b.upserts) upsert(std::move(r));
    for (auto& e : b.events) append(std::move(e));
    for (const auto& id : b.erases) erase(id);
  }

  /// A copy without the records query scope `q` selects, without their histories and without the histories whose
  /// owner `q` selects (of records erased before), and the sorted ids of the records left out: what a purge keeps.
  /// Vectors held by the caller (upsert_external) stay shared. O(size).
  [[nodiscard]] std::pair<record_table, std::vector<std::string>> without(const scope& q) const {
    std::pair<record_table, std::vector<std::string>> out;
    auto& [kept, gone] = out;
    kept.reserve(records_.size(), histories_.size());
    for (std::size_t i = 0; i < records_.size(); ++i) {
      if (q.selects(records_[i].scope())) {
        gone.push_back(records_[i].id);
        continue;
      }
      kept.upsert_external(records_[i], external_[i].data ? vector_at(i) : std::span<const float>());
      kept.access_.back() = access_[i];
    }
    std::sort(gone.begin(), gone.end());
    for (std::size_t i = 0; i < histories_.size(); ++i) {
      const auto owner = owners_[i];
      if (owner != no_owner && q.selects(scopes_[owner])) continue;
      if (std::binary_search(gone.begin(), gone.end(), histories_[i].front().memory_id)) continue;
      for (const auto& e : histories_[i]) kept.append(e);
      if (owner != no_owner) {
        const auto& s = scopes_[owner];
        kept.owners_.back() = kept.intern(s);
      }
    }
    return out;
  }

  /// Makes room for `records` records and the histories of `memories` memories (hints, opening a snapshot).
  void reserve(std::size_t records, std::size_t memories) {
    records_.reserve(records);
    external_.reserve(records);
    access_.reserve(records);
    records_at_.reserve(records);
    histories_.reserve(memories);
    owners_.reserve(memories);
    histories_at_.reserve(memories);
  }

  /// Erases every record and every history.
  void clear() { *this = record_table{}; }

  /// Number of records.
  [[nodiscard]] std::size_t size() const noexcept { return records_.size(); }
  /// Number of memory ids with a history.
  [[nodiscard]] std::size_t history_count() const noexcept { return histories_.size(); }

 private:
  static constexpr std::uint32_t no_owner = ~std::uint32_t{0};

  struct external {
    const float* data = nullptr;  // nullptr: the record's own embedding holds its vector
    std::size_t size = 0;
  };

  static std::uint64_t key_hash(std::string_view id) noexcept { return std::hash<std::string_view>{}(id); }
  [[nodiscard]] std::uint32_t index_of(std::string_view id) const {
    return records_at_.find(key_hash(id), [&](std::uint32_t i) { return records_[i].id == id; });
  }
  [[nodiscard]] std::span<const float> vector_at(std::size_t i) const noexcept {
    const auto& x = external_[i];
    return x.data ? std::span<const float>(x.data, x.size) : std::span<const float>(records_[i].embedding);
  }
  [[nodiscard]] std::uint32_t history_at(std::string_view memory_id) const {
    return histories_at_.find(key_hash(memory_id),
                              [&](std::uint32_t i) { return histories_[i].front().memory_id == memory_id; });
  }
  /// The index in scopes_ of exact scope `s`, added when new. O(1) expected.
  std::uint32_t intern(const scope& s) {
    const auto h = scope_hash_of(s.user_id, s.agent_id, s.run_id, s.tenant, s.extra);
    const auto at = scopes_at_.find(h, [&](std::uint32_t i) { return scopes_[i] == s; });
    if (at != slot_hash_set::none) return at;
    scopes_.push_back(s);
    scopes_at_.insert(h, static_cast<std::uint32_t>(scopes_.size() - 1));
    return static_cast<std::uint32_t>(scopes_.size() - 1);
  }

  std::vector<record> records_;
  std::vector<external> external_;  // parallel to records_
  std::vector<std::uint32_t> access_;  // parallel to records_: times search returned it (access_count_store)
  slot_hash_set records_at_;  // index into records_, by id
  std::vector<std::vector<history_event>> histories_;  // never empty
  std::vector<std::uint32_t> owners_;  // parallel to histories_: index into scopes_, or no_owner (not noted)
  slot_hash_set histories_at_;  // index into histories_, by memory id
  std::vector<scope> scopes_;  // each owner scope once (a purge's copy keeps only those still used)
  slot_hash_set scopes_at_;  // index into scopes_, by scope
};

}  // namespace engram::inline v0::detail
