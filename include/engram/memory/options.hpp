#pragma once
/// @file memory/options.hpp
/// What basic_memory is configured with and what its calls take and return: memory_config (with its limits),
/// the options of add, search, get_all and update, and add's result.

#include <engram/async/options.hpp>
#include <engram/extract/actions.hpp>
#include <engram/filter/eval.hpp>  // filter_strategy
#include <engram/filter/expr.hpp>
#include <engram/index/keyword_index.hpp>
#include <engram/json.hpp>
#include <engram/rank/fusion.hpp>
#include <engram/rank/rerank.hpp>
#include <engram/record.hpp>
#include <engram/temporal/validity.hpp>
#include <engram/time.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
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
  /// When set, called by every search on its candidate pool, best first (rank/rerank.hpp); default: none. It
  /// runs under the memory's read lock: it must not call back into the memory.
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
  /// What reconciliation does with a memory the extractor contradicts (temporal/validity.hpp): erase (Mem0's
  /// behaviour, the default) or supersede (the old version is kept, closed, for as_of reads).
  contradiction_policy on_contradiction = contradiction_policy::erase;
  /// true: the entities and relations each memory names are kept per scope (entity/entity_index.hpp, found by
  /// the offline recogniser), for ranking_weights::entity and entity_graph(). Off by default: recognising
  /// every text costs time on open and memory (see bench/retrieval's multi-hop report).
  bool entities = false;
  /// With `entities`: resolution of entity names by meaning. 0 (the default): off. Above 0, a cosine threshold,
  /// such as 0.9: a name of a scope that is none of its known names or aliases joins the entity of the same scope
  /// whose name is closest in the embedder's space, when the cosine of the two names' vectors reaches it and the
  /// types agree (the same, or either a plain name; dates and handles never merge so). Each name is embedded
  /// once per memory (an embedder call per add bringing new names, made before the write lock; on open, one call
  /// for every name; a partition cache load, one call for its scope's) and its vector kept in memory. A merge is undone when the memory that caused it goes. Other
  /// scopes never take part. Outside 0 to 1 the constructor throws validation_error. Ignored without `entities`.
  float entity_similarity = 0.0f;
};

/// Options of add().
struct add_options {
  nlohmann::json metadata = nlohmann::json::object();  ///< stored with every memory this add creates
  /// true: the Extractor decides what to remember; false: each non-system message is stored as given
  /// (exact duplicates in the scope skipped), whatever the Extractor.
  bool infer = true;
  /// `YYYY-MM-DD` (UTC): the memories this add creates are hidden from search and get_all after that day.
  std::optional<std::string> expiration_date{};
  /// When the conversation happened (Mem0's `timestamp`): the created_at and valid_from of the memories this add
  /// creates, and the date the extractor resolves relative times against ("last month"). Default: now.
  std::optional<engram::timestamp> timestamp{};
  /// Mem0's `immutable`: the memories this add creates are never updated or deleted by reconciliation (an
  /// UPDATE of one is added as a memory of its own), and update() refuses them (record::immutable).
  bool immutable = false;
  /// This add's own extraction instructions (Mem0's includes, excludes, custom_categories, custom_instructions,
  /// prompt), merged with the extractor's settings for this call (infer = true only).
  extraction_request extraction{};
};

/// Options of search().
struct search_options {
  /// At most this many hits (1 to memory_limits::max_limit). Default 20, as Mem0's v2 API.
  std::size_t limit = 20;
  /// When set, the minimum semantic score (cosine similarity) of a hit in semantic and hybrid mode, as in Mem0:
  /// the threshold gates the cosine, the fused score only ranks (a memory close in meaning is kept even when it
  /// shares no keyword with the query). In keyword mode it gates the fused score (BM25 / the best BM25, in
  /// [0, 1] without extra terms). score_details shows both (`cosine` and `final`).
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
  /// When set: the memories whose fact held at that instant (valid_from <= as_of < invalid_at), ranked as
  /// usual. Unset: the memories not closed by now (superseded versions hidden).
  std::optional<engram::timestamp> as_of{};
  bool include_invalid = false;  ///< true: every version, closed or not (as_of is then ignored)
};

/// Options of get_all().
struct get_all_options {
  std::size_t limit = 100;  ///< at most this many records (Mem0's default); 0 means no limit
  filter_expr filter{};     ///< only records matching it (default: empty, all of the scope)
  bool show_expired = false;  ///< true: memories past their expiration_date are listed too
  std::optional<engram::timestamp> as_of{};  ///< as search_options::as_of
  bool include_invalid = false;              ///< as search_options::include_invalid
};

/// Options of update().
struct update_options {
  /// When set, the memory's new text (re-embedded); unset keeps the text and its vector.
  std::optional<std::string> text{};
  /// When set, merged into the memory's metadata as a JSON merge patch (RFC 7396, as Mem0 merges): a key set to
  /// a value replaces that key (objects merge key by key), a key set to null removes it, other keys stay.
  std::optional<nlohmann::json> metadata{};
  /// When set: `YYYY-MM-DD` sets the memory's expiration date, "" clears it (the memory is visible again).
  std::optional<std::string> expiration_date{};
  /// When the change happened (Mem0's `timestamp` on update): the memory's updated_at and its history event's
  /// time; unset: now. An update with only a timestamp changes nothing else.
  std::optional<engram::timestamp> timestamp{};
};

/// One item of update_many(): the memory and what to change in it (as update(id, options)).
struct memory_update {
  std::string id;
  update_options options{};
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

}  // namespace engram::inline v0
