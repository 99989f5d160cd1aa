#pragma once
/// @file detail/fnv.hpp
/// FNV-1a, 64 bit: a fixed, platform-independent hash for feature hashing and file checksums' neighbours.

#include <cstdint>
#include <string_view>

namespace engram::inline v0::detail {

inline constexpr std::uint64_t fnv1a64_offset = 0xcbf29ce484222325ULL;

/// Continues an FNV-1a 64 hash over `data`.
constexpr std::uint64_t fnv1a64(std::string_view data, std::uint64_t h = fnv1a64_offset) noexcept {
  for (const char c : data) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return h;
}

/// A final avalanche (splitmix64's), so that low bits of close inputs differ.
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace engram::inline v0::detail
