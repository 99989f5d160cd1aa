#pragma once
/// @file capabilities.hpp
/// Everything a policy may offer beyond the four core concepts (concepts.hpp), each as a named concept: what a
/// store or index author implements to get a feature, and what basic_memory and the tools test for. A type
/// that lacks one still works; the feature is then off (or, where a configuration asks for it, refused).

#include <engram/concepts.hpp>
#include <engram/entity/mentions.hpp>
#include <engram/extract/actions.hpp>
#include <engram/ids.hpp>
#include <engram/record.hpp>
#include <engram/scope.hpp>
#include <engram/write_batch.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace engram::inline v0 {

// ---- stores ------------------------------------------------------------------------------------------------

/// A record store that also keeps the durable queue of adds waiting for background extraction: it applies
/// `write_batch::enqueued`/`dequeued` with the rest of the batch and lists the queue in the order it was enqueued.
template <class S>
concept pending_store = record_store<S> && requires(const S& cs) {
  cs.for_each_pending([](const pending_add&) {});
};

// ---- change feed: stores shared by several nodes (postgres_store) ----------------------------------------

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

// ---- smaller store capabilities -----------------------------------------------------------------------------

/// A store that remembers which embedder wrote its vectors (`bind(store_identity)`) and refuses another.
template <class S>
concept identity_bound_store = requires(S& s, const store_identity& id) { s.bind(id); };

/// A store that keeps a record's and a pending add's scope whole, its tenant and extra keys too
/// (`static constexpr bool keeps_scope_keys = true`): needed by a memory whose key set goes beyond Mem0's.
template <class S>
concept scope_keyed_store = requires { requires S::keeps_scope_keys; };

/// A store that reports the identity it was bound to (`identity()`), for exports.
template <class S>
concept identity_reporting_store = requires(const S& cs) {
  { cs.identity() } -> std::convertible_to<std::optional<store_identity>>;
};

/// A store that may be opened read-only (`read_only()`): basic_memory then writes nothing to it (no access
/// counts, no pending queue processing).
template <class S>
concept read_only_capable_store = requires(const S& cs) {
  { cs.read_only() } -> std::convertible_to<bool>;
};

/// True when `s` is a store opened read-only.
template <class S>
bool is_read_only(const S& s) {
  if constexpr (read_only_capable_store<S>) {
    return s.read_only();
  } else {
    (void)s;
    return false;
  }
}

/// A store that counts its records cheaply (`size()`): opening reserves that much, and with the partition
/// cache on, basic_memory::size() asks the store instead of loading every scope.
template <class S>
concept counted_store = requires(const S& cs) {
  { cs.size() } -> std::convertible_to<std::size_t>;
};

/// A store that visits records with their vectors in place (`for_each_vector(f)`, f(const record&,
/// std::span<const float>)): opening indexes without copying each vector (file_store reads snapshots in place).
template <class S>
concept vector_scanning_store = requires(const S& cs) {
  cs.for_each_vector([](const record&, std::span<const float>) {});
};

/// A store whose commit has two phases (`append(batch) -> ticket` under the caller's lock, `sync(ticket)`
/// after it): writers then share fsyncs (file_store's group commit, sqlite_store's WAL fdatasync). `sync` only
/// waits, so it is const: readers call it too, to answer only what is durable (memory/commit.hpp).
template <class S>
concept two_phase_store = requires(S& s, const S& cs, const write_batch& b, std::uint64_t t) {
  { s.append(b) } -> std::convertible_to<std::uint64_t>;
  cs.sync(t);
};

/// A store that keeps named blobs of derived data beside the records (`put_blob`, `get_blob`): an index
/// snapshot, say.
template <class S>
concept blob_store = requires(S& s, const S& cs, std::string_view name, std::string_view bytes) {
  s.put_blob(name, bytes);
  { cs.get_blob(name) } -> std::convertible_to<std::optional<std::string>>;
};

/// A store that lists the history of every memory (`for_each_history(f)`), for exports.
template <class S>
concept history_listing_store = requires(const S& cs) {
  cs.for_each_history([](const history_event&) {});
};

/// A store that can erase a scope for good (`purge(q)`, basic_memory::purge): it erases every record query scope
/// `q` selects (closed versions too) with the history of those records, and of records `q` selected that were
/// erased before where its history rows name their scope, in one durable step, and leaves no copy of their text
/// in its files or rows (rewriting or compacting what held it). Records of other scopes are never lost, also
/// when the process dies during a purge. The pending queue of add_async is not touched (flush() first).
/// @returns how many records it erased. Throws validation_error for an empty `q`.
template <class S>
concept purging_store = record_store<S> && requires(S& s, const scope& q) {
  { s.purge(q) } -> std::convertible_to<std::size_t>;
};

// ---- indexes -----------------------------------------------------------------------------------------------

/// An index that can size a partition before a bulk load (`reserve(partition, n)`).
template <class I>
concept reservable_index = requires(I& i, partition_id p, std::size_t n) { i.reserve(p, n); };

/// An index whose trained state can be saved and restored keyed by memory id (`hold_training(bool)`,
/// `save_snapshots(key_of_slot)`, `load_snapshots(bytes, slot_of_key)`, `version()`): ivf_index. Over a
/// blob_store, basic_memory restores it on open instead of training again.
template <class I>
concept snapshot_index = requires(I& i, const I& ci, std::string_view b, const std::function<std::string(slot_id)>& key,
                                  const std::function<std::optional<slot_id>(std::string_view)>& slot) {
  i.hold_training(true);
  { ci.save_snapshots(key) } -> std::convertible_to<std::string>;
  i.load_snapshots(b, slot);
  { ci.version() } -> std::convertible_to<std::uint64_t>;
};

/// An extractor that names the entities and relations of memory texts (entity memory).
/// `entities_of(texts, ctx)` returns one recognized_entities per text, in order, kept with the memories
/// (record::entities); nullopt when it names none for this add (the entity index then recognises the texts
/// itself). It is called before the memory takes its write lock; throwing fails the add, storing nothing.
template <class X>
concept entity_extractor = requires(X& x, std::span<const std::string> texts, const extraction_context& ctx) {
  { x.entities_of(texts, ctx) } -> std::convertible_to<std::optional<std::vector<recognized_entities>>>;
};

}  // namespace engram::inline v0
