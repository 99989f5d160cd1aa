// engram-requires: sqlite
#pragma once
/// @file store/sqlite/schema.hpp
/// sqlite_store's tables (described in sqlite_store.hpp): created when missing, and the columns added since a
/// database was first written, added when missing on a writable open (no format version change: an older
/// engram still opens the file).

#include <string>

namespace engram::inline v0::detail {

/// Creates every table and index that is missing.
inline constexpr const char* sqlite_tables =
    "CREATE TABLE IF NOT EXISTS engram_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS memories(id TEXT PRIMARY KEY, memory TEXT NOT NULL, hash TEXT NOT NULL,"
    " metadata TEXT NOT NULL, user_id TEXT NOT NULL, agent_id TEXT NOT NULL, run_id TEXT NOT NULL,"
    " actor_id TEXT NOT NULL, role TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
    " embedding BLOB, expiration_date TEXT, immutable INTEGER NOT NULL DEFAULT 0, valid_from TEXT,"
    " invalid_at TEXT, superseded_by TEXT, entities TEXT);"
    "CREATE INDEX IF NOT EXISTS memories_scope ON memories(user_id, agent_id, run_id);"
    "CREATE TABLE IF NOT EXISTS history(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL,"
    " memory_id TEXT NOT NULL, old_memory TEXT, new_memory TEXT, event TEXT NOT NULL, created_at TEXT,"
    " updated_at TEXT, is_deleted INTEGER NOT NULL DEFAULT 0, actor_id TEXT, role TEXT, user_id TEXT,"
    " agent_id TEXT, run_id TEXT);"
    "CREATE INDEX IF NOT EXISTS history_memory ON history(memory_id, seq);"
    "CREATE TABLE IF NOT EXISTS pending(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
    " user_id TEXT NOT NULL, agent_id TEXT NOT NULL, run_id TEXT NOT NULL, messages TEXT NOT NULL,"
    " options TEXT NOT NULL, created_at TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0);"
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
};

/// The columns of a record row, in the order sqlite_store reads them. `has(column)` says whether the database
/// has one of the added columns: a read-only open adds none, and reads a missing one as the rows written
/// before it hold (mutable, valid since created_at, entities recognised from the text).
template <class HasColumn>
std::string sqlite_record_columns(HasColumn&& has) {
  std::string cols =
      "id, memory, hash, metadata, user_id, agent_id, run_id, actor_id, role, created_at, updated_at, embedding, "
      "expiration_date";
  cols += has("immutable") ? ", immutable" : ", 0 AS immutable";
  for (const char* c : {"valid_from", "invalid_at", "superseded_by", "entities"})
    cols += (has(c) ? ", " : ", NULL AS ") + std::string(c);
  return cols;
}

/// "?1, ?2, ..., ?n".
inline std::string sqlite_placeholders(int n) {
  std::string out;
  for (int i = 1; i <= n; ++i) out += (i > 1 ? ", ?" : "?") + std::to_string(i);
  return out;
}

}  // namespace engram::inline v0::detail
