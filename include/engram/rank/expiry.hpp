#pragma once
/// @file rank/expiry.hpp
/// Expiration dates of memories: `YYYY-MM-DD`, UTC. A memory is visible through the whole of its expiration
/// day and hidden from the next day on.

#include <engram/error.hpp>
#include <engram/time.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <string_view>

namespace engram::inline v0 {

/// Days since 1970-01-01 of a valid `YYYY-MM-DD` (exactly ten characters, a real calendar day).
/// @throws validation_error naming the text otherwise.
inline std::int32_t parse_expiration_day(std::string_view s) {
  using namespace std::chrono;
  int y = 0, m = 0, d = 0;
  if (s.size() == 10 && s[4] == '-' && s[7] == '-' && detail::parse_digits(s, 0, 4, y) &&
      detail::parse_digits(s, 5, 2, m) && detail::parse_digits(s, 8, 2, d)) {
    const year_month_day ymd{year{y}, month{unsigned(m)}, day{unsigned(d)}};
    if (ymd.ok()) return static_cast<std::int32_t>(sys_days{ymd}.time_since_epoch().count());
  }
  throw validation_error("expiration_date '" + std::string(s) + "' is not a date (expected YYYY-MM-DD, e.g. 2026-12-31)");
}

/// The UTC day of `t`, as days since 1970-01-01.
inline std::int32_t utc_day(timestamp t) noexcept {
  return static_cast<std::int32_t>(std::chrono::floor<std::chrono::days>(t).time_since_epoch().count());
}

/// "No expiration" as a day number.
inline constexpr std::int32_t never_expires = std::numeric_limits<std::int32_t>::max();

/// True when a memory expiring on day `expiry` is hidden on day `today` (the expiration day itself is visible).
constexpr bool is_expired(std::int32_t expiry, std::int32_t today) noexcept { return today > expiry; }

}  // namespace engram::inline v0
