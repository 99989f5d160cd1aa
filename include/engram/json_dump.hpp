#pragma once
/// @file json_dump.hpp
/// Compact JSON text, byte for byte what `j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)`
/// writes, about twice as fast (bench/json.cpp): plain runs of a string are copied eight bytes at a time
/// instead of decoded byte by byte. Every answer engram-server sends, every exported or journalled line, goes
/// through here; a search answer is mostly strings (ids, texts, timestamps).
///
/// Same output as nlohmann's: UTF-8 kept as is (not \u-escaped), control characters escaped (\b \t \n \f \r,
/// others as \u00xx), objects in their key order, floats in nlohmann's shortest round-trip form ("1.0",
/// "0.25", "1e-05"), NaN and infinities as null; a string that is not valid UTF-8 is written as nlohmann
/// writes it with `replace` (each bad sequence becomes U+FFFD).

#include <engram/text/utf8.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace engram::inline v0 {

namespace detail {

/// True when none of the eight bytes of `x` needs escaping in a JSON string: no '"', no '\\', nothing
/// below 0x20, and (unless `high_ok`) nothing from 0x80 up.
inline bool plain_json_bytes(std::uint64_t x, bool high_ok) noexcept {
  constexpr std::uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
  // high bit of a byte set where it is zero (exact as an "any" test; the usual SWAR zero-byte test)
  const auto zero = [&](std::uint64_t v) { return (v - ones) & ~v; };
  const std::uint64_t low = (x - ones * 0x20) & ~x;  // some byte below 0x20 (for bytes below 0x80)
  std::uint64_t hits = low | zero(x ^ (ones * '"')) | zero(x ^ (ones * '\\'));
  if (!high_ok) hits |= x;
  return (hits & high) == 0;
}

inline void append_json_string(std::string& out, std::string_view s) {
  const auto mark = out.size();
  out.push_back('"');
  const char* p = s.data();
  const std::size_t n = s.size();
  bool high_ok = false;  // set once the string is known to be valid UTF-8
  std::size_t run = 0, i = 0;  // [run, i) is plain and not yet appended
  while (i < n) {
    if (i + 8 <= n) {
      std::uint64_t x;
      std::memcpy(&x, p + i, 8);
      if (plain_json_bytes(x, high_ok)) {
        i += 8;
        continue;
      }
    }
    const auto c = static_cast<unsigned char>(p[i]);
    if (c >= 0x80) {
      if (!high_ok) {
        if (!is_valid_utf8(s.substr(i))) {  // nlohmann's replacement rules, exactly: write it as it does
          out.resize(mark);
          out += nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
          return;
        }
        high_ok = true;
      }
      ++i;
      continue;
    }
    if (c >= 0x20 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    out.append(p + run, i - run);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default: {
        constexpr char hex[] = "0123456789abcdef";
        const char e[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        out.append(e, sizeof e);
      }
    }
    run = ++i;
  }
  out.append(p + run, n - run);
  out.push_back('"');
}

inline void append_json_float(std::string& out, double x) {
  if (!std::isfinite(x)) {
    out += "null";
    return;
  }
  std::array<char, 64> buf;  // nlohmann's own formatter: its layout rules ("1.0", exponents) and digits
  const char* end = nlohmann::detail::to_chars(buf.data(), buf.data() + buf.size(), x);
  out.append(buf.data(), static_cast<std::size_t>(end - buf.data()));
}

template <class Int>
void append_json_integer(std::string& out, Int v) {
  std::array<char, 24> buf;
  const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  out.append(buf.data(), static_cast<std::size_t>(r.ptr - buf.data()));
}

/// append_json for any nlohmann::basic_json (json, whose members are sorted, and ordered_json, whose members keep
/// their insertion order).
template <class Json>
void append_basic_json(std::string& out, const Json& j) {
  using value_t = typename Json::value_t;
  switch (j.type()) {
    case value_t::object: {
      const auto& o = j.template get_ref<const typename Json::object_t&>();
      out.push_back('{');
      bool first = true;
      for (const auto& [k, v] : o) {
        if (!first) out.push_back(',');
        first = false;
        append_json_string(out, k);
        out.push_back(':');
        append_basic_json(out, v);
      }
      out.push_back('}');
      return;
    }
    case value_t::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& v : j.template get_ref<const typename Json::array_t&>()) {
        if (!first) out.push_back(',');
        first = false;
        append_basic_json(out, v);
      }
      out.push_back(']');
      return;
    }
    case value_t::string: append_json_string(out, j.template get_ref<const std::string&>()); return;
    case value_t::boolean: out += j.template get<bool>() ? "true" : "false"; return;
    case value_t::number_integer: append_json_integer(out, j.template get<std::int64_t>()); return;
    case value_t::number_unsigned: append_json_integer(out, j.template get<std::uint64_t>()); return;
    case value_t::number_float: append_json_float(out, j.template get<double>()); return;
    case value_t::null: out += "null"; return;
    case value_t::discarded: out += "<discarded>"; return;  // as nlohmann writes it (never a parse result)
    case value_t::binary: out += j.dump(-1, ' ', false, Json::error_handler_t::replace); return;
  }
}

}  // namespace detail

/// Appends `j` to `out` as compact JSON (see the file comment).
inline void append_json(std::string& out, const nlohmann::json& j) { detail::append_basic_json(out, j); }

/// Appends `j` to `out` as compact JSON, members in their insertion order.
inline void append_json(std::string& out, const nlohmann::ordered_json& j) { detail::append_basic_json(out, j); }

/// `j` as compact JSON (see the file comment).
inline std::string dump_json(const nlohmann::json& j) {
  std::string out;
  append_json(out, j);
  return out;
}

/// `j` as compact JSON, members in their insertion order.
inline std::string dump_json(const nlohmann::ordered_json& j) {
  std::string out;
  append_json(out, j);
  return out;
}

}  // namespace engram::inline v0
