#pragma once
/// @file extract/parse_json_reply.hpp
/// Finds the JSON object in a language model's reply, whatever it wrapped around it.

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace engram::inline v0 {

namespace detail {

/// `text` without `<think>…</think>` blocks (an unclosed one runs to the end).
inline std::string strip_think_blocks(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto open = text.find("<think>", pos);
    if (open == std::string_view::npos) break;
    out.append(text.substr(pos, open - pos));
    const auto close = text.find("</think>", open);
    if (close == std::string_view::npos) return out;
    pos = close + 8;
  }
  if (pos < text.size()) out.append(text.substr(pos));
  return out;
}

/// The end (one past the closing brace) of the balanced JSON object starting at `text[begin] == '{'`,
/// honouring strings and escapes; npos when it never closes.
inline std::size_t json_object_end(std::string_view text, std::size_t begin) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = begin; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return i + 1;
      if (depth < 0) return std::string_view::npos;
    }
  }
  return std::string_view::npos;
}

}  // namespace detail

/// The JSON object in a model's reply, or std::nullopt when there is none.
///
/// Drops `<think>…</think>` blocks, then accepts the whole text as an object, or else the first balanced
/// `{…}` anywhere in it (inside a ```json fence, after a sentence of preamble) that parses as an object.
/// Never throws. Linear in the reply's length for well-formed replies; at worst quadratic in the number of
/// braces that fail to parse.
[[nodiscard]] inline std::optional<nlohmann::json> parse_json_reply(std::string_view reply) {
  const std::string text = detail::strip_think_blocks(reply);
  if (auto whole = nlohmann::json::parse(text, nullptr, false); !whole.is_discarded() && whole.is_object())
    return whole;
  for (std::size_t open = text.find('{'); open != std::string::npos; open = text.find('{', open + 1)) {
    const auto end = detail::json_object_end(text, open);
    if (end == std::string_view::npos) continue;
    auto j = nlohmann::json::parse(std::string_view(text).substr(open, end - open), nullptr, false);
    if (!j.is_discarded() && j.is_object()) return j;
  }
  return std::nullopt;
}

}  // namespace engram::inline v0
