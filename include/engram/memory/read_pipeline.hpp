#pragma once
/// @file memory/read_pipeline.hpp
/// The read pipeline of a search, once its partitions are chosen: vector candidates (filtered by the filter
/// planner), keyword candidates merged in (with their exact cosines), the fused score with the optional extra
/// terms (recency, importance, access), the threshold, and the rerank hook. It reads; it never writes.

#include <engram/extract/actions.hpp>
#include <engram/filter/expr.hpp>
#include <engram/ids.hpp>
#include <engram/index/bitmap.hpp>
#include <engram/memory/derived_state.hpp>
#include <engram/memory/options.hpp>
#include <engram/rank/fusion.hpp>
#include <engram/record.hpp>
#include <engram/temporal/newest_first.hpp>
#include <engram/time.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace engram::inline v0::detail {

/// What one search reads: its request and the moment it runs.
struct read_request {
  std::string_view query;
  std::span<const float> query_vector;  ///< empty in keyword mode
  const search_options& options;
  const std::vector<partition_id>& partitions;
  timestamp now;
};

/// How many candidates a search ranks: exactly `limit` for a plain semantic search; anything that reorders
/// needs a pool to reorder.
inline std::size_t candidate_pool(const search_options& o, bool reranks) {
  const bool plain = o.mode == search_mode::semantic && !o.weights.reorders() && !reranks;
  return plain ? o.limit : std::max<std::size_t>(o.limit * 3, 50);
}

/// The score search_options::threshold gates: the cosine, except in keyword mode (the fused score).
inline float gated_score(const score_details& d, search_mode mode) noexcept {
  return mode == search_mode::keyword ? d.final : d.cosine;
}

/// Ranks the memories of `req.partitions` for the request. `get(id)` reads a record from the store (nullopt when
/// gone); `access_of(slot)` is a memory's access count. Returns at most `pool` hits when `reranks` (the caller
/// reranks and cuts), else at most options.limit.
template <class Index, class Get, class AccessOf>
std::vector<search_hit> rank_memories(const derived_state<Index>& d, const read_request& req, std::size_t pool,
                                      bool reranks, Get&& get, AccessOf&& access_of) {
  const auto& options = req.options;
  const auto& w = options.weights;
  const auto& partitions = req.partitions;
  const bool use_vectors = options.mode != search_mode::keyword;
  const bool use_keywords = options.mode != search_mode::semantic;
  const auto seen = visibility::of(options, req.now);

  std::vector<index_hit> semantic;
  if (use_vectors) semantic = d.search(req.query_vector, options.filter, options.strategy, pool, partitions, seen);

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
    auto matches = d.keywords().score_all(req.query, partitions, [&](slot_id slot) {
      return d.matches_visible(options.filter, seen, slot);
    });
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
      if (use_vectors &&
          std::any_of(semantic.begin(), semantic.end(), [&](const index_hit& h) { return h.slot == matches[i].slot; }))
        continue;
      cands.push_back({matches[i].slot, rank_signals{.bm25 = matches[i].score, .keyword_rank = i + 1}});
      missing.set(matches[i].slot);
      ++added;
    }
    if (use_vectors && added) {
      for (const auto& h : d.index_search(req.query_vector, added, partitions, seen, &missing))
        for (std::size_t i = first_new; i < cands.size(); ++i)
          if (cands[i].slot == h.slot) cands[i].signals.cosine = h.score;
    }
  }

  if (w.entity > 0.0f && d.has_entities()) {
    // memories about the entities the query names (and, one hop, about related ones) are candidates too
    std::unordered_map<slot_id, float> by_entity;  // best signal per slot, at most 4 pools of them
    auto note = [&](slot_id slot, float signal) {
      if (auto it = by_entity.find(slot); it != by_entity.end())
        it->second = std::max(it->second, signal);
      else if (by_entity.size() < 4 * pool)
        by_entity.emplace(slot, signal);
    };
    const auto& ents = d.entities();
    for (const auto p : partitions)
      for (const auto e : ents.named_in(p, req.query)) {
        ents.for_each_mention(p, e, [&](slot_id slot) { note(slot, 1.0f); });
        if (w.entity_hops > 0 && !ents.is_date(p, e))
          ents.for_each_neighbour(p, e, [&](auto n) { ents.for_each_mention(p, n, [&](slot_id slot) { note(slot, 0.5f); }); });
      }
    slot_bitmap missing;
    std::size_t added = 0;
    const std::size_t first_new = cands.size();
    for (const auto& [slot, signal] : by_entity) {
      auto it = std::find_if(cands.begin(), cands.end(), [s = slot](const candidate& c) { return c.slot == s; });
      if (it != cands.end()) {
        it->signals.entity = signal;
      } else if (d.matches_visible(options.filter, seen, slot)) {
        cands.push_back({slot, rank_signals{.entity = signal}});
        missing.set(slot);
        ++added;
      }
    }
    if (use_vectors && added)
      for (const auto& h : d.index_search(req.query_vector, added, partitions, seen, &missing))
        for (std::size_t i = first_new; i < cands.size(); ++i)
          if (cands[i].slot == h.slot) cands[i].signals.cosine = h.score;
  }

  // records are fetched once: for every candidate when the extra terms need them, else for the hits only
  std::vector<std::optional<record>> recs(cands.size());
  std::vector<std::pair<score_details, std::size_t>> scored;
  scored.reserve(cands.size());
  for (std::size_t i = 0; i < cands.size(); ++i) {
    auto& sig = cands[i].signals;
    if (w.has_extra_terms() || w.newest_first > 0.0f) {
      recs[i] = get(d.id_of(cands[i].slot));
      if (!recs[i]) continue;
      sig.recency = recency_score(recs[i]->updated_at, req.now, w.recency_half_life_days);
      sig.importance = importance_score(recs[i]->metadata, w.importance_key);
      sig.access = access_score(access_of(cands[i].slot), w.access_saturation);
    }
    scored.emplace_back(fuse_scores(sig, options.mode, w, max_bm25), i);
  }
  std::sort(scored.begin(), scored.end(), [&](const auto& a, const auto& b) {
    // Ties by id, not slot: slots depend on load order, so results stay the same across reopen and import.
    if (a.first.final != b.first.final) return a.first.final > b.first.final;
    return d.id_of(cands[a.second].slot) < d.id_of(cands[b.second].slot);
  });
  // Each place keeps its score; newest_first may move another hit of the same subject into it.
  std::vector<float> place_score(scored.size());
  for (std::size_t k = 0; k < scored.size(); ++k) place_score[k] = scored[k].first.final;
  if (w.newest_first > 0.0f) {
    std::vector<std::size_t> order(scored.size());
    for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
    newest_first(
        order, w.newest_first, reranks ? pool : options.limit,
        [&](std::size_t k) { return std::span<const float>(recs[scored[k].second]->embedding); },
        [&](std::size_t k) { return recs[scored[k].second]->valid_since(); });
    std::vector<std::pair<score_details, std::size_t>> moved;
    moved.reserve(order.size());
    for (const auto k : order) moved.push_back(scored[k]);
    scored = std::move(moved);
  }

  const std::size_t keep = reranks ? pool : options.limit;
  std::vector<search_hit> out;
  out.reserve(std::min(keep, scored.size()));
  for (std::size_t k = 0; k < scored.size(); ++k) {
    const auto& [details, i] = scored[k];
    if (out.size() == keep) break;
    if (options.threshold && gated_score(details, options.mode) < *options.threshold) continue;
    auto r = recs[i] ? std::move(recs[i]) : get(d.id_of(cands[i].slot));
    if (!r) continue;
    out.push_back(
        search_hit{std::move(*r), place_score[k], options.explain ? std::optional<score_details>(details) : std::nullopt});
  }
  return out;
}

/// The `k` nearest visible memories of `partitions` to each vector (what the extractor decides against);
/// expired and closed memories are hidden from the extractor too, so a fact said again is stored again.
template <class Index, class Get>
std::vector<std::vector<existing_memory>> nearest_memories(const derived_state<Index>& d,
                                                           const std::vector<std::vector<float>>& vectors,
                                                           const std::vector<partition_id>& partitions, std::size_t k,
                                                           timestamp now, Get&& get) {
  std::vector<std::vector<existing_memory>> out(vectors.size());
  if (partitions.empty()) return out;
  for (std::size_t i = 0; i < vectors.size(); ++i)
    for (const auto& h :
         d.search(vectors[i], filter_expr{}, filter_strategy::automatic, k, partitions, visibility::current(now)))
      if (auto r = get(d.id_of(h.slot)))
        out[i].push_back(existing_memory{r->id, r->memory, r->hash, h.score, r->valid_since()});
  return out;
}

/// get_all: the memories of `partitions` options.filter matches (expired ones only with show_expired; closed
/// versions as options.as_of / include_invalid say), oldest first (ties by id), at most options.limit (0: all).
template <class Index, class Get>
std::vector<record> list_memories(const derived_state<Index>& d, const std::vector<partition_id>& partitions,
                                  const get_all_options& options, timestamp now, Get&& get) {
  std::vector<record> out;
  d.for_each_admitted(partitions, options.filter, visibility::of(options, now), [&](slot_id slot) {
    if (auto r = get(d.id_of(slot))) out.push_back(std::move(*r));
  });
  std::sort(out.begin(), out.end(), [](const record& a, const record& b) {
    return a.created_at != b.created_at ? a.created_at < b.created_at : a.id < b.id;
  });
  if (options.limit && out.size() > options.limit) out.resize(options.limit);
  return out;
}

}  // namespace engram::inline v0::detail
