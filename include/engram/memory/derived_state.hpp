#pragma once
/// @file memory/derived_state.hpp
/// Everything a memory derives from its store and can rebuild from it: the vector index, the catalog of
/// scopes and slots, the filter columns, the keyword index, the expiration days, the validity intervals and
/// (when enabled) the entities. It knows nothing of
/// locking or of the store: the memory calls it under its lock and hands it records.

#include <engram/capabilities.hpp>
#include <engram/entity/entity_index.hpp>
#include <engram/detail/catalog.hpp>
#include <engram/filter/eval.hpp>
#include <engram/filter/expr.hpp>
#include <engram/filter/planner.hpp>
#include <engram/ids.hpp>
#include <engram/index/bitmap.hpp>
#include <engram/index/keyword_index.hpp>
#include <engram/rank/expiry.hpp>
#include <engram/record.hpp>
#include <engram/scope.hpp>
#include <engram/temporal/validity.hpp>
#include <engram/temporal/validity_slots.hpp>
#include <engram/time.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace engram::inline v0::detail {

/// Which memories a read sees beyond its filter: expired ones or not, and which versions (validity_view).
struct visibility {
  bool hide_expired = true;
  validity_view validity{};
  timestamp now{};
  std::int32_t today = 0;  ///< utc_day(now)

  /// What a search's or listing's options ask to see at `now`.
  template <class Options>
  static visibility of(const Options& o, timestamp now) {
    return {!o.show_expired, validity_view::of(o.as_of, o.include_invalid), now, utc_day(now)};
  }
  /// The memories that hold now and have not expired: what reconciliation and duplicate checks look at.
  static visibility current(timestamp now) { return {true, {}, now, utc_day(now)}; }
  /// Every memory, expired or closed: what delete_all removes.
  static visibility everything() { return {false, {validity_view::kind::all, {}}, {}, 0}; }
};

/// The derived state of one memory over an Index. Not thread-safe: its owner locks.
///
/// The index holds each scope's versions closed by a contradiction (invalid_at reached when indexed) in a
/// partition of their own beside the scope's (index partition 2p + 1 for catalog partition p, 2p for the rest):
/// a search of the current memories never scans them; as_of and include_invalid searches scan both.
template <class Index>
class derived_state {
 public:
  /// `entities`, `entity_similarity`: memory_config's. @throws validation_error for a similarity outside 0..1.
  derived_state(Index index, const bm25_params& bm25, bool entities = false, float entity_similarity = 0.0f)
      : index_(std::move(index)), keyword_(bm25), entities_on_(entities), entities_(entity_similarity) {}

  [[nodiscard]] const Index& index() const noexcept { return index_; }
  [[nodiscard]] Index& index() noexcept { return index_; }
  [[nodiscard]] const scope_catalog& catalog() const noexcept { return catalog_; }
  [[nodiscard]] const keyword_index& keywords() const noexcept { return keyword_; }
  [[nodiscard]] keyword_index& keywords() noexcept { return keyword_; }
  [[nodiscard]] std::optional<slot_id> slot_of(std::string_view id) const { return catalog_.slot_of(id); }
  [[nodiscard]] const std::string& id_of(slot_id slot) const { return catalog_.id_of(slot); }
  [[nodiscard]] std::size_t size() const noexcept { return catalog_.size(); }
  /// True when the entities of memories are indexed (memory_config::entities).
  [[nodiscard]] bool has_entities() const noexcept { return entities_on_; }
  [[nodiscard]] const entity_index& entities() const noexcept { return entities_; }
  /// True when entities are indexed and resolved by the similarity of names (memory_config::entity_similarity):
  /// their names are then embedded, before the write lock (entity_names_missing, remember_entity_names).
  [[nodiscard]] bool has_entity_similarity() const noexcept { return entities_on_ && entities_.similarity() > 0.0f; }

  /// With entity similarity on: the normalised names that memories with these `texts` (their entities
  /// recognised) and these `given` entities (record::entities) would bring and that have no vector yet, each
  /// once; empty otherwise. Needs no lock: call it before taking the write lock, embed the names, and hand the
  /// vectors to remember_entity_names; indexing under the lock then uses them.
  [[nodiscard]] std::vector<std::string> entity_names_missing(std::span<const std::string> texts,
                                                              std::span<const recognized_entities> given = {}) const {
    return has_entity_similarity() ? entities_.names_missing(texts, given) : std::vector<std::string>{};
  }
  /// As above, for `records` (their record::entities when set, else their texts).
  [[nodiscard]] std::vector<std::string> entity_names_missing(std::span<const record> records) const {
    std::vector<std::string> texts;
    std::vector<recognized_entities> given;
    for (const auto& r : records) {
      if (r.entities)
        given.push_back(*r.entities);
      else
        texts.push_back(r.memory);
    }
    return entity_names_missing(texts, given);
  }
  /// Keeps the embedder's vectors of entity `names` (as entity_names_missing gave them), one each. Needs no lock.
  void remember_entity_names(std::span<const std::string> names, std::span<const std::vector<float>> vectors) {
    entities_.remember_name_vectors(names, vectors);
  }
  /// A bulk load with entity similarity on: while held, the entity graphs wait; the names of the indexed
  /// memories without a vector (indexed_entity_names_missing) are embedded, and releasing builds the graphs.
  void hold_entities(bool on) {
    if (entities_on_) entities_.hold(on);
  }
  [[nodiscard]] std::vector<std::string> indexed_entity_names_missing() const {
    return has_entity_similarity() ? entities_.names_missing() : std::vector<std::string>{};
  }
  /// True when some memory has an expiration day (searches then check it).
  [[nodiscard]] bool has_expiring() const noexcept { return !expiring_.empty(); }

  /// Indexes new record `r` with `vector`, its text going to `keywords` (the keyword index, or a bulk loader
  /// while opening). @returns its slot.
  template <class Keywords>
  slot_id add(const record& r, Keywords& keywords, std::span<const float> vector) {
    const auto p = catalog_.partition_for(r.user_id, r.agent_id, r.run_id, r.tenant, r.extra);
    const auto slot = catalog_.attach(r.id, p, r.hash);
    const bool shelve = closed_by_now(r);
    index_.add(slot, index_partition(p, shelve), vector);
    mark_shelved(slot, shelve);
    columns_.assign(slot, r);
    keywords.add(slot, p, r.memory);
    set_expiry(slot, r);
    validity_.assign(slot, r);
    if (entities_on_) entities_.assign(slot, p, r.memory, r.entities);
    return slot;
  }
  slot_id add(const record& r) { return add(r, keyword_, r.embedding); }

  /// Re-indexes indexed record `r` after a change. @returns its slot.
  slot_id update(const record& r) {
    const auto slot = *catalog_.slot_of(r.id);
    catalog_.rehash(slot, r.hash);
    if (const bool shelve = closed_by_now(r); shelve != shelved_.test(slot)) {  // closed now: to the other partition
      index_.remove(slot);
      index_.add(slot, index_partition(catalog_.partition_of(slot), shelve), r.embedding);
      mark_shelved(slot, shelve);
    } else {
      index_.update(slot, r.embedding);
    }
    columns_.assign(slot, r);
    keyword_.update(slot, r.memory);
    set_expiry(slot, r);
    validity_.assign(slot, r);
    if (entities_on_) entities_.assign(slot, catalog_.partition_of(slot), r.memory, r.entities);
    return slot;
  }

  /// Unindexes memory `id` when indexed. @returns the slot it had.
  std::optional<slot_id> remove(const std::string& id) {
    auto slot = catalog_.slot_of(id);
    if (slot) remove_slot(*slot);
    return slot;
  }
  void remove_slot(slot_id slot) {
    index_.remove(slot);
    catalog_.detach(slot);
    columns_.erase(slot);
    keyword_.remove(slot);
    expiring_.erase(slot);
    expiry_[slot] = never_expires;
    validity_.erase(slot);
    shelved_.reset(slot);
    if (entities_on_) entities_.erase(slot);
  }

  void clear() {
    index_.clear();
    catalog_.clear();
    columns_.clear();
    keyword_.clear();
    expiry_.clear();
    expiring_.clear();
    validity_.clear();
    shelved_ = slot_bitmap{};
    entities_.clear();
  }

  /// Sizes the catalog, the expiry array and (when the index can) each partition before a bulk load.
  /// `count_by_partition(f)` calls f(record) once per record to be loaded.
  template <class CountByPartition>
  void reserve(std::size_t expected, CountByPartition&& count_by_partition) {
    catalog_.reserve(expected);
    expiry_.reserve(expected);
    validity_.reserve(expected);
    if constexpr (reservable_index<Index>) {
      std::vector<std::size_t> counts;  // by partition
      count_by_partition([&](const record& r) {
        const auto p = catalog_.partition_for(r.user_id, r.agent_id, r.run_id, r.tenant, r.extra);
        if (p >= counts.size()) counts.resize(std::size_t{p} + 1, 0);
        ++counts[p];
      });
      for (std::size_t p = 0; p < counts.size(); ++p)
        index_.reserve(index_partition(static_cast<partition_id>(p), false), counts[p]);
    }
  }

  /// The partitions scope `s` selects (every partition when null; every one of its tenant when it names no id)
  /// that `f` may match.
  [[nodiscard]] std::vector<partition_id> select_partitions(const scope* s, const filter_expr& f) const {
    std::vector<partition_id> out;
    if (s && !s->empty()) {
      out = catalog_.select(*s);
    } else {
      out.resize(catalog_.partition_count());
      for (std::size_t p = 0; p < out.size(); ++p) out[p] = static_cast<partition_id>(p);
      if (s) std::erase_if(out, [&](partition_id p) { return catalog_.scope_of(p).tenant != s->tenant; });
    }
    if (!f.empty())
      std::erase_if(out, [&](partition_id p) { return filter_scope_may_match(f, catalog_.scope_of(p)) == filter_tri::no; });
    return out;
  }

  /// The slots of the partitions query scope `q` covers (scope::covers), except those of the
  /// partitions whose exact scope `keep(scope)` keeps.
  template <class Keep>
  [[nodiscard]] std::vector<slot_id> slots_in(const scope& q, Keep&& keep) const {
    std::vector<slot_id> out;
    const auto parts = select_partitions(q.empty() && q.tenant.empty() ? nullptr : &q, filter_expr{});
    for (const auto p : parts)
      if (catalog_.partition_size(p) != 0 && !keep(catalog_.scope_of(p)))
        catalog_.for_each_slot(p, [&](slot_id s) { out.push_back(s); });
    return out;
  }

  /// True when `v` may hide some memory that its index partitions hold (reads then check each slot); false
  /// keeps them free of the check. Closed versions in their own partitions are out of a current view's reach.
  [[nodiscard]] bool gated(const visibility& v) const noexcept {
    return (v.hide_expired && !expiring_.empty()) || max_hidden_indexed(v.validity) != 0;
  }

  /// The index partitions that hold the memories of catalog `partitions` that view `v` may see.
  [[nodiscard]] std::vector<partition_id> index_partitions(const std::vector<partition_id>& partitions,
                                                           const visibility& v) const {
    const bool closed_too = v.validity.mode != validity_view::kind::current && !shelved_.empty();
    std::vector<partition_id> out;
    out.reserve(partitions.size() * (closed_too ? 2 : 1));
    for (const auto p : partitions) {
      out.push_back(index_partition(p, false));
      if (closed_too) out.push_back(index_partition(p, true));
    }
    return out;
  }

  /// The index's best `k` hits for `q` among the memories of `partitions` that `v` may see, restricted to the
  /// slots of `candidates` when given (no visibility check: the caller's candidates are visible ones).
  [[nodiscard]] std::vector<index_hit> index_search(std::span<const float> q, std::size_t k,
                                                    const std::vector<partition_id>& partitions, const visibility& v,
                                                    const slot_bitmap* candidates) const {
    return index_.search(q, k, index_partitions(partitions, v), candidates);
  }

  /// True when `v` hides the memory in `slot` (expired, or not valid in its view).
  [[nodiscard]] bool hidden(slot_id slot, const visibility& v) const noexcept {
    if (v.hide_expired && !expiring_.empty() && is_expired(expiry_[slot], v.today)) return true;
    return validity_.hides(slot, v.validity, v.now);
  }

  /// True when `slot` holds a memory that `f` matches and that `v` does not hide.
  [[nodiscard]] bool matches_visible(const filter_expr& f, const visibility& v, slot_id slot) const {
    if (hidden(slot, v)) return false;
    return f.empty() ? columns_.contains(slot) : columns_.matches(f, slot);
  }

  /// Calls f(slot) for every slot of `partitions` that `f` matches and that `v` does not hide.
  template <class F>
  void for_each_admitted(const std::vector<partition_id>& partitions, const filter_expr& filter, const visibility& v,
                         F&& f) const {
    for (const auto p : partitions)
      catalog_.for_each_slot(p, [&](slot_id slot) {
        if (hidden(slot, v)) return;
        if (!filter.empty() && !columns_.matches(filter, slot)) return;
        f(slot);
      });
  }

  /// The id of a visible memory of `partitions` whose text is `text` (its md5 `hash`), or nullopt; `get(id)`
  /// reads a record to compare the text (hashes may collide).
  template <class Get>
  [[nodiscard]] std::optional<std::string> find_text(const std::vector<partition_id>& partitions,
                                                     const std::string& hash, const std::string& text,
                                                     timestamp now, Get&& get) const {
    const auto v = visibility::current(now);
    for (const auto p : partitions)
      for (const auto slot : catalog_.with_hash(p, hash)) {
        if (hidden(slot, v)) continue;  // an expired or closed memory is no reason to forget
        if (auto r = get(catalog_.id_of(slot)); r && r->memory == text) return r->id;
      }
    return std::nullopt;
  }

  /// The best `limit` slots of `partitions` for `q`, among those the filter admits and `v` does not hide.
  /// Unfiltered and ungated: one index search; else the filter planner picks pre- or post-filtering.
  [[nodiscard]] std::vector<index_hit> search(std::span<const float> q, const filter_expr& filter,
                                              filter_strategy strategy, std::size_t limit,
                                              const std::vector<partition_id>& partitions, const visibility& v) const {
    if (filter.empty() && !gated(v)) return index_search(q, limit, partitions, v, nullptr);
    std::size_t total = 0;
    for (const auto p : partitions) total += catalog_.partition_size(p);
    if (total == 0) return {};
    // Over a quarter of every slot: the filter is evaluated over all slots rather than the scope's list.
    const bool dense = total * 4 >= catalog_.slot_capacity();
    std::vector<slot_id> slots;
    if (!dense) {
      for (const auto p : partitions) catalog_.for_each_slot(p, [&](slot_id slot) { slots.push_back(slot); });
      std::sort(slots.begin(), slots.end());
    }
    auto admitted = [&](slot_id slot) { return matches_visible(filter, v, slot); };
    const std::size_t range = dense ? catalog_.slot_capacity() : slots.size();
    // Unfiltered and hiding few (closed versions, expiring memories; not as_of): at most `few` of the nearest
    // are hidden, so one unfiltered search for limit + few finds the best visible ones in one pass; when that
    // is no longer few, the visible bitmap instead. Sampling would see mostly visible slots and post-filter,
    // and the hidden versions of a fact are exactly the nearest neighbours of a question about it: the growing
    // k would then search again and again.
    const std::size_t few = max_hidden_indexed(v.validity) + (v.hide_expired ? expiring_.size() : 0);
    const bool bounded = filter.empty() && strategy == filter_strategy::automatic &&
                         v.validity.mode != validity_view::kind::as_of;
    const auto plan = bounded ? filter_plan{few <= limit ? filter_strategy::post_filter : filter_strategy::pre_filter,
                                            double(limit) / double(limit + few)}
                              : plan_filter(strategy, total, [&](std::size_t i) -> std::optional<bool> {
      const auto at = i * range / filter_plan_samples;
      const slot_id slot = dense ? static_cast<slot_id>(at) : slots[at];
      if (dense && (!columns_.contains(slot) ||
                    !std::binary_search(partitions.begin(), partitions.end(), catalog_.partition_of(slot))))
        return std::nullopt;
      return admitted(slot);
    });
    return run_filter_plan(
        plan, limit, total,
        [&] {
          auto bits = dense ? columns_.select(filter) : columns_.select(filter, slots);
          if (v.hide_expired)
            for (const auto slot : expiring_)
              if (is_expired(expiry_[slot], v.today)) bits.reset(slot);
          validity_.reset_hidden(bits, v.validity, v.now);
          return bits;
        },
        [&](std::size_t k, const slot_bitmap* c) { return index_search(q, k, partitions, v, c); }, admitted);
  }

 private:
  static partition_id index_partition(partition_id p, bool closed) noexcept {
    return static_cast<partition_id>(2 * p + (closed ? 1 : 0));
  }
  /// True when `r` goes to its scope's partition of closed versions: closed, and already invalid (a version
  /// closed at a future instant is current until then, so it stays with the scope's other memories).
  void mark_shelved(slot_id slot, bool shelve) {
    if (shelve)
      shelved_.set(slot);
    else
      shelved_.reset(slot);
  }
  static bool closed_by_now(const record& r) { return r.invalid_at && *r.invalid_at <= utc_now(); }
  /// At most how many memories the index partitions a search of `view` scans may hide by validity.
  [[nodiscard]] std::size_t max_hidden_indexed(const validity_view& view) const noexcept {
    if (view.mode != validity_view::kind::current) return validity_.active(view) ? validity_.max_hidden(view) : 0;
    return validity_.max_hidden(view) - shelved_.count();
  }

  void set_expiry(slot_id slot, const record& r) {
    if (expiry_.size() <= slot) expiry_.resize(std::size_t{slot} + 1, never_expires);
    const auto day = r.expiration_date ? parse_expiration_day(*r.expiration_date) : never_expires;
    if (day == never_expires)
      expiring_.erase(slot);
    else
      expiring_.insert(slot);
    expiry_[slot] = day;
  }

  Index index_;
  scope_catalog catalog_;
  filter_columns columns_;            // the filterable fields of every indexed record, by slot
  keyword_index keyword_;             // BM25 over the text of every indexed record, by slot and partition
  std::vector<std::int32_t> expiry_;  // expiration day by slot (never_expires when none)
  std::set<slot_id> expiring_;        // slots with an expiration day: empty keeps searches free of the check
  validity_slots validity_;           // valid_from / invalid_at by slot
  slot_bitmap shelved_;               // slots in their scope's partition of closed versions
  bool entities_on_ = false;          // memory_config::entities
  entity_index entities_;             // entities and relations by partition (empty unless entities_on_)
};

}  // namespace engram::inline v0::detail
