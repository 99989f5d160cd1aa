#pragma once
/// @file simd/int8.hpp
/// Int8 scalar quantisation and the u8 x s8 dot product of the quantised scan. With AVX-512 VNNI in the
/// consumer's flags it uses vpdpbusd (xsimd 8.1 has no int8 dot product, hence the intrinsic); otherwise a
/// plain integer loop the compiler vectorises. Both return the exact integer result.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
#include <immintrin.h>
#endif

namespace engram::inline v0::simd {

/// Bytes per quantised row are padded to this multiple (one 512-bit register).
inline constexpr std::size_t int8_align = 64;

/// Symmetric per-vector quantisation: out[i] = round(v[i] / scale) in [-127, 127], scale = max|v| / 127
/// (0 for the zero vector). Writes n codes and returns {scale, sum of codes}.
struct int8_quantized {
  float scale = 0.0f;
  std::int32_t code_sum = 0;
};
inline int8_quantized quantize_int8(const float* v, std::size_t n, std::int8_t* out) noexcept {
  float m = 0.0f;
  for (std::size_t i = 0; i < n; ++i) m = std::max(m, std::abs(v[i]));
  int8_quantized q;
  if (m <= 0.0f) {
    std::fill(out, out + n, std::int8_t{0});
    return q;
  }
  q.scale = m / 127.0f;
  const float inv = 127.0f / m;
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<std::int32_t>(std::lrint(std::clamp(v[i] * inv, -127.0f, 127.0f)));
    out[i] = static_cast<std::int8_t>(c);
    q.code_sum += c;
  }
  return q;
}

/// Sum of a[i] * b[i] over n bytes, a unsigned, b signed. Preconditions: n is a multiple of int8_align and
/// both start on an int8_align boundary.
inline std::int32_t dot_u8s8(const std::uint8_t* a, const std::int8_t* b, std::size_t n) noexcept {
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
  __m512i acc = _mm512_setzero_si512();
  for (std::size_t i = 0; i < n; i += int8_align)
    acc = _mm512_dpbusd_epi32(acc, _mm512_load_si512(a + i), _mm512_load_si512(b + i));
  return _mm512_reduce_add_epi32(acc);
#else
  std::int32_t s = 0;
  for (std::size_t i = 0; i < n; ++i) s += std::int32_t{a[i]} * std::int32_t{b[i]};
  return s;
#endif
}

}  // namespace engram::inline v0::simd
