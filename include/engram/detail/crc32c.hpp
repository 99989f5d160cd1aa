#pragma once
/// @file detail/crc32c.hpp
/// CRC-32C (Castagnoli), the checksum of every file_store entry. On x86-64 the SSE4.2 instruction is used
/// whenever the CPU has it, chosen at run time when the build does not target SSE4.2 itself (a default build
/// reads a 2 GB snapshot several times faster that way); elsewhere slicing-by-8 tables computed at compile
/// time. Pure functions: thread-safe.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#endif

namespace engram::inline v0::detail {

inline constexpr std::array<std::array<std::uint32_t, 256>, 8> crc32c_tables = [] {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[0][i] = c;
  }
  for (std::uint32_t i = 0; i < 256; ++i)
    for (std::size_t s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFFu];
  return t;
}();

/// The table-driven kernel: extends the inverted state `c` over `n` bytes (any CPU).
inline std::uint32_t crc32c_tables_update(std::uint32_t c, const unsigned char* p, std::size_t n) noexcept {
  const auto& t = crc32c_tables;
  while (n >= 8) {
    const std::uint32_t lo = c ^ (std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 |
                                  std::uint32_t(p[3]) << 24);
    c = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^ t[3][p[4]] ^
        t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n--) c = (c >> 8) ^ t[0][(c ^ *p++) & 0xFF];
  return c;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/// The SSE4.2 kernel (same contract as crc32c_tables_update); call it only when crc32c_cpu_has_sse42().
[[gnu::target("sse4.2")]] inline std::uint32_t crc32c_sse42_update(std::uint32_t c, const unsigned char* p,
                                                                   std::size_t n) noexcept {
  std::uint64_t c64 = c;
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    c64 = _mm_crc32_u64(c64, w);
    p += 8;
    n -= 8;
  }
  c = static_cast<std::uint32_t>(c64);
  while (n--) c = _mm_crc32_u8(c, *p++);
  return c;
}

inline bool crc32c_cpu_has_sse42() noexcept {
#if defined(__SSE4_2__)
  return true;
#else
  static const bool yes = [] {
    __builtin_cpu_init();  // may run before main (a static initialiser): the CPU model must be read first
    return __builtin_cpu_supports("sse4.2") != 0;
  }();
  return yes;
#endif
}
#endif

/// Extends a CRC-32C `crc` (0 to start) over `n` bytes at `data`. O(n).
inline std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t n) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (crc32c_cpu_has_sse42()) return ~crc32c_sse42_update(~crc, p, n);
#endif
  return ~crc32c_tables_update(~crc, p, n);
}

/// CRC-32C of `n` bytes. crc32c("123456789") == 0xE3069283.
inline std::uint32_t crc32c(const void* data, std::size_t n) noexcept { return crc32c_extend(0, data, n); }

}  // namespace engram::inline v0::detail
