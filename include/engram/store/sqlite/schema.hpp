// engram-requires: sqlite
#pragma once
/// @file store/sqlite/schema.hpp
/// sqlite_store's tables (described in sqlite_store.hpp): created when missing, and the columns added since a
/// database was first written, added when missing on a writable open (no format version change: an older
/// engram still opens the file).

#include <engram/scope.hpp>

#include <sqlite3.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace engram::inline v0::detail {

/// Creates every table and index that is missing.
inline constexpr const char* sqlite_tables =
    "CREATE TABLE IF NOT EXISTS engram_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS memories(id TEXT PRIMARY KEY, memory TEXT NOT NULL, hash TEXT NOT NULL,"
    " metadata TEXT NOT NULL, user_id TEXT NOT NULL, agent_id TEXT NOT NULL, run_id TEXT NOT NULL,"
    " actor_id TEXT NOT NULL, role TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
    " embedding BLOB, expiration_date TEXT, immutable INTEGER NOT NULL DEFAULT 0, valid_from TEXT,"
    " invalid_at TEXT, superseded_by TEXT, entities TEXT, tenant TEXT NOT NULL DEFAULT '',"
    " extra TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE IF NOT EXISTS history(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL,"
    " memory_id TEXT NOT NULL, old_memory TEXT, new_memory TEXT, event TEXT NOT NULL, created_at TEXT,"
    " updated_at TEXT, is_deleted INTEGER NOT NULL DEFAULT 0, actor_id TEXT, role TEXT, user_id TEXT,"
    " agent_id TEXT, run_id TEXT, tenant TEXT NOT NULL DEFAULT '', extra TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX IF NOT EXISTS history_memory ON history(memory_id, seq);"
    "CREATE TABLE IF NOT EXISTS pending(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
    " user_id TEXT NOT NULL, agent_id TEXT NOT NULL, run_id TEXT NOT NULL, messages TEXT NOT NULL,"
    " options TEXT NOT NULL, created_at TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    " tenant TEXT NOT NULL DEFAULT '', extra TEXT NOT NULL DEFAULT '');"
    // no foreign key: INSERT OR REPLACE of a record deletes its row, which would cascade to its count
    "CREATE TABLE IF NOT EXISTS access_counts(memory_id TEXT PRIMARY KEY, count INTEGER NOT NULL);"
    // counts left by an older engram's erases (it does not know the table): gone before the id can return
    "DELETE FROM access_counts WHERE NOT EXISTS (SELECT 1 FROM memories WHERE id = memory_id);";

/// A column added since the first databases were written: ALTER TABLE `table` ADD COLUMN `name``type`.
struct sqlite_added_column {
  const char* table;
  const char* name;
  const char* type;
};

/// The columns an older database may lack, with what its rows read then.
inline constexpr sqlite_added_column sqlite_added_columns[] = {
    {"memories", "immutable", " INTEGER NOT NULL DEFAULT 0"},  // every record mutable
    {"memories", "valid_from", " TEXT"},  // validity: NULL, valid since created_at, never invalidated
    {"memories", "invalid_at", " TEXT"},
    {"memories", "superseded_by", " TEXT"},
    {"memories", "entities", " TEXT"},  // an extractor's entities as JSON: NULL, recognised from the text
    {"history", "user_id", " TEXT"},  // the scope of a row's memory: NULL (unknown) until the memory's erase
    {"history", "agent_id", " TEXT"},
    {"history", "run_id", " TEXT"},
    // scope::tenant and scope::extra (scope key sets): '' in rows written before, as under Mem0's keys. In
    // history they are the scope of a row's memory like user_id, which alone says whether it is known (NULL)
    {"memories", "tenant", " TEXT NOT NULL DEFAULT ''"},
    {"memories", "extra", " TEXT NOT NULL DEFAULT ''"},
    {"history", "tenant", " TEXT NOT NULL DEFAULT ''"},
    {"history", "extra", " TEXT NOT NULL DEFAULT ''"},
    {"pending", "tenant", " TEXT NOT NULL DEFAULT ''"},
    {"pending", "extra", " TEXT NOT NULL DEFAULT ''"},
};

/// The indexes over added columns, created after them. The scope index leads with the tenant, which every
/// scoped query names; it replaces memories_scope(user_id, agent_id, run_id) of the databases written before.
inline constexpr const char* sqlite_indexes =
    "DROP INDEX IF EXISTS memories_scope;"
    "CREATE INDEX IF NOT EXISTS memories_tenant_scope ON memories(tenant, user_id, agent_id, run_id);";

/// The memories table as a read-only open of a database without the tenant and extra columns reads it.
inline constexpr const char* sqlite_memories_before_scope_keys =
    "(SELECT id, user_id, agent_id, run_id, '' AS tenant, '' AS extra FROM memories)";

/// SQL function engram_scope_lines_within(query, record): detail::scope_lines_within of two canonical
/// scope::extra texts (registered on every connection of sqlite_store).
inline void sqlite_scope_lines_within(sqlite3_context* ctx, int, sqlite3_value** v) {
  auto text = [](sqlite3_value* x) {
    const auto* p = sqlite3_value_text(x);  // before sqlite3_value_bytes, which it may convert for
    return p ? std::string_view(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_value_bytes(x)))
             : std::string_view();
  };
  sqlite3_result_int(ctx, scope_lines_within(text(v[0]), text(v[1])) ? 1 : 0);
}

/// scope::selects in SQL: query parameters ?1..?5 (user_id, agent_id, run_id, tenant, extra: sqlite_store's
/// bind_scope) over the scope columns of a row, named with `prefix` ("m." for a join). A NULL (unknown)
/// user_id (history rows) selects nothing.
inline std::string sqlite_selected(const std::string& prefix = "") {
  const auto& p = prefix;
  return "(?1 = '' OR " + p + "user_id = ?1) AND (?2 = '' OR " + p + "agent_id = ?2) AND (?3 = '' OR " + p +
         "run_id = ?3) AND " + p + "user_id IS NOT NULL AND " + p + "tenant = ?4 AND engram_scope_lines_within(?5, " +
         p + "extra)";
}

/// The columns of a record row, in the order sqlite_store reads them. `has(column)` says whether the database
/// has one of the added columns: a read-only open adds none, and reads a missing one as the rows written
/// before it hold (mutable, valid since created_at, entities recognised from the text, tenant and extra empty).
template <class HasColumn>
std::string sqlite_record_columns(HasColumn&& has) {
  std::string cols =
      "id, memory, hash, metadata, user_id, agent_id, run_id, actor_id, role, created_at, updated_at, embedding, "
      "expiration_date";
  cols += has("immutable") ? ", immutable" : ", 0 AS immutable";
  for (const char* c : {"valid_from", "invalid_at", "superseded_by", "entities"})
    cols += (has(c) ? ", " : ", NULL AS ") + std::string(c);
  cols += has("tenant") ? ", tenant, extra" : ", '' AS tenant, '' AS extra";
  return cols;
}

/// "?1, ?2, ..., ?n".
inline std::string sqlite_placeholders(int n) {
  std::string out;
  for (int i = 1; i <= n; ++i) out += (i > 1 ? ", ?" : "?") + std::to_string(i);
  return out;
}

}  // namespace engram::inline v0::detail
