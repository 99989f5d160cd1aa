#pragma once
/// @file index/ivf_lists.hpp
/// The inverted lists of one ivf_index partition: rows in 64-byte-aligned blocks, a centroid per list, and
/// what is done to them alone (nearest list, probe order, append, erase, scan). A part of ivf_index: it knows
/// nothing of slots' locations, which the index keeps.

#include <engram/detail/aligned_allocator.hpp>
#include <engram/ids.hpp>
#include <engram/index/bitmap.hpp>
#include <engram/index/row_scan.hpp>
#include <engram/index/executor.hpp>
#include <engram/index/merged_topk.hpp>
#include <engram/index/topk.hpp>
#include <engram/simd/rows.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <vector>

namespace engram::inline v0::detail {

/// Rows of an ivf_index: 64-byte-aligned floats, `stride` per row.
using ivf_floats = std::vector<float, aligned_allocator<float>>;

/// One inverted list: its rows and the slot of each row.
struct ivf_list {
  ivf_floats rows;             // slots.size() rows of stride floats
  std::vector<slot_id> slots;  // row -> slot

  /// Scores the rows (those in `candidates` when given) against `q` into `best`; @returns how many were scored.
  std::size_t scan(const float* q, std::size_t stride, const slot_bitmap* candidates, topk& best) const {
    constexpr std::size_t W = simd::batch_width;
    const std::size_t n = slots.size();
    if (!candidates) {
      alignas(64) std::array<float, W> sc;
      for (std::size_t g = 0; g < n; g += W) {
        const std::size_t cnt = std::min(W, n - g);
        const auto s = simd::dot_group(q, rows.data() + g * stride, cnt, stride);
        if (!xsimd::any(s >= simd::float_batch(best.threshold()))) continue;
        s.store_aligned(sc.data());
        for (std::size_t r = 0; r < cnt; ++r) best.push(slots[g + r], sc[r]);
      }
      return n;
    }
    gathered_scorer scorer(q, stride, best);
    for (std::size_t r = 0; r < n; ++r) scorer.offer(rows.data() + r * stride, slots[r], candidates->test(slots[r]));
    return scorer.finish();
  }
};

/// The k best rows of `lists` (of those in `candidates` when given) for `q`, exactly as one scan of them in
/// order finds them: the lists are cut into parts of about equal rows, run over `ex` when each part gets
/// `min_bytes` of rows (each part keeps its own top k; detail::merged_topk merges them).
inline std::vector<index_hit> scan_lists(const float* q, std::size_t stride, std::span<const ivf_list* const> lists,
                                         const slot_bitmap* candidates, std::size_t k, executor_ref ex,
                                         std::size_t min_bytes) {
  std::size_t rows = 0;
  for (const auto* l : lists) rows += l->slots.size();
  const std::size_t by_size = rows * stride * sizeof(float) / std::max<std::size_t>(min_bytes, 1);
  const std::size_t tasks = std::max<std::size_t>(1, std::min({ex.concurrency(), by_size, lists.size()}));
  std::vector<std::size_t> first(tasks + 1, lists.size());  // part t scans lists [first[t], first[t + 1])
  first[0] = 0;
  for (std::size_t i = 0, t = 1, seen = 0; i < lists.size() && t < tasks; ++i) {
    seen += lists[i]->slots.size();
    while (t < tasks && seen * tasks >= rows * t) first[t++] = i + 1;
  }
  return merged_topk(ex, k, tasks, [&](std::size_t t, topk& best) {
    for (std::size_t i = first[t]; i < first[t + 1]; ++i) lists[i]->scan(q, stride, candidates, best);
  });
}

/// One partition of an ivf_index: one list while untrained, else one per centroid.
struct ivf_partition {
  ivf_floats centroids;         // lists.size() x stride; empty: untrained
  std::vector<ivf_list> lists;  // one list while untrained
  std::size_t size = 0;
  std::size_t sum_sq = 0;        // sum over lists of size^2
  std::size_t trained_size = 0;  // size after the last training
  bool due = false;              // a training was due while trainings were held

  /// The list of the centroid with the largest dot product with the normalised `v` (0 when untrained).
  std::uint32_t nearest_list(const float* v, std::size_t stride) const {
    if (centroids.empty()) return 0;
    constexpr std::size_t W = simd::batch_width;
    const std::size_t n = lists.size();
    alignas(64) std::array<float, W> sc;
    std::uint32_t best = 0;
    float top = -std::numeric_limits<float>::infinity();
    for (std::size_t g = 0; g < n; g += W) {
      const std::size_t cnt = std::min(W, n - g);
      simd::dot_group(v, centroids.data() + g * stride, cnt, stride).store_aligned(sc.data());
      for (std::size_t r = 0; r < cnt; ++r)
        if (sc[r] > top) top = sc[r], best = static_cast<std::uint32_t>(g + r);
    }
    return best;
  }

  /// The `count` lists whose centroids score best against `q`, best first, as (list, score) hits.
  std::vector<index_hit> probe_order(const float* q, std::size_t count, std::size_t stride) const {
    constexpr std::size_t W = simd::batch_width;
    const std::size_t n = lists.size();
    topk best(std::min(count, n));
    alignas(64) std::array<float, W> sc;
    for (std::size_t g = 0; g < n; g += W) {
      const std::size_t cnt = std::min(W, n - g);
      simd::dot_group(q, centroids.data() + g * stride, cnt, stride).store_aligned(sc.data());
      for (std::size_t r = 0; r < cnt; ++r) best.push(static_cast<slot_id>(g + r), sc[r]);
    }
    return best.take_sorted();
  }

  /// Rows an unfiltered probe of `nprobe` lists scans; a partition scanned whole counts a quarter of its rows
  /// (below that, scoring candidates slot by slot pays: flat_index's rule).
  [[nodiscard]] std::size_t sparse_bound(std::size_t nprobe) const noexcept {
    return centroids.empty() || nprobe >= lists.size() ? size / 4 : nprobe * size / lists.size();
  }

  /// A filtered probe of this trained partition (see ivf_index): lists in centroid order until `nprobe` are
  /// probed and at least max(k, nprobe x mean list size) candidates scored, or every list is.
  void probe_filtered(const float* q, std::size_t stride, const slot_bitmap& candidates, std::size_t nprobe,
                      std::size_t k, topk& best) const {
    const std::size_t want = std::max(k, nprobe * size / lists.size());
    std::size_t scored = 0, probed = 0;
    for (const auto& h : probe_order(q, lists.size(), stride)) {
      if (probed >= nprobe && scored >= want) break;
      scored += lists[h.slot].scan(q, stride, &candidates, best);
      ++probed;
    }
  }

  /// Appends `row` (stride floats) as `slot` to `list`; @returns its row in the list. O(stride).
  std::uint32_t append(std::uint32_t list, slot_id slot, const float* row, std::size_t stride) {
    auto& l = lists[list];
    const auto r = static_cast<std::uint32_t>(l.slots.size());
    l.rows.insert(l.rows.end(), row, row + stride);
    l.slots.push_back(slot);
    sum_sq += 2 * std::size_t{r} + 1;
    ++size;
    return r;
  }

  /// Removes `row` of `list`, the list's last row filling the hole. @returns the slot moved into `row`, if
  /// one was. O(stride).
  std::optional<slot_id> erase(std::uint32_t list, std::uint32_t row, std::size_t stride) noexcept {
    auto& l = lists[list];
    const auto last = static_cast<std::uint32_t>(l.slots.size() - 1);
    std::optional<slot_id> moved;
    if (row != last) {
      std::copy_n(l.rows.begin() + std::ptrdiff_t(std::size_t{last} * stride), stride,
                  l.rows.begin() + std::ptrdiff_t(std::size_t{row} * stride));
      l.slots[row] = l.slots[last];
      moved = l.slots[row];
    }
    l.slots.pop_back();
    l.rows.resize(l.rows.size() - stride);
    sum_sq -= 2 * std::size_t{last} + 1;
    --size;
    return moved;
  }
};

}  // namespace engram::inline v0::detail
