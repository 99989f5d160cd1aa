#pragma once
/// @file simd/scalar.hpp
/// Scalar reference kernels. The SIMD kernels are tested against these; they are also the fallback for
/// lengths too short to vectorise.

#include <cmath>
#include <cstddef>

namespace engram::inline v0::simd {

/// Sum of a[i] * b[i].
inline float dot_scalar(const float* a, const float* b, std::size_t n) noexcept {
  float s = 0.0f;
  for (std::size_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

/// Sum of (a[i] - b[i])^2.
inline float l2sq_scalar(const float* a, const float* b, std::size_t n) noexcept {
  float s = 0.0f;
  for (std::size_t i = 0; i < n; ++i) {
    const float d = a[i] - b[i];
    s += d * d;
  }
  return s;
}

/// Cosine similarity; 0 when either vector is zero.
inline float cosine_scalar(const float* a, const float* b, std::size_t n) noexcept {
  float ab = 0.0f, aa = 0.0f, bb = 0.0f;
  for (std::size_t i = 0; i < n; ++i) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  if (aa <= 0.0f || bb <= 0.0f) return 0.0f;
  return ab / (std::sqrt(aa) * std::sqrt(bb));
}

}  // namespace engram::inline v0::simd
