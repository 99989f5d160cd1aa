#pragma once
/// @file tools/jsonl.hpp
/// Moving memories between stores and machines: export a store (or one scope) as JSON Lines, import it back.
///
/// Format, one JSON object per line:
///   {"type":"engram-export","format":1,"engram":"0.1.0","embedder":"hashing-v1","dimension":384,
///    "scope_keys"?: the store's key set beyond Mem0's}   (first)
///   {"type":"memory", <record as record_to_json, "embedding" when vectors are exported>}
///   {"type":"history", <history_event as to_json>}
/// Records come oldest first (ties by id); the history of a memory follows, oldest first. The header names
/// the identity only when the store has one.
///
/// Import the file into a store, then open a basic_memory over that store: the index is rebuilt from the
/// stored vectors (or, for an export without vectors, by embedding the texts once).

#include <engram/capabilities.hpp>
#include <engram/error.hpp>
#include <engram/json.hpp>
#include <engram/json_dump.hpp>
#include <engram/record.hpp>
#include <engram/scope.hpp>
#include <engram/write_batch.hpp>
#include <engram/version.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <unordered_set>
#include <vector>

namespace engram::inline v0 {

/// What export_jsonl writes.
struct export_options {
  bool with_vectors = true;        ///< include each record's embedding (import then needs no embedder)
  bool with_history = true;        ///< include history events
  std::optional<scope> only = {};  ///< export only the memories this scope selects (and their history)
};

/// What an export or import moved.
struct jsonl_counts {
  std::size_t memories = 0;
  std::size_t events = 0;
  friend bool operator==(const jsonl_counts&, const jsonl_counts&) = default;
};

/// Writes the store (or the scope in `options.only`) to `out` as JSON Lines. The history of deleted
/// memories is exported for a whole-store export when the store can enumerate it (`for_each_history`).
/// Reads the store under its own locking; concurrent writers may or may not be included. O(n log n).
/// @throws validation_error for an empty or malformed `only` scope; storage_error when `out` fails.
template <record_store Store>
jsonl_counts export_jsonl(const Store& store, std::ostream& out, const export_options& options = {}) {
  if (options.only) validate_scope(*options.only, "export");
  nlohmann::json head{{"type", "engram-export"}, {"format", storage_format_version}, {"engram", version_string}};
  if constexpr (identity_reporting_store<Store>) {
    if (auto id = store.identity()) {
      head["embedder"] = id->embedder;
      head["dimension"] = id->dimension;
      if (!id->scope_keys.empty()) head["scope_keys"] = id->scope_keys;
    }
  }
  out << head.dump() << '\n';

  std::vector<record> records;
  store.for_each([&](const record& r) {
    if (!options.only || options.only->selects(r.scope())) records.push_back(r);
  });
  std::sort(records.begin(), records.end(), [](const record& a, const record& b) {
    return a.created_at != b.created_at ? a.created_at < b.created_at : a.id < b.id;
  });
  jsonl_counts n;
  std::vector<std::string> ids;
  for (const auto& r : records) {
    auto j = record_to_json(r, options.with_vectors);
    j["type"] = "memory";
    out << engram::dump_json(j) << '\n';
    ids.push_back(r.id);
    ++n.memories;
  }
  if (options.with_history) {
    if constexpr (history_listing_store<Store>) {
      if (!options.only) {
        ids.clear();
        std::unordered_set<std::string> seen;
        store.for_each_history([&](const history_event& e) {
          if (seen.insert(e.memory_id).second) ids.push_back(e.memory_id);
        });
        std::sort(ids.begin(), ids.end());
      }
    }
    for (const auto& id : ids)
      for (const auto& e : store.history(id)) {
        nlohmann::json j = e;
        j["type"] = "history";
        out << engram::dump_json(j) << '\n';
        ++n.events;
      }
  }
  out.flush();
  if (!out) throw storage_error("export: writing the JSON Lines output failed");
  return n;
}

/// Reads an export and applies it to `store` as one write batch: all of it or, on any error, none of it.
/// Records replace stored ones with the same id; history events are appended. When the export carries
/// vectors and names an embedder, a store with `bind` is bound to that identity first (a store bound to
/// another identity refuses, naming both).
/// Each line is read by parse_json: nesting deeper than max_json_depth, invalid UTF-8 or a number out of
/// range is refused like any malformed line.
/// @throws validation_error naming the line number and what is wrong with it.
template <record_store Store>
jsonl_counts import_jsonl(Store& store, std::istream& in) {
  write_batch batch;
  std::optional<store_identity> identity;
  std::string line;
  std::size_t line_no = 0;
  bool any_vector = false;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto where = "import: line " + std::to_string(line_no);
    // Depth-limited, so a hostile line cannot exhaust the stack of the copies below.
    const nlohmann::json j = parse_json(line, where);
    if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
      throw validation_error(where + ": expected an object with a \"type\" string");
    const auto type = j["type"].get<std::string>();
    try {
      if (type == "engram-export") {
        if (j.contains("format") && j["format"] != storage_format_version)
          throw validation_error(where + ": export format " + j["format"].dump() + ", this engram reads " +
                                 std::to_string(storage_format_version));
        if (j.contains("embedder") && j.contains("dimension"))
          identity = store_identity{j["embedder"].get<std::string>(), j["dimension"].get<std::size_t>(),
                                    j.value("scope_keys", std::string())};
      } else if (type == "memory") {
        auto r = j.get<record>();
        if (!r.embedding.empty()) {
          any_vector = true;
          if (identity && r.embedding.size() != identity->dimension)
            throw dimension_mismatch(identity->dimension, r.embedding.size(), where + ": memory '" + r.id + "'");
        }
        batch.upserts.push_back(std::move(r));
      } else if (type == "history") {
        batch.events.push_back(j.get<history_event>());
      } else {
        throw validation_error(where + ": unknown type '" + type + "' (expected memory, history or engram-export)");
      }
    } catch (const nlohmann::json::exception& e) {
      throw validation_error(where + ": " + e.what());
    } catch (const validation_error& e) {
      const std::string msg = e.what();
      if (msg.rfind("import:", 0) == 0) throw;
      throw validation_error(where + ": " + msg);
    }
  }
  if (in.bad()) throw storage_error("import: reading the JSON Lines input failed");
  if constexpr (identity_bound_store<Store>) {
    if constexpr (identity_reporting_store<Store>)  // an export of Mem0's keys narrows no store's key set
      if (auto have = store.identity(); have && identity && identity->scope_keys.empty())
        identity->scope_keys = have->scope_keys;
    if (identity && any_vector) store.bind(*identity);
  }
  const jsonl_counts n{batch.upserts.size(), batch.events.size()};
  if (!batch.empty()) store.apply(batch);
  return n;
}

}  // namespace engram::inline v0
