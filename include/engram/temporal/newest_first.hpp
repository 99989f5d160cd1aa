#pragma once
/// @file temporal/newest_first.hpp
/// The recency preference among statements about one subject (ranking_weights::newest_first): when two hits
/// are near-duplicates ("I live in Lisbon", "I live in Porto"), the fact that became true last ranks first.
/// Unlike the recency term, it never lifts a memory over an unrelated better match: it only reorders hits
/// within the places a group of near-duplicates already holds.

#include <engram/simd/kernels.hpp>
#include <engram/time.hpp>

#include <algorithm>
#include <cstddef>
#include <span>
#include <vector>

namespace engram::inline v0::detail {

/// Reorders `order` (indexes of items, best first). Items whose vectors have a cosine of at least `threshold`
/// with a group's first member (taken in rank order among the first `head` places, where results are read)
/// join its group; each group's members are then put, newest `since` first (ties keep their order), into the
/// places the group held. `vector_of(i)` is item i's vector (empty: it joins no group); `since_of(i)` when its
/// fact became true. O(head × |order|) cosines.
template <class VectorOf, class SinceOf>
void newest_first(std::vector<std::size_t>& order, float threshold, std::size_t head, VectorOf&& vector_of,
                  SinceOf&& since_of) {
  const std::size_t n = order.size();
  std::vector<char> grouped(n, 0);
  std::vector<std::size_t> places, members;
  for (std::size_t p = 0; p < std::min(head, n); ++p) {
    if (grouped[p]) continue;
    const std::span<const float> a = vector_of(order[p]);
    if (a.empty()) continue;
    places.assign(1, p);
    for (std::size_t q = p + 1; q < n; ++q) {
      if (grouped[q]) continue;
      const std::span<const float> b = vector_of(order[q]);
      if (b.size() == a.size() && simd::cosine(a.data(), b.data(), a.size()) >= threshold) places.push_back(q);
    }
    if (places.size() < 2) continue;
    members.clear();
    for (const auto at : places) {
      grouped[at] = 1;
      members.push_back(order[at]);
    }
    std::stable_sort(members.begin(), members.end(),
                     [&](std::size_t x, std::size_t y) { return since_of(x) > since_of(y); });
    for (std::size_t k = 0; k < places.size(); ++k) order[places[k]] = members[k];
  }
}

}  // namespace engram::inline v0::detail
