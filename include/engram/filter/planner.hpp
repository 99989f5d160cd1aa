#pragma once
/// @file filter/planner.hpp
/// The filter planner: whether a filtered vector search compiles the filter to a candidate bitmap first
/// (pre-filter) or searches unfiltered with a growing k and drops the hits the filter refuses (post-filter),
/// chosen by the filter's selectivity measured on a sample. Both return exactly the best `limit` matching slots.

#include <engram/filter/eval.hpp>  // filter_strategy
#include <engram/ids.hpp>
#include <engram/index/bitmap.hpp>

#include <algorithm>
#include <cstddef>
#include <optional>
#include <vector>

namespace engram::inline v0 {

/// How a filtered search will run.
struct filter_plan {
  filter_strategy strategy = filter_strategy::pre_filter;
  double selectivity = 0.5;  ///< estimated share of the searched slots the filter admits
};

/// Below this many slots searched, pre-filtering always wins (evaluating them all costs less than sampling).
inline constexpr std::size_t filter_plan_small_scope = 1024;
/// Slots sampled to estimate selectivity.
inline constexpr std::size_t filter_plan_samples = 256;

/// Chooses the strategy (`requested`, unless automatic) for a search over `total` slots. `probe(i)` for i in
/// [0, filter_plan_samples) looks at the i-th of evenly spaced sample positions and returns nullopt when that
/// position holds no slot of the search, else whether the filter admits it.
template <class Probe>
filter_plan plan_filter(filter_strategy requested, std::size_t total, Probe&& probe) {
  if (requested != filter_strategy::automatic) return {requested, 0.5};
  if (total <= filter_plan_small_scope) return {filter_strategy::pre_filter, 0.5};
  std::size_t seen = 0, hits = 0;
  for (std::size_t i = 0; i < filter_plan_samples; ++i) {
    const std::optional<bool> admitted = probe(i);
    if (!admitted) continue;
    ++seen;
    hits += *admitted ? 1 : 0;
  }
  const double selectivity = (double(hits) + 1.0) / (double(seen) + 2.0);
  // Pre-filtering pays for evaluating every candidate and for an unpredictable skip per row; it wins clearly
  // below ~10% and loses to one unfiltered scan from about a third (bench/filter.cpp).
  return {selectivity < 0.3 ? filter_strategy::pre_filter : filter_strategy::post_filter, selectivity};
}

/// Runs a planned filtered search for the best `limit` slots among `total`.
/// @param candidates  () -> slot_bitmap of every admitted slot (pre-filter)
/// @param search      (k, const slot_bitmap* or null) -> the index's top k, best first
/// @param admits      slot -> whether the filter admits it (post-filter)
template <class Candidates, class Search, class Admits>
std::vector<index_hit> run_filter_plan(const filter_plan& plan, std::size_t limit, std::size_t total,
                                       Candidates&& candidates, Search&& search, Admits&& admits) {
  if (plan.strategy == filter_strategy::pre_filter) {
    const slot_bitmap bits = candidates();
    if (bits.empty()) return {};
    return search(limit, &bits);
  }
  std::size_t k = std::min(total, std::max(limit * 2, std::size_t(double(limit) / plan.selectivity * 1.5) + 1));
  while (true) {
    const auto hits = search(k, static_cast<const slot_bitmap*>(nullptr));
    std::vector<index_hit> out;
    for (const auto& h : hits) {
      if (!admits(h.slot)) continue;
      out.push_back(h);
      if (out.size() == limit) return out;
    }
    if (hits.size() < k || k >= total) return out;
    k = std::min(total, k * 4);
  }
}

}  // namespace engram::inline v0
