// engram-requires: sqlite
#pragma once
/// @file store/sqlite/rows.hpp
/// sqlite_store's record rows: the parameters of its upsert and the reading of a row of
/// sqlite_record_columns (store/sqlite/schema.hpp), with the typed columns they are made of.

#include <engram/error.hpp>
#include <engram/json_dump.hpp>
#include <engram/record.hpp>
#include <engram/scope.hpp>
#include <engram/store/entities_column.hpp>
#include <engram/time.hpp>

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace engram::inline v0::detail {

inline void sqlite_bind_text(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}
inline void sqlite_bind_opt_text(sqlite3_stmt* s, int i, const std::optional<std::string>& v) {
  if (v) {
    sqlite_bind_text(s, i, *v);
  } else {
    sqlite3_bind_null(s, i);
  }
}
inline std::string sqlite_column_text(sqlite3_stmt* s, int i) {
  const auto* p = sqlite3_column_text(s, i);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(s, i)))
           : std::string();
}
inline std::optional<std::string> sqlite_column_opt_text(sqlite3_stmt* s, int i) {
  if (sqlite3_column_type(s, i) == SQLITE_NULL) return std::nullopt;
  return sqlite_column_text(s, i);
}
/// @throws storage_error naming `where` (the store) when the column is not ISO-8601.
inline timestamp sqlite_column_time(sqlite3_stmt* s, int i, const std::string& where) {
  const auto text = sqlite_column_text(s, i);
  if (auto t = try_parse_iso8601(text)) return *t;
  throw storage_error(where + ": stored timestamp '" + text + "' is not ISO-8601");
}

/// A scope::tenant or scope::extra column of the row of record (or pending add) `id`.
/// @throws storage_error naming it when the text is not canonical key=value lines.
inline std::string sqlite_scope_column(sqlite3_stmt* s, int i, const char* field, const std::string& where,
                                       const std::string& id) {
  auto text = sqlite_column_text(s, i);
  try {
    validate_scope_lines(text, field, where + ": '" + id + "'");
  } catch (const validation_error& e) {
    throw storage_error(e.what());
  }
  return text;
}

/// Binds `r` to parameters 1..20 of an INSERT into the columns of sqlite_record_columns.
inline void sqlite_bind_record(sqlite3_stmt* st, const record& r) {
  sqlite_bind_text(st, 1, r.id);
  sqlite_bind_text(st, 2, r.memory);
  sqlite_bind_text(st, 3, r.hash);
  sqlite_bind_text(st, 4, engram::dump_json(r.metadata.is_null() ? nlohmann::json::object() : r.metadata));
  sqlite_bind_text(st, 5, r.user_id);
  sqlite_bind_text(st, 6, r.agent_id);
  sqlite_bind_text(st, 7, r.run_id);
  sqlite_bind_text(st, 8, r.actor_id);
  sqlite_bind_text(st, 9, r.role);
  sqlite_bind_text(st, 10, format_iso8601(r.created_at));
  sqlite_bind_text(st, 11, format_iso8601(r.updated_at));
  std::string blob;  // little-endian float32
  blob.resize(r.embedding.size() * sizeof(float));
  if constexpr (std::endian::native == std::endian::little) {
    if (!blob.empty()) std::memcpy(blob.data(), r.embedding.data(), blob.size());
  } else {
    for (std::size_t i = 0; i < r.embedding.size(); ++i) {
      const auto u = std::bit_cast<std::uint32_t>(r.embedding[i]);
      for (int k = 0; k < 4; ++k) blob[4 * i + k] = static_cast<char>((u >> (8 * k)) & 0xFF);
    }
  }
  sqlite3_bind_blob(st, 12, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
  sqlite_bind_opt_text(st, 13, r.expiration_date);
  sqlite3_bind_int(st, 14, r.immutable ? 1 : 0);
  auto iso = [](const std::optional<timestamp>& t) { return t ? std::optional(format_iso8601(*t)) : std::nullopt; };
  sqlite_bind_opt_text(st, 15, iso(r.valid_from));
  sqlite_bind_opt_text(st, 16, iso(r.invalid_at));
  sqlite_bind_opt_text(st, 17, r.superseded_by);
  sqlite_bind_opt_text(st, 18, entities_column(r.entities));
  sqlite_bind_text(st, 19, r.tenant);
  sqlite_bind_text(st, 20, r.extra);
}

/// The record of the current row of a SELECT of sqlite_record_columns. `where` names the store.
/// @throws storage_error for a column that does not read back (naming the record).
inline record sqlite_read_record(sqlite3_stmt* st, const std::string& where) {
  record r;
  r.id = sqlite_column_text(st, 0);
  r.memory = sqlite_column_text(st, 1);
  r.hash = sqlite_column_text(st, 2);
  r.metadata = nlohmann::json::parse(sqlite_column_text(st, 3), nullptr, false);
  if (r.metadata.is_discarded()) throw storage_error(where + ": metadata of '" + r.id + "' is not JSON");
  r.user_id = sqlite_column_text(st, 4);
  r.agent_id = sqlite_column_text(st, 5);
  r.run_id = sqlite_column_text(st, 6);
  r.actor_id = sqlite_column_text(st, 7);
  r.role = sqlite_column_text(st, 8);
  r.created_at = sqlite_column_time(st, 9, where);
  r.updated_at = sqlite_column_time(st, 10, where);
  r.expiration_date = sqlite_column_opt_text(st, 12);
  r.immutable = sqlite3_column_int(st, 13) != 0;
  if (sqlite3_column_type(st, 14) != SQLITE_NULL) r.valid_from = sqlite_column_time(st, 14, where);
  if (sqlite3_column_type(st, 15) != SQLITE_NULL) r.invalid_at = sqlite_column_time(st, 15, where);
  r.superseded_by = sqlite_column_opt_text(st, 16);
  if (sqlite3_column_type(st, 17) != SQLITE_NULL)
    r.entities = entities_of_column(sqlite_column_text(st, 17), where, r.id);
  r.tenant = sqlite_scope_column(st, 18, "tenant", where, r.id);
  r.extra = sqlite_scope_column(st, 19, "extra", where, r.id);
  const auto* blob = static_cast<const unsigned char*>(sqlite3_column_blob(st, 11));
  const auto bytes = static_cast<std::size_t>(sqlite3_column_bytes(st, 11));
  r.embedding.resize(bytes / sizeof(float));
  if constexpr (std::endian::native == std::endian::little) {
    if (bytes) std::memcpy(r.embedding.data(), blob, r.embedding.size() * sizeof(float));
  } else {
    for (std::size_t i = 0; i < r.embedding.size(); ++i) {
      std::uint32_t u = 0;
      for (int k = 3; k >= 0; --k) u = (u << 8) | blob[4 * i + k];
      r.embedding[i] = std::bit_cast<float>(u);
    }
  }
  return r;
}

}  // namespace engram::inline v0::detail
