#pragma once
/// @file index/row_scan.hpp
/// The row normalisation and the gathered (candidate-by-candidate) scoring shared by flat_index and ivf_index,
/// kept in one place so both compute every score with the same arithmetic, bit for bit.

#include <engram/index/bitmap.hpp>
#include <engram/index/topk.hpp>
#include <engram/simd/rows.hpp>

#include <algorithm>  // std::fill
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>

namespace engram::inline v0::detail {

/// Writes `v` scaled to unit length (a zero vector stays zero) to dst[0, v.size()) and zeros to the padding
/// up to dst[stride). The norm is accumulated in double, the scale applied in float. O(stride).
inline void normalize_row(float* dst, std::span<const float> v, std::size_t stride) noexcept {
  double sum = 0.0;
  for (const float x : v) sum += double(x) * double(x);
  const float inv = sum > 0.0 ? static_cast<float>(1.0 / std::sqrt(sum)) : 0.0f;
  for (std::size_t i = 0; i < v.size(); ++i) dst[i] = v[i] * inv;
  std::fill(dst + v.size(), dst + stride, 0.0f);
}

/// Scores rows one at a time as they are offered, in groups of simd::batch_width through
/// simd::dot_gathered, into a topk. Not thread-safe (one per scan).
class gathered_scorer {
 public:
  /// `q`: the normalised query of `stride` floats; hits go to `best`.
  gathered_scorer(const float* q, std::size_t stride, topk& best) noexcept : q_(q), stride_(stride), best_(best) {}

  /// Offers a row when `keep` (branch-free: a selective filter rejects most rows and a branch on it mispredicts).
  void offer(const float* row, slot_id slot, bool keep) {
    rows_[n_] = row;
    slots_[n_] = slot;
    n_ += keep ? 1 : 0;
    if (n_ == W) flush();
  }
  void offer(const float* row, slot_id slot) { offer(row, slot, true); }

  /// Scores what is left; @returns how many rows were scored in all.
  std::size_t finish() {
    if (n_) flush();
    return scored_;
  }

 private:
  static constexpr std::size_t W = simd::batch_width;

  void flush() {
    const auto s = simd::dot_gathered(q_, rows_.data(), n_, stride_);
    if (xsimd::any(s >= simd::float_batch(best_.threshold()))) {
      alignas(64) std::array<float, W> sc;
      s.store_aligned(sc.data());
      for (std::size_t r = 0; r < n_; ++r) best_.push(slots_[r], sc[r]);
    }
    scored_ += n_;
    n_ = 0;
  }

  const float* q_;
  std::size_t stride_;
  topk& best_;
  std::array<const float*, W> rows_{};
  std::array<slot_id, W> slots_{};
  std::size_t n_ = 0;
  std::size_t scored_ = 0;
};

/// Scores every slot of `candidates` in [first, last) for which `row_of(slot)` gives a row (nullptr: not
/// searched) into `best`. O(set candidates x stride + (last - first) / 64).
template <class RowOf>
void scan_candidates(const float* q, std::size_t stride, const slot_bitmap& candidates, RowOf&& row_of, topk& best,
                     std::size_t first = 0, std::size_t last = std::numeric_limits<std::size_t>::max()) {
  gathered_scorer scorer(q, stride, best);
  candidates.for_each_in(first, last, [&](slot_id s) {
    if (const float* row = row_of(s)) scorer.offer(row, s);
  });
  (void)scorer.finish();
}

}  // namespace engram::inline v0::detail
