#pragma once
/// @file json.hpp
/// JSON in and out, in Mem0's shapes so that clients written for Mem0 read engram's output unchanged.
/// Found by ADL: `nlohmann::json j = rec;` and `j.get<engram::record>()` just work.
///
/// Shapes:
///   record         {"id","memory","hash","metadata","created_at","updated_at",
///                   "user_id"?,"agent_id"?,"run_id"?,"tenant"?,"extra_scope"? (the scope's further keys:
///                   {"org_id":...}, each also at the top, read from the objects only),"actor_id"?,"role"?,"expiration_date"?,"categories"?,
///                   "immutable"? (true only),"valid_from" (valid_from, else created_at),"invalid_at"?,
///                   "superseded_by"?,"structured_attributes","entities"? (when set: {"entities":[{"name","type"}],
///                   "relations":[{"source","relationship","target"}]}, an extractor's answer kept as given)}
///                  (+ "embedding" via record_to_json; "categories" repeats metadata["categories"] at the top,
///                  where Mem0 returns them; "structured_attributes" is Mem0's calendar breakdown of valid_from
///                  (temporal/structured_attributes.hpp); reading a record ignores both, they are derived)
///   search_hit     the record's fields plus "score" (and "score_details" when explained)
///   memory_event   {"id","memory","event","previous_memory"?}
///   history_event  {"id","memory_id","old_memory","new_memory","event","created_at","updated_at",
///                   "is_deleted","actor_id","role"}   (null where absent)
///   results(xs)    {"results":[...]}

#include <engram/entity/mentions.hpp>
#include <engram/error.hpp>
#include <engram/rank/expiry.hpp>
#include <engram/record.hpp>
#include <engram/temporal/structured_attributes.hpp>
#include <engram/text/utf8.hpp>
#include <engram/time.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdio>  // std::snprintf
#include <string>
#include <string_view>
#include <vector>

namespace engram::inline v0 {

namespace detail {
inline void put_if(nlohmann::json& j, const char* key, const std::string& v) {
  if (!v.empty()) j[key] = v;
}
inline const nlohmann::json* field(const nlohmann::json& j, const char* key, std::string_view what) {
  if (!j.is_object()) throw validation_error(std::string(what) + ": expected a JSON object, got " + j.type_name());
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}
inline std::string string_field(const nlohmann::json& j, const char* key, std::string_view what, bool required) {
  const auto* v = field(j, key, what);
  if (!v) {
    if (required) throw validation_error(std::string(what) + ": missing required field '" + key + "'");
    return {};
  }
  if (!v->is_string())
    throw validation_error(std::string(what) + ": field '" + key + "' must be a string, got " + v->type_name());
  return v->get<std::string>();
}
inline std::optional<timestamp> time_field(const nlohmann::json& j, const char* key, std::string_view what) {
  const auto s = string_field(j, key, what, false);
  if (s.empty()) return std::nullopt;
  if (auto t = try_parse_iso8601(s)) return t;
  throw validation_error(std::string(what) + ": field '" + key + "' is not an ISO-8601 timestamp: '" + s + "'");
}
inline nlohmann::json optional_text(const std::optional<std::string>& s) {
  return s ? nlohmann::json(*s) : nlohmann::json(nullptr);
}

/// record::entities as JSON: {"entities":[{"name","type"}],"relations":[{"source","relationship","target"}]}.
inline nlohmann::json entities_to_json(const recognized_entities& e) {
  auto entities = nlohmann::json::array();
  for (const auto& m : e.entities) entities.push_back({{"name", m.name}, {"type", to_string(m.type)}});
  auto relations = nlohmann::json::array();
  for (const auto& r : e.relations)
    relations.push_back({{"source", r.source}, {"relationship", r.relationship}, {"target", r.target}});
  return {{"entities", std::move(entities)}, {"relations", std::move(relations)}};
}

/// Reads entities_to_json's shape. A missing list is empty and a missing type is `name` (parse_entity_type
/// reads any other spelling as `name` too), but a value of the wrong JSON type is refused: the answer is kept
/// as the extractor's and must not be half-read. Errors begin with `what` and name field `field` ("entities").
/// @throws validation_error naming the offending field, e.g. "record: field 'entities.relations[0].target' ...".
inline recognized_entities entities_from_json(const nlohmann::json& j, std::string_view what, const std::string& field) {
  auto bad = [&](const std::string& path, const std::string& problem) {
    return validation_error(std::string(what) + ": field '" + path + "' " + problem);
  };
  if (!j.is_object()) throw bad(field, std::string("must be an object, got ") + j.type_name());
  auto list = [&](const char* key) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return nlohmann::json::array();
    if (!it->is_array()) throw bad(field + "." + key, std::string("must be an array, got ") + it->type_name());
    return *it;
  };
  // member `key` of element `i` of list `in`: a string, required unless there is a `fallback`
  auto text = [&](const nlohmann::json& x, const char* in, std::size_t i, const char* key, const char* fallback) {
    const std::string at = field + "." + in + "[" + std::to_string(i) + "]";
    if (!x.is_object()) throw bad(at, std::string("must be an object, got ") + x.type_name());
    const auto it = x.find(key);
    if ((it == x.end() || it->is_null()) && fallback) return std::string(fallback);
    if (it == x.end() || it->is_null()) throw bad(at + "." + key, "is missing");
    if (!it->is_string()) throw bad(at + "." + key, std::string("must be a string, got ") + it->type_name());
    return it->get<std::string>();
  };
  recognized_entities out;
  const auto entities = list("entities"), relations = list("relations");
  for (std::size_t i = 0; i < entities.size(); ++i)
    out.entities.push_back({text(entities[i], "entities", i, "name", nullptr),
                            parse_entity_type(text(entities[i], "entities", i, "type", "name"))});
  for (std::size_t i = 0; i < relations.size(); ++i)
    out.relations.push_back({text(relations[i], "relations", i, "source", nullptr),
                             text(relations[i], "relations", i, "relationship", nullptr),
                             text(relations[i], "relations", i, "target", nullptr)});
  return out;
}
}  // namespace detail

/// The deepest nesting parse_json accepts by default: a request, a metadata object, an import line.
inline constexpr std::size_t max_json_depth = 64;

/// `text` made safe to show on a terminal or inside a message: valid UTF-8 is kept, control characters
/// (C0, DEL, C1) become `\u001b`-style escapes and bytes that are not UTF-8 become `\xff`. O(n).
inline std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  char buf[8];
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (len == 0 || i + len > text.size() || !detail::is_valid_utf8(text.substr(i, len))) {
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
      ++i;
      continue;
    }
    // C1 controls are U+0080..U+009F, encoded C2 80..C2 9F.
    const bool control = len == 1 ? (c < 0x20 || c == 0x7f) : (len == 2 && c == 0xc2 && static_cast<unsigned char>(text[i + 1]) < 0xa0);
    if (control) {
      const unsigned cp = len == 1 ? c : static_cast<unsigned char>(text[i + 1]);
      std::snprintf(buf, sizeof buf, "\\u%04x", cp);
      out += buf;
    } else {
      out.append(text.substr(i, len));
    }
    i += len;
  }
  return out;
}

namespace detail {
/// The deepest nesting of `[` and `{` outside strings in `text`, as a JSON parser meets it up to the first error
/// (past one, the count may be anything: it only decides which parse runs).
inline std::size_t max_bracket_depth(std::string_view text) {
  std::size_t depth = 0, deepest = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}
}  // namespace detail

/// Parses JSON text that comes from outside (a request, a command-line argument, an import line) without
/// letting it exhaust the stack: nesting is counted while parsing and refused past `max_depth`, before any
/// recursive code sees the value. Strings must be valid UTF-8 (no overlong forms); numbers must fit a double.
/// @throws validation_error beginning with `what`: malformed JSON (with the byte offset), invalid UTF-8, a
///         number out of range, or nesting deeper than `max_depth`. The message holds only printable text.
inline nlohmann::json parse_json(std::string_view text, std::string_view what, std::size_t max_depth = max_json_depth) {
  const auto too_deep = [&] {
    return validation_error(std::string(what) + ": JSON nested deeper than " + std::to_string(max_depth) + " levels");
  };
  // The callback sees each container's depth (0 for the outermost) when it opens, before it is filled.
  const nlohmann::json::parser_callback_t limit = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
    if ((event == nlohmann::json::parse_event_t::object_start || event == nlohmann::json::parse_event_t::array_start) &&
        static_cast<std::size_t>(depth) >= max_depth)
      throw too_deep();
    return true;
  };
  try {
    // Most texts nest far less than the limit: counted first (brackets outside strings), they are parsed without
    // the callback, which nlohmann runs through a slower parser. Only a text that may be too deep takes it.
    if (detail::max_bracket_depth(text) <= max_depth) return nlohmann::json::parse(text.begin(), text.end());
    return nlohmann::json::parse(text.begin(), text.end(), limit);
  } catch (const nlohmann::json::parse_error& e) {
    std::string reason = e.what();
    if (const auto at = reason.find("parse error"); at != std::string::npos) reason.erase(0, at);
    throw validation_error(std::string(what) + ": not valid JSON (" + printable(reason) + ")");
  } catch (const nlohmann::json::out_of_range&) {  // a number beyond a double, e.g. 1e400
    throw validation_error(std::string(what) + ": a number is out of range (it must fit a 64-bit float)");
  }
}

inline void to_json(nlohmann::json& j, event_kind e) { j = std::string(to_string(e)); }
inline void from_json(const nlohmann::json& j, event_kind& e) {
  if (!j.is_string()) throw validation_error(std::string("event: expected a string, got ") + j.type_name());
  e = parse_event_kind(j.get<std::string>());
}

namespace detail {
/// Canonical scope lines (scope::tenant, scope::extra) as a JSON object of strings.
inline nlohmann::json scope_lines_to_json(std::string_view lines) {
  nlohmann::json o = nlohmann::json::object();
  while (!lines.empty()) {
    const auto line = lines.substr(0, lines.find('\n'));
    const auto eq = line.find('=');
    o[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
    lines.remove_prefix(std::min(lines.size(), line.size() + 1));
  }
  return o;
}

/// The canonical lines of field `key` of `j` (an object of strings; absent: none). @throws validation_error.
inline std::string scope_lines_from_json(const nlohmann::json& j, const char* key, std::string_view what) {
  const auto* o = field(j, key, what);
  if (!o || o->is_null()) return {};
  if (!o->is_object())
    throw validation_error(std::string(what) + ": field '" + key + "' must be an object, got " + o->type_name());
  std::string lines;
  for (const auto& [k, v] : o->items()) {
    if (!v.is_string())
      throw validation_error(std::string(what) + ": field '" + key + "." + k + "' must be a string, got " +
                             v.type_name());
    lines = with_scope_line(lines, k, v.get<std::string>());
  }
  validate_scope_lines(lines, key, what);
  return lines;
}
}  // namespace detail

/// The record as JSON; with `with_embedding` the vector is included as "embedding" (for export).
inline nlohmann::json record_to_json(const record& r, bool with_embedding) {
  // Members are emplaced into the object directly (every memory a route returns passes through here).
  nlohmann::json j = nlohmann::json::object();
  auto& o = *j.get_ptr<nlohmann::json::object_t*>();
  const auto put = [&](const char* key, auto&& value) { o.emplace(key, std::forward<decltype(value)>(value)); };
  const auto put_if = [&](const char* key, const std::string& v) {
    if (!v.empty()) put(key, v);
  };
  put("id", r.id);
  put("memory", r.memory);
  put("hash", r.hash);
  const auto& metadata = o.emplace("metadata", r.metadata.is_object() ? r.metadata : nlohmann::json::object()).first->second;
  put("created_at", format_iso8601(r.created_at));
  put("updated_at", format_iso8601(r.updated_at));
  put_if("user_id", r.user_id);
  put_if("agent_id", r.agent_id);
  put_if("run_id", r.run_id);
  for (const auto& [field, lines] : {std::pair{"tenant", &r.tenant}, std::pair{"extra_scope", &r.extra}}) {
    if (lines->empty()) continue;
    auto keys = detail::scope_lines_to_json(*lines);
    for (const auto& [k, v] : keys.items()) o.emplace(k, v);  // at the top too, where Mem0 has app_id
    put(field, std::move(keys));
  }
  put_if("actor_id", r.actor_id);
  put_if("role", r.role);
  if (r.expiration_date) put("expiration_date", *r.expiration_date);
  if (r.immutable) put("immutable", true);
  put("valid_from", format_iso8601(r.valid_since()));
  if (r.invalid_at) put("invalid_at", format_iso8601(*r.invalid_at));
  if (r.superseded_by) put("superseded_by", *r.superseded_by);
  put("structured_attributes", structured_attributes_of(r.valid_since()));
  if (r.entities) put("entities", detail::entities_to_json(*r.entities));
  if (const auto c = metadata.find("categories"); c != metadata.end() && c->is_array()) put("categories", *c);
  if (with_embedding) put("embedding", r.embedding);
  return j;
}

inline void to_json(nlohmann::json& j, const record& r) { j = record_to_json(r, false); }

/// Reads a record (as written by record_to_json). `hash` is recomputed by the memory when absent.
/// @throws validation_error naming the field that is missing or of the wrong type.
inline void from_json(const nlohmann::json& j, record& r) {
  constexpr std::string_view what = "record";
  r.id = detail::string_field(j, "id", what, true);
  r.memory = detail::string_field(j, "memory", what, true);
  r.hash = detail::string_field(j, "hash", what, false);
  if (const auto* m = detail::field(j, "metadata", what)) {
    if (!m->is_object())
      throw validation_error(std::string("record: field 'metadata' must be an object, got ") + m->type_name());
    r.metadata = *m;
  } else {
    r.metadata = nlohmann::json::object();
  }
  r.user_id = detail::string_field(j, "user_id", what, false);
  r.agent_id = detail::string_field(j, "agent_id", what, false);
  r.run_id = detail::string_field(j, "run_id", what, false);
  r.tenant = detail::scope_lines_from_json(j, "tenant", what);
  r.extra = detail::scope_lines_from_json(j, "extra_scope", what);
  r.actor_id = detail::string_field(j, "actor_id", what, false);
  r.role = detail::string_field(j, "role", what, false);
  r.created_at = detail::time_field(j, "created_at", what).value_or(timestamp{});
  r.updated_at = detail::time_field(j, "updated_at", what).value_or(r.created_at);
  const auto expiry = detail::string_field(j, "expiration_date", what, false);
  if (!expiry.empty()) (void)parse_expiration_day(expiry);  // throws validation_error for a bad date
  r.expiration_date = expiry.empty() ? std::nullopt : std::optional<std::string>(expiry);
  r.immutable = false;
  if (const auto* im = detail::field(j, "immutable", what)) {
    if (!im->is_boolean() && !im->is_null())
      throw validation_error(std::string("record: field 'immutable' must be a boolean, got ") + im->type_name());
    r.immutable = im->is_boolean() && im->get<bool>();
  }
  r.valid_from = detail::time_field(j, "valid_from", what);
  r.invalid_at = detail::time_field(j, "invalid_at", what);
  const auto successor = detail::string_field(j, "superseded_by", what, false);
  r.superseded_by = successor.empty() ? std::nullopt : std::optional<std::string>(successor);
  r.entities = std::nullopt;  // absent or null: recognised from the text; set (even empty): kept as given
  if (const auto* e = detail::field(j, "entities", what))
    r.entities = detail::entities_from_json(*e, what, "entities");
  r.embedding.clear();
  if (const auto* e = detail::field(j, "embedding", what)) {
    if (!e->is_array()) throw validation_error("record: field 'embedding' must be an array of numbers");
    r.embedding.reserve(e->size());
    for (const auto& x : *e) {
      if (!x.is_number()) throw validation_error("record: field 'embedding' must be an array of numbers");
      r.embedding.push_back(x.get<float>());
    }
  }
}

inline void to_json(nlohmann::json& j, const search_hit& h) {
  j = record_to_json(h.record, false);
  j["score"] = h.score;
  if (h.details)
    j["score_details"] = {{"semantic", h.details->semantic}, {"keyword", h.details->keyword},
                          {"recency", h.details->recency},   {"importance", h.details->importance},
                          {"access", h.details->access},     {"entity", h.details->entity},
                          {"final", h.details->final},
                          {"cosine", h.details->cosine},     {"bm25", h.details->bm25}};
}

inline void to_json(nlohmann::json& j, const memory_event& e) {
  j = nlohmann::json{{"id", e.id}, {"memory", e.memory}, {"event", to_string(e.event)}};
  if (e.previous_memory) j["previous_memory"] = *e.previous_memory;
}

inline void from_json(const nlohmann::json& j, memory_event& e) {
  constexpr std::string_view what = "memory event";
  e.id = detail::string_field(j, "id", what, true);
  e.memory = detail::string_field(j, "memory", what, false);
  e.event = parse_event_kind(detail::string_field(j, "event", what, true));
  const auto prev = detail::string_field(j, "previous_memory", what, false);
  e.previous_memory = prev.empty() ? std::nullopt : std::optional<std::string>(prev);
}

inline void to_json(nlohmann::json& j, const history_event& h) {
  j = nlohmann::json{{"id", h.id},
                     {"memory_id", h.memory_id},
                     {"old_memory", detail::optional_text(h.old_memory)},
                     {"new_memory", detail::optional_text(h.new_memory)},
                     {"event", to_string(h.event)},
                     {"created_at", format_iso8601(h.created_at)},
                     {"updated_at", h.updated_at ? nlohmann::json(format_iso8601(*h.updated_at)) : nullptr},
                     {"is_deleted", h.is_deleted},
                     {"actor_id", h.actor_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(h.actor_id)},
                     {"role", h.role.empty() ? nlohmann::json(nullptr) : nlohmann::json(h.role)}};
}

inline void from_json(const nlohmann::json& j, history_event& h) {
  constexpr std::string_view what = "history event";
  h.id = detail::string_field(j, "id", what, true);
  h.memory_id = detail::string_field(j, "memory_id", what, true);
  auto opt = [&](const char* k) -> std::optional<std::string> {
    if (!detail::field(j, k, what)) return std::nullopt;
    return detail::string_field(j, k, what, false);
  };
  h.old_memory = opt("old_memory");
  h.new_memory = opt("new_memory");
  h.event = parse_event_kind(detail::string_field(j, "event", what, true));
  h.created_at = detail::time_field(j, "created_at", what).value_or(timestamp{});
  h.updated_at = detail::time_field(j, "updated_at", what);
  const auto* del = detail::field(j, "is_deleted", what);
  if (del && !del->is_boolean()) throw validation_error("history event: field 'is_deleted' must be a boolean");
  h.is_deleted = del && del->get<bool>();
  h.actor_id = detail::string_field(j, "actor_id", what, false);
  h.role = detail::string_field(j, "role", what, false);
}

inline void to_json(nlohmann::json& j, const message& m) {
  j = nlohmann::json{{"role", m.role}, {"content", m.content}};
  if (!m.name.empty()) j["name"] = m.name;
}

/// Reads an OpenAI-style chat message. `content` may be a string or a list of parts, of which the
/// `{"type":"text","text":...}` ones are joined with newlines (images and other parts are not memory).
inline void from_json(const nlohmann::json& j, message& m) {
  constexpr std::string_view what = "message";
  m.role = detail::string_field(j, "role", what, false);
  if (m.role.empty()) m.role = "user";
  m.name = detail::string_field(j, "name", what, false);
  const auto* c = detail::field(j, "content", what);
  if (!c) throw validation_error("message: missing required field 'content'");
  if (c->is_string()) {
    m.content = c->get<std::string>();
  } else if (c->is_array()) {
    m.content.clear();
    for (const auto& part : *c) {
      if (part.is_string()) {
        if (!m.content.empty()) m.content += '\n';
        m.content += part.get<std::string>();
      } else if (part.is_object() && part.value("type", "") == "text" && part.contains("text") &&
                 part["text"].is_string()) {
        if (!m.content.empty()) m.content += '\n';
        m.content += part["text"].get<std::string>();
      }
    }
  } else {
    throw validation_error(std::string("message: field 'content' must be a string or a list of parts, got ") +
                           c->type_name());
  }
}

/// Wraps a list as Mem0 does: `{"results": [...]}`.
template <class Range>
nlohmann::json results(const Range& items) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& x : items) arr.push_back(nlohmann::json(x));
  return nlohmann::json{{"results", std::move(arr)}};
}

}  // namespace engram::inline v0
