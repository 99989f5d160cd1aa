#pragma once
/// @file index/merged_topk.hpp
/// One scan cut into parts over an executor: each part keeps its own top k, and the parts are merged. Shared
/// by flat_index and ivf_index, so that a parallel search returns exactly what the serial scan returns.

#include <engram/ids.hpp>
#include <engram/index/executor.hpp>
#include <engram/index/topk.hpp>

#include <cstddef>
#include <vector>

namespace engram::inline v0::detail {

/// Runs scan(t, best) for t < tasks, each into its own top k (on `ex` when tasks > 1), and merges them. Hits
/// are ranked by a total order (better_hit), so the merge equals one serial scan's top k.
template <class Scan>
std::vector<index_hit> merged_topk(executor_ref ex, std::size_t k, std::size_t tasks, Scan&& scan) {
  if (tasks <= 1) {
    topk best(k);
    scan(std::size_t{0}, best);
    return best.take_sorted();
  }
  std::vector<std::vector<index_hit>> found(tasks);
  auto task = [&](std::size_t t) {
    topk best(k);
    scan(t, best);
    found[t] = best.take_sorted();
  };
  ex.bulk(tasks, task);
  topk best(k);
  for (const auto& hits : found)
    for (const auto& h : hits) best.push(h.slot, h.score);
  return best.take_sorted();
}

}  // namespace engram::inline v0::detail
