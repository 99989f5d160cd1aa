#pragma once
/// @file memory.hpp
/// basic_memory: long-term memory for agents, composed of an Embedder, an Index, a Store and an Extractor.

#include <engram/async/options.hpp>
#include <engram/async/scheduler.hpp>
#include <engram/async/worker_pool.hpp>
#include <engram/concepts.hpp>
#include <engram/detail/catalog.hpp>
#include <engram/detail/md5.hpp>
#include <engram/text/utf8.hpp>
#include <engram/error.hpp>
#include <engram/extract/actions.hpp>
#include <engram/extract/verbatim.hpp>
#include <engram/filter/eval.hpp>
#include <engram/filter/expr.hpp>
#include <engram/index/bitmap.hpp>
#include <engram/json.hpp>
#include <engram/rank/expiry.hpp>
#include <engram/rank/fusion.hpp>
#include <engram/index/keyword_index.hpp>
#include <engram/rank/rerank.hpp>
#include <engram/record.hpp>
#include <engram/scope.hpp>
#include <engram/write_batch.hpp>
#include <engram/time.hpp>
#include <engram/uuid.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <map>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace engram::inline v0 {

/// Limits that turn oversized input into a validation_error instead of a stored surprise.
struct memory_limits {
  std::size_t max_text_bytes = 64 * 1024;      ///< one memory's text
  std::size_t max_metadata_bytes = 64 * 1024;  ///< one memory's metadata, as compact JSON
  std::size_t max_messages = 1000;             ///< messages in one add
  std::size_t max_limit = 1000;                ///< the largest `limit` a search accepts
};

/// Construction-time settings of a basic_memory.
struct memory_config {
  memory_limits limits{};
  std::size_t neighbours = 5;  ///< existing memories shown to the extractor per fact
  bm25_params bm25{};          ///< keyword search parameters (rank/keyword_index.hpp)
  /// When set, called by every search on its candidate pool, best first (rank/rerank.hpp); default: none.
  rerank_function rerank{};
  /// Background processing of add_async (workers, queue bound, batching, attempts, backoff).
  async_options async{};
  /// 0 (the default): every record of the store is indexed when the memory opens. Above 0 (a store that can
  /// load one scope, engram::scope_loading_store, e.g. postgres_store): the partition cache. Nothing is indexed
  /// on open; the first read or write of a scope loads the records it selects (vectors, keyword index,
  /// catalog), and scopes least recently used are evicted while the estimated bytes held exceed this budget.
  /// See basic_memory's "partition cache" section.
  std::size_t partition_cache_bytes = 0;
  /// Over a store that keeps access counts (engram::access_count_store: every store engram ships), how often
  /// the search hits counted since the last write are added to the stored counts (the `access` ranking term
  /// then survives reopening). The first search after the interval writes them (one store write); so do
  /// flush_access_counts() and the destructor. 0: after every search.
  std::chrono::milliseconds access_flush_interval{std::chrono::seconds{30}};
};

/// What the partition cache did (basic_memory::cache_stats()); all zero when it is off.
struct partition_cache_stats {
  std::uint64_t loads = 0;      ///< scopes loaded from the store, re-validation reloads included
  std::uint64_t evictions = 0;  ///< scopes evicted to stay within memory_config::partition_cache_bytes
  std::size_t bytes = 0;        ///< estimated bytes the loaded scopes hold now (vectors, texts, keyword postings)
  std::size_t scopes = 0;       ///< scopes loaded now
};

/// Options of add().
struct add_options {
  nlohmann::json metadata = nlohmann::json::object();  ///< stored with every memory this add creates
  /// true: the Extractor decides what to remember; false: each non-system message is stored as given
  /// (exact duplicates in the scope skipped), whatever the Extractor.
  bool infer = true;
  /// `YYYY-MM-DD` (UTC): the memories this add creates are hidden from search and get_all after that day.
  std::optional<std::string> expiration_date{};
};

/// Options of search().
struct search_options {
  /// At most this many hits (1 to memory_limits::max_limit). Default 20, as Mem0's v2 API.
  std::size_t limit = 20;
  /// When set, hits scoring below it are dropped. Scores are cosine similarities in [-1, 1] in semantic mode,
  /// fused scores otherwise (in [0, 1] for weighted hybrid and keyword search without extra terms).
  std::optional<float> threshold{};
  /// Only memories matching it are searched (default: empty, every memory of the scope). Its user_id /
  /// agent_id / run_id predicates narrow the partitions searched, never widen the scope.
  filter_expr filter{};
  /// How the filter is applied; every strategy returns the same hits.
  filter_strategy strategy = filter_strategy::automatic;
  /// Which similarity ranks (rank/fusion.hpp). Hybrid: cosine and BM25 fused; a memory matching only the
  /// query's keywords is still a candidate. Scores are cosine similarities only in semantic mode.
  search_mode mode = search_mode::hybrid;
  /// Fusion weights and the optional recency / importance / access terms (off by default).
  ranking_weights weights{};
  bool explain = false;       ///< true: each hit carries score_details
  bool show_expired = false;  ///< true: memories past their expiration_date are searched too
};

/// Options of get_all().
struct get_all_options {
  std::size_t limit = 100;  ///< at most this many records (Mem0's default); 0 means no limit
  filter_expr filter{};     ///< only records matching it (default: empty, all of the scope)
  bool show_expired = false;  ///< true: memories past their expiration_date are listed too
};

/// Options of update().
struct update_options {
  std::optional<nlohmann::json> metadata{};  ///< when set, replaces the memory's metadata
  /// When set: `YYYY-MM-DD` sets the memory's expiration date, "" clears it (the memory is visible again).
  std::optional<std::string> expiration_date{};
};

/// An action an add could not apply (an extractor naming a memory outside the scope, say), and why.
struct skipped_action {
  memory_action action;
  std::string reason;
};

/// What add() did: one event per decided action (Mem0's `results`), plus the actions it refused.
struct add_result {
  std::vector<memory_event> results;
  std::vector<skipped_action> skipped;
};

inline void to_json(nlohmann::json& j, const add_result& r) {
  j = nlohmann::json{{"results", r.results}};
  if (!r.skipped.empty()) {
    auto arr = nlohmann::json::array();
    for (const auto& s : r.skipped)
      arr.push_back({{"event", to_string(s.action.event)},
                     {"id", s.action.target_id},
                     {"text", s.action.text},
                     {"reason", s.reason}});
    j["skipped"] = std::move(arr);
  }
}

/// Long-term memory for one application: add what was said, search it by meaning within a scope, and
/// keep every change in a history.
///
/// @tparam Embedder  text to vector (engram::embedder), e.g. hashing_embedder
/// @tparam Index     vector search over scope partitions (engram::vector_index), e.g. flat_index
/// @tparam Store     the durable truth (engram::record_store), e.g. memory_store
/// @tparam Extractor facts and decisions (engram::fact_extractor), e.g. verbatim_extractor
///
/// Thread-safety: every member may be called concurrently. Searches and reads run in parallel; writes
/// are serialised with each other (embedding and extraction happen before the write lock is taken).
/// A write that returned has been applied by the Store (for a durable store: committed).
template <class Embedder, class Index, class Store, class Extractor>
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

 public:
  using embedder_type = Embedder;
  using index_type = Index;
  using store_type = Store;
  using extractor_type = Extractor;

  /// Builds the memory over `store`, indexing every record it already holds.
  /// @throws dimension_mismatch / validation_error when the store holds vectors of another embedder.
  explicit basic_memory(Embedder embedder = Embedder(), Store store = Store(), Extractor extractor = Extractor(),
                        memory_config config = {})
      : embedder_(std::move(embedder)),
        index_(embedder_.dimension()),
        store_(std::move(store)),
        extractor_(std::move(extractor)),
        config_(std::move(config)) {
    open();
  }

  /// As above, with an index built by the caller (an IVF index with its settings, say).
  basic_memory(Embedder embedder, Index index, Store store, Extractor extractor, memory_config config = {})
      : embedder_(std::move(embedder)),
        index_(std::move(index)),
        store_(std::move(store)),
        extractor_(std::move(extractor)),
        config_(std::move(config)) {
    open();
  }

  basic_memory(const basic_memory&) = delete;
  basic_memory& operator=(const basic_memory&) = delete;

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
    return add_in(messages, s, options, {});
  }

 private:
  /// add(); the pending adds `dequeue` (add_async entries these messages come from) leave the store's queue
  /// in the same write batch, so a crash keeps both the memories and the dequeue or neither.
  add_result add_in(std::span<const message> messages, const scope& s, const add_options& options,
                    std::span<const std::string> dequeue) {
    validate_add(messages, s, options, "add");

    const extraction_context ctx{s, options.metadata};
    const verbatim_extractor verbatim;
    std::vector<fact> facts = options.infer ? std::vector<fact>(extractor_.extract(messages, ctx))
                                            : verbatim.extract(messages, ctx);
    std::erase_if(facts, [](const fact& f) { return is_blank(f.text); });
    add_result result;
    if (facts.empty()) {
      if (!dequeue.empty()) commit_dequeue(dequeue);
      return result;
    }
    for (auto& f : facts) validate_text(f.text, "add: extracted fact");

    std::vector<std::string> fact_texts;
    fact_texts.reserve(facts.size());
    for (const auto& f : facts) fact_texts.push_back(f.text);
    auto fact_vectors = embed_checked(fact_texts);
    catch_up();  // change feed: apply other nodes' writes first
    const auto pin = pin_region(s);  // partition cache: the scope stays loaded until the add returns
    const auto neighbours = find_neighbours(s, fact_vectors);

    std::vector<memory_action> actions = options.infer
                                             ? std::vector<memory_action>(extractor_.decide(facts, neighbours, ctx))
                                             : verbatim.decide(facts, neighbours, ctx);

    // Embed every text an action brings that is not a fact's own text, before taking the write lock.
    std::vector<std::string> extra_texts;
    for (const auto& a : actions)
      if ((a.event == event_kind::add || a.event == event_kind::update) && !is_blank(a.text) &&
          std::find(fact_texts.begin(), fact_texts.end(), a.text) == fact_texts.end() &&
          std::find(extra_texts.begin(), extra_texts.end(), a.text) == extra_texts.end())
        extra_texts.push_back(a.text);
    auto extra_vectors = embed_checked(extra_texts);
    auto vector_for = [&](const std::string& text) -> const std::vector<float>& {
      if (auto it = std::find(fact_texts.begin(), fact_texts.end(), text); it != fact_texts.end())
        return fact_vectors[std::size_t(it - fact_texts.begin())];
      return extra_vectors[std::size_t(std::find(extra_texts.begin(), extra_texts.end(), text) - extra_texts.begin())];
    };

    std::unique_lock lock(mtx_);
    const auto now = utc_now();
    const auto partitions = catalog_.select(s);
    write_batch batch;
    std::vector<std::pair<record, bool>> changed;  // (record after, is new) in batch order
    std::vector<std::string> deleted;
    std::unordered_set<std::string> touched;
    std::vector<std::pair<std::string, std::string>> pending;  // (hash, text) added by this batch

    for (const auto& a : actions) {
      const fact* from = a.fact_index < facts.size() ? &facts[a.fact_index] : nullptr;
      auto skip = [&](std::string why) { result.skipped.push_back({a, std::move(why)}); };
      if (!a.skip_reason.empty()) {
        skip(a.skip_reason);
        continue;
      }
      switch (a.event) {
        case event_kind::add: {
          if (is_blank(a.text)) {
            skip("empty text");
            break;
          }
          if (a.text.size() > config_.limits.max_text_bytes || !detail::is_valid_utf8(a.text)) {
            skip("text too long or not UTF-8");
            break;
          }
          const auto hash = detail::md5_hex(a.text);
          if (auto dup = find_duplicate(partitions, hash, a.text)) {
            result.results.push_back({*dup, a.text, event_kind::none, std::nullopt});
            break;
          }
          if (std::find(pending.begin(), pending.end(), std::pair{hash, a.text}) != pending.end()) break;
          pending.emplace_back(hash, a.text);
          record r;
          r.id = make_uuid_v4();
          r.memory = a.text;
          r.hash = hash;
          r.metadata = merged_metadata(options.metadata, from);
          r.user_id = s.user_id;
          r.agent_id = s.agent_id;
          r.run_id = s.run_id;
          r.role = from ? from->role : std::string("user");
          r.actor_id = from ? from->actor_id : std::string();
          r.created_at = r.updated_at = now;
          r.embedding = vector_for(a.text);
          r.expiration_date = options.expiration_date;
          batch.events.push_back(history_event{make_uuid_v4(), r.id, std::nullopt, r.memory, event_kind::add,
                                               now, std::nullopt, false, r.actor_id, r.role});
          result.results.push_back({r.id, r.memory, event_kind::add, std::nullopt});
          touched.insert(r.id);
          batch.upserts.push_back(r);
          changed.emplace_back(std::move(r), true);
          break;
        }
        case event_kind::update: {
          auto target = target_in_scope(a.target_id, s);
          if (!target) {
            skip("no memory '" + a.target_id + "' in this scope");
            break;
          }
          if (is_blank(a.text) || a.text.size() > config_.limits.max_text_bytes || !detail::is_valid_utf8(a.text)) {
            skip("empty, too long or not UTF-8 text");
            break;
          }
          if (!touched.insert(a.target_id).second) {
            skip("memory '" + a.target_id + "' already changed by this add");
            break;
          }
          record r = std::move(*target);
          const std::string old = r.memory;
          if (old == a.text) {
            result.results.push_back({r.id, r.memory, event_kind::none, std::nullopt});
            break;
          }
          r.memory = a.text;
          r.hash = detail::md5_hex(a.text);
          r.updated_at = now;
          r.embedding = vector_for(a.text);
          if (from && !from->metadata.empty()) r.metadata.update(from->metadata);
          batch.events.push_back(history_event{make_uuid_v4(), r.id, old, r.memory, event_kind::update,
                                               r.created_at, now, false, r.actor_id, r.role});
          result.results.push_back({r.id, r.memory, event_kind::update, old});
          batch.upserts.push_back(r);
          changed.emplace_back(std::move(r), false);
          break;
        }
        case event_kind::del: {
          auto target = target_in_scope(a.target_id, s);
          if (!target) {
            skip("no memory '" + a.target_id + "' in this scope");
            break;
          }
          if (!touched.insert(a.target_id).second) {
            skip("memory '" + a.target_id + "' already changed by this add");
            break;
          }
          batch.erases.push_back(target->id);
          batch.events.push_back(history_event{make_uuid_v4(), target->id, target->memory, std::nullopt,
                                               event_kind::del, target->created_at, now, true, target->actor_id,
                                               target->role});
          result.results.push_back({target->id, target->memory, event_kind::del, std::nullopt});
          deleted.push_back(target->id);
          break;
        }
        case event_kind::none: {
          if (a.target_id.empty()) break;
          if (auto target = target_in_scope(a.target_id, s))
            result.results.push_back({target->id, target->memory, event_kind::none, std::nullopt});
          break;
        }
      }
    }
    batch.dequeued.assign(dequeue.begin(), dequeue.end());
    if (batch.empty()) return result;
    const auto ticket = stage(batch);  // the commit point: if it throws, the index and catalog are untouched
    // change feed: a fact another node stored meanwhile was dropped by the store; report the stored one
    if constexpr (change_feed_store<Store>) drop_feed_duplicates(changed, result);
    for (const auto& id : deleted) unindex(id);
    for (const auto& [r, is_new] : changed) {
      if (is_new)
        index_record(r);
      else
        reindex_record(r);
    }
    make_durable(lock, ticket);
    return result;
  }

 public:
  // ---- two-phase add (add_async) -----------------------------------------------------------------------

  /// As add_async(messages, ...), for plain text (one user message).
  std::string add_async(std::string_view text, const scope& s, const add_options& options = {})
    requires pending_store<Store>
  {
    const message m{"user", std::string(text), {}};
    return add_async(std::span<const message>(&m, 1), s, options);
  }

  /// Accepts `messages` for scope `s` and returns without extracting: they are written durably to the store's
  /// pending queue (for file_store / sqlite_store: committed on return), and a background worker later runs
  /// extraction and the add, dequeuing the entry in the add's own write batch. Entries of one scope are
  /// processed in the order accepted; waiting entries of a scope may be merged into one add (see
  /// async_options::max_batch). A failing attempt is retried with exponential backoff up to
  /// async_options::max_attempts (the count is stored); then the entry is kept, in the store, as failed:
  /// listed by flush() and failed_adds(), never dropped silently. Entries still pending when the memory is
  /// destroyed or the process dies are resumed when a memory is opened over the store again.
  /// Backpressure: blocks while async_options::queue_capacity entries wait in memory.
  /// @returns the id of the pending add. @throws validation_error as add() would (nothing is stored);
  ///         storage_error when the store refuses the entry or the memory is shutting down.
  std::string add_async(std::span<const message> messages, const scope& s, const add_options& options = {})
    requires pending_store<Store>
  {
    validate_add(messages, s, options, "add_async");
    start_async();
    async_.queue.reserve();
    pending_add p{make_uuid_v4(), s, std::vector<message>(messages.begin(), messages.end()), pending_options(options),
                  format_iso8601(utc_now()), 0};
    try {
      write_batch b;
      b.enqueued.push_back(p);
      store_.apply(b);
    } catch (...) {
      async_.queue.unreserve();
      throw;
    }
    auto id = p.id;
    async_.queue.push_reserved(std::move(p));
    return id;
  }

  /// Waits until every accepted add_async entry has been processed (retries included) or kept as failed.
  /// @returns the entries kept as failed (they are still in the store's queue).
  flush_result flush()
    requires pending_store<Store>
  {
    return async_.queue.wait_idle();
  }

  /// The add_async entries kept as failed (also those found so in the store on open), oldest first.
  [[nodiscard]] std::vector<failed_add> failed_adds() const
    requires pending_store<Store>
  {
    return async_.queue.failures();
  }

  /// add_async entries accepted and not yet processed (waiting, retrying or running); failed ones excluded.
  [[nodiscard]] std::size_t pending_adds() const
    requires pending_store<Store>
  {
    return async_.queue.outstanding();
  }

  /// Gives every failed entry a fresh set of attempts (durably: its count is reset in the store) and queues it.
  /// @returns how many were queued.
  std::size_t retry_failed()
    requires pending_store<Store>
  {
    auto failed = async_.queue.remove_failed([](const failed_add&) { return true; });
    if (failed.empty()) return 0;
    std::unordered_set<std::string> ids;
    for (const auto& f : failed) ids.insert(f.id);
    write_batch b;
    store_.for_each_pending([&](const pending_add& p) {
      if (!ids.count(p.id)) return;
      b.enqueued.push_back(p);
      b.enqueued.back().attempts = 0;
      b.enqueued.back().options.erase("last_error");
    });
    store_.apply(b);
    start_async();
    for (auto& p : b.enqueued) async_.queue.push(std::move(p));
    return b.enqueued.size();
  }

  /// Removes a failed entry from the store's queue for good (its messages are dropped).
  /// @returns false when no failed entry has this id (a pending one is never discarded).
  bool discard_failed(std::string_view id)
    requires pending_store<Store>
  {
    if (async_.queue.remove_failed([&](const failed_add& f) { return f.id == id; }).empty()) return false;
    write_batch b;
    b.dequeued.emplace_back(id);
    store_.apply(b);
    return true;
  }

  /// Changes a memory's text (and optionally its metadata): keeps created_at, bumps updated_at, re-embeds,
  /// records an UPDATE event. @returns the record after the change. @throws not_found, validation_error.
  record update(std::string_view id, std::string_view text, const update_options& options = {}) {
    validate_text(text, "update: text");
    if (is_blank(text)) throw validation_error("update: text is empty");
    if (options.metadata) validate_metadata(*options.metadata, "update");
    if (options.expiration_date && !options.expiration_date->empty())
      (void)parse_expiration_day(*options.expiration_date);
    const std::string t(text);
    auto vec = embed_checked(std::span<const std::string>(&t, 1));
    catch_up();  // change feed: apply other nodes' writes first

    std::unique_lock lock(mtx_);
    auto current = existing(id, "update");
    record r = *current;
    r.memory = t;
    r.hash = detail::md5_hex(t);
    r.updated_at = utc_now();
    r.embedding = std::move(vec.front());
    if (options.metadata) r.metadata = *options.metadata;
    if (options.expiration_date)
      r.expiration_date = options.expiration_date->empty() ? std::nullopt : options.expiration_date;
    write_batch batch;
    batch.upserts.push_back(r);
    batch.events.push_back(history_event{make_uuid_v4(), r.id, current->memory, r.memory, event_kind::update,
                                         r.created_at, r.updated_at, false, r.actor_id, r.role});
    const auto ticket = stage(batch);
    if (lazy_)
      refresh_cached(r);  // partition cache: indexed only when a loaded scope selects it
    else
      reindex_record(r);
    make_durable(lock, ticket);
    return r;
  }

  /// Deletes one memory, recording a DELETE event (its history stays readable). @throws not_found.
  void delete_memory(std::string_view id) {
    catch_up();  // change feed: apply other nodes' writes first
    std::unique_lock lock(mtx_);
    auto current = existing(id, "delete");
    write_batch batch;
    batch.erases.push_back(current->id);
    batch.events.push_back(deletion_event(*current));
    const auto ticket = stage(batch);
    unindex(current->id);
    make_durable(lock, ticket);
  }

  /// Deletes every memory that scope `s` selects and `filter` matches (default: all of the scope), and nothing
  /// else. @returns how many were deleted.
  /// @throws validation_error when `s` is empty (reset() is the explicit way to wipe everything).
  std::size_t delete_all(const scope& s, const filter_expr& filter = {}) {
    validate_scope(s, "delete_all");
    catch_up();  // change feed: apply other nodes' writes first
    const auto pin = pin_region(s);
    std::unique_lock lock(mtx_);
    write_batch batch;
    for (const auto p : select_partitions(&s, filter))
      catalog_.for_each_slot(p, [&](slot_id slot) {
        if (filter.empty() || columns_.matches(filter, slot)) batch.erases.push_back(catalog_.id_of(slot));
      });
    if (batch.erases.empty()) return 0;
    std::sort(batch.erases.begin(), batch.erases.end());
    for (const auto& id : batch.erases)
      if (auto r = store_.get(id)) batch.events.push_back(deletion_event(*r));
    const auto ticket = stage(batch);
    for (const auto& id : batch.erases) unindex(id);
    make_durable(lock, ticket);
    return batch.erases.size();
  }

  /// Erases every memory of every scope and all history.
  void reset() {
    std::unique_lock lock(mtx_);
    store_.clear();
    index_.clear();
    catalog_.clear();
    columns_.clear();
    keyword_.clear();
    expiry_.clear();
    expiring_.clear();
    access_.clear();
    if constexpr (access_count_store<Store>) {
      std::lock_guard al(access_mtx_);
      access_pending_.clear();  // their memories are gone
    }
    // partition cache: the loaded scopes stay loaded (and complete: they hold nothing now)
    slot_bytes_.clear();
    cache_bytes_.store(regions_.size() * region_overhead, std::memory_order_relaxed);
  }

  // ---- reading ----------------------------------------------------------------------------------------

  /// The memories of scope `s` matching options.filter closest in meaning to `query`, best first. An empty
  /// `s` with a filter that names its scopes (see search(query, options)) searches the scopes the filter names.
  /// @throws validation_error for a missing scope or an empty query, or a limit of 0 or above max_limit.
  [[nodiscard]] std::vector<search_hit> search(std::string_view query, const scope& s,
                                               const search_options& options = {}) const {
    const scope* target = scope_or_filter(s, options.filter, "search");
    auto out = search_in(query, target, options);
    note_access(out);
    return out;
  }

  /// As above, the scope given by the filter's own user_id / agent_id / run_id predicates (Mem0's v2 form):
  /// `{"OR":[{"user_id":"a"},{"user_id":"b"}]}` searches exactly the memories of users a and b.
  /// @throws validation_error when options.filter does not name a scope (see filter_names_scope), as a
  ///         missing scope is everywhere else.
  [[nodiscard]] std::vector<search_hit> search(std::string_view query, const search_options& options) const {
    require_filter_scope(options.filter, "search");
    auto out = search_in(query, nullptr, options);
    note_access(out);
    return out;
  }

 private:
  std::vector<search_hit> search_in(std::string_view query, const scope* s, const search_options& options) const {
    validate_text(query, "search: query");
    if (is_blank(query)) throw validation_error("search: query is empty");
    if (options.limit == 0 || options.limit > config_.limits.max_limit)
      throw validation_error("search: limit " + std::to_string(options.limit) + " is out of range (1 to " +
                             std::to_string(config_.limits.max_limit) + ")");
    validate_weights(options.weights);
    const std::string q(query);
    const bool use_vectors = options.mode != search_mode::keyword;
    const bool use_keywords = options.mode != search_mode::semantic;
    const auto qv = use_vectors ? embed_checked(std::span<const std::string>(&q, 1)) : std::vector<std::vector<float>>{};
    catch_up();  // change feed: apply other nodes' writes first
    const auto pin = pin_region(s ? *s : scope{});  // partition cache: no scope loads every scope

    std::shared_lock lock(mtx_);
    const auto partitions = select_partitions(s, options.filter);
    std::vector<search_hit> out;
    if (partitions.empty()) return out;
    const auto now = utc_now();
    const auto today = utc_day(now);
    const bool hide = !options.show_expired && !expiring_.empty();
    const auto& w = options.weights;
    // A plain semantic search needs exactly `limit` hits; anything that reorders needs a pool to reorder.
    const bool plain = options.mode == search_mode::semantic && !w.has_extra_terms() && !config_.rerank;
    const std::size_t pool = plain ? options.limit : std::max<std::size_t>(options.limit * 3, 50);

    std::vector<index_hit> semantic;
    if (use_vectors)
      semantic = options.filter.empty() && !hide
                     ? index_.search(qv.front(), pool, partitions, static_cast<const slot_bitmap*>(nullptr))
                     : filtered_search(qv.front(), options, pool, partitions, hide, today);

    struct candidate {
      slot_id slot;
      rank_signals signals;
    };
    std::vector<candidate> cands;
    cands.reserve(semantic.size() + (use_keywords ? pool : 0));
    for (std::size_t i = 0; i < semantic.size(); ++i)
      cands.push_back({semantic[i].slot, rank_signals{.cosine = semantic[i].score, .semantic_rank = i + 1}});

    float max_bm25 = 0.0f;
    if (use_keywords) {
      auto matches = keyword_.score_all(q, partitions, [&](slot_id slot) { return admits(options.filter, hide, today, slot); });
      std::sort(matches.begin(), matches.end(), better_hit);
      if (!matches.empty()) max_bm25 = matches.front().score;
      // (slot, rank) of every keyword match, to find the BM25 of semantic candidates
      std::vector<std::pair<slot_id, std::uint32_t>> rank_of(matches.size());
      for (std::size_t i = 0; i < matches.size(); ++i) rank_of[i] = {matches[i].slot, static_cast<std::uint32_t>(i)};
      std::sort(rank_of.begin(), rank_of.end());
      for (auto& c : cands) {
        auto it = std::lower_bound(rank_of.begin(), rank_of.end(), std::pair<slot_id, std::uint32_t>{c.slot, 0});
        if (it != rank_of.end() && it->first == c.slot) {
          c.signals.bm25 = matches[it->second].score;
          c.signals.keyword_rank = it->second + 1;
        }
      }
      // keyword matches the semantic pool missed are candidates too; their cosines are computed exactly
      slot_bitmap missing;
      std::size_t added = 0;
      const std::size_t first_new = cands.size();
      for (std::size_t i = 0; i < matches.size() && i < pool; ++i) {
        if (use_vectors && std::any_of(semantic.begin(), semantic.end(), [&](const index_hit& h) { return h.slot == matches[i].slot; }))
          continue;
        cands.push_back({matches[i].slot, rank_signals{.bm25 = matches[i].score, .keyword_rank = i + 1}});
        missing.set(matches[i].slot);
        ++added;
      }
      if (use_vectors && added) {
        for (const auto& h : index_.search(qv.front(), added, partitions, &missing))
          for (std::size_t i = first_new; i < cands.size(); ++i)
            if (cands[i].slot == h.slot) cands[i].signals.cosine = h.score;
      }
    }

    // records are fetched once: for every candidate when the extra terms need them, else for the hits only
    std::vector<std::optional<record>> recs(cands.size());
    std::vector<std::pair<score_details, std::size_t>> scored;
    scored.reserve(cands.size());
    for (std::size_t i = 0; i < cands.size(); ++i) {
      auto& sig = cands[i].signals;
      if (w.has_extra_terms()) {
        recs[i] = store_.get(catalog_.id_of(cands[i].slot));
        if (!recs[i]) continue;
        sig.recency = recency_score(recs[i]->updated_at, now, w.recency_half_life_days);
        sig.importance = importance_score(recs[i]->metadata, w.importance_key);
        sig.access = access_score(access_[cands[i].slot].load(std::memory_order_relaxed), w.access_saturation);
      }
      scored.emplace_back(fuse_scores(sig, options.mode, w, max_bm25), i);
    }
    std::sort(scored.begin(), scored.end(), [&](const auto& a, const auto& b) {
      // Ties by id, not slot: slots depend on load order, so results stay the same across reopen and import.
      if (a.first.final != b.first.final) return a.first.final > b.first.final;
      return catalog_.id_of(cands[a.second].slot) < catalog_.id_of(cands[b.second].slot);
    });

    const std::size_t keep = config_.rerank ? pool : options.limit;
    out.reserve(std::min(keep, scored.size()));
    for (const auto& [d, i] : scored) {
      if (out.size() == keep) break;
      if (options.threshold && d.final < *options.threshold) continue;
      auto r = recs[i] ? std::move(recs[i]) : store_.get(catalog_.id_of(cands[i].slot));
      if (!r) continue;
      out.push_back(search_hit{std::move(*r), d.final, options.explain ? std::optional<score_details>(d) : std::nullopt});
    }
    if (config_.rerank) {
      out = config_.rerank(query, std::move(out));
      if (out.size() > options.limit) out.resize(options.limit);
    }
    return out;
  }

 public:
  /// The memory with this id, or std::nullopt when there is none (never throws for an unknown id).
  [[nodiscard]] std::optional<record> get(std::string_view id) const {
    catch_up();  // change feed: apply other nodes' writes first
    if (lazy_) return store_.get(id);  // partition cache: the store is the truth, loaded or not
    std::shared_lock lock(mtx_);
    if (!catalog_.slot_of(id)) return std::nullopt;
    return store_.get(id);
  }

  /// The memories scope `s` selects that options.filter matches, oldest first (ties by id). An empty `s` with a
  /// filter that names its scopes lists the scopes the filter names.
  /// @throws validation_error for a missing scope.
  [[nodiscard]] std::vector<record> get_all(const scope& s, const get_all_options& options = {}) const {
    const scope* target = scope_or_filter(s, options.filter, "get_all");
    catch_up();  // change feed: apply other nodes' writes first
    const auto pin = pin_region(target ? *target : scope{});
    std::shared_lock lock(mtx_);
    return collect(select_partitions(target, options.filter), options.limit, options.filter, options.show_expired);
  }

  /// As above, the scope given by the filter's own scope predicates (see search(query, options)).
  /// @throws validation_error when options.filter does not name a scope.
  [[nodiscard]] std::vector<record> get_all(const get_all_options& options) const {
    require_filter_scope(options.filter, "get_all");
    catch_up();  // change feed: apply other nodes' writes first
    const auto pin = pin_region(scope{});  // partition cache: every scope
    std::shared_lock lock(mtx_);
    return collect(select_partitions(nullptr, options.filter), options.limit, options.filter, options.show_expired);
  }

  /// Every memory of every scope (that options.filter matches), oldest first: for export and administration.
  [[nodiscard]] std::vector<record> get_all(all_scopes_t, const get_all_options& options = {}) const {
    catch_up();  // change feed: apply other nodes' writes first
    const auto pin = pin_region(scope{});  // partition cache: every scope
    std::shared_lock lock(mtx_);
    return collect(select_partitions(nullptr, options.filter), options.limit, options.filter, options.show_expired);
  }

  /// The changes of one memory id, oldest first; empty for an id that never existed.
  [[nodiscard]] std::vector<history_event> history(std::string_view id) const { return store_.history(id); }

  /// Number of memories held.
  [[nodiscard]] std::size_t size() const {
    catch_up();  // change feed: apply other nodes' writes first
    if constexpr (requires { { store_.size() } -> std::convertible_to<std::size_t>; })
      if (lazy_) return store_.size();  // partition cache: counted by the store, not loaded
    const auto pin = pin_region(scope{});  // partition cache without a store count: every scope
    std::shared_lock lock(mtx_);
    return catalog_.size();
  }

  [[nodiscard]] const Embedder& embedder() const noexcept { return embedder_; }
  [[nodiscard]] const Store& store() const noexcept { return store_; }
  /// The extractor (e.g. to read an llm_extractor's call statistics).
  [[nodiscard]] const Extractor& extractor() const noexcept { return extractor_; }
  [[nodiscard]] const memory_config& config() const noexcept { return config_; }

 private:
  static bool is_blank(std::string_view s) noexcept { return s.find_first_not_of(" \t\r\n") == std::string_view::npos; }

  void validate_text(std::string_view text, const std::string& what) const {
    if (text.size() > config_.limits.max_text_bytes)
      throw validation_error(what + " is " + std::to_string(text.size()) + " bytes; at most " +
                             std::to_string(config_.limits.max_text_bytes) + " are allowed");
    if (!detail::is_valid_utf8(text)) throw validation_error(what + " is not valid UTF-8");
  }

  void validate_metadata(const nlohmann::json& m, std::string_view op) const {
    if (!m.is_object())
      throw validation_error(std::string(op) + ": metadata must be a JSON object, got " + m.type_name());
    for (const char* key : {"user_id", "agent_id", "run_id", "actor_id", "role"})
      if (m.contains(key))
        throw validation_error(std::string(op) + ": metadata must not contain '" + key +
                               "': identity comes from the scope and the messages, never from metadata");
    std::string dumped;
    try {
      dumped = m.dump();
    } catch (const nlohmann::json::exception& e) {
      throw validation_error(std::string(op) + ": metadata is not serialisable: " + e.what());
    }
    if (dumped.size() > config_.limits.max_metadata_bytes)
      throw validation_error(std::string(op) + ": metadata is " + std::to_string(dumped.size()) +
                             " bytes; at most " + std::to_string(config_.limits.max_metadata_bytes) + " are allowed");
  }

  static nlohmann::json merged_metadata(const nlohmann::json& base, const fact* from) {
    nlohmann::json m = base.is_object() ? base : nlohmann::json::object();
    if (from && from->metadata.is_object()) m.update(from->metadata);
    return m;
  }

  std::vector<std::vector<float>> embed_checked(std::span<const std::string> texts) const {
    if (texts.empty()) return {};
    auto v = detail::embed_all(embedder_, texts);
    if (v.size() != texts.size())
      throw error("embedder returned " + std::to_string(v.size()) + " vectors for " + std::to_string(texts.size()) +
                  " texts");
    for (const auto& x : v)
      if (x.size() != embedder_.dimension()) throw dimension_mismatch(embedder_.dimension(), x.size(), "embedder");
    return v;
  }

  std::vector<std::vector<existing_memory>> find_neighbours(const scope& s,
                                                            const std::vector<std::vector<float>>& vectors) const {
    std::vector<std::vector<existing_memory>> out(vectors.size());
    std::shared_lock lock(mtx_);
    const auto partitions = catalog_.select(s);
    if (partitions.empty()) return out;
    const auto today = utc_day(utc_now());
    const search_options unfiltered;
    for (std::size_t i = 0; i < vectors.size(); ++i) {
      // expired memories are hidden from the extractor too: a fact said again is stored again
      const auto hits = expiring_.empty() ? index_.search(vectors[i], config_.neighbours, partitions,
                                                       static_cast<const slot_bitmap*>(nullptr))
                                       : filtered_search(vectors[i], unfiltered, config_.neighbours, partitions, true, today);
      for (const auto& h : hits) {
        if (auto r = store_.get(catalog_.id_of(h.slot)))
          out[i].push_back(existing_memory{r->id, r->memory, r->hash, h.score});
      }
    }
    return out;
  }

  std::optional<std::string> find_duplicate(const std::vector<partition_id>& partitions, const std::string& hash,
                                            const std::string& text) const {
    const auto today = utc_day(utc_now());
    for (const auto p : partitions)
      for (const auto slot : catalog_.with_hash(p, hash)) {
        if (!expiring_.empty() && is_expired(expiry_[slot], today)) continue;  // an expired memory is no reason to forget
        const auto& id = catalog_.id_of(slot);
        if (auto r = store_.get(id); r && r->memory == text) return id;
      }
    return std::nullopt;
  }

  /// The record `id` if it exists and scope `s` selects it (an extractor cannot reach outside the scope).
  std::optional<record> target_in_scope(const std::string& id, const scope& s) const {
    if (id.empty() || !catalog_.slot_of(id)) return std::nullopt;
    auto r = store_.get(id);
    if (!r || !s.selects(r->scope())) return std::nullopt;
    return r;
  }

  std::optional<record> existing(std::string_view id, std::string_view op) const {
    if (lazy_) {  // partition cache: the memory's scope may not be loaded
      if (auto r = store_.get(id)) return r;
    } else if (catalog_.slot_of(id))
      if (auto r = store_.get(id)) return r;
    throw not_found(std::string(op) + ": no memory with id '" + std::string(id) + "'");
  }

  static history_event deletion_event(const record& r) {
    return history_event{make_uuid_v4(), r.id,     r.memory, std::nullopt, event_kind::del,
                         r.created_at,   utc_now(), true,     r.actor_id,   r.role};
  }

  std::vector<record> collect(const std::vector<partition_id>& partitions, std::size_t limit,
                              const filter_expr& filter, bool show_expired) const {
    std::vector<record> out;
    const bool hide = !show_expired && !expiring_.empty();
    const auto today = utc_day(utc_now());
    for (const auto p : partitions)
      catalog_.for_each_slot(p, [&](slot_id slot) {
        if (hide && is_expired(expiry_[slot], today)) return;
        if (!filter.empty() && !columns_.matches(filter, slot)) return;
        if (auto r = store_.get(catalog_.id_of(slot))) out.push_back(std::move(*r));
      });
    std::sort(out.begin(), out.end(), [](const record& a, const record& b) {
      return a.created_at != b.created_at ? a.created_at < b.created_at : a.id < b.id;
    });
    if (limit && out.size() > limit) out.resize(limit);
    return out;
  }

  void index_record(const record& r) { index_record(r, keyword_, r.embedding); }
  /// As above, the text going to `keywords` (keyword_index, or a keyword_index::bulk_loader when opening) and the
  /// vector being `vector` (the store's, when opening).
  template <class Keywords>
  void index_record(const record& r, Keywords& keywords, std::span<const float> vector) {
    const auto p = catalog_.partition_for(r.user_id, r.agent_id, r.run_id);
    const auto slot = catalog_.attach(r.id, p, r.hash);
    index_.add(slot, p, vector);
    columns_.assign(slot, r);
    keywords.add(slot, p, r.memory);
    while (access_.size() <= slot) access_.emplace_back(0u);
    access_[slot].store(0, std::memory_order_relaxed);
    set_expiry(slot, r);
    if (lazy_) account(slot, r);
  }
  void reindex_record(const record& r) {
    const auto slot = *catalog_.slot_of(r.id);
    catalog_.rehash(slot, r.hash);
    index_.update(slot, r.embedding);
    columns_.assign(slot, r);
    keyword_.update(slot, r.memory);
    set_expiry(slot, r);
    if (lazy_) account(slot, r);
  }
  void unindex(const std::string& id) {
    if (auto slot = catalog_.slot_of(id)) unindex_slot(*slot);
  }
  void unindex_slot(slot_id slot) {
    index_.remove(slot);
    catalog_.detach(slot);
    columns_.erase(slot);
    keyword_.remove(slot);
    expiring_.erase(slot);
    expiry_[slot] = never_expires;
    if (lazy_) account(slot, std::nullopt);
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
  /// True when `slot` holds a memory that `f` matches and that is not hidden as expired.
  bool admits(const filter_expr& f, bool hide_expired, std::int32_t today, slot_id slot) const {
    if (hide_expired && is_expired(expiry_[slot], today)) return false;
    return f.empty() ? columns_.contains(slot) : columns_.matches(f, slot);
  }

  // ---- filters ------------------------------------------------------------------------------------------

  /// `&s` when `s` names a scope; null when it is empty and `f` names the scopes (the filter selects them).
  static const scope* scope_or_filter(const scope& s, const filter_expr& f, std::string_view op) {
    if (s.empty() && !f.empty() && filter_names_scope(f)) return nullptr;
    validate_scope(s, op);
    return &s;
  }

  static void require_filter_scope(const filter_expr& f, std::string_view op) {
    if (!filter_names_scope(f))
      throw validation_error(std::string(op) +
                             ": a scope is required: pass one, or name user_id, agent_id or run_id in the filter "
                             "with eq or in (in every OR branch)");
  }

  /// The partitions scope `s` selects (every partition when null) that `f` may match.
  std::vector<partition_id> select_partitions(const scope* s, const filter_expr& f) const {
    std::vector<partition_id> out;
    if (s) {
      out = catalog_.select(*s);
    } else {
      out.resize(catalog_.partition_count());
      for (std::size_t p = 0; p < out.size(); ++p) out[p] = static_cast<partition_id>(p);
    }
    if (!f.empty())
      std::erase_if(out, [&](partition_id p) { return filter_scope_may_match(f, catalog_.scope_of(p)) == filter_tri::no; });
    return out;
  }

  /// Top-k among the slots of `partitions` that the filter matches. Pre-filter compiles the filter to a bitmap
  /// (over the scope's slots, or over every slot when the scope holds at least a quarter of them); post-filter
  /// searches with a growing k and keeps matching hits until `limit` are found or the partitions are exhausted.
  /// Both return exactly the best `limit` matching slots (ties by slot).
  std::vector<index_hit> filtered_search(const std::vector<float>& q, const search_options& options, std::size_t limit,
                                         const std::vector<partition_id>& partitions, bool hide_expired,
                                         std::int32_t today) const {
    std::size_t total = 0;
    for (const auto p : partitions) total += catalog_.partition_size(p);
    if (total == 0) return {};
    const bool dense = total * 4 >= catalog_.slot_capacity();
    std::vector<slot_id> slots;
    if (!dense) {
      for (const auto p : partitions) catalog_.for_each_slot(p, [&](slot_id slot) { slots.push_back(slot); });
      std::sort(slots.begin(), slots.end());
    }
    auto strategy = options.strategy;
    double selectivity = 0.5;
    if (strategy == filter_strategy::automatic) {
      constexpr std::size_t small = 1024, samples = 256;
      if (total <= small) {
        strategy = filter_strategy::pre_filter;
      } else {
        std::size_t seen = 0, hits = 0;
        const std::size_t range = dense ? catalog_.slot_capacity() : slots.size();
        for (std::size_t i = 0; i < samples; ++i) {
          const auto at = i * range / samples;
          const slot_id slot = dense ? static_cast<slot_id>(at) : slots[at];
          if (dense && (!columns_.contains(slot) ||
                        !std::binary_search(partitions.begin(), partitions.end(), catalog_.partition_of(slot))))
            continue;
          ++seen;
          hits += admits(options.filter, hide_expired, today, slot) ? 1 : 0;
        }
        selectivity = (double(hits) + 1.0) / (double(seen) + 2.0);
        // Pre-filtering pays for evaluating every candidate and for an unpredictable skip per row; it wins
        // clearly below ~10% and loses to one unfiltered scan from about a third (bench/filter_bench.cpp).
        strategy = selectivity < 0.3 ? filter_strategy::pre_filter : filter_strategy::post_filter;
      }
    }
    if (strategy == filter_strategy::pre_filter) {
      auto candidates = dense ? columns_.select(options.filter) : columns_.select(options.filter, slots);
      if (hide_expired)
        for (const auto slot : expiring_)
          if (is_expired(expiry_[slot], today)) candidates.reset(slot);
      if (candidates.empty()) return {};
      return index_.search(q, limit, partitions, &candidates);
    }
    std::size_t k = std::min(total, std::max(limit * 2, std::size_t(double(limit) / selectivity * 1.5) + 1));
    while (true) {
      const auto hits = index_.search(q, k, partitions, static_cast<const slot_bitmap*>(nullptr));
      std::vector<index_hit> out;
      for (const auto& h : hits) {
        if (!admits(options.filter, hide_expired, today, h.slot)) continue;
        out.push_back(h);
        if (out.size() == limit) return out;
      }
      if (hits.size() < k || k >= total) return out;
      k = std::min(total, k * 4);
    }
  }

  /// Stores with a two-phase commit (file_store's append + sync) let writers share fsyncs: the batch is
  /// appended and applied under the write lock, and its durability awaited after the lock is released.
  static constexpr bool two_phase_store = requires(Store& st, const write_batch& b, std::uint64_t t) {
    { st.append(b) } -> std::convertible_to<std::uint64_t>;
    st.sync(t);
  };

  /// Commits `b` in the store while the write lock is held; @returns the ticket make_durable() waits for.
  std::uint64_t stage(const write_batch& b) {
    if constexpr (two_phase_store) {
      return store_.append(b);
    } else if constexpr (change_feed_store<Store>) {
      feed_duplicates_ = store_.apply(b);  // change feed: see drop_feed_duplicates
      return 0;
    } else {
      store_.apply(b);
      return 0;
    }
  }

  /// Releases the write lock, then returns once the batch staged with `ticket` is durable. Readers may see a
  /// change a moment before it is durable; a call never returns before its own change is.
  void make_durable(std::unique_lock<std::shared_mutex>& lock, std::uint64_t ticket) {
    if constexpr (two_phase_store) {
      lock.unlock();
      store_.sync(ticket);
    } else {
      (void)lock;
      (void)ticket;
    }
  }

  void open() {
    if (index_.dimension() != embedder_.dimension())
      throw dimension_mismatch(embedder_.dimension(), index_.dimension(), "basic_memory: index vs embedder");
    if constexpr (requires { store_.bind(store_identity{}); })
      store_.bind(store_identity{detail::embedder_name(embedder_), embedder_.dimension()});
    keyword_ = keyword_index(config_.bm25);
    // change feed: the position before reading, so that nothing written meanwhile is missed
    if constexpr (change_feed_store<Store>) feed_position_ = store_.change_position();
    if (config_.partition_cache_bytes > 0) {
      if constexpr (!scope_loading_store<Store>)
        throw validation_error("basic_memory: partition_cache_bytes = " + std::to_string(config_.partition_cache_bytes) +
                               " needs a store that can load one scope (engram::scope_loading_store: "
                               "for_each_in_scope, scope_selection_version); use 0 with this store");
      lazy_ = true;  // partition cache: nothing is indexed until a scope is used
      resume_pending();
      return;
    }
    hold_index_training(true);  // index snapshot hook, step 1 (see restore_index_snapshot)
    rebuild_index();
    load_access_counts(scope{});
    restore_index_snapshot();   // index snapshot hook, step 2
    hold_index_training(false);
    resume_pending();
  }

  // ---- change feed (stores shared by several nodes, e.g. postgres_store) ---------------------------------

  /// Brings the index and catalog up to date with the records other nodes changed since the last poll, under
  /// the write lock: each changed id is re-read from the store (indexed, re-indexed or dropped), "*" reloads
  /// everything. A no-op for stores without a feed, and two atomic loads when nothing is pending. Reads call
  /// it too, so it casts away const: a basic_memory over a change-feed store must not be a const object.
  void catch_up() const {
    if constexpr (change_feed_store<Store>) {
      if (!store_.changes_pending()) return;
      auto& self = const_cast<basic_memory&>(*this);
      std::unique_lock lock(self.mtx_);
      if (!store_.changes_pending()) return;  // another thread caught up meanwhile
      std::vector<std::string> ids;
      bool everything = false;
      // The new position is kept only once every change it covers is applied: if the store fails part way
      // (a dropped connection in store_.get), the next poll reports the same changes again.
      std::uint64_t next = 0;
      try {
        next = store_.poll_changes(feed_position_, [&](const std::string& id) {
          if (id == "*") everything = true;
          else ids.push_back(id);
        });
        self.apply_feed(ids, everything);
      } catch (...) {
        self.feed_interrupted_ = lazy_;  // partition cache: cut off from the store; re-validate once it answers
        throw;
      }
      self.feed_position_ = next;
    }
  }

  /// catch_up's second half, under the write lock: applies the ids (or "*") one poll reported.
  void apply_feed(std::vector<std::string>& ids, bool everything) {
    if constexpr (change_feed_store<Store>) {
      // partition cache: after a feed gap or an outage, reload only the loaded scopes whose version moved
      if (lazy_ && (everything || feed_interrupted_)) {
        revalidate_locked();
        feed_interrupted_ = false;
        if (everything) return;
      }
      if (everything) {
        index_.clear();
        catalog_.clear();
        columns_.clear();
        keyword_.clear();
        expiry_.clear();
        expiring_.clear();
        access_.clear();
        rebuild_index();
        load_access_counts(scope{});
        return;
      }
      std::sort(ids.begin(), ids.end());
      ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
      for (const auto& id : ids) {
        auto r = store_.get(id);
        if (!r) {
          unindex(id);
        } else if (r->embedding.size() != embedder_.dimension()) {
          continue;  // not indexable here (imported without a vector): left to the node that embeds it
        } else if (catalog_.slot_of(id)) {
          reindex_record(*r);
        } else if (!lazy_ || covered(r->scope())) {  // partition cache: scopes not loaded are read on first use
          index_record(*r);
        }
      }
    }
  }

  /// After add() staged its batch: the new records the store dropped as duplicates of records another node
  /// added meanwhile are not indexed, and the add reports the stored record (event none) instead.
  void drop_feed_duplicates(std::vector<std::pair<record, bool>>& changed, add_result& result) {
    for (const auto& d : feed_duplicates_) {
      std::erase_if(changed, [&](const auto& c) { return c.first.id == d.dropped_id; });
      for (auto& e : result.results)
        if (e.id == d.dropped_id) {
          e.id = d.existing_id;
          e.event = event_kind::none;
        }
    }
    feed_duplicates_.clear();
  }

  /// Calls f(const record&, std::span<const float> vector) for every stored record: through the store's
  /// for_each_vector when it has one (no copy; file_store reads snapshot vectors in place), else for_each.
  template <class F>
  void for_each_stored(F&& f) const {
    if constexpr (requires { store_.for_each_vector([](const record&, std::span<const float>) {}); })
      store_.for_each_vector(f);
    else
      store_.for_each([&](const record& r) { f(r, std::span<const float>(r.embedding)); });
  }

  /// Indexes every record of the store (opening). The keyword index is built on a second thread meanwhile
  /// when the store is large; partitions, catalog and expiry arrays are sized once from a counting pass.
  void rebuild_index() {
    std::size_t expected = 0;
    if constexpr (requires { { store_.size() } -> std::convertible_to<std::size_t>; }) expected = store_.size();
    catalog_.reserve(expected);
    expiry_.reserve(expected);
    // Size the partitions first, so a large store is indexed without repeated grow-and-copy.
    if constexpr (requires(Index& i, partition_id p, std::size_t n) { i.reserve(p, n); }) {
      std::vector<std::size_t> counts;  // by partition
      for_each_stored([&](const record& r, std::span<const float>) {
        const auto p = catalog_.partition_for(r.user_id, r.agent_id, r.run_id);
        if (p >= counts.size()) counts.resize(std::size_t{p} + 1, 0);
        ++counts[p];
      });
      for (std::size_t p = 0; p < counts.size(); ++p) index_.reserve(static_cast<partition_id>(p), counts[p]);
    }
    constexpr std::size_t background_keywords_from = 20000;  // below, a thread costs more than it saves
    std::vector<record> missing;  // records stored without a vector (imported text): embedded now
    {
      keyword_index::bulk_loader keywords(keyword_,
                                          expected >= background_keywords_from && std::thread::hardware_concurrency() > 1);
      for_each_stored([&](const record& r, std::span<const float> vector) {
        if (vector.empty()) {
          missing.push_back(r);
          return;
        }
        if (vector.size() != embedder_.dimension())
          throw dimension_mismatch(embedder_.dimension(), vector.size(), "store record '" + r.id + "'");
        index_record(r, keywords, vector);
      });
      keywords.finish();
    }
    embed_missing(missing);
  }

  /// Embeds records stored without a vector (imported text), stores the vectors in one batch and indexes them.
  void embed_missing(std::vector<record>& missing) {
    if (missing.empty()) return;
    std::vector<std::string> texts;
    for (const auto& r : missing) texts.push_back(r.memory);
    auto vectors = embed_checked(texts);
    write_batch batch;
    for (std::size_t i = 0; i < missing.size(); ++i) {
      missing[i].embedding = std::move(vectors[i]);
      batch.upserts.push_back(missing[i]);
    }
    store_.apply(batch);
    for (const auto& r : missing) index_record(r);
  }

  // ---- index snapshot hook ------------------------------------------------------------------------------
  // When the Index can save and restore its trained state keyed by memory id (ivf_index::save_snapshots /
  // load_snapshots / hold_training) and the Store can keep a named blob (file_store::put_blob / get_blob),
  // the index's state is saved in blob `index_blob` when the memory is destroyed (or on
  // save_index_snapshot()) and restored by open(): records are indexed with training held, then the saved
  // state of every partition that holds exactly the vectors it was saved with is installed (no k-means), and
  // only the other partitions train. A snapshot that does not match is rejected (counted by the index) and
  // rebuilt, never trusted. Other Index or Store types: these are no-ops.

  static constexpr std::string_view index_blob = "index";
  static constexpr bool index_snapshots =
      requires(Index& i, const Index& ci, std::string_view b, const std::function<std::string(slot_id)>& key,
               const std::function<std::optional<slot_id>(std::string_view)>& slot) {
        i.hold_training(true);
        { ci.save_snapshots(key) } -> std::convertible_to<std::string>;
        i.load_snapshots(b, slot);
        { ci.version() } -> std::convertible_to<std::uint64_t>;
      } && requires(Store& st, const Store& cst, std::string_view n, std::string_view b) {
        st.put_blob(n, b);
        { cst.get_blob(n) } -> std::convertible_to<std::optional<std::string>>;
      };

  void hold_index_training(bool hold) {
    if constexpr (index_snapshots) index_.hold_training(hold);
  }

  void restore_index_snapshot() {
    if constexpr (index_snapshots) {
      std::optional<std::string> blob;
      try {
        blob = store_.get_blob(index_blob);
      } catch (const storage_error&) {  // an unreadable snapshot is no snapshot: the index trains
      }
      if (blob) index_.load_snapshots(*blob, [this](std::string_view id) { return catalog_.slot_of(id); });
      saved_index_version_ = index_.version();
    }
  }

 public:
  /// Saves the index's trained state beside the records when both support it (see the index snapshot hook)
  /// and it changed since it was last saved or restored; a no-op otherwise. Also done by the destructor.
  /// @returns whether a snapshot was written. @throws storage_error (a read-only store, an I/O error).
  bool save_index_snapshot() {
    if constexpr (index_snapshots) {
      if (lazy_) return false;  // partition cache: the index holds only the loaded scopes
      std::string bytes;
      std::uint64_t version = 0;
      {
        std::shared_lock lock(mtx_);
        version = index_.version();
        if (version == saved_index_version_) return false;
        bytes = index_.save_snapshots([this](slot_id s) { return catalog_.id_of(s); });
      }
      store_.put_blob(index_blob, bytes);
      std::unique_lock lock(mtx_);
      saved_index_version_ = version;
      return true;
    } else {
      return false;
    }
  }

  /// Saves the index snapshot (save_index_snapshot()); an error is swallowed: the snapshot is only a cache.
  ~basic_memory() {
    async_.queue.stop();  // background adds first, so the saved snapshot is the index's final state
    async_.workers.join();
    try {
      (void)save_index_snapshot();
    } catch (...) {
    }
    try {
      flush_access_counts();
    } catch (...) {  // counts are advisory: an unwritable store keeps its last ones
    }
  }

  /// Adds the search hits counted since the last write to the store's access counts (see
  /// memory_config::access_flush_interval); a no-op when the store keeps none (or is read-only), or nothing was
  /// counted. Thread-safe. @throws storage_error when the store fails (the hits stay counted, for the next try).
  void flush_access_counts() {
    if constexpr (access_count_store<Store>) {
      std::lock_guard fl(access_flush_mtx_);
      flush_access_locked();
    }
  }

  /// The index (to read its statistics, or wait for its background work).
  [[nodiscard]] const Index& index() const noexcept { return index_; }

 private:
  std::uint64_t saved_index_version_ = ~std::uint64_t{0};  // index version last saved or restored
  // ---- end of the index snapshot hook -------------------------------------------------------------------

  // ---- partition cache (memory_config::partition_cache_bytes > 0, a scope_loading_store) ------------------
  // The unit loaded is a query scope as operations name it (user("alice"), a user and agent, or "every scope"
  // for the calls without one): a loaded scope holds every record it selects, so its partitions are complete
  // and a search over them is the search the eager mode does. Loaded scopes may overlap (a record is indexed
  // once); a partition is dropped when no loaded scope selects it any more.
  // Locking: a scope is loaded under the write lock (readers wait; the store is read meanwhile), then pinned
  // (an atomic count) until the operation that needed it returns: eviction, done under the write lock, skips
  // pinned scopes, so a search never sees a scope half gone. A pinned scope may still be reloaded by
  // re-validation (under the write lock), which leaves it complete. LRU order is an atomic tick stamped on every
  // use (under the read lock). When the estimated bytes exceed the budget, the unpinned scopes used least
  // recently are evicted: after a load, and when an operation unpins with the cache over budget (so a scope
  // larger than the whole budget is loaded, used, and evicted after).
  // Freshness: the change feed (change_feed_store) re-reads changed records of loaded scopes only. A feed gap
  // ("*": entries pruned before this node polled, or clear()) and the first successful poll after a failed one
  // (the node was cut off from the store: its connection dropped for longer than the store's own retries)
  // re-validate: every loaded scope whose scope_selection_version moved since it was loaded is reloaded, the
  // others are kept. (A LISTEN connection that reconnects loses nothing: the feed is a table, read from the
  // last position polled.)

 public:
  /// Loads, evictions and estimated bytes of the partition cache (all zero when it is off). Thread-safe.
  [[nodiscard]] partition_cache_stats cache_stats() const {
    std::shared_lock lock(mtx_);
    return partition_cache_stats{cache_loads_.load(std::memory_order_relaxed),
                                 cache_evictions_.load(std::memory_order_relaxed),
                                 cache_bytes_.load(std::memory_order_relaxed), regions_.size()};
  }

  /// Partition cache: compares the version of every loaded scope with the store's and reloads those that
  /// moved (what a gap in the change feed does; call it after writes made behind the feed's back). Takes the
  /// write lock; one scope_selection_version query per loaded scope. @returns how many scopes were reloaded
  /// (0 when the cache is off). @throws storage_error from the store (the scope that failed is reloaded on
  /// next use).
  std::size_t revalidate_partitions() {
    if (!lazy_) return 0;
    std::unique_lock lock(mtx_);
    return revalidate_locked();
  }

 private:
  struct cached_region {
    std::uint64_t version = 0;  // the store's scope_selection_version read before loading
    bool complete = false;      // false while loading, or after a load failed: reloaded on next use
    std::atomic<std::uint64_t> last_use{0};
    std::atomic<std::uint32_t> pins{0};
  };
  /// Bytes counted per loaded scope besides its records (its map entry), so empty scopes are evicted too.
  static constexpr std::size_t region_overhead = 256;

  /// Keeps a loaded scope from eviction while an operation uses it; trims the cache when released.
  class region_pin {
   public:
    region_pin() = default;
    region_pin(basic_memory* m, cached_region* r) noexcept : m_(m), r_(r) {}
    region_pin(region_pin&& o) noexcept : m_(std::exchange(o.m_, nullptr)), r_(std::exchange(o.r_, nullptr)) {}
    region_pin(const region_pin&) = delete;
    region_pin& operator=(const region_pin&) = delete;
    region_pin& operator=(region_pin&&) = delete;
    ~region_pin() {
      if (!r_) return;
      r_->pins.fetch_sub(1, std::memory_order_acq_rel);
      m_->trim_cache();
    }

   private:
    basic_memory* m_ = nullptr;
    cached_region* r_ = nullptr;
  };

  /// Makes sure query scope `q` (every scope when empty) is loaded, and pins it. A no-op with the cache off.
  /// Call it before taking mtx_, and keep the pin until mtx_ is released.
  region_pin pin_region(const scope& q) const {
    if constexpr (scope_loading_store<Store>) {
      if (!lazy_) return {};
      auto& self = const_cast<basic_memory&>(*this);
      {
        std::shared_lock lock(mtx_);
        if (auto* r = find_covering(q)) return self.pin(*r);
      }
      std::unique_lock lock(self.mtx_);
      if (auto* r = find_covering(q)) return self.pin(*r);  // loaded by another thread meanwhile
      auto& r = self.load_region(q);
      auto p = self.pin(r);
      self.evict_over_budget();
      return p;
    } else {
      (void)q;
      return {};
    }
  }

  region_pin pin(cached_region& r) const {
    r.pins.fetch_add(1, std::memory_order_acq_rel);
    r.last_use.store(cache_tick_.fetch_add(1, std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return region_pin(const_cast<basic_memory*>(this), &r);
  }

  /// The query scopes that select every record `q` selects: `q` with some of its ids blanked (the empty
  /// scope, "every scope", last). Calls f(scope) for each until it returns true.
  template <class F>
  static bool for_each_wider(const scope& q, F&& f) {
    for (int mask = 7; mask >= 0; --mask) {
      if (((mask & 1) && q.user_id.empty()) || ((mask & 2) && q.agent_id.empty()) || ((mask & 4) && q.run_id.empty()))
        continue;  // the same scope as a mask without that bit
      if (f(scope{(mask & 1) ? q.user_id : std::string(), (mask & 2) ? q.agent_id : std::string(),
                  (mask & 4) ? q.run_id : std::string()}))
        return true;
    }
    return false;
  }

  /// A complete loaded scope selecting everything `q` selects, or null. Under mtx_ (shared or exclusive).
  cached_region* find_covering(const scope& q) const {
    if (regions_.empty()) return nullptr;
    cached_region* found = nullptr;
    for_each_wider(q, [&](const scope& w) {
      auto it = regions_.find(w);
      if (it == regions_.end() || !it->second->complete) return false;
      found = it->second.get();
      return true;
    });
    return found;
  }

  /// True when a loaded scope selects records of exact scope `e` (they are indexed). Under mtx_.
  bool covered(const scope& e) const {
    if (regions_.empty()) return false;
    return for_each_wider(e, [&](const scope& w) { return regions_.count(w) != 0; });
  }

  /// Loads query scope `q` (not loaded, or incomplete) under the write lock. @returns its entry.
  cached_region& load_region(const scope& q) {
    auto [it, fresh] = regions_.try_emplace(q, nullptr);
    if (fresh) {
      it->second = std::make_unique<cached_region>();
      cache_bytes_.fetch_add(region_overhead, std::memory_order_relaxed);
    }
    fill_region(it->first, *it->second, !fresh);
    return *it->second;
  }

  /// (Re)loads the records `q` selects into the index. With `drop_first`, the partitions `q` selects are
  /// emptied first (a reload: they may be stale). Records already indexed (a partition another loaded scope
  /// keeps current) are kept. On failure the partitions `q` selects are dropped and every loaded scope
  /// overlapping `q` is marked incomplete (reloaded on next use); the error propagates.
  void fill_region(const scope& q, cached_region& r, bool drop_first) {
    r.complete = false;
    try {
      r.version = store_.scope_selection_version(q);  // before reading: a write meanwhile moves it again
      if (drop_first) drop_partitions(q, false);
      std::vector<record> missing;  // stored without a vector (imported text): embedded below
      store_.for_each_in_scope(q, [&](const record& rec) {
        if (catalog_.slot_of(rec.id)) return;
        if (rec.embedding.empty()) {
          missing.push_back(rec);
          return;
        }
        if (rec.embedding.size() != embedder_.dimension())
          throw dimension_mismatch(embedder_.dimension(), rec.embedding.size(), "store record '" + rec.id + "'");
        index_record(rec);
      });
      embed_missing(missing);
      load_access_counts(q);
    } catch (...) {
      drop_partitions(q, false);
      for (auto& [w, other] : regions_)
        if (overlap(w, q)) other->complete = false;
      throw;
    }
    r.complete = true;
    cache_loads_.fetch_add(1, std::memory_order_relaxed);
  }

  /// True when some exact scope could be selected by both query scopes (an empty one selects every scope).
  static bool overlap(const scope& a, const scope& b) {
    auto agree = [](const std::string& x, const std::string& y) { return x.empty() || y.empty() || x == y; };
    return agree(a.user_id, b.user_id) && agree(a.agent_id, b.agent_id) && agree(a.run_id, b.run_id);
  }

  /// Unindexes the partitions query scope `q` selects (every partition when empty); with `keep_covered`,
  /// only those no loaded scope selects any more.
  void drop_partitions(const scope& q, bool keep_covered) {
    std::vector<partition_id> parts;
    if (q.empty()) {
      for (std::size_t p = 0; p < catalog_.partition_count(); ++p) parts.push_back(static_cast<partition_id>(p));
    } else {
      parts = catalog_.select(q);
    }
    std::vector<slot_id> slots;
    for (const auto p : parts) {
      if (catalog_.partition_size(p) == 0 || (keep_covered && covered(catalog_.scope_of(p)))) continue;
      slots.clear();
      catalog_.for_each_slot(p, [&](slot_id s) { slots.push_back(s); });
      for (const auto s : slots) unindex_slot(s);
    }
  }

  /// Evicts the unpinned loaded scopes used least recently while the cache is over budget. Under the write lock.
  void evict_over_budget() {
    while (cache_bytes_.load(std::memory_order_relaxed) > config_.partition_cache_bytes) {
      auto victim = regions_.end();
      for (auto it = regions_.begin(); it != regions_.end(); ++it)
        if (it->second->pins.load(std::memory_order_acquire) == 0 &&
            (victim == regions_.end() || it->second->last_use.load(std::memory_order_relaxed) <
                                             victim->second->last_use.load(std::memory_order_relaxed)))
          victim = it;
      if (victim == regions_.end()) return;  // everything loaded is in use
      const scope q = victim->first;
      regions_.erase(victim);
      cache_bytes_.fetch_sub(region_overhead, std::memory_order_relaxed);
      drop_partitions(q, true);
      cache_evictions_.fetch_add(1, std::memory_order_relaxed);
    }
  }

  /// Called when an operation unpins: evicts if the cache is over budget. Never throws.
  void trim_cache() noexcept {
    if (cache_bytes_.load(std::memory_order_relaxed) <= config_.partition_cache_bytes) return;
    try {
      std::unique_lock lock(mtx_);
      evict_over_budget();
    } catch (...) {  // eviction is an optimisation: it is tried again on the next unpin or load
    }
  }

  /// Reloads every loaded scope whose version moved (or that is incomplete). Under the write lock.
  std::size_t revalidate_locked() {
    std::size_t reloaded = 0;
    if constexpr (scope_loading_store<Store>) try {
      for (auto& [q, r] : regions_) {
        if (r->complete && store_.scope_selection_version(q) == r->version) continue;
        fill_region(q, *r, true);
        ++reloaded;
      }
    } catch (...) {  // the scopes not checked yet may be stale: each is reloaded on next use
      for (auto& [q, r] : regions_) r->complete = false;
      throw;
    }
    return reloaded;
  }

  /// After a write of `r` with the cache on: re-indexes it when indexed, indexes it when a loaded scope
  /// selects it, else leaves it to be loaded with its scope.
  void refresh_cached(const record& r) {
    if (catalog_.slot_of(r.id))
      reindex_record(r);
    else if (covered(r.scope()))
      index_record(r);
  }

  /// Keeps cache_bytes_ the estimated size of what the index holds: `r` now in `slot`, or nothing.
  void account(slot_id slot, const std::optional<std::reference_wrapper<const record>>& r) {
    if (slot_bytes_.size() <= slot) slot_bytes_.resize(std::size_t{slot} + 1, 0);
    const std::size_t now = r ? record_bytes(r->get()) : 0;
    cache_bytes_.fetch_add(now, std::memory_order_relaxed);
    cache_bytes_.fetch_sub(slot_bytes_[slot], std::memory_order_relaxed);
    slot_bytes_[slot] = static_cast<std::uint32_t>(now);
  }

  /// Estimated bytes one indexed record costs: its vector, its text and about as much again in keyword
  /// postings, its id in the catalog, and a fixed part (catalog entry, filter columns, expiry, counters).
  static std::size_t record_bytes(const record& r) {
    return r.embedding.size() * sizeof(float) + 2 * r.memory.size() + r.id.size() + 96;
  }

  bool lazy_ = false;  // partition cache on (set by open())
  std::map<scope, std::unique_ptr<cached_region>> regions_;  // the loaded query scopes
  std::vector<std::uint32_t> slot_bytes_;                     // record_bytes of each indexed slot
  std::atomic<std::size_t> cache_bytes_{0};
  mutable std::atomic<std::uint64_t> cache_tick_{0};
  std::atomic<std::uint64_t> cache_loads_{0};
  std::atomic<std::uint64_t> cache_evictions_{0};
  // ---- end of the partition cache -----------------------------------------------------------------------

  // ---- two-phase add: validation, the pending queue and the workers --------------------------------------

  void validate_add(std::span<const message> messages, const scope& s, const add_options& options,
                    std::string_view op) const {
    validate_scope(s, op);
    validate_metadata(options.metadata, op);
    if (options.expiration_date) (void)parse_expiration_day(*options.expiration_date);
    if (messages.size() > config_.limits.max_messages)
      throw validation_error(std::string(op) + ": " + std::to_string(messages.size()) + " messages; at most " +
                             std::to_string(config_.limits.max_messages) + " per call");
    for (std::size_t i = 0; i < messages.size(); ++i)
      validate_text(messages[i].content, std::string(op) + ": messages[" + std::to_string(i) + "].content");
  }

  /// Dequeues pending adds that produced no memory (nothing worth remembering), as one write batch.
  void commit_dequeue(std::span<const std::string> ids) {
    write_batch batch;
    batch.dequeued.assign(ids.begin(), ids.end());
    std::unique_lock lock(mtx_);
    const auto ticket = stage(batch);
    make_durable(lock, ticket);
  }

  static nlohmann::json pending_options(const add_options& o) {
    nlohmann::json j{{"metadata", o.metadata}, {"infer", o.infer}};
    if (o.expiration_date) j["expiration_date"] = *o.expiration_date;
    return j;
  }

  static add_options options_of(const pending_add& p) {
    add_options o;
    const auto& j = p.options;
    if (!j.is_object()) return o;
    if (auto it = j.find("metadata"); it != j.end() && it->is_object()) o.metadata = *it;
    if (auto it = j.find("infer"); it != j.end() && it->is_boolean()) o.infer = it->template get<bool>();
    if (auto it = j.find("expiration_date"); it != j.end() && it->is_string())
      o.expiration_date = it->template get<std::string>();
    return o;
  }

  static std::string last_error_of(const pending_add& p) {
    if (p.options.is_object())
      if (auto it = p.options.find("last_error"); it != p.options.end() && it->is_string())
        return it->template get<std::string>();
    return "failed " + std::to_string(p.attempts) + " time(s) (no error recorded)";
  }

  void start_async() {
    const auto& ao = config_.async;
    if (ao.workers == 0 || ao.max_attempts == 0)
      throw validation_error("async_options: workers (" + std::to_string(ao.workers) + ") and max_attempts (" +
                             std::to_string(ao.max_attempts) + ") must be at least 1");
    async_.workers.start(ao.workers, [this] {
      for (;;) {
        auto batch = async_.queue.take(config_.async.max_batch, config_.limits.max_messages);
        if (batch.empty()) return;
        run_pending(batch);
      }
    });
  }

  /// Queues the store's pending adds (called by open); those out of attempts are listed as failed.
  void resume_pending() {
    if constexpr (pending_store<Store>) {
      async_.queue.set_capacity(config_.async.queue_capacity);
      if constexpr (requires { { store_.read_only() } -> std::convertible_to<bool>; })
        if (store_.read_only()) return;  // a reader leaves the queue to the writer
      std::size_t resumed = 0;
      std::vector<pending_add> entries;
      store_.for_each_pending([&](const pending_add& p) { entries.push_back(p); });
      for (auto& p : entries) {
        if (p.attempts >= config_.async.max_attempts) {
          async_.queue.add_failed(failed_add{p.id, p.owner, p.attempts, last_error_of(p)});
        } else {
          async_.queue.push(std::move(p));
          ++resumed;
        }
      }
      if (resumed) start_async();
    }
  }

  /// Processes one batch taken from the queue (entries of one scope, equal options) as one add.
  void run_pending(std::vector<pending_add>& batch) {
    std::vector<message> messages;
    std::vector<std::string> ids;
    for (const auto& p : batch) {
      messages.insert(messages.end(), p.messages.begin(), p.messages.end());
      ids.push_back(p.id);
    }
    std::string err;
    bool permanent = false;  // invalid input stays invalid: no retry
    try {
      (void)add_in(messages, batch.front().owner, options_of(batch.front()), ids);
      async_.queue.finished(batch);
      return;
    } catch (const validation_error& e) {
      err = e.what();
      permanent = true;
    } catch (const std::exception& e) {
      err = e.what();
    } catch (...) {
      err = "unknown exception";
    }
    std::uint32_t attempts = 0;
    for (auto& p : batch) {
      ++p.attempts;
      p.options["last_error"] = err;
      attempts = std::max(attempts, p.attempts);
    }
    try {
      write_batch b;
      b.enqueued = batch;  // the new attempt counts replace the stored entries
      store_.apply(b);
    } catch (const std::exception& e) {
      err += std::string("; recording the attempt failed too: ") + e.what();
    }
    if (permanent || attempts >= config_.async.max_attempts) {
      std::vector<failed_add> failures;
      for (const auto& p : batch) failures.push_back(failed_add{p.id, p.owner, p.attempts, err});
      async_.queue.fail(batch, std::move(failures));
      return;
    }
    const auto& ao = config_.async;
    const double wait = std::min(static_cast<double>(ao.max_backoff.count()),
                                 static_cast<double>(ao.initial_backoff.count()) *
                                     static_cast<double>(std::uint64_t{1} << std::min<std::uint32_t>(attempts - 1, 30)));
    async_.queue.retry(std::move(batch), detail::add_scheduler::clock::now() +
                                             std::chrono::milliseconds(static_cast<std::int64_t>(wait)));
  }

  /// The background side of add_async. Destroyed first (it is the last member): stops the workers, letting a
  /// batch being processed finish; entries still waiting stay in the store for the next open.
  struct async_state {
    detail::add_scheduler queue;
    detail::worker_pool workers;
    async_state() = default;
    async_state(const async_state&) = delete;
    async_state& operator=(const async_state&) = delete;
    ~async_state() {
      queue.stop();
      workers.join();
    }
  };

  Embedder embedder_;
  Index index_;
  Store store_;
  Extractor extractor_;
  memory_config config_;
  mutable std::shared_mutex mtx_;
  detail::scope_catalog catalog_;
  filter_columns columns_;  // the filterable fields of every indexed record, by slot
  keyword_index keyword_;   // BM25 over the text of every indexed record, by slot and partition
  std::vector<std::int32_t> expiry_;  // expiration day by slot (never_expires when none)
  std::set<slot_id> expiring_;        // slots with an expiration day: empty keeps searches free of the check
  mutable std::deque<std::atomic<std::uint32_t>> access_;  // times each slot was returned by search

  // ---- access counts kept by the store (access_count_store) ----------------------------------------------
  // access_ holds each indexed memory's count (the store's when it was indexed, plus this process's hits);
  // the hits not yet written are gathered by id in access_pending_ (so an evicted or deleted memory needs no
  // slot) and handed to Store::add_access by the first search after memory_config::access_flush_interval,
  // by flush_access_counts() and by the destructor.
  mutable std::mutex access_mtx_;        // guards access_pending_, access_written_at_
  mutable std::mutex access_flush_mtx_;  // one writer of counts at a time
  mutable std::unordered_map<std::string, access_increment> access_pending_;
  mutable std::chrono::steady_clock::time_point access_written_at_ = std::chrono::steady_clock::now();
  static constexpr std::size_t access_pending_limit = 100000;  // ids gathered at most while the store fails

  bool keeps_access_counts() const noexcept {
    if constexpr (!access_count_store<Store>) {
      return false;
    } else if constexpr (requires { { store_.read_only() } -> std::convertible_to<bool>; }) {
      return !store_.read_only();
    } else {
      return true;
    }
  }

  /// Sets the counts of the indexed memories `q` selects (every one when empty) from the store, plus the hits
  /// gathered and not written yet. Under the write lock (or while opening).
  void load_access_counts(const scope& q) {
    if constexpr (access_count_store<Store>) {
      store_.for_each_access_count(q, [&](const std::string& id, std::uint32_t n) {
        if (auto slot = catalog_.slot_of(id)) access_[*slot].store(n, std::memory_order_relaxed);
      });
      std::lock_guard al(access_mtx_);
      for (const auto& [id, inc] : access_pending_)
        if (q.empty() || q.selects(inc.owner))
          if (auto slot = catalog_.slot_of(id)) {
            const std::uint64_t sum = std::uint64_t{access_[*slot].load(std::memory_order_relaxed)} + inc.count;
            access_[*slot].store(sum > 0xFFFFFFFFu ? 0xFFFFFFFFu : static_cast<std::uint32_t>(sum),
                                 std::memory_order_relaxed);
          }
    }
  }

  /// Counts a search's hits: in access_ (the ranking term) and, for a store that keeps counts, to be written.
  void note_access(const std::vector<search_hit>& hits) const {
    if (hits.empty()) return;
    {
      std::shared_lock lock(mtx_);
      for (const auto& h : hits)
        if (auto slot = catalog_.slot_of(h.record.id)) access_[*slot].fetch_add(1, std::memory_order_relaxed);
    }
    if constexpr (access_count_store<Store>) {
      if (!keeps_access_counts()) return;
      bool due = false;
      {
        std::lock_guard al(access_mtx_);
        for (const auto& h : hits) {
          auto it = access_pending_.find(h.record.id);
          if (it == access_pending_.end()) {
            if (access_pending_.size() >= access_pending_limit) continue;
            it = access_pending_.try_emplace(h.record.id, access_increment{h.record.id, h.record.scope(), 0}).first;
          }
          if (it->second.count != 0xFFFFFFFFu) ++it->second.count;
        }
        due = std::chrono::steady_clock::now() - access_written_at_ >= config_.access_flush_interval;
      }
      if (!due) return;
      std::unique_lock fl(access_flush_mtx_, std::try_to_lock);
      if (!fl.owns_lock()) return;  // another search is writing them
      try {
        const_cast<basic_memory&>(*this).flush_access_locked();
      } catch (...) {  // kept for the next try (flush_access_counts() reports the error)
      }
    }
  }

  /// Writes the gathered hits. Under access_flush_mtx_. On failure they are gathered again.
  void flush_access_locked() {
    if constexpr (access_count_store<Store>) {
      if (!keeps_access_counts()) return;
      std::vector<access_increment> batch;
      {
        std::lock_guard al(access_mtx_);
        access_written_at_ = std::chrono::steady_clock::now();
        batch.reserve(access_pending_.size());
        for (auto& [id, inc] : access_pending_) batch.push_back(std::move(inc));
        access_pending_.clear();
      }
      if (batch.empty()) return;
      try {
        store_.add_access(std::span<const access_increment>(batch));
      } catch (...) {
        std::lock_guard al(access_mtx_);
        for (auto& inc : batch) {
          auto [it, fresh] = access_pending_.try_emplace(inc.memory_id, inc);
          if (!fresh) {
            const std::uint64_t sum = std::uint64_t{it->second.count} + inc.count;
            it->second.count = sum > 0xFFFFFFFFu ? 0xFFFFFFFFu : static_cast<std::uint32_t>(sum);
          }
        }
        throw;
      }
    }
  }
  std::uint64_t feed_position_ = 0;                // change feed: the last position polled
  bool feed_interrupted_ = false;                  // partition cache: a poll failed; re-validate after the next
  std::vector<duplicate_record> feed_duplicates_;  // change feed: dropped by the last stage()
  async_state async_;  // last: its destructor stops the workers while everything they use is alive
};

}  // namespace engram::inline v0
