#pragma once
/// @file memory.hpp
/// basic_memory: long-term memory for agents, composed of an Embedder, an Index, a Store and an Extractor.
/// This is the front end: the public API, the locks and the order of steps. Each job is a part under memory/
/// (options, validation, write planning, the read pipeline, derived state, commit, change-feed sync, the
/// partition cache, access counts, index snapshots, asynchronous adds) and filter/planner.hpp.

#include <engram/detail/rw_mutex.hpp>
#include <engram/capabilities.hpp>
#include <engram/concepts.hpp>
#include <engram/error.hpp>
#include <engram/extract/actions.hpp>
#include <engram/extract/verbatim.hpp>
#include <engram/filter/expr.hpp>
#include <engram/fwd.hpp>
#include <engram/ids.hpp>
#include <engram/memory/access_counts.hpp>
#include <engram/memory/async_adds.hpp>
#include <engram/memory/commit.hpp>
#include <engram/memory/derived_state.hpp>
#include <engram/memory/feed_sync.hpp>
#include <engram/memory/index_snapshot.hpp>
#include <engram/memory/indexing.hpp>
#include <engram/memory/options.hpp>
#include <engram/memory/partition_cache.hpp>
#include <engram/memory/purge.hpp>
#include <engram/memory/read_pipeline.hpp>
#include <engram/memory/validate.hpp>
#include <engram/memory/write_plan.hpp>
#include <engram/record.hpp>
#include <engram/scope.hpp>
#include <engram/scope_keys.hpp>
#include <engram/time.hpp>
#include <engram/uuid.hpp>
#include <engram/write_batch.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace engram::inline v0 {

/// Long-term memory for one application: add what was said, search it by meaning within a scope, and
/// keep every change in a history.
///
/// @tparam Embedder  text to vector (engram::embedder), e.g. hashing_embedder
/// @tparam Index     vector search over scope partitions (engram::vector_index), e.g. flat_index
/// @tparam Store     the durable truth (engram::record_store), e.g. memory_store
/// @tparam Extractor facts and decisions (engram::fact_extractor), e.g. verbatim_extractor
/// @tparam Keys      the scope keys beyond user_id, agent_id, run_id (engram::scope_key_set, scope_keys.hpp)
///
/// Thread-safety: every member may be called concurrently. Searches and reads run in parallel; writes
/// are serialised with each other (embedding and extraction happen before the write lock is taken).
/// A write that returned has been applied by the Store (for a durable store: committed); a read answers only
/// changes that are (memory/commit.hpp).
///
/// The derived state (index, catalog, keyword index, ...) is a cache of the store: reads may bring it up to date
/// (the change feed, the partition cache) under the write lock, so those parts are `mutable`; reads never write
/// to the store (access counts are written by a background flusher, flush_access_counts() or the destructor).
template <class Embedder, class Index, class Store, class Extractor, class Keys>
class basic_memory {
  static_assert(embedder<Embedder>,
                "Embedder needs: dimension() const -> std::size_t, embed(std::string_view) const -> "
                "std::vector<float>");
  static_assert(vector_index<Index>,
                "Index needs: dimension(), size(), add(slot, partition, vector), update(slot, vector), "
                "remove(slot), clear(), search(query, k, partitions, candidates) const");
  static_assert(record_store<Store>,
                "Store needs: apply(write_batch), get(id) const -> std::optional<record>, for_each(visitor) const, "
                "history(id) const, clear()");
  static_assert(fact_extractor<Extractor>,
                "Extractor needs: extract(messages, context) -> std::vector<fact>, decide(facts, neighbours, "
                "context) -> std::vector<memory_action>");
  static_assert(scope_key_set<Keys> && detail::well_formed_key_set<Keys>(),
                "Keys needs tenant_keys and extra_keys: arrays of distinct identifiers beyond user_id, agent_id, run_id");
  static_assert(detail::only_mem0_keys<Keys> || scope_keyed_store<Store>,
                "a key set beyond Mem0's needs a Store that keeps tenant and extra keys (scope_keyed_store)");

 public:
  using embedder_type = Embedder;
  using index_type = Index;
  using store_type = Store;
  using extractor_type = Extractor;
  using scope_keys = Keys;

  /// Builds the memory over `store`, indexing every record it already holds.
  /// @throws dimension_mismatch / validation_error when the store holds vectors of another embedder.
  explicit basic_memory(Embedder embedder = Embedder(), Store store = Store(), Extractor extractor = Extractor(),
                        memory_config config = {})
      : embedder_(std::move(embedder)),
        store_(std::move(store)),
        extractor_(std::move(extractor)),
        config_(std::move(config)),
        derived_(Index(embedder_.dimension()), config_.bm25, config_.entities, config_.entity_similarity),
        access_(config_.access_flush_interval) {
    open();
  }

  /// As above, with an index built by the caller (an IVF index with its settings, say).
  basic_memory(Embedder embedder, Index index, Store store, Extractor extractor, memory_config config = {})
      : embedder_(std::move(embedder)),
        store_(std::move(store)),
        extractor_(std::move(extractor)),
        config_(std::move(config)),
        derived_(std::move(index), config_.bm25, config_.entities, config_.entity_similarity),
        access_(config_.access_flush_interval) {
    open();
  }

  basic_memory(const basic_memory&) = delete;
  basic_memory& operator=(const basic_memory&) = delete;

  /// Stops background adds, saves the index snapshot and writes the access counts gathered; errors are
  /// swallowed (the snapshot is only a cache, the counts are advisory).
  ~basic_memory() {
    async_.stop();  // background adds first, so the saved snapshot is the index's final state
    try {
      (void)save_index_snapshot();
    } catch (...) {
    }
    access_.stop();
    try {
      flush_access_counts();
    } catch (...) {
    }
  }

  // ---- writing ----------------------------------------------------------------------------------------

  /// Remembers plain text for `s` (as one user message).
  add_result add(std::string_view text, const scope& s, const add_options& options = {}) {
    const message m{"user", std::string(text), {}};
    return add(std::span<const message>(&m, 1), s, options);
  }

  /// Remembers what matters in `messages` for scope `s`.
  /// @throws validation_error for a missing scope, bad metadata or oversized input; provider or storage
  ///         errors from the policies. When it throws, nothing was stored.
  add_result add(std::span<const message> messages, const scope& s, const add_options& options = {}) {
    return add_messages(messages, s, options, {});
  }

  /// As add_async(messages, ...), for plain text (one user message).
  std::string add_async(std::string_view text, const scope& s, const add_options& options = {})
    requires pending_store<Store>
  {
    const message m{"user", std::string(text), {}};
    return add_async(std::span<const message>(&m, 1), s, options);
  }

  /// Accepts `messages` for scope `s` and returns without extracting: they are written durably to the store's
  /// pending queue (committed on return), and a background worker later runs extraction and the add, dequeuing
  /// the entry in the add's own write batch. Entries of one scope are processed in the order accepted; waiting
  /// ones may be merged into one add (async_options::max_batch). A failing attempt is retried with backoff up to
  /// async_options::max_attempts (the count is stored); then the entry is kept, in the store, as failed (flush(),
  /// failed_adds()), never dropped. Entries pending when the process dies are resumed on the next open.
  /// Backpressure: blocks while queue_capacity entries wait. Progress: async_options::on_started, on_processed.
  /// @returns the id of the pending add. @throws validation_error as add() would (nothing is stored);
  ///         storage_error when the store refuses the entry or the memory is shutting down.
  std::string add_async(std::span<const message> messages, const scope& s, const add_options& options = {})
    requires pending_store<Store>
  {
    rules_.add(messages, s, options, "add_async");
    return async_.accept(s, messages, options, make_uuid_v4(), format_iso8601(utc_now()));
  }

  /// Waits until every accepted add_async entry has been processed (retries included) or kept as failed.
  /// @returns the entries kept as failed (they are still in the store's queue).
  flush_result flush() requires pending_store<Store> { return async_.wait_idle(); }

  /// The add_async entries kept as failed (also those found so in the store on open), oldest first.
  [[nodiscard]] std::vector<failed_add> failed_adds() const requires pending_store<Store> { return async_.failures(); }

  /// add_async entries accepted and not yet processed (waiting, retrying or running); failed ones excluded.
  [[nodiscard]] std::size_t pending_adds() const requires pending_store<Store> { return async_.outstanding(); }

  /// Gives every failed entry a fresh set of attempts (durably: its count is reset in the store) and queues it.
  /// @returns how many were queued.
  std::size_t retry_failed() requires pending_store<Store> { return async_.retry_failed(); }

  /// Removes a failed entry from the store's queue for good (its messages are dropped). @returns false when no
  /// failed entry has this id (a pending one is never discarded).
  bool discard_failed(std::string_view id) requires pending_store<Store> { return async_.discard_failed(id); }

  /// Changes a memory's text (as update(id, options) with options.text = text).
  record update(std::string_view id, std::string_view text, update_options options = {}) {
    options.text = std::string(text);
    return update(id, options);
  }

  /// Changes a memory's text, metadata (merged, see update_options::metadata) or expiration date, any of them
  /// alone: keeps created_at, sets updated_at (now or options.timestamp), re-embeds a new text, records an UPDATE.
  /// @returns the record after the change. @throws not_found, validation_error (nothing to change, bad input).
  record update(std::string_view id, const update_options& options) {
    return std::move(update_many(std::array{memory_update{std::string(id), options}}).front());
  }

  /// Applies every item as update() would, in one write batch: all of them, or none when one fails (an unknown or
  /// immutable id, an id twice, bad input: the message names the item). @returns the records after, in order.
  std::vector<record> update_many(std::span<const memory_update> items) {
    const auto texts = detail::checked_update_texts(items, rules_);
    auto vectors = detail::embed_checked(embedder_, texts);
    const auto named = detail::name_entities(extractor_, texts, extraction_context{});
    detail::embed_entity_names(embedder_, derived_, texts, named);  // entity similarity: the names' vectors
    catch_up();
    std::unique_lock lock(mtx_);
    auto plan = detail::plan_updates(items, std::move(vectors), named, [&](auto& id) { return stored_or_throw(id, "update"); }, rules_, utc_now());
    const auto ticket = commit_.stage(store_, plan.batch, derived_.catalog());
    for (const auto& c : plan.changed) refresh_cached(c.first);  // partition cache: only a loaded scope's
    commit_.make_durable(store_, lock, ticket);
    return detail::changed_records(std::move(plan));
  }

  /// Deletes one memory, recording a DELETE event (its history stays readable). @throws not_found.
  void delete_memory(std::string_view id) { delete_many(std::array{std::string(id)}); }

  /// Deletes every memory `ids` names (with their DELETE events) in one write batch: all, or none when an id is
  /// unknown or given twice (the message names the item's index). @throws not_found, validation_error.
  void delete_many(std::span<const std::string> ids) {
    catch_up();
    std::unique_lock lock(mtx_);
    const auto batch = detail::plan_deletions(ids, [&](auto& id) { return stored_or_throw(id, "delete"); }, utc_now());
    const auto ticket = commit_.stage(store_, batch, derived_.catalog());
    for (const auto& id : batch.erases) unindex_one(id);
    commit_.make_durable(store_, lock, ticket);
  }

  /// Deletes every memory that scope `s` selects and `filter` matches (default: all of the scope), and nothing
  /// else. @returns how many. @throws validation_error when `s` is empty (reset() is the explicit full wipe).
  std::size_t delete_all(const scope& s, const filter_expr& filter = {}) {
    rules_.check_scope(s, "delete_all");
    catch_up();
    const auto pin = pin_scope(s, &store_);
    std::unique_lock lock(mtx_);
    write_batch batch;
    derived_.for_each_admitted(derived_.select_partitions(&s, filter), filter, detail::visibility::everything(),
                               [&](slot_id slot) { batch.erases.push_back(derived_.id_of(slot)); });
    if (batch.erases.empty()) return 0;
    std::sort(batch.erases.begin(), batch.erases.end());
    for (const auto& id : batch.erases)
      if (auto r = store_.get(id)) batch.events.push_back(detail::deletion_event(*r));
    const auto ticket = commit_.stage(store_, batch, derived_.catalog());
    for (const auto& id : batch.erases) unindex_one(id);
    commit_.make_durable(store_, lock, ticket);
    return batch.erases.size();
  }

  /// Erases every memory scope `s` selects (every version) and its history, for good: the store keeps no copy of
  /// the text (memory/purge.hpp, engram::purging_store; add_async entries stay: flush() first). @returns how many.
  std::size_t purge(const scope& s) {
    rules_.check_scope(s, "purge");
    catch_up();
    const auto pin = pin_scope(s, &store_);
    std::unique_lock lock(mtx_);
    return detail::purge_scope(store_, derived_, s, [&](const std::string& id) { unindex_one(id); });
  }

  /// Erases every memory of every scope and all history.
  void reset() {
    std::unique_lock lock(mtx_);
    store_.clear();
    derived_.clear();
    commit_.partitions_cleared();
    access_.clear();  // their memories are gone, written counts and gathered hits alike
    cache_.emptied();  // partition cache: the loaded scopes stay loaded (and complete: they hold nothing now)
  }

  // ---- reading ----------------------------------------------------------------------------------------

  /// The memories of scope `s` matching options.filter closest in meaning to `query`, best first. An empty
  /// `s` with a filter that names its scopes (see search(query, options)) searches the scopes the filter names.
  /// @throws validation_error for a missing scope or an empty query, or a limit of 0 or above max_limit.
  [[nodiscard]] std::vector<search_hit> search(std::string_view query, const scope& s,
                                               const search_options& options = {}) const {
    return search_scopes(query, rules_.scope_or_filter(s, options.filter, "search"), options);
  }

  /// As above, the scope given by the filter's own scope predicates (Mem0's v2 form): `{"OR":[{"user_id":"a"},
  /// {"user_id":"b"}]}` searches users a and b. @throws validation_error when it names none (filter_names_scope).
  [[nodiscard]] std::vector<search_hit> search(std::string_view query, const search_options& options) const {
    return search_scopes(query, rules_.filter_only(options.filter, "search"), options);
  }

  /// The memory with this id, or std::nullopt when there is none (never throws for an unknown id).
  [[nodiscard]] std::optional<record> get(std::string_view id) const {
    catch_up();
    if (cache_.enabled()) return commit_.read_store(store_, mtx_, [&] { return store_.get(id); });  // loaded or not
    return commit_.read(store_, mtx_, [&](auto& seen) -> std::optional<record> {
      const auto slot = derived_.slot_of(id);
      if (!slot) return std::nullopt;
      seen(std::array{derived_.catalog().partition_of(*slot)});
      return store_.get(id);
    });
  }

  /// The memories scope `s` selects that options.filter matches, oldest first (ties by id). An empty `s` with a
  /// filter that names its scopes lists the scopes the filter names. @throws validation_error for a missing scope.
  [[nodiscard]] std::vector<record> get_all(const scope& s, const get_all_options& options = {}) const {
    return list_scopes(rules_.scope_or_filter(s, options.filter, "get_all"), options);
  }

  /// As above, the scope the filter names (see search(query, options)); validation_error when it names none.
  [[nodiscard]] std::vector<record> get_all(const get_all_options& options) const {
    return list_scopes(rules_.filter_only(options.filter, "get_all"), options);
  }

  /// Every memory of every scope (that options.filter matches), oldest first: for export and administration.
  [[nodiscard]] std::vector<record> get_all(all_scopes_t, const get_all_options& options = {}) const {
    return list_scopes(nullptr, options);
  }

  /// The changes of one memory id, oldest first; empty for an id that never existed.
  [[nodiscard]] std::vector<history_event> history(std::string_view id) const {
    return commit_.read_store(store_, mtx_, [&] { return store_.history(id); });  // deleted ids have no partition
  }

  /// The entities and relations of the scopes `s` selects, most mentioned first (memory_config::entities).
  [[nodiscard]] entity_graph entity_graph_of(const scope& s) const {
    rules_.check_scope(s, "entities");
    catch_up();
    const auto pin = pin_scope(s, nullptr);
    return commit_.read(store_, mtx_, [&](auto& seen) {
      const auto id_of = [&](slot_id x) { return derived_.id_of(x); };
      return derived_.entities().graph(seen(derived_.catalog().select(s)), id_of);
    });
  }

  /// Number of memories held.
  [[nodiscard]] std::size_t size() const {
    catch_up();
    if constexpr (counted_store<Store>)
      if (cache_.enabled()) return store_.size();  // partition cache: counted by the store, not loaded
    const auto pin = pin_scope(scope{}, nullptr);  // partition cache without a store count: every scope
    return commit_.read_anywhere(store_, mtx_, [&] { return derived_.size(); });
  }

  [[nodiscard]] const Embedder& embedder() const noexcept { return embedder_; }
  [[nodiscard]] const Store& store() const noexcept { return store_; }
  /// The extractor (e.g. to read an llm_extractor's call statistics).
  [[nodiscard]] const Extractor& extractor() const noexcept { return extractor_; }
  [[nodiscard]] const memory_config& config() const noexcept { return config_; }
  /// The index (to read its statistics, or wait for its background work).
  [[nodiscard]] const Index& index() const noexcept { return derived_.index(); }

  // ---- upkeep -----------------------------------------------------------------------------------------

  /// Saves the index's trained state beside the records when both support it (memory/index_snapshot.hpp) and
  /// it changed since it was last saved or restored; a no-op otherwise. Also done by the destructor.
  /// @returns whether a snapshot was written. @throws storage_error (a read-only store, an I/O error).
  bool save_index_snapshot() {
    if constexpr (snapshots::supported) {
      if (cache_.enabled()) return false;  // partition cache: the index holds only the loaded scopes
      std::optional<std::pair<std::string, std::uint64_t>> state;
      {
        std::shared_lock lock(mtx_);
        state = snapshots_.changed(derived_.index(), [this](slot_id s) { return derived_.id_of(s); });
      }
      if (!state) return false;
      store_.put_blob(snapshots::blob_name, state->first);
      std::unique_lock lock(mtx_);
      snapshots_.saved(state->second);
      return true;
    } else {
      return false;
    }
  }

  /// Adds the search hits counted since the last write to the store's access counts (see
  /// memory_config::access_flush_interval); a no-op when the store keeps none (or is read-only), or nothing was
  /// counted. Thread-safe. @throws storage_error when the store fails (the hits stay counted, for the next try).
  void flush_access_counts() { access_.flush(); }

  /// Loads, evictions and estimated bytes of the partition cache (all zero when it is off). Thread-safe.
  [[nodiscard]] partition_cache_stats cache_stats() const {
    std::shared_lock lock(mtx_);
    return cache_.stats();
  }

  /// Partition cache: compares the version of every loaded scope with the store's and reloads those that moved
  /// (what a gap in the change feed does; call it after writes made behind the feed's back). Takes the write
  /// lock; one scope_selection_version query per loaded scope. @returns how many scopes were reloaded (0 when
  /// the cache is off). @throws storage_error from the store (the scope that failed is reloaded on next use).
  std::size_t revalidate_partitions() {
    if constexpr (scope_loading_store<Store>) {
      if (!cache_.enabled()) return 0;
      std::unique_lock lock(mtx_);
      const cache_ops ops{*this, &store_};
      return cache_.revalidate(ops);
    } else {
      return 0;
    }
  }

 private:
  using snapshots = detail::index_snapshots<Index, Store>;

  // ---- opening ----------------------------------------------------------------------------------------

  void open() {
    if (derived_.index().dimension() != embedder_.dimension())
      throw dimension_mismatch(embedder_.dimension(), derived_.index().dimension(), "basic_memory: index vs embedder");
    if constexpr (identity_bound_store<Store>)
      store_.bind({detail::embedder_name(embedder_), embedder_.dimension(), detail::describe_scope_keys<Keys>()});
    feed_.start(store_);  // before reading, so that nothing written meanwhile is missed
    if constexpr (access_count_store<Store>)
      if (!is_read_only(store_))
        access_.set_writer([this](std::span<const access_increment> a) { store_.add_access(a); });
    if constexpr (pending_store<Store>)
      async_.bind(store_, config_.async, config_.limits.max_messages,
                  [this](std::span<const message> m, const scope& s, const add_options& o,
                         std::span<const std::string> dequeue) { return add_messages(m, s, o, dequeue); });
    if (config_.partition_cache_bytes > 0) {
      if constexpr (!scope_loading_store<Store>)
        throw validation_error("basic_memory: partition_cache_bytes = " + std::to_string(config_.partition_cache_bytes) +
                               " needs an engram::scope_loading_store (one that can load one scope); use 0 here");
      cache_.enable(config_.partition_cache_bytes, [this] { trim_cache(); });  // nothing indexed until used
      commit_.wait_for_all_staged(true);
    } else {
      snapshots::hold_training(derived_.index(), true);
      rebuild(&store_);
      load_access_counts(scope{});
      snapshots_.restore(derived_.index(), store_, [this](std::string_view id) { return derived_.slot_of(id); });
      snapshots::hold_training(derived_.index(), false);
    }
    if constexpr (pending_store<Store>) async_.resume();
  }

  /// Indexes every record of the store; those stored without a vector are embedded (and, when `writable`,
  /// stored with it); with entity similarity on, the entity names without a vector too, in one call.
  void rebuild(Store* writable) const {
    auto missing = detail::index_store(derived_, store_, embedder_,
                                       [&](const record& r, auto& kw, auto v) { index_one(r, kw, v); });
    embed_missing(missing, writable);
  }

  /// Embeds records stored without a vector (imported text) and indexes them; with `writable` (a writer's
  /// path), the vectors are stored too, in one batch. A read indexes them without writing.
  void embed_missing(std::vector<record>& missing, Store* writable) const {
    detail::embed_records(embedder_, missing, writable);
    for (const auto& r : missing) index_one(r);
  }

  /// Sets the access counts of the indexed memories `q` selects (every one when empty): stored, plus the hits
  /// gathered and not written yet. Under the write lock (or while opening).
  void load_access_counts(const scope& q) const {
    access_.load(store_, q, [&](std::string_view id) { return derived_.slot_of(id); });
  }

  // ---- derived state: every change to it goes through these (under the write lock) ---------------------

  template <class Keywords>
  void index_one(const record& r, Keywords& keywords, std::span<const float> vector) const {
    const auto slot = derived_.add(r, keywords, vector);
    access_.set(slot, 0);
    if (cache_.enabled()) cache_.track_bytes(slot, &r);
  }
  void index_one(const record& r) const { index_one(r, derived_.keywords(), r.embedding); }
  void reindex_one(const record& r) const {
    const auto slot = derived_.update(r);
    if (cache_.enabled()) cache_.track_bytes(slot, &r);
  }
  void unindex_one(const std::string& id) const {
    if (auto slot = derived_.slot_of(id)) unindex_slot(*slot);
  }
  void unindex_slot(slot_id slot) const {
    derived_.remove_slot(slot);
    if (cache_.enabled()) cache_.track_bytes(slot, nullptr);
  }

  // ---- the write path ---------------------------------------------------------------------------------

  /// add(); the pending adds `dequeue` (add_async entries these messages come from) leave the store's queue
  /// in the same write batch, so a crash keeps both the memories and the dequeue or neither.
  add_result add_messages(std::span<const message> messages, const scope& s, const add_options& options,
                          std::span<const std::string> dequeue) {
    rules_.add(messages, s, options, "add");
    const extraction_context ctx{s, options.metadata, options.timestamp, options.extraction};
    const verbatim_extractor verbatim;
    std::vector<fact> facts = options.infer ? std::vector<fact>(extractor_.extract(messages, ctx))
                                            : verbatim.extract(messages, ctx);
    std::erase_if(facts, [](const fact& f) { return detail::is_blank(f.text); });
    if (facts.empty()) {
      if (!dequeue.empty()) commit_.dequeue(store_, mtx_, dequeue);  // nothing worth remembering
      return {};
    }
    for (auto& f : facts) rules_.text(f.text, "add: extracted fact");

    std::vector<std::string> fact_texts;
    fact_texts.reserve(facts.size());
    for (const auto& f : facts) fact_texts.push_back(f.text);
    auto fact_vectors = detail::embed_checked(embedder_, fact_texts);
    catch_up();
    const auto pin = pin_scope(s, &store_);  // partition cache: the scope stays loaded until the add returns
    const auto neighbours = find_neighbours(s, fact_vectors, options.infer);
    std::vector<memory_action> actions = options.infer
                                             ? std::vector<memory_action>(extractor_.decide(facts, neighbours, ctx))
                                             : verbatim.decide(facts, neighbours, ctx);
    // Texts an action brings that are not a fact's own are embedded, and entities named, before the write lock.
    detail::action_inputs in(actions, std::move(fact_texts), std::move(fact_vectors),
                             [&](std::span<const std::string> t) { return detail::embed_checked(embedder_, t); });
    in.name_entities(actions, [&](std::span<const std::string> t) { return detail::name_entities(extractor_, t, ctx); });
    detail::embed_entity_names(embedder_, derived_, actions, in);  // entity similarity: the names' vectors

    std::unique_lock lock(mtx_);
    const auto now = utc_now();
    const auto partitions = derived_.catalog().select(s);
    auto plan = detail::plan_add(
        facts, actions, s, options, rules_, now, config_.on_contradiction,
        [&](const std::string& hash, const std::string& text) {
          return derived_.find_text(partitions, hash, text, now, [&](const std::string& id) { return store_.get(id); });
        },
        [&](const std::string& id) { return target_in_scope(id, s); }, in);
    plan.batch.dequeued.assign(dequeue.begin(), dequeue.end());
    if (plan.batch.empty()) return std::move(plan.result);
    const auto ticket = commit_.stage(store_, plan.batch, derived_.catalog());  // commit point: a throw moves nothing
    if constexpr (change_feed_store<Store>) detail::forget_dropped_duplicates(plan, commit_.take_feed_duplicates());
    for (const auto& id : plan.deleted) unindex_one(id);
    for (const auto& [r, is_new] : plan.changed) {
      if (is_new)
        index_one(r);
      else
        reindex_one(r);
    }
    commit_.indexed(plan.batch, ticket, derived_.catalog());
    commit_.make_durable(store_, lock, ticket);
    return std::move(plan.result);
  }

  /// The nearest visible memories of scope `s` to each vector: what the extractor decides against. None for a
  /// verbatim decision, which looks among them only for the same text: plan_add looks for it under the write lock.
  using neighbour_lists = std::vector<std::vector<existing_memory>>;
  neighbour_lists find_neighbours(const scope& s, const std::vector<std::vector<float>>& vectors, bool infer) const {
    if (!infer || detail::decides_verbatim(extractor_)) return neighbour_lists(vectors.size());
    std::shared_lock lock(mtx_);
    return detail::nearest_memories(derived_, vectors, derived_.catalog().select(s), config_.neighbours, utc_now(),
                                    [&](const std::string& id) { return store_.get(id); });
  }

  /// The record `id` if it exists and scope `s` selects it (an extractor cannot reach outside the scope).
  std::optional<record> target_in_scope(const std::string& id, const scope& s) const {
    if (id.empty() || !derived_.slot_of(id)) return std::nullopt;
    auto r = store_.get(id);
    if (!r || !s.selects(r->scope())) return std::nullopt;
    return r;
  }

  /// The memory `id` for update and delete. @throws not_found.
  record stored_or_throw(std::string_view id, std::string_view op) const {
    if (cache_.enabled() || derived_.slot_of(id))  // partition cache: the memory's scope may not be loaded
      if (auto r = store_.get(id)) return std::move(*r);
    throw not_found(std::string(op) + ": no memory with id '" + std::string(id) + "'");
  }

  // ---- the read path ----------------------------------------------------------------------------------

  /// A search of the scopes `s` selects (null: those the filter names). Counts its hits; writes nothing.
  std::vector<search_hit> search_scopes(std::string_view query, const scope* s, const search_options& options) const {
    rules_.search(query, options);
    const std::string q(query);
    const auto qv = options.mode != search_mode::keyword ? detail::embed_checked(embedder_, std::span<const std::string>(&q, 1))
                                                         : std::vector<std::vector<float>>{};
    catch_up();
    const auto pin = pin_scope(s ? *s : scope{}, nullptr);  // partition cache: no scope loads every scope
    return commit_.read(store_, mtx_, [&](auto& seen) {
      std::vector<search_hit> out;
      const auto partitions = seen(derived_.select_partitions(s, options.filter));
      if (partitions.empty()) return out;
      const bool reranks = static_cast<bool>(config_.rerank);
      const detail::read_request req{query, qv.empty() ? std::span<const float>() : std::span<const float>(qv.front()),
                                     options, partitions, utc_now()};
      out = detail::rank_memories(
          derived_, req, detail::candidate_pool(options, reranks), reranks,
          [&](const std::string& id) { return store_.get(id); }, [&](slot_id slot) { return access_.get(slot); });
      if (reranks) {
        out = config_.rerank(query, std::move(out));
        if (out.size() > options.limit) out.resize(options.limit);
      }
      access_.note(out, [&](std::string_view id) { return derived_.slot_of(id); });
      return out;
    });
  }

  /// get_all over the scopes `s` selects (null: every scope the filter may match).
  std::vector<record> list_scopes(const scope* s, const get_all_options& options) const {
    catch_up();
    const auto pin = pin_scope(s ? *s : scope{}, nullptr);  // partition cache: no scope loads every scope
    return commit_.read(store_, mtx_, [&](auto& seen) {
      return detail::list_memories(derived_, seen(derived_.select_partitions(s, options.filter)), options, utc_now(),
                                   [&](const std::string& id) { return store_.get(id); });
    });
  }

  // ---- change feed (memory/feed_sync.hpp) -------------------------------------------------------------

  /// Brings the derived state up to date with other nodes' writes (stores with a change feed; else a no-op).
  void catch_up() const {
    feed_.catch_up(store_, mtx_, [this](detail::feed_changes& c) { apply_feed(c); });
  }

  /// Applies one poll's changes, under the write lock: each changed id is re-read from the store (indexed,
  /// re-indexed or dropped); "*" reloads everything (with the partition cache: re-validates the loaded scopes).
  void apply_feed(detail::feed_changes& c) const {
    if constexpr (scope_loading_store<Store>)
      if (cache_.enabled() && (c.everything || c.after_outage)) {
        const cache_ops ops{*this, nullptr};
        cache_.revalidate(ops);
        if (c.everything) return;
      }
    if (c.everything) {
      derived_.clear();
      access_.clear_slots();
      rebuild(nullptr);
      load_access_counts(scope{});
      return;
    }
    std::sort(c.ids.begin(), c.ids.end());
    c.ids.erase(std::unique(c.ids.begin(), c.ids.end()), c.ids.end());
    for (const auto& id : c.ids) {
      auto r = store_.get(id);
      if (!r)
        unindex_one(id);
      else if (r->embedding.size() != embedder_.dimension())
        continue;  // not indexable here (imported without a vector): left to the node that embeds it
      else if (derived_.slot_of(id))
        reindex_one(*r);
      else if (!cache_.enabled() || cache_.is_loaded(r->scope()))  // partition cache: others load on first use
        index_one(*r);
    }
  }

  // ---- partition cache (memory/partition_cache.hpp) -----------------------------------------------------

  /// How the cache loads and drops scopes here. `writable` is the store on a writer's path, null on a read's.
  struct cache_ops {
    const basic_memory& m;
    Store* writable;
    std::uint64_t version(const scope& q) const { return m.store_.scope_selection_version(q); }
    void load(const scope& q) const {
      auto missing = detail::index_scope(m.derived_, m.store_, q, m.embedder_, [&](const record& r) { m.index_one(r); });
      m.embed_missing(missing, writable);
      m.load_access_counts(q);
    }
    void drop(const scope& q, bool keep_loaded) const {
      for (const auto s : m.derived_.slots_in(q, [&](const scope& e) { return keep_loaded && m.cache_.is_loaded(e); }))
        m.unindex_slot(s);
    }
  };

  /// Makes sure query scope `q` (every scope when empty) is loaded, and pins it; a no-op with the cache off.
  /// Call it before taking mtx_, and keep the pin until mtx_ is released.
  detail::partition_cache::pin pin_scope(const scope& q, Store* writable) const {
    if constexpr (scope_loading_store<Store>) {
      if (!cache_.enabled()) return {};
      return cache_.pin_or_load(q, mtx_, cache_ops{*this, writable});
    } else {
      (void)q;
      (void)writable;
      return {};
    }
  }

  /// Called when an operation unpins with the cache over budget: evicts. Never throws.
  void trim_cache() const noexcept { cache_.trim(mtx_, cache_ops{*this, nullptr}); }

  /// After a write of `r`: re-indexes it when indexed, indexes it when a loaded scope selects it (partition
  /// cache), else leaves it to be loaded with its scope.
  void refresh_cached(const record& r) const {
    if (derived_.slot_of(r.id))
      reindex_one(r);
    else if (cache_.is_loaded(r.scope()))
      index_one(r);
  }

  Embedder embedder_;
  Store store_;
  Extractor extractor_;
  memory_config config_;
  detail::input_rules rules_{config_.limits, &validate_scope_keys<Keys>, Keys::tenant_keys.size() != 0};
  mutable detail::rw_mutex mtx_;
  // The derived state and what keeps it current: a cache of the store, so reads may update it (under mtx_).
  mutable detail::derived_state<Index> derived_;
  mutable detail::partition_cache cache_;
  mutable detail::feed_sync feed_;
  mutable detail::access_counts access_;  // thread-safe itself; its flusher writes to store_
  detail::committer<Store> commit_{mtx_};
  snapshots snapshots_;
  detail::async_adds<Store> async_;  // last: destroyed first, stopping the workers while what they use is alive
};

}  // namespace engram::inline v0
