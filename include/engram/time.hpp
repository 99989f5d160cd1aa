#pragma once
/// @file time.hpp
/// UTC timestamps with microsecond resolution, and their ISO-8601 text form.

#include <engram/error.hpp>

#include <charconv>  // std::from_chars
#include <cstdio>    // std::snprintf
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace engram::inline v0 {

/// A point in time, UTC, microseconds.
using timestamp = std::chrono::sys_time<std::chrono::microseconds>;

/// The current time, UTC.
inline timestamp utc_now() {
  return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
}

/// Formats as `YYYY-MM-DDTHH:MM:SS.ffffff+00:00` (the form Python's `datetime.isoformat()` gives and parses).
inline std::string format_iso8601(timestamp t) {
  using namespace std::chrono;
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  auto rest = t - day;
  const auto h = duration_cast<hours>(rest);
  rest -= h;
  const auto m = duration_cast<minutes>(rest);
  rest -= m;
  const auto s = duration_cast<seconds>(rest);
  rest -= s;
  const auto us = rest.count();
  const int y = int(ymd.year());
  if (y < 0 || y > 9999) {  // outside the fixed-width form below
    char buf[48];
    const int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%06lld+00:00", y,
                                unsigned(ymd.month()), unsigned(ymd.day()), int(h.count()), int(m.count()),
                                int(s.count()), static_cast<long long>(us));
    return std::string(buf, static_cast<std::size_t>(n));
  }
  // Written digit by digit: every memory a route returns carries three of these (snprintf was most of it).
  std::string out = "0000-00-00T00:00:00.000000+00:00";
  const auto digits = [&](std::size_t at, long long v, int width) {
    for (int i = width - 1; i >= 0; --i, v /= 10) out[at + static_cast<std::size_t>(i)] = static_cast<char>('0' + v % 10);
  };
  digits(0, y, 4);
  digits(5, unsigned(ymd.month()), 2);
  digits(8, unsigned(ymd.day()), 2);
  digits(11, h.count(), 2);
  digits(14, m.count(), 2);
  digits(17, s.count(), 2);
  digits(20, us, 6);
  return out;
}

namespace detail {
inline bool parse_digits(std::string_view s, std::size_t pos, std::size_t count, int& out) {
  if (pos + count > s.size()) return false;
  for (std::size_t i = pos; i < pos + count; ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  return std::from_chars(s.data() + pos, s.data() + pos + count, out).ec == std::errc{};
}
}  // namespace detail

/// Parses ISO-8601: `YYYY-MM-DD`, optionally `THH:MM[:SS[.fraction]]` (or a space for `T`), optionally `Z`
/// or an offset `±HH:MM` / `±HHMM` / `±HH`. A time without an offset is taken as UTC.
/// @returns std::nullopt when the text is not such a timestamp (never throws).
inline std::optional<timestamp> try_parse_iso8601(std::string_view s) {
  using namespace std::chrono;
  int y = 0, mo = 0, d = 0, hh = 0, mi = 0, ss = 0;
  if (s.size() < 10 || !detail::parse_digits(s, 0, 4, y) || s[4] != '-' || !detail::parse_digits(s, 5, 2, mo) ||
      s[7] != '-' || !detail::parse_digits(s, 8, 2, d))
    return std::nullopt;
  const year_month_day ymd{year{y}, month{unsigned(mo)}, day{unsigned(d)}};
  if (!ymd.ok()) return std::nullopt;
  std::size_t pos = 10;
  std::int64_t micros = 0;
  if (pos < s.size() && (s[pos] == 'T' || s[pos] == 't' || s[pos] == ' ')) {
    ++pos;
    if (!detail::parse_digits(s, pos, 2, hh) || pos + 2 >= s.size() || s[pos + 2] != ':' ||
        !detail::parse_digits(s, pos + 3, 2, mi))
      return std::nullopt;
    pos += 5;
    if (pos < s.size() && s[pos] == ':') {
      if (!detail::parse_digits(s, pos + 1, 2, ss)) return std::nullopt;
      pos += 3;
      if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
        ++pos;
        std::int64_t scale = 100000;
        std::size_t digits = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
          if (scale > 0) micros += (s[pos] - '0') * scale;
          scale /= 10;
          ++pos;
          ++digits;
        }
        if (digits == 0) return std::nullopt;
      }
    }
    if (hh > 23 || mi > 59 || ss > 60) return std::nullopt;  // 60: a leap second, folded into the next
  }
  std::int64_t offset_minutes = 0;
  if (pos < s.size()) {
    if (s[pos] == 'Z' || s[pos] == 'z') {
      ++pos;
    } else if (s[pos] == '+' || s[pos] == '-') {
      const int sign = s[pos] == '-' ? -1 : 1;
      int oh = 0, om = 0;
      if (!detail::parse_digits(s, pos + 1, 2, oh)) return std::nullopt;
      pos += 3;
      if (pos < s.size() && s[pos] == ':') ++pos;
      if (pos < s.size()) {
        if (!detail::parse_digits(s, pos, 2, om)) return std::nullopt;
        pos += 2;
      }
      if (oh > 23 || om > 59) return std::nullopt;
      offset_minutes = sign * (oh * 60 + om);
    } else {
      return std::nullopt;
    }
  }
  if (pos != s.size()) return std::nullopt;
  auto t = sys_days{ymd} + hours{hh} + minutes{mi} + seconds{ss} + microseconds{micros} - minutes{offset_minutes};
  return time_point_cast<microseconds>(t);
}

/// Like try_parse_iso8601, but a text that is not a timestamp is a validation_error naming it.
inline timestamp parse_iso8601(std::string_view s) {
  if (auto t = try_parse_iso8601(s)) return *t;
  throw validation_error("not an ISO-8601 timestamp: '" + std::string(s) +
                         "' (expected e.g. 2024-05-01T12:00:00Z or 2024-05-01)");
}

}  // namespace engram::inline v0
