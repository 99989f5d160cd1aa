#pragma once
/// @file tools/mem0_import.hpp
/// Migration from Mem0: reads the memories Mem0 hands out (its get_all answers, saved as JSON, or one memory per
/// line) into engram records, item by item, so that a bad item is reported with its place and the rest kept.
///
/// Accepted input, detected from the text:
///   - a JSON document: `{"results": [...]}` (the OSS `Memory.get_all`, the Platform's v1.1 answers), the paged
///     `{"count", "next", "previous", "results": [...]}` (the Platform's v2/v3 get_all), `{"memories": [...]}`,
///     a bare array (the Platform's v1.0 answers), or one memory object;
///   - JSON Lines: one memory object per line (blank lines are skipped).
/// The keys are those of Mem0's REST answers, or the camelCase of its TypeScript client's (`userId`, `createdAt`).
/// Each memory keeps its id, text (`memory`; `data` or `text` when absent), scope (`user_id`, `agent_id`,
/// `run_id`, or the Platform's `session_id` for the run), `metadata`, `categories` (into metadata.categories,
/// where engram keeps them), `created_at` / `updated_at` (ISO-8601, with or without a zone; none: the import's
/// time), `actor_id`, `role`, `immutable`, `expiration_date`, and `app_id` and `memory_type` (into metadata);
/// `entities` (engram's exports: the entities an LLM named, record::entities) when present.
/// The hash is computed again (MD5 of the text, as Mem0's); vectors are not read: the importer embeds the texts.
///
/// Ids: a UUID is kept (lower-cased). Any other id (`"mem_1"`, `42`) becomes the name-based UUID
/// mem0_id_to_uuid(id) (the same id always gives the same UUID, so importing a file again finds it) and is
/// kept in metadata.mem0_id.

#include <engram/detail/md5.hpp>
#include <engram/error.hpp>
#include <engram/json.hpp>
#include <engram/memory/options.hpp>
#include <engram/memory/validate.hpp>
#include <engram/rank/expiry.hpp>
#include <engram/record.hpp>
#include <engram/time.hpp>
#include <engram/uuid.hpp>
#include <engram/write_batch.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace engram::inline v0 {

/// A memory of the input that could not be read, and why.
struct mem0_bad_item {
  std::size_t line = 0;   ///< 1-based line where the item starts (0: unknown)
  std::size_t index = 0;  ///< 0-based position among the input's items (a document's list, or the lines holding one)
  std::string reason;     ///< what is wrong, naming the field

  /// "line 12" for JSON Lines, "item 3 (line 12)" for an item of a document.
  [[nodiscard]] std::string where(bool json_lines) const {
    const auto at = "line " + std::to_string(line);
    return json_lines ? at : "item " + std::to_string(index) + (line ? " (" + at + ")" : "");
  }
  friend bool operator==(const mem0_bad_item&, const mem0_bad_item&) = default;
};

/// What parse_mem0 read.
struct mem0_parse_result {
  std::vector<record> records;         ///< the good items, in input order (no vectors)
  std::vector<mem0_bad_item> bad;      ///< the others, in input order
  std::size_t items = 0;               ///< items seen: records.size() + bad.size()
  bool json_lines = false;             ///< the input was JSON Lines (else one JSON document)
};

/// The UUID engram gives a Mem0 id that is not one: MD5 of "mem0:" + id, with the version (3, name-based) and
/// variant bits set.
inline std::string mem0_id_to_uuid(std::string_view id) {
  std::string hex = detail::md5_hex("mem0:" + std::string(id));
  hex[12] = '3';
  hex[16] = "89ab"[(hex[16] >= 'a' ? hex[16] - 'a' + 10 : hex[16] - '0') & 3];
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" + hex.substr(16, 4) + "-" +
         hex.substr(20);
}

namespace detail {

/// The string field `key` of `item` ("" when absent or null). @throws validation_error for another type.
inline std::string mem0_string(const nlohmann::json& item, const char* key) {
  const auto it = item.find(key);
  if (it == item.end() || it->is_null()) return {};
  if (!it->is_string()) throw validation_error(std::string("'") + key + "' must be a string, got " + it->type_name());
  return it->get<std::string>();
}

/// `created_at` / `updated_at`: ISO-8601 text; nullopt when absent or null. @throws validation_error otherwise.
inline std::optional<timestamp> mem0_time(const nlohmann::json& item, const char* key) {
  const auto text = mem0_string(item, key);
  if (text.empty()) return std::nullopt;
  if (auto t = try_parse_iso8601(text)) return t;
  throw validation_error(std::string("'") + key + "' is not an ISO-8601 time: '" + printable(text) + "'");
}

/// The line (1-based) where each element of the items list starts: the top-level array, or the array under the
/// top-level object's key `key`. Expects valid JSON (parsed before).
inline std::vector<std::size_t> mem0_element_lines(std::string_view text, std::string_view key) {
  std::vector<std::size_t> out;
  std::size_t line = 1, depth = 0, target = 0, string_start = 0;
  bool in_string = false, escaped = false, want_element = false;
  std::string_view last_key;  // the last string read at depth 1 (a key of the top-level object)
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') ++line;
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') {
        in_string = false;
        if (depth == 1) last_key = text.substr(string_start, i - string_start);
      }
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    if (want_element && depth == target && c != ']') {
      out.push_back(line);
      want_element = false;
    }
    if (c == '"') {
      in_string = true;
      string_start = i + 1;
    } else if (c == '[' || c == '{') {
      ++depth;
      if (c == '[' && target == 0 && ((key.empty() && depth == 1) || (!key.empty() && depth == 2 && last_key == key))) {
        target = depth;
        want_element = true;
      }
    } else if (c == ']' || c == '}') {
      if (depth == target && c == ']') return out;
      --depth;
    } else if (c == ',' && depth == target && target != 0) {
      want_element = true;
    }
  }
  return out;
}

/// `item` with the camelCase keys of Mem0's TypeScript client (`userId`, `createdAt`, ...) spelled as its REST
/// answers spell them (`user_id`, `created_at`); a key given both ways keeps the snake_case value.
inline nlohmann::json mem0_snake_keys(const nlohmann::json& item) {
  nlohmann::json out = item;
  for (const auto& [camel, snake] : {std::pair{"userId", "user_id"}, {"agentId", "agent_id"}, {"runId", "run_id"},
                                      {"appId", "app_id"}, {"sessionId", "session_id"}, {"actorId", "actor_id"},
                                      {"createdAt", "created_at"}, {"updatedAt", "updated_at"},
                                      {"expirationDate", "expiration_date"}, {"memoryType", "memory_type"}})
    if (auto it = out.find(camel); it != out.end()) {
      if (!out.contains(snake)) out[snake] = *it;
      out.erase(camel);
    }
  return out;
}

}  // namespace detail

/// One Mem0 memory object as an engram record (see the file comment for the fields). `limits` are the memory's
/// (text and metadata sizes). @throws validation_error naming the field that is wrong or missing: a text that
/// is absent or blank, no scope (user_id, agent_id or run_id), metadata that is not an object or holds an
/// identity key, categories that are not strings, a time or an expiration_date that is not a date.
inline record mem0_record(const nlohmann::json& object, const memory_limits& limits = {}) {
  if (!object.is_object()) throw validation_error(std::string("expected a memory object, got ") + object.type_name());
  const nlohmann::json item = detail::mem0_snake_keys(object);
  const detail::input_rules rules(limits);
  record r;
  const auto id = item.find("id");
  if (id == item.end() || id->is_null() || (id->is_string() && id->get_ref<const std::string&>().empty()))
    throw validation_error("'id' is missing");
  if (!id->is_string() && !id->is_number_integer())
    throw validation_error(std::string("'id' must be a string, got ") + id->type_name());
  const std::string given = id->is_string() ? id->get<std::string>() : id->dump();
  r.metadata = nlohmann::json::object();
  if (const auto m = item.find("metadata"); m != item.end() && !m->is_null()) {
    if (!m->is_object()) throw validation_error(std::string("'metadata' must be an object, got ") + m->type_name());
    r.metadata = *m;
  }
  if (is_uuid(given)) {
    r.id = given;
    for (auto& ch : r.id) ch = (ch >= 'A' && ch <= 'F') ? static_cast<char>(ch - 'A' + 'a') : ch;
  } else {
    r.id = mem0_id_to_uuid(given);
    r.metadata["mem0_id"] = given;
  }

  for (const char* key : {"memory", "data", "text"}) {
    const auto it = item.find(key);
    if (it == item.end() || it->is_null()) continue;
    if (it->is_object() && it->contains("memory")) {  // the Platform's {"data": {"memory": "..."}}
      r.memory = detail::mem0_string(*it, "memory");
    } else {
      r.memory = detail::mem0_string(item, key);
    }
    break;
  }
  if (detail::is_blank(r.memory)) throw validation_error("'memory' (the text) is missing or blank");
  rules.text(r.memory, "'memory'");
  r.hash = detail::md5_hex(r.memory);

  r.user_id = detail::mem0_string(item, "user_id");
  r.agent_id = detail::mem0_string(item, "agent_id");
  r.run_id = detail::mem0_string(item, "run_id");
  if (r.run_id.empty()) r.run_id = detail::mem0_string(item, "session_id");
  if (r.scope().empty()) throw validation_error("no scope: give user_id, agent_id or run_id");
  r.actor_id = detail::mem0_string(item, "actor_id");
  r.role = detail::mem0_string(item, "role");

  if (const auto c = item.find("categories"); c != item.end() && !c->is_null()) {
    if (!c->is_array()) throw validation_error(std::string("'categories' must be a list, got ") + c->type_name());
    for (const auto& x : *c)
      if (!x.is_string()) throw validation_error("'categories' must list strings, got " + printable(x.dump()));
    r.metadata["categories"] = *c;
  }
  for (const char* key : {"app_id", "memory_type"})
    if (auto v = detail::mem0_string(item, key); !v.empty()) r.metadata[key] = v;
  rules.metadata(r.metadata, "'metadata'");

  const auto created = detail::mem0_time(item, "created_at");
  const auto updated = detail::mem0_time(item, "updated_at");
  r.created_at = created.value_or(updated.value_or(utc_now()));
  r.updated_at = updated.value_or(r.created_at);
  r.valid_from = r.created_at;

  if (auto e = detail::mem0_string(item, "expiration_date"); !e.empty()) {
    if (e.size() > 10)  // a time: its UTC day
      if (auto t = try_parse_iso8601(e)) e = format_iso8601(*t).substr(0, 10);
    try {
      (void)parse_expiration_day(e);
    } catch (const validation_error&) {
      throw validation_error("'expiration_date' is not a date (YYYY-MM-DD): '" + printable(e) + "'");
    }
    r.expiration_date = e;
  }
  if (const auto im = item.find("immutable"); im != item.end() && !im->is_null()) {
    if (!im->is_boolean()) throw validation_error(std::string("'immutable' must be a boolean, got ") + im->type_name());
    r.immutable = im->get<bool>();
  }
  // engram's own exports carry the entities an LLM named (record::entities): kept, since no model names them again
  if (const auto e = item.find("entities"); e != item.end() && !e->is_null())
    r.entities = detail::entities_from_json(*e, "memory", "entities");
  return r;
}

/// Reads Mem0's memories from `text` (a JSON document or JSON Lines, see the file comment). Bad items are
/// collected with their line and index, never thrown; an id given twice is a bad item (the later one).
/// @throws validation_error when the text as a whole is neither (e.g. a document that is not valid JSON: the
///         message names the line and column) or holds no list of memories.
inline mem0_parse_result parse_mem0(std::string_view text, const memory_limits& limits = {}) {
  mem0_parse_result out;
  std::unordered_map<std::string, std::size_t> seen;  // id -> line of its first item
  auto take = [&](const nlohmann::json& item, std::size_t line) {
    const auto index = out.items++;
    try {
      auto r = mem0_record(item, limits);
      if (auto [it, fresh] = seen.emplace(r.id, line); !fresh)
        throw validation_error("id '" + printable(r.id) + "' is given again (first at line " +
                               std::to_string(it->second) + ")");
      out.records.push_back(std::move(r));
    } catch (const validation_error& e) {
      out.bad.push_back({line, index, e.what()});
    }
  };

  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) throw validation_error("the input is empty: no memories to import");
  // One JSON document when the whole text is one; else JSON Lines when it starts with an object and some line
  // holds a complete object of its own; else the document's own error (naming its line and column).
  std::optional<nlohmann::json> parsed;
  bool lines = false;
  try {
    parsed = parse_json(text, "the Mem0 export");
  } catch (const validation_error&) {
    if (text[first] != '{') throw;
    for (std::size_t start = first; !lines && start < text.size();) {
      const auto end = std::min(text.find('\n', start), text.size());
      try {
        lines = parse_json(text.substr(start, end - start), "a line").is_object();
      } catch (const validation_error&) {
      }
      start = end + 1;
    }
    if (!lines) throw;
  }
  if (lines) {
    out.json_lines = true;
    std::size_t line_no = 0, start = 0;
    while (start <= text.size()) {
      const auto end = std::min(text.find('\n', start), text.size());
      const auto line = text.substr(start, end - start);
      ++line_no;
      start = end + 1;
      if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      nlohmann::json item;
      try {
        item = parse_json(line, "this line");
      } catch (const validation_error& e) {
        std::string reason = e.what();  // "this line: not valid JSON (parse error at line 1, column 9: ...)"
        reason.erase(0, reason.find(": ") + 2);
        if (const auto at = reason.find("at line 1, column"); at != std::string::npos) reason.erase(at + 3, 8);
        out.bad.push_back({line_no, out.items++, std::move(reason)});
        continue;
      }
      take(item, line_no);
    }
    return out;
  }

  const auto& doc = *parsed;
  std::string key;
  const nlohmann::json* list = nullptr;
  if (doc.is_array()) {
    list = &doc;
  } else if (doc.is_object()) {
    for (const char* k : {"results", "memories"})
      if (auto it = doc.find(k); it != doc.end() && it->is_array()) {
        key = k;
        list = &*it;
        break;
      }
    if (!list && !doc.contains("id"))
      throw validation_error("the Mem0 export holds no list of memories (expected \"results\" or \"memories\", "
                             "a list, or one memory per line)");
  } else {
    throw validation_error(std::string("the Mem0 export must be a JSON object or list, got ") + doc.type_name());
  }
  if (!list) {  // one memory object
    take(doc, 1 + static_cast<std::size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(first), '\n')));
    return out;
  }
  const auto starts = detail::mem0_element_lines(text, key);
  for (std::size_t i = 0; i < list->size(); ++i) take((*list)[i], i < starts.size() ? starts[i] : 0);
  return out;
}

/// The write batch that stores `records` as new memories: each with its ADD history event (at its created_at).
inline write_batch mem0_write_batch(std::vector<record> records) {
  write_batch batch;
  for (auto& r : records) {
    batch.events.push_back(history_event{make_uuid_v4(), r.id, std::nullopt, r.memory, event_kind::add, r.created_at,
                                         std::nullopt, false, r.actor_id, r.role});
    batch.upserts.push_back(std::move(r));
  }
  return batch;
}

}  // namespace engram::inline v0
