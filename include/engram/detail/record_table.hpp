#pragma once
/// @file detail/record_table.hpp
/// The in-memory state of memory_store and file_store: records by id and each memory's history, with the
/// reads both stores serve (get, for_each, history) and the batch application they share, and each record's
/// access count (the access_count_store concept).

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
/// unspecified. Not thread-safe: the owning store's lock guards it. Records (upsert, erase) and histories
/// (append) are separate members: after reserve(), one thread may fill the records while another fills the
/// histories (opening a snapshot).
///
/// A record's vector is either its own `embedding` or, when inserted with upsert_external(), floats held by the
/// caller (file_store: the mapped snapshot), which must outlive the table's use of them. Readers see no
/// difference: get() and for_each() hand out records with their embedding; for_each_vector() gives the vector
/// as a span without copying it.
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

  /// Removes the record with this id; a no-op when there is none. O(1) expected.
  void erase(std::string_view id) {
    const auto h = key_hash(id);
    const auto at = records_at_.find(h, [&](std::uint32_t i) { return records_[i].id == id; });
    if (at == slot_hash_set::none) return;
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
    histories_at_.insert(h, static_cast<std::uint32_t>(histories_.size() - 1));
  }

  /// Applies the batch's upserts, erases and events, in that order (its pending-queue part is the store's).
  void apply(const write_batch& b) {
    for (const auto& r : b.upserts) upsert(r);
    for (const auto& id : b.erases) erase(id);
    for (const auto& e : b.events) append(e);
  }
  /// As above, moving the records and events out of `b` (replaying a decoded log entry).
  void apply(write_batch&& b) {
    for (auto& r : b.upserts) upsert(std::move(r));
    for (const auto& id : b.erases) erase(id);
    for (auto& e : b.events) append(std::move(e));
  }

  /// A copy without the records query scope `q` selects and without their histories, and the sorted ids of the
  /// records left out: what a purge keeps. Vectors held by the caller (upsert_external) stay shared. O(size).
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
    for (const auto& events : histories_)
      if (!std::binary_search(gone.begin(), gone.end(), events.front().memory_id))
        for (const auto& e : events) kept.append(e);
    return out;
  }

  /// Makes room for `records` records and the histories of `memories` memories (hints, opening a snapshot).
  void reserve(std::size_t records, std::size_t memories) {
    records_.reserve(records);
    external_.reserve(records);
    access_.reserve(records);
    records_at_.reserve(records);
    histories_.reserve(memories);
    histories_at_.reserve(memories);
  }

  /// Erases every record and every history.
  void clear() { *this = record_table{}; }

  /// Number of records.
  [[nodiscard]] std::size_t size() const noexcept { return records_.size(); }
  /// Number of memory ids with a history.
  [[nodiscard]] std::size_t history_count() const noexcept { return histories_.size(); }

 private:
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

  std::vector<record> records_;
  std::vector<external> external_;  // parallel to records_
  std::vector<std::uint32_t> access_;  // parallel to records_: times search returned it (access_count_store)
  slot_hash_set records_at_;  // index into records_, by id
  std::vector<std::vector<history_event>> histories_;  // never empty
  slot_hash_set histories_at_;  // index into histories_, by memory id
};

}  // namespace engram::inline v0::detail
