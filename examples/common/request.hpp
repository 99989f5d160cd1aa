#pragma once
/// @file examples/common/request.hpp
/// The door every request from outside comes through, in engram-server (its REST routes and /mcp), engram-mcp
/// and the CLI: JSON bodies, path ids and query strings are checked here (nesting, UTF-8, types, numbers) and
/// a malformed one becomes an engram::validation_error naming the field, which errors.hpp maps to a 400 (exit
/// 2 in the CLI). Nothing past this layer sees text that is not UTF-8 or JSON nested deeper than
/// engram::max_json_depth. Error answers are built here too, from printable text only.

#include "errors.hpp"

#include <engram/error.hpp>
#include <engram/json.hpp>
#include <engram/json_dump.hpp>
#include <engram/record.hpp>  // engram::message
#include <engram/text/utf8.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace engram_app {

using nlohmann::json;

/// The deepest JSON nesting a request may have (checked while parsing, before anything else reads it).
inline constexpr std::size_t max_json_depth = engram::max_json_depth;

/// Parses a request body of any JSON type (JSON-RPC takes batches); an empty body is `{}`.
/// @throws engram::validation_error: malformed JSON, invalid UTF-8, a number out of range, nesting too deep.
inline json parse_body(std::string_view body) {
  if (body.empty()) return json::object();
  return engram::parse_json(body, "request body");
}

/// Parses a body that must be a JSON object (every REST route that takes one). @throws as parse_body, and
/// for `[]`, `"str"`, `42` or `null`.
inline json parse_object_body(std::string_view body) {
  auto j = parse_body(body);
  if (!j.is_object())
    throw engram::validation_error(std::string("request body must be a JSON object, got ") + j.type_name());
  return j;
}

/// A memory id taken from a path (already percent-decoded). @throws engram::validation_error when it is not
/// UTF-8 (`%FF`, the overlong `%C0%AE`) or holds a control character: no memory can have such an id.
inline std::string path_id(std::string_view raw) {
  if (!engram::detail::is_valid_utf8(raw))
    throw engram::validation_error("the memory id in the path is not valid UTF-8: '" + engram::printable(raw) + "'");
  if (std::any_of(raw.begin(), raw.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }))
    throw engram::validation_error("the memory id in the path holds a control character: '" + engram::printable(raw) + "'");
  return std::string(raw);
}

/// The query parameters of a request (name, value pairs) as a JSON object of strings, as the service reads
/// scope and paging from. @throws engram::validation_error naming a parameter whose name or value is not UTF-8.
template <class Params>
json query_json(const Params& params) {
  json j = json::object();
  for (const auto& [k, v] : params) {
    if (!engram::detail::is_valid_utf8(k))
      throw engram::validation_error("a query parameter's name is not valid UTF-8: '" + engram::printable(k) + "'");
    if (!engram::detail::is_valid_utf8(v))
      throw engram::validation_error("query parameter '" + k + "' is not valid UTF-8: '" + engram::printable(v) + "'");
    j[k] = v;
  }
  return j;
}

/// A whole number field: a JSON integer, or (from a query string) a string of decimal digits. nullopt when
/// absent or null. @throws engram::validation_error naming `key` for any other type, a sign, a fraction, or
/// a value outside [lo, hi] (so "-1" is refused instead of wrapping around to 2^64-1).
inline std::optional<std::size_t> whole_number(const json& obj, const char* key, std::size_t lo, std::size_t hi) {
  if (!obj.is_object()) return std::nullopt;
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  const auto range = [&] {
    return "'" + std::string(key) + "' must be a whole number from " + std::to_string(lo) + " to " + std::to_string(hi);
  };
  std::size_t n = 0;
  if (it->is_number_unsigned()) {
    n = it->get<std::size_t>();
  } else if (it->is_number_integer()) {  // signed: a negative number, or a value built in C++ (json(5))
    const auto v = it->get<std::int64_t>();
    if (v < 0) throw engram::validation_error(range() + ", got " + it->dump());
    n = static_cast<std::size_t>(v);
  } else if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    const bool digits = !s.empty() && s.size() <= 19 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits) throw engram::validation_error(range() + ", got '" + engram::printable(s) + "'");
    n = std::stoull(s);
  } else {
    throw engram::validation_error(range() + ", got " + std::string(it->type_name()) + " " +
                                   engram::dump_json(*it));
  }
  if (n < lo || n > hi) throw engram::validation_error(range() + ", got " + std::to_string(n));
  return n;
}

/// Refuses messages that hold no text: a message list (or a string) whose every content is empty or blank
/// is a validation_error, the same for every route, tool and command, instead of storing nothing silently.
inline void require_text(const std::vector<engram::message>& messages, std::string_view what) {
  const auto blank = [](const std::string& s) { return s.find_first_not_of(" \t\r\n\f\v") == std::string::npos; };
  if (std::all_of(messages.begin(), messages.end(), [&](const engram::message& m) { return blank(m.content); }))
    throw engram::validation_error(std::string(what) + " holds no text: an empty or blank message stores nothing");
}

/// A `{"detail": ...}` error body, always serialisable (invalid UTF-8 in `detail` is escaped, never thrown).
inline std::string error_body(std::string_view detail) {
  return json{{"detail", engram::printable(detail)}}.dump();
}

/// JSON as an answer body: text that somehow is not UTF-8 is replaced rather than failing the answer.
inline std::string answer_body(const json& j) { return engram::dump_json(j); }

/// What a route answers: a JSON value, or the JSON text already written (a search writes its memories straight
/// to text: engram/json_records.hpp). Made from a json implicitly, so a route returning json needs no change.
struct answer {
  answer(json j) : value(std::move(j)) {}  // NOLINT(google-explicit-constructor): every route returns json
  static answer text(std::string body) {
    answer a{json()};
    a.body = std::move(body);
    a.written = true;
    return a;
  }
  json value;
  std::string body;
  bool written = false;
};

inline std::string answer_body(answer a) { return a.written ? std::move(a.body) : engram::dump_json(a.value); }

}  // namespace engram_app
