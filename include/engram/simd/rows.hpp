#pragma once
/// @file simd/rows.hpp
/// Dot products of one or several queries against groups of padded, aligned rows: the inner loop of
/// flat_index. A group is `batch_width` consecutive rows; a row's score is lane (row % batch_width) of a
/// transposing horizontal sum (detail::transpose_sum) of one accumulator per row, summed in order over the row.
/// Each score therefore depends only on the row, the query and its lane, never on which kernel computed
/// it: the single-query, multi-query and gathered-row kernels below agree bit for bit.
///
/// Preconditions for all: `stride` is a multiple of batch_width; queries and rows start on a batch_width
/// float boundary and hold `stride` floats (zero padding past the dimension).

#include <engram/simd/kernels.hpp>

#include <array>
#include <bit>  // std::countr_zero
#include <cstddef>
#include <cstdint>

namespace engram::inline v0::detail {

/// Lane r of the result is the sum of the lanes of acc[r], r < batch_width, added in a tree whose shape is
/// the same for every lane, so a row's sum does not depend on its lane or on the other accumulators
/// (tests/simd.cpp checks this for the compiled architecture).
/// (xsimd 8.1's AVX-512 haddp returns the sums in permuted lanes, hence our own transposition there.)
#if XSIMD_WITH_AVX512F
// GCC 12 reports a false -W(maybe-)uninitialized inside _mm512_shuffle_f32x4 (its _mm512_undefined_ps).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
inline simd::float_batch transpose_sum(const simd::float_batch* acc) noexcept {
  // Per 128-bit chunk: level 1 pairs rows (2i, 2i+1), level 2 pairs those, giving the chunk sums of 4 rows.
  __m512 s1[8];
  for (int i = 0; i < 8; ++i) {
    const __m512 a = acc[2 * i], b = acc[2 * i + 1];
    s1[i] = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  }
  __m512 s2[4];
  for (int i = 0; i < 4; ++i) {
    const __m512d x = _mm512_castps_pd(s1[2 * i]), y = _mm512_castps_pd(s1[2 * i + 1]);
    s2[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
  }
  // s2[i] chunk c holds chunk c's sums of rows 4i..4i+3: add the four chunks of each s2[i] into chunk i.
  const __m512 u0 = _mm512_add_ps(_mm512_shuffle_f32x4(s2[0], s2[1], _MM_SHUFFLE(1, 0, 1, 0)),
                                  _mm512_shuffle_f32x4(s2[0], s2[1], _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 u1 = _mm512_add_ps(_mm512_shuffle_f32x4(s2[2], s2[3], _MM_SHUFFLE(1, 0, 1, 0)),
                                  _mm512_shuffle_f32x4(s2[2], s2[3], _MM_SHUFFLE(3, 2, 3, 2)));
  return _mm512_add_ps(_mm512_shuffle_f32x4(u0, u1, _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(u0, u1, _MM_SHUFFLE(3, 1, 3, 1)));
}
#pragma GCC diagnostic pop
#else
inline simd::float_batch transpose_sum(const simd::float_batch* acc) noexcept { return xsimd::haddp(acc); }
#endif

/// Makes the compiler hold `b` in a register instead of folding its load into every use (which would
/// reload it from L1 once per multiply-add and make the kernel load-bound). A no-op for the value.
inline void keep_in_register(simd::float_batch& b) noexcept {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  auto r = static_cast<typename simd::float_batch::register_type>(b);
  asm("" : "+v"(r));
  b = r;
#else
  (void)b;
#endif
}

/// One row's accumulator: q[j..j+W) * row[j..j+W) summed batch by batch in order of j. Every kernel here
/// sums a row this way, which is what makes their scores agree bit for bit.
inline simd::float_batch dot_row(const float* q, const float* row, std::size_t stride) noexcept {
  simd::float_batch acc(0.0f);
  for (std::size_t j = 0; j < stride; j += simd::batch_width)
    acc = xsimd::fma(simd::float_batch::load_aligned(q + j), simd::float_batch::load_aligned(row + j), acc);
  return acc;
}

}  // namespace engram::inline v0::detail

namespace engram::inline v0::simd {

#ifndef ENGRAM_INTERLEAVED_GROUPS
#define ENGRAM_INTERLEAVED_GROUPS 0
#endif
/// Whether dot_group() reads a full group's rows interleaved (dot_group_interleaved) instead of one after the
/// other (dot_group_masked). Row after row measured 1.4-1.9x faster out of cache on AMD Zen 4 (1M x 384: one
/// stream for the hardware prefetchers instead of batch_width streams 1.5 KB apart) and equal in cache
/// (bench/kernels.cpp, scan/*), so it is the default; compile with -DENGRAM_INTERLEAVED_GROUPS=1 for the
/// interleaved order. Both give the same scores bit for bit.
inline constexpr bool interleaved_groups = ENGRAM_INTERLEAVED_GROUPS != 0;

/// Scores of the rows of the group at `rows` selected by `mask` (bit r: row r, r < batch_width), each row read
/// front to back; the other lanes are 0. Rows left out are not read, so a dense candidate mask reads only the
/// bytes of its candidates. Complexity O(popcount(mask) * stride).
inline float_batch dot_group_masked(const float* q, const float* rows, std::uint32_t mask, std::size_t stride) noexcept {
  std::array<float_batch, batch_width> acc;
  acc.fill(float_batch(0.0f));
  while (mask) {
    const auto r = static_cast<std::size_t>(std::countr_zero(mask));
    mask &= mask - 1;
    acc[r] = detail::dot_row(q, rows + r * stride, stride);
  }
  return detail::transpose_sum(acc.data());
}

/// dot_group() of a full group reading its rows interleaved (one batch of every row, then the next batch of
/// every row): batch_width streams at once, where dot_group_masked() reads one. Same scores bit for bit.
inline float_batch dot_group_interleaved(const float* q, const float* rows, std::size_t stride) noexcept {
  constexpr std::size_t W = batch_width;
  std::array<float_batch, W> acc;
  acc.fill(float_batch(0.0f));
  for (std::size_t j = 0; j < stride; j += W) {
    const auto qb = float_batch::load_aligned(q + j);
    for (std::size_t r = 0; r < W; ++r) acc[r] = xsimd::fma(qb, float_batch::load_aligned(rows + r * stride + j), acc[r]);
  }
  return detail::transpose_sum(acc.data());
}

/// Scores of rows [0, count) of the group at `rows` (count <= batch_width) against `q`; lanes >= count are 0.
/// Full groups are read in the order `interleaved_groups` picks. Complexity O(count * stride).
inline float_batch dot_group(const float* q, const float* rows, std::size_t count, std::size_t stride) noexcept {
  if constexpr (interleaved_groups)
    if (count == batch_width) return dot_group_interleaved(q, rows, stride);
  return dot_group_masked(q, rows, count >= 32 ? ~std::uint32_t{0} : (std::uint32_t{1} << count) - 1, stride);
}

/// dot_group() over `count` (<= batch_width) rows given by address: lane r holds the score of rows[r], equal
/// bit for bit to that row's score from dot_group() (every lane is summed by the same tree). Used to visit
/// scattered candidate rows with batch_width independent accumulators, so their cache misses overlap.
inline float_batch dot_gathered(const float* q, const float* const* rows, std::size_t count,
                                std::size_t stride) noexcept {
  constexpr std::size_t W = batch_width;
  std::array<float_batch, W> acc;
  acc.fill(float_batch(0.0f));
  if (count == W) {
    for (std::size_t j = 0; j < stride; j += W) {
      const auto qb = float_batch::load_aligned(q + j);
      for (std::size_t r = 0; r < W; ++r) acc[r] = xsimd::fma(qb, float_batch::load_aligned(rows[r] + j), acc[r]);
    }
  } else {
    for (std::size_t r = 0; r < count; ++r) acc[r] = detail::dot_row(q, rows[r], stride);
  }
  return detail::transpose_sum(acc.data());
}

/// dot_group() of a full group for Q queries at once: out[i] = dot_group(qs[i], rows, batch_width, stride).
/// Register-blocked Q queries x 4 rows: per step, 4 row batches and Q query batches are loaded once each and
/// feed 4Q multiply-adds (Q = 6 uses 24 accumulators + 5 operands of the 32 AVX-512 registers).
template <std::size_t Q>
inline void dot_group_multi(const float* const* qs, const float* rows, std::size_t stride, float_batch* out) noexcept {
  constexpr std::size_t W = batch_width;
  constexpr std::size_t R = W < 4 ? W : 4;
  std::array<std::array<float_batch, W>, Q> acc;
  for (std::size_t r0 = 0; r0 < W; r0 += R) {
    std::array<std::array<float_batch, R>, Q> a;
    for (auto& qa : a) qa.fill(float_batch(0.0f));
    for (std::size_t j = 0; j < stride; j += W) {
      std::array<float_batch, R> x;
      for (std::size_t r = 0; r < R; ++r) {
        x[r] = float_batch::load_aligned(rows + (r0 + r) * stride + j);
        detail::keep_in_register(x[r]);
      }
      for (std::size_t i = 0; i < Q; ++i) {
        auto qb = float_batch::load_aligned(qs[i] + j);
        detail::keep_in_register(qb);
        for (std::size_t r = 0; r < R; ++r) a[i][r] = xsimd::fma(qb, x[r], a[i][r]);
      }
    }
    for (std::size_t i = 0; i < Q; ++i)
      for (std::size_t r = 0; r < R; ++r) acc[i][r0 + r] = a[i][r];
  }
  for (std::size_t i = 0; i < Q; ++i) out[i] = detail::transpose_sum(acc[i].data());
}

}  // namespace engram::inline v0::simd
