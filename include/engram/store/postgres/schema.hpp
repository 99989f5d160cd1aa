// engram-requires: postgres
#pragma once
/// @file store/postgres/schema.hpp
/// postgres_store's tables: the numbered schema steps, and creating or migrating a schema on open.
///
/// The tables (`schema_version` in engram_meta):
///   engram_meta(key PRIMARY KEY, value)     format_version, schema_version, embedder, dimension, scope_keys
///           (store_identity::scope_keys; absent: Mem0's keys)
///   memories(id PRIMARY KEY, memory, hash, metadata JSON text, user_id, agent_id, run_id, actor_id, role,
///            created_at, updated_at timestamptz, embedding bytea of little-endian float32, expiration_date,
///            immutable boolean (schema version 3), valid_from, invalid_at timestamptz and superseded_by text
///            (schema version 4; NULL: valid since created_at, never invalidated), entities JSON text (schema
///            version 5; NULL: recognised from the text, set: an extractor's answer), tenant, extra (schema
///            version 6: scope::tenant and scope::extra, '' under Mem0's keys and in rows written before))
///   history(seq bigserial PRIMARY KEY, id, memory_id, old_memory, new_memory, event, created_at, updated_at,
///           is_deleted, actor_id, role, user_id, agent_id, run_id, tenant, extra)    Mem0's history columns,
///           plus seq for their order and the record's scope (schema version 2; user_id NULL in rows written
///           before; tenant and extra since version 6, '' where user_id is NULL)
///   pending(seq, id PRIMARY KEY, user_id, agent_id, run_id, messages JSON, options JSON, created_at, attempts,
///           tenant, extra)
///   scope_versions(user_id, agent_id, run_id, version, tenant, extra)   bumped by every batch touching the
///           scope; keyed by the whole exact scope (tenant and extra since version 6)
///   changes(seq bigserial PRIMARY KEY, memory_id, origin, at)   the change feed ('*' = everything changed)
///   commits(token PRIMARY KEY, at)          one row per applied batch: makes a retried apply idempotent
///   access_counts(memory_id PRIMARY KEY REFERENCES memories ON DELETE CASCADE, count)   search hits per memory
///           (add_access). Created on open (IF NOT EXISTS) outside the numbered migrations, so the schema version
///           stays 2 and an older engram still opens the database; its deletes drop counts by the cascade.

#include <engram/error.hpp>
#include <engram/store/postgres/libpq.hpp>
#include <engram/version.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace engram::inline v0::detail {

/// @throws validation_error unless `s` is a lower-case identifier PostgreSQL takes unquoted.
inline void pg_validate_schema_name(const std::string& s) {
  bool ok = !s.empty() && s.size() <= 63 && !(s[0] >= '0' && s[0] <= '9');
  for (const char c : s) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
  if (!ok)
    throw validation_error("postgres_store: schema '" + s +
                           "' is not a lower-case identifier of at most 63 characters ([a-z_][a-z0-9_]*)");
}

/// Schema migrations: step i takes schema_version i to i + 1. Append, never edit.
inline const std::vector<std::string>& pg_migrations() {
  static const std::vector<std::string> steps = {
      "CREATE TABLE memories(id text PRIMARY KEY, memory text NOT NULL, hash text NOT NULL,"
      " metadata text NOT NULL, user_id text NOT NULL, agent_id text NOT NULL, run_id text NOT NULL,"
      " actor_id text NOT NULL, role text NOT NULL, created_at timestamptz NOT NULL,"
      " updated_at timestamptz NOT NULL, embedding bytea, expiration_date text);"
      "CREATE INDEX memories_scope ON memories(user_id, agent_id, run_id, hash);"
      "CREATE TABLE history(seq bigserial PRIMARY KEY, id text NOT NULL, memory_id text NOT NULL,"
      " old_memory text, new_memory text, event text NOT NULL, created_at timestamptz, updated_at timestamptz,"
      " is_deleted boolean NOT NULL DEFAULT false, actor_id text, role text);"
      "CREATE INDEX history_memory ON history(memory_id, seq);"
      "CREATE TABLE pending(seq bigserial NOT NULL, id text PRIMARY KEY, user_id text NOT NULL,"
      " agent_id text NOT NULL, run_id text NOT NULL, messages text NOT NULL, options text NOT NULL,"
      " created_at text NOT NULL, attempts integer NOT NULL);"
      "CREATE TABLE scope_versions(user_id text NOT NULL, agent_id text NOT NULL, run_id text NOT NULL,"
      " version bigint NOT NULL, PRIMARY KEY (user_id, agent_id, run_id));"
      "CREATE TABLE changes(seq bigserial PRIMARY KEY, memory_id text NOT NULL, origin text NOT NULL,"
      " at timestamptz NOT NULL DEFAULT now());"
      "CREATE TABLE commits(token text PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())",
      // 2: history rows name their record's scope (NULL where written before), so a scope's whole history
      // can move to another shard, also that of its deleted records
      "ALTER TABLE history ADD COLUMN user_id text, ADD COLUMN agent_id text, ADD COLUMN run_id text;"
      "CREATE INDEX history_scope ON history(user_id, agent_id, run_id)",
      // 3: Mem0's immutable memories
      "ALTER TABLE memories ADD COLUMN IF NOT EXISTS immutable boolean NOT NULL DEFAULT false",
      // 4: validity (NULL in rows written before: valid since created_at, never invalidated)
      "ALTER TABLE memories ADD COLUMN IF NOT EXISTS valid_from timestamptz,"
      " ADD COLUMN IF NOT EXISTS invalid_at timestamptz, ADD COLUMN IF NOT EXISTS superseded_by text",
      // 5: an extractor's entities and relations as JSON text, as metadata (NULL in rows written before:
      // recognised from the text)
      "ALTER TABLE memories ADD COLUMN IF NOT EXISTS entities text",
      // 6: scope key sets: scope::tenant and scope::extra in every table naming a scope ('' in rows written
      // before, as under Mem0's keys; in history, where user_id is NULL too); a scope's version is that of the
      // whole exact scope, and the scope index leads with the tenant, which every scoped query names
      // (each part may run again, as the steps before: a test takes the schema version back)
      "ALTER TABLE memories ADD COLUMN IF NOT EXISTS tenant text NOT NULL DEFAULT '',"
      " ADD COLUMN IF NOT EXISTS extra text NOT NULL DEFAULT '';"
      "ALTER TABLE history ADD COLUMN IF NOT EXISTS tenant text NOT NULL DEFAULT '',"
      " ADD COLUMN IF NOT EXISTS extra text NOT NULL DEFAULT '';"
      "ALTER TABLE pending ADD COLUMN IF NOT EXISTS tenant text NOT NULL DEFAULT '',"
      " ADD COLUMN IF NOT EXISTS extra text NOT NULL DEFAULT '';"
      "ALTER TABLE scope_versions ADD COLUMN IF NOT EXISTS tenant text NOT NULL DEFAULT '',"
      " ADD COLUMN IF NOT EXISTS extra text NOT NULL DEFAULT '';"
      "ALTER TABLE scope_versions DROP CONSTRAINT IF EXISTS scope_versions_pkey,"
      " ADD PRIMARY KEY (user_id, agent_id, run_id, tenant, extra);"
      "DROP INDEX IF EXISTS memories_scope;"
      "CREATE INDEX memories_scope ON memories(tenant, user_id, agent_id, run_id, hash)"};
  return steps;
}

/// Not a migration step: a step would raise schema_version, which older engrams refuse to open.
inline constexpr const char* pg_access_counts_table =
    "CREATE TABLE IF NOT EXISTS access_counts(memory_id text PRIMARY KEY REFERENCES memories(id) ON DELETE"
    " CASCADE, count bigint NOT NULL)";

/// Creates schema `schema` and its tables, or migrates them to the last step, in one transaction serialised
/// between nodes opening at once. `c` is a fresh connection (search path set, nothing prepared).
/// @throws storage_error for a database of another storage format or a newer schema version.
inline void pg_migrate(pq_conn& c, const std::string& schema, const std::string& where) {
  const std::string q = "\"" + schema + "\"";
  c.exec("BEGIN; SELECT pg_advisory_xact_lock(hashtext('engram-migrate:' || '" + schema +
             "')); CREATE SCHEMA IF NOT EXISTS " + q +
             "; CREATE TABLE IF NOT EXISTS engram_meta(key text PRIMARY KEY, value text NOT NULL)",
         where);
  try {
    auto fv = c.exec("SELECT value FROM engram_meta WHERE key = 'format_version'", where);
    if (fv.rows() && fv.text(0, 0) != std::to_string(storage_format_version))
      throw storage_error(where + ": database has storage format version " + fv.text(0, 0) + "; this engram (" +
                          version_string + ") reads version " + std::to_string(storage_format_version));
    auto sv = c.exec("SELECT value FROM engram_meta WHERE key = 'schema_version'", where);
    const std::size_t have = sv.rows() ? std::stoul(sv.text(0, 0)) : 0;
    const auto& steps = pg_migrations();
    if (have > steps.size())
      throw storage_error(where + ": schema version " + std::to_string(have) + " is newer than this engram's (" +
                          std::to_string(steps.size()) + ")");
    for (std::size_t v = have; v < steps.size(); ++v) c.exec(steps[v], where);
    c.exec(pg_access_counts_table, where);
    c.exec("INSERT INTO engram_meta VALUES ('format_version', '" + std::to_string(storage_format_version) +
               "'), ('schema_version', '" + std::to_string(steps.size()) +
               "') ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value; COMMIT",
           where);
  } catch (...) {
    if (c.connected()) PQclear(PQexec(c.get(), "ROLLBACK"));
    throw;
  }
}

}  // namespace engram::inline v0::detail
