#pragma once
/// @file simd/kernels.hpp
/// Float32 distance kernels over xsimd batches of the architecture the consumer compiles for (no runtime
/// dispatch): dot product, squared L2 distance and cosine similarity. Any length, any alignment.

#include <engram/simd/scalar.hpp>

#include <cmath>
#include <cstddef>

#include <xsimd/xsimd.hpp>

namespace engram::inline v0::simd {

/// The batch type of the compiled architecture (16 floats with AVX-512, 8 with AVX2, 4 with SSE).
using float_batch = xsimd::batch<float>;
/// Floats per batch.
inline constexpr std::size_t batch_width = float_batch::size;

}  // namespace engram::inline v0::simd

namespace engram::inline v0::detail {

/// Sum of the lanes of `b` (xsimd 8.1 spells it hadd; later versions reduce_add).
inline float hsum(const simd::float_batch& b) noexcept { return xsimd::hadd(b); }

}  // namespace engram::inline v0::detail

namespace engram::inline v0::simd {

/// Sum of a[i] * b[i] for i < n. Four independent accumulators; the tail shorter than a batch is scalar.
/// Complexity O(n); no alignment required.
inline float dot(const float* a, const float* b, std::size_t n) noexcept {
  constexpr std::size_t W = batch_width;
  float_batch s0(0.0f), s1(0.0f), s2(0.0f), s3(0.0f);
  std::size_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    s0 = xsimd::fma(float_batch::load_unaligned(a + i), float_batch::load_unaligned(b + i), s0);
    s1 = xsimd::fma(float_batch::load_unaligned(a + i + W), float_batch::load_unaligned(b + i + W), s1);
    s2 = xsimd::fma(float_batch::load_unaligned(a + i + 2 * W), float_batch::load_unaligned(b + i + 2 * W), s2);
    s3 = xsimd::fma(float_batch::load_unaligned(a + i + 3 * W), float_batch::load_unaligned(b + i + 3 * W), s3);
  }
  for (; i + W <= n; i += W) s0 = xsimd::fma(float_batch::load_unaligned(a + i), float_batch::load_unaligned(b + i), s0);
  return detail::hsum((s0 + s1) + (s2 + s3)) + dot_scalar(a + i, b + i, n - i);
}

/// Sum of (a[i] - b[i])^2 for i < n. Same structure as dot().
inline float l2sq(const float* a, const float* b, std::size_t n) noexcept {
  constexpr std::size_t W = batch_width;
  float_batch s0(0.0f), s1(0.0f), s2(0.0f), s3(0.0f);
  std::size_t i = 0;
  const auto step = [&](float_batch& s, std::size_t at) {
    const auto d = float_batch::load_unaligned(a + at) - float_batch::load_unaligned(b + at);
    s = xsimd::fma(d, d, s);
  };
  for (; i + 4 * W <= n; i += 4 * W) {
    step(s0, i);
    step(s1, i + W);
    step(s2, i + 2 * W);
    step(s3, i + 3 * W);
  }
  for (; i + W <= n; i += W) step(s0, i);
  return detail::hsum((s0 + s1) + (s2 + s3)) + l2sq_scalar(a + i, b + i, n - i);
}

/// Cosine similarity of a and b; 0 when either is the zero vector. Two accumulator sets (ab, aa, bb).
inline float cosine(const float* a, const float* b, std::size_t n) noexcept {
  constexpr std::size_t W = batch_width;
  float_batch ab0(0.0f), ab1(0.0f), aa0(0.0f), aa1(0.0f), bb0(0.0f), bb1(0.0f);
  std::size_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const auto x0 = float_batch::load_unaligned(a + i), y0 = float_batch::load_unaligned(b + i);
    const auto x1 = float_batch::load_unaligned(a + i + W), y1 = float_batch::load_unaligned(b + i + W);
    ab0 = xsimd::fma(x0, y0, ab0);
    aa0 = xsimd::fma(x0, x0, aa0);
    bb0 = xsimd::fma(y0, y0, bb0);
    ab1 = xsimd::fma(x1, y1, ab1);
    aa1 = xsimd::fma(x1, x1, aa1);
    bb1 = xsimd::fma(y1, y1, bb1);
  }
  for (; i + W <= n; i += W) {
    const auto x = float_batch::load_unaligned(a + i), y = float_batch::load_unaligned(b + i);
    ab0 = xsimd::fma(x, y, ab0);
    aa0 = xsimd::fma(x, x, aa0);
    bb0 = xsimd::fma(y, y, bb0);
  }
  float ab = detail::hsum(ab0 + ab1), aa = detail::hsum(aa0 + aa1), bb = detail::hsum(bb0 + bb1);
  for (; i < n; ++i) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  if (aa <= 0.0f || bb <= 0.0f) return 0.0f;
  return ab / (std::sqrt(aa) * std::sqrt(bb));
}

}  // namespace engram::inline v0::simd
