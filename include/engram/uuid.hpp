#pragma once
/// @file uuid.hpp
/// Random (version 4) UUIDs for memory and history ids.

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>  // getpid
#endif

namespace engram::inline v0 {

namespace detail {
inline long current_process_id() noexcept {
#if defined(__unix__) || defined(__APPLE__)
  return static_cast<long>(::getpid());
#else
  return 0;
#endif
}
inline std::mt19937_64 seeded_generator() {
  std::random_device rd;
  std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
  return std::mt19937_64{seq};
}
}  // namespace detail

/// A new random UUID v4 in its canonical lowercase text form. Thread-safe (one generator per thread,
/// seeded from std::random_device, and seeded again in a child after fork(), which would otherwise
/// repeat the parent's ids).
inline std::string make_uuid_v4() {
  thread_local std::mt19937_64 gen = detail::seeded_generator();
  thread_local long owner = detail::current_process_id();
  if (const long pid = detail::current_process_id(); pid != owner) {
    gen = detail::seeded_generator();
    owner = pid;
  }
  std::uint64_t hi = gen(), lo = gen();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 10
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  auto put = [&](std::uint64_t v, int nibbles_from, int nibbles_to) {
    for (int i = nibbles_from; i < nibbles_to; ++i) out.push_back(hex[(v >> (60 - 4 * i)) & 0xf]);
  };
  put(hi, 0, 8);
  out.push_back('-');
  put(hi, 8, 12);
  out.push_back('-');
  put(hi, 12, 16);
  out.push_back('-');
  put(lo, 0, 4);
  out.push_back('-');
  put(lo, 4, 16);
  return out;
}

/// True when `s` has the canonical 8-4-4-4-12 hex form of a UUID (any version).
inline bool is_uuid(std::string_view s) noexcept {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

}  // namespace engram::inline v0
