#pragma once
/// @file rank/fusion.hpp
/// How a search scores a memory: semantic (cosine), keyword (BM25) or both fused, plus optional recency,
/// importance and access-frequency terms. Pure functions; basic_memory gathers the inputs.

#include <engram/error.hpp>
#include <engram/record.hpp>
#include <engram/time.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

namespace engram::inline v0 {

/// Which similarity a search ranks by.
enum class search_mode {
  hybrid,    ///< cosine and BM25 fused (the default); a memory found by either is a candidate
  semantic,  ///< cosine similarity of the embeddings only
  keyword,   ///< BM25 over normalised terms only (memories sharing no term with the query are not found)
};

/// How hybrid search combines the two similarities.
enum class fusion_method {
  /// semantic · max(cosine, 0) + keyword · bm25 / max_bm25, where max_bm25 is the best BM25 score among the
  /// memories searched (so the best keyword match contributes the full keyword weight). In [0, 1] when the
  /// two weights sum to 1.
  weighted,
  /// Reciprocal-rank fusion: semantic / (rrf_k + rank_cos) + keyword / (rrf_k + rank_bm25), ranks from 1 within
  /// each candidate list, a list a memory is absent from contributing 0. Ignores score scales entirely.
  reciprocal_rank,
};

/// Weights of the ranking terms. The recency, importance and access terms are off (0) by default; when any is
/// on, it reorders a candidate pool of the best max(3 × limit, 50) memories by similarity.
struct ranking_weights {
  float semantic = 0.5f;  ///< weight of the cosine term in hybrid search
  float keyword = 0.5f;   ///< weight of the BM25 term in hybrid search
  fusion_method fusion = fusion_method::weighted;
  float rrf_k = 60.0f;    ///< reciprocal-rank fusion's damping constant (60 in Cormack et al. 2009)

  float recency = 0.0f;              ///< weight of exp(−ln 2 · age / half_life), age since updated_at
  double recency_half_life_days = 30.0;
  float importance = 0.0f;           ///< weight of metadata[importance_key], a number clamped to [0, 1]
  std::string importance_key = "importance";
  /// weight of n / (n + access_saturation), n = times the memory was returned by a search (kept by the store
  /// when it is an access_count_store, as every store engram ships is; see memory_config::access_flush_interval)
  float access = 0.0f;
  float access_saturation = 5.0f;

  /// 0 (off) or a cosine in (0, 1]: hits at least this similar to each other are statements about one subject,
  /// and among them the fact that became true last (record::valid_since) ranks first, in the places they hold
  /// (temporal/newest_first.hpp). For memories kept side by side (ADD-only extraction, or include_invalid).
  float newest_first = 0.0f;
  /// Weight of the entity term (memory_config::entities): 1 for a memory mentioning an entity the query names,
  /// 0.5 for one mentioning an entity related to it (entity_hops = 1), else 0. Candidates found through
  /// entities join the pool even when neither similarity found them.
  float entity = 0.0f;
  unsigned entity_hops = 1;  ///< 0: only the entities the query names; 1: and those related to them

  [[nodiscard]] bool has_extra_terms() const noexcept { return recency > 0.0f || importance > 0.0f || access > 0.0f; }
  /// True when ranking needs more than the similarities: the extra terms or newest_first read records.
  [[nodiscard]] bool reorders() const noexcept { return has_extra_terms() || newest_first > 0.0f || entity > 0.0f; }
};

/// Throws validation_error for a negative or non-finite weight or a non-positive half-life, naming it.
inline void validate_weights(const ranking_weights& w) {
  auto check = [](double v, const char* name, bool positive) {
    if (!std::isfinite(v) || v < 0.0 || (positive && v <= 0.0))
      throw validation_error(std::string("search: ranking weight '") + name + "' is " + std::to_string(v) +
                             (positive ? " (expected > 0)" : " (expected a finite number >= 0)"));
  };
  check(w.semantic, "semantic", false);
  check(w.keyword, "keyword", false);
  check(w.rrf_k, "rrf_k", false);
  check(w.recency, "recency", false);
  check(w.recency_half_life_days, "recency_half_life_days", true);
  check(w.importance, "importance", false);
  check(w.access, "access", false);
  check(w.access_saturation, "access_saturation", true);
  check(w.entity, "entity", false);
  if (w.entity_hops > 1)
    throw validation_error("search: ranking weight 'entity_hops' is " + std::to_string(w.entity_hops) + " (expected 0 or 1)");
  if (!(w.newest_first >= 0.0f && w.newest_first <= 1.0f))
    throw validation_error("search: ranking weight 'newest_first' is " + std::to_string(w.newest_first) +
                           " (expected 0, off, or a cosine in (0, 1])");
}

/// exp(−ln 2 · age / half_life): 1 for a memory changed at `now`, ½ one half-life earlier. Future times count as now.
inline float recency_score(timestamp updated, timestamp now, double half_life_days) noexcept {
  const double age_days = std::max(0.0, std::chrono::duration<double, std::ratio<86400>>(now - updated).count());
  return static_cast<float>(std::exp(-std::log(2.0) * age_days / half_life_days));
}

/// metadata[key] when it is a number, clamped to [0, 1]; 0 when absent or not a number.
inline float importance_score(const nlohmann::json& metadata, const std::string& key) {
  if (!metadata.is_object()) return 0.0f;
  auto it = metadata.find(key);
  if (it == metadata.end() || !it->is_number()) return 0.0f;
  const double v = it->get<double>();
  return std::isfinite(v) ? static_cast<float>(std::clamp(v, 0.0, 1.0)) : 0.0f;
}

/// n / (n + saturation): 0 for a memory never returned, ½ after `saturation` returns.
inline float access_score(std::uint32_t n, float saturation) noexcept {
  return static_cast<float>(double(n) / (double(n) + double(saturation)));
}

/// What is known of one candidate before fusion.
struct rank_signals {
  float cosine = 0.0f;
  float bm25 = 0.0f;
  std::size_t semantic_rank = 0;  ///< 1-based rank by cosine among the candidates; 0 when not ranked
  std::size_t keyword_rank = 0;   ///< 1-based rank by BM25; 0 when it shares no term with the query
  float recency = 0.0f;           ///< recency_score
  float importance = 0.0f;        ///< importance_score
  float access = 0.0f;            ///< access_score
  float entity = 0.0f;            ///< 1: mentions an entity the query names; 0.5: one related to it
};

/// The score of one candidate with its parts (each weighted; final is their sum).
///  - semantic mode: semantic = cosine (unweighted, so a plain semantic search scores by cosine);
///  - keyword mode: keyword = bm25 / max_bm25;
///  - hybrid mode: see fusion_method.
/// Then final += recency·w.recency + importance·w.importance + access·w.access + entity·w.entity.
inline score_details fuse_scores(const rank_signals& s, search_mode mode, const ranking_weights& w, float max_bm25) {
  score_details d;
  d.cosine = s.cosine;
  d.bm25 = s.bm25;
  const float kw_norm = max_bm25 > 0.0f ? s.bm25 / max_bm25 : 0.0f;
  switch (mode) {
    case search_mode::semantic: d.semantic = s.cosine; break;
    case search_mode::keyword: d.keyword = kw_norm; break;
    case search_mode::hybrid:
      if (w.fusion == fusion_method::weighted) {
        d.semantic = w.semantic * std::max(s.cosine, 0.0f);
        d.keyword = w.keyword * kw_norm;
      } else {
        d.semantic = s.semantic_rank ? w.semantic / (w.rrf_k + float(s.semantic_rank)) : 0.0f;
        d.keyword = s.keyword_rank ? w.keyword / (w.rrf_k + float(s.keyword_rank)) : 0.0f;
      }
      break;
  }
  d.recency = w.recency * s.recency;
  d.importance = w.importance * s.importance;
  d.access = w.access * s.access;
  d.entity = w.entity * s.entity;
  d.final = d.semantic + d.keyword + d.recency + d.importance + d.access + d.entity;
  return d;
}

}  // namespace engram::inline v0
