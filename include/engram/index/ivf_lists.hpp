#pragma once
/// @file index/ivf_lists.hpp
/// The inverted lists of one ivf_index partition: rows in 64-byte-aligned blocks, a centroid per list, and
/// what is done to them alone (nearest list, probe order, append, erase, scan). A part of ivf_index: it knows
/// nothing of slots' locations, which the index keeps.

#include <engram/detail/aligned_allocator.hpp>
#include <engram/ids.hpp>
#include <engram/index/bitmap.hpp>
#include <engram/index/row_scan.hpp>
#include <engram/index/topk.hpp>
#include <engram/simd/rows.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
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
