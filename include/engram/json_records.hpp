#pragma once
/// @file json_records.hpp
/// The JSON text of records and search hits written straight from the structs: the same bytes as
/// `dump_json(record_to_json(r, ...))` and `dump_json(nlohmann::json(hit))` (json.hpp's shapes), without
/// building the nlohmann objects first. A search answer is ten or more memories of about thirty members each
/// (the structured attributes included); building and freeing those objects cost more than writing the text.
///
/// Members are written in the order nlohmann's objects keep (sorted by key), the scope's further keys
/// (scope::tenant, scope::extra, at the top as record_to_json puts them) merged in. A record whose further
/// keys collide with a member's name, or with each other, is written through record_to_json instead, which
/// decides such collisions.

#include <engram/json.hpp>
#include <engram/json_dump.hpp>
#include <engram/record.hpp>
#include <engram/temporal/structured_attributes.hpp>
#include <engram/time.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace engram::inline v0 {

namespace detail {

/// The members record_to_json and a hit's to_json can write, in sorted order.
inline constexpr std::array<std::string_view, 24> record_member_names = {
    "actor_id",  "agent_id",     "categories", "created_at", "embedding", "entities",
    "expiration_date", "extra_scope", "hash", "id", "immutable", "invalid_at",
    "memory",    "metadata",     "role",       "run_id",     "score",     "score_details",
    "structured_attributes", "superseded_by", "tenant", "updated_at", "user_id", "valid_from"};

/// Appends `"key":`, with a comma before it unless it is the object's first member.
inline void append_json_key(std::string& out, std::string_view key, bool& first) {
  if (!first) out.push_back(',');
  first = false;
  append_json_string(out, key);
  out.push_back(':');
}

inline void append_structured_attributes_json(std::string& out, const structured_attributes& a) {
  bool first = true;
  out.push_back('{');
  const auto number = [&](std::string_view key, int v) {
    append_json_key(out, key, first);
    append_json_integer(out, v);
  };
  number("day", a.day);
  append_json_key(out, "day_of_week", first);
  append_json_string(out, a.day_of_week_name());
  number("day_of_year", a.day_of_year);
  number("hour", a.hour);
  append_json_key(out, "is_weekend", first);
  out += a.is_weekend ? "true" : "false";
  number("minute", a.minute);
  number("month", a.month);
  number("quarter", a.quarter);
  number("week_of_year", a.week_of_year);
  number("year", a.year);
  out.push_back('}');
}

inline void append_score_details_json(std::string& out, const score_details& d) {
  bool first = true;
  out.push_back('{');
  const std::pair<std::string_view, double> members[] = {
      {"access", d.access}, {"bm25", d.bm25},         {"cosine", d.cosine},   {"entity", d.entity},
      {"final", d.final},   {"importance", d.importance}, {"keyword", d.keyword}, {"recency", d.recency},
      {"semantic", d.semantic}};
  for (const auto& [key, v] : members) {
    append_json_key(out, key, first);
    append_json_float(out, v);
  }
  out.push_back('}');
}

/// The `key=value` lines of scope::tenant and scope::extra as (key, value) pairs, sorted by key; false when
/// there are more than fit, or a key repeats or is one of record_member_names (then record_to_json decides).
struct scope_members {
  std::array<std::pair<std::string_view, std::string_view>, 16> items;
  std::size_t size = 0;

  bool read(std::string_view lines) {
    while (!lines.empty()) {
      const auto line = lines.substr(0, lines.find('\n'));
      const auto eq = line.find('=');
      if (size == items.size() || eq == std::string_view::npos) return false;
      items[size++] = {line.substr(0, eq), line.substr(eq + 1)};
      lines.remove_prefix(std::min(lines.size(), line.size() + 1));
    }
    return true;
  }
  bool finish() {
    std::sort(items.begin(), items.begin() + static_cast<std::ptrdiff_t>(size));
    for (std::size_t i = 0; i < size; ++i) {
      if (i > 0 && items[i].first == items[i - 1].first) return false;
      if (std::binary_search(record_member_names.begin(), record_member_names.end(), items[i].first)) return false;
    }
    return true;
  }
};

/// Writes `r` (and the hit's members when `hit`) as one JSON object; false, having written nothing, when the
/// record's further scope keys need record_to_json (see the file comment).
inline bool append_record_members(std::string& out, const record& r, bool with_embedding, const search_hit* hit) {
  scope_members scope;
  if (!scope.read(r.tenant) || !scope.read(r.extra) || !scope.finish()) return false;
  bool first = true;
  std::size_t next_scope = 0;
  // `key`: the member about to be written; the further scope keys sorted before it go first
  const auto member = [&](std::string_view key) {
    for (; next_scope < scope.size && scope.items[next_scope].first < key; ++next_scope) {
      append_json_key(out, scope.items[next_scope].first, first);
      append_json_string(out, scope.items[next_scope].second);
    }
    append_json_key(out, key, first);
  };
  const auto text_if = [&](std::string_view key, const std::string& v) {
    if (v.empty()) return;
    member(key);
    append_json_string(out, v);
  };
  const auto time = [&](std::string_view key, timestamp t) {
    member(key);
    append_json_string(out, format_iso8601(t));
  };
  const auto lines = [&](std::string_view key, const std::string& v) {
    if (v.empty()) return;
    member(key);
    append_json(out, scope_lines_to_json(v));
  };
  const nlohmann::json* categories = nullptr;
  if (r.metadata.is_object())
    if (const auto c = r.metadata.find("categories"); c != r.metadata.end() && c->is_array()) categories = &*c;

  out.push_back('{');
  text_if("actor_id", r.actor_id);
  text_if("agent_id", r.agent_id);
  if (categories) {
    member("categories");
    append_json(out, *categories);
  }
  time("created_at", r.created_at);
  if (with_embedding) {
    member("embedding");
    out.push_back('[');
    for (std::size_t i = 0; i < r.embedding.size(); ++i) {
      if (i > 0) out.push_back(',');
      append_json_float(out, r.embedding[i]);
    }
    out.push_back(']');
  }
  if (r.entities) {
    member("entities");
    append_json(out, entities_to_json(*r.entities));
  }
  if (r.expiration_date) {
    member("expiration_date");
    append_json_string(out, *r.expiration_date);
  }
  lines("extra_scope", r.extra);
  member("hash");
  append_json_string(out, r.hash);
  member("id");
  append_json_string(out, r.id);
  if (r.immutable) {
    member("immutable");
    out += "true";
  }
  if (r.invalid_at) time("invalid_at", *r.invalid_at);
  member("memory");
  append_json_string(out, r.memory);
  member("metadata");
  if (r.metadata.is_object()) append_json(out, r.metadata);
  else out += "{}";
  text_if("role", r.role);
  text_if("run_id", r.run_id);
  if (hit) {
    member("score");
    append_json_float(out, hit->score);
    if (hit->details) {
      member("score_details");
      append_score_details_json(out, *hit->details);
    }
  }
  member("structured_attributes");
  append_structured_attributes_json(out, structured_attributes_of(r.valid_since()));
  if (r.superseded_by) {
    member("superseded_by");
    append_json_string(out, *r.superseded_by);
  }
  lines("tenant", r.tenant);
  time("updated_at", r.updated_at);
  text_if("user_id", r.user_id);
  time("valid_from", r.valid_since());
  for (; next_scope < scope.size; ++next_scope) {
    append_json_key(out, scope.items[next_scope].first, first);
    append_json_string(out, scope.items[next_scope].second);
  }
  out.push_back('}');
  return true;
}

}  // namespace detail

/// Appends `r` as JSON text: the bytes of `dump_json(record_to_json(r, with_embedding))`.
inline void append_record_json(std::string& out, const record& r, bool with_embedding = false) {
  if (!detail::append_record_members(out, r, with_embedding, nullptr)) append_json(out, record_to_json(r, with_embedding));
}

/// Appends `h` as JSON text: the bytes of `dump_json(nlohmann::json(h))`.
inline void append_hit_json(std::string& out, const search_hit& h) {
  if (!detail::append_record_members(out, h.record, false, &h)) append_json(out, nlohmann::json(h));
}

/// Appends `[x, ...]` for records or search hits.
template <class Range>
void append_json_list(std::string& out, const Range& items) {
  out.push_back('[');
  bool first = true;
  for (const auto& x : items) {
    if (!first) out.push_back(',');
    first = false;
    if constexpr (std::is_same_v<std::decay_t<decltype(x)>, search_hit>) append_hit_json(out, x);
    else append_record_json(out, x);
  }
  out.push_back(']');
}

}  // namespace engram::inline v0
