#pragma once
/// @file concepts.hpp
/// The four policies of basic_memory, as concepts whose names say what a type must provide.

#include <engram/extract/actions.hpp>
#include <engram/index/bitmap.hpp>
#include <engram/ids.hpp>
#include <engram/record.hpp>
#include <engram/scope.hpp>
#include <engram/write_batch.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>  // std::uint64_t (change feed positions)
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>  // std::as_const
#include <vector>

namespace engram::inline v0 {

/// Turns text into a vector of fixed size. Optional: `embed_batch(std::span<const std::string>)` (used for
/// many texts at once when present) and `name()` (recorded by durable stores; defaults to "custom").
/// basic_memory calls it from several threads at once: it must be thread-safe.
template <class E>
concept embedder = requires(const E& e, std::string_view text) {
  { e.dimension() } -> std::convertible_to<std::size_t>;
  { e.embed(text) } -> std::convertible_to<std::vector<float>>;
};

/// Holds vectors under slots grouped in partitions and finds the nearest ones.
template <class I>
concept vector_index = requires(I& i, const I& ci, slot_id s, partition_id p, std::span<const float> v, std::size_t k,
                                std::span<const partition_id> ps, const slot_bitmap* c) {
  { ci.dimension() } -> std::convertible_to<std::size_t>;
  { ci.size() } -> std::convertible_to<std::size_t>;
  i.add(s, p, v);
  i.update(s, v);
  i.remove(s);
  i.clear();
  { ci.search(v, k, ps, c) } -> std::convertible_to<std::vector<index_hit>>;
};

/// The durable truth: records and history, changed only through atomic write batches.
/// Optional: `bind(store_identity)` to refuse vectors of another embedder.
template <class S>
concept record_store = requires(S& s, const S& cs, const write_batch& b, std::string_view id) {
  s.apply(b);
  { cs.get(id) } -> std::same_as<std::optional<record>>;
  cs.for_each([](const record&) {});
  { cs.history(id) } -> std::convertible_to<std::vector<history_event>>;
  s.clear();
};

/// A record store that also keeps the durable queue of adds waiting for background extraction: it applies
/// `write_batch::enqueued`/`dequeued` with the rest of the batch and lists the queue in the order it was enqueued.
template <class S>
concept pending_store = record_store<S> && requires(const S& cs) {
  cs.for_each_pending([](const pending_add&) {});
};

// ---- change feed: stores shared by several nodes (postgres_store) ----------------------------------------

/// A new record a shared store dropped because its scope already held the same text (added meanwhile by
/// another node): `apply` of a change_feed_store returns these.
struct duplicate_record {
  std::string dropped_id;   ///< the id in the batch
  std::string existing_id;  ///< the record already stored
  friend bool operator==(const duplicate_record&, const duplicate_record&) = default;
};

/// A record store that other processes write too, and that reports their changes: `change_position()` (the
/// feed's current position), `changes_pending()` (cheap: may another node have written since the last poll?),
/// `poll_changes(since, f)` (calls f(memory_id) for each record changed by others after `since`, "*" for
/// everything, and returns the new position), and `apply` returning the new records it dropped as duplicates.
/// basic_memory polls it before every read and write, so a write on one node is visible on the others.
template <class S>
concept change_feed_store = record_store<S> && requires(S& s, const S& cs, const write_batch& b, std::uint64_t since) {
  { cs.change_position() } -> std::convertible_to<std::uint64_t>;
  { cs.changes_pending() } -> std::convertible_to<bool>;
  { cs.poll_changes(since, [](const std::string&) {}) } -> std::convertible_to<std::uint64_t>;
  { s.apply(b) } -> std::convertible_to<std::vector<duplicate_record>>;
};

// ---- loading one scope: the per-node partition cache (memory_config::partition_cache_bytes) ---------------

/// A record store that can read the records of one scope without reading the others, and tell whether they
/// changed: `for_each_in_scope(q, f)` calls f(const record&) for every record query scope `q` selects (see
/// scope::selects; an empty `q` selects every record), and `scope_selection_version(q)` returns a number that
/// changes whenever a record `q` selects is written or erased (by this process or, for a shared store, any
/// other). basic_memory uses them to load a scope's partitions on first use and to re-validate loaded ones.
template <class S>
concept scope_loading_store = record_store<S> && requires(const S& cs, const scope& q) {
  cs.for_each_in_scope(q, [](const record&) {});
  { cs.scope_selection_version(q) } -> std::convertible_to<std::uint64_t>;
};

// ---- access counts: the `access` ranking term across restarts ----------------------------------------------

/// A record store that keeps how often search returned each memory. `add_access(increments)` adds each
/// increment's count to its memory's stored count (saturating at 2^32-1; an id the store does not hold is
/// ignored), durably as the store's writes are, and without touching the record: no history event, no
/// `updated_at`, no scope version or change-feed entry. Replacing a record (an upsert of its id) keeps its count;
/// erasing it or `clear()` drops it. `for_each_access_count(q, f)` calls f(const std::string& id, std::uint32_t
/// count) for every memory query scope `q` selects (every memory when `q` is empty) whose count is not zero, in
/// no particular order; f must not call back into the store.
template <class S>
concept access_count_store = record_store<S> && requires(S& s, const S& cs, std::span<const access_increment> a,
                                                         const scope& q) {
  s.add_access(a);
  cs.for_each_access_count(q, [](const std::string&, std::uint32_t) {});
};

/// Turns messages into facts, then decides ADD / UPDATE / DELETE / NONE for them given nearby memories.
template <class X>
concept fact_extractor = requires(X& x, std::span<const message> msgs, const extraction_context& ctx,
                                  std::span<const fact> facts, std::span<const std::vector<existing_memory>> near) {
  { x.extract(msgs, ctx) } -> std::convertible_to<std::vector<fact>>;
  { x.decide(facts, near, ctx) } -> std::convertible_to<std::vector<memory_action>>;
};

namespace detail {
template <class E>
std::vector<std::vector<float>> embed_all(const E& e, std::span<const std::string> texts) {
  if constexpr (requires { { e.embed_batch(texts) } -> std::convertible_to<std::vector<std::vector<float>>>; }) {
    return e.embed_batch(texts);
  } else {
    std::vector<std::vector<float>> out;
    out.reserve(texts.size());
    for (const auto& t : texts) out.push_back(e.embed(t));
    return out;
  }
}
template <class E>
std::string embedder_name(const E& e) {
  if constexpr (requires { { e.name() } -> std::convertible_to<std::string>; }) {
    return e.name();
  } else {
    return "custom";
  }
}
}  // namespace detail

}  // namespace engram::inline v0
