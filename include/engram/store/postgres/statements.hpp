// engram-requires: postgres
#pragma once
/// @file store/postgres/statements.hpp
/// postgres_store's SQL: the statements prepared on every pooled connection, and the per-scope statements
/// prepared lazily (one per combination of the ids a query scope names).

#include <engram/scope.hpp>
#include <engram/store/postgres/libpq.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace engram::inline v0::detail {

/// The columns of a record row and of a history row, in the order rows.hpp reads them.
inline constexpr const char* pg_record_cols =
    "id, memory, hash, metadata, user_id, agent_id, run_id, actor_id, role, created_at, updated_at, embedding, "
    "expiration_date, immutable, valid_from, invalid_at, superseded_by, entities, tenant, extra";
inline constexpr const char* pg_history_cols =
    "id, memory_id, old_memory, new_memory, event, created_at, updated_at, is_deleted, actor_id, role";

/// Access counts saturate here (they are std::uint32_t in engram, bigint in the table).
inline constexpr std::uint32_t pg_max_access_count = 4294967295u;

/// scope::extra's selection (detail::scope_lines_within) of a row by the query's extra in parameter `param`.
inline std::string pg_extra_within(const std::string& param) {
  return "string_to_array(extra, chr(10)) @> string_to_array(" + param + ", chr(10))";
}

/// Rows per page of a paged read (record_page, changes_since, the per-scope pages).
inline constexpr int pg_page_size = 2000;

/// Prepares every named statement postgres_store runs on `c` (a pooled connection; `w` names the store).
inline void pg_prepare_all(detail::pq_conn& c, const std::string& w) {
  const std::string rc = pg_record_cols, hc = pg_history_cols;
  c.prepare("get_meta", "SELECT value FROM engram_meta WHERE key = $1", w);
  c.prepare("put_meta",
            "INSERT INTO engram_meta(key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = $2", w);
  c.prepare("get_record", "SELECT " + rc + " FROM memories WHERE id = $1", w);
  c.prepare("record_page", "SELECT " + rc + " FROM memories WHERE id > $1 ORDER BY id LIMIT $2", w);
  c.prepare("count", "SELECT count(*) FROM memories", w);
  const std::string upsert =
      "INSERT INTO memories(" + rc +
      ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
      " ON CONFLICT (id)"
      " DO UPDATE SET"
      " memory = $2, hash = $3, metadata = $4, user_id = $5, agent_id = $6, run_id = $7,"
      " actor_id = $8, role = $9, created_at = $10, updated_at = $11, embedding = $12, expiration_date = $13,"
      " immutable = $14, valid_from = $15, invalid_at = $16, superseded_by = $17, entities = $18, tenant = $19,"
      " extra = $20";
  c.prepare("upsert", upsert, w);
  c.prepare("import_record", upsert + " WHERE memories.updated_at <= EXCLUDED.updated_at", w);  // newer stays
  // the same text in the whole exact scope (two projects may hold the same text)
  c.prepare("is_duplicate",
            "SELECT EXISTS (SELECT 1 FROM memories WHERE id = $1), (SELECT id FROM memories WHERE tenant = $7"
            " AND user_id = $2 AND agent_id = $3 AND run_id = $4 AND hash = $5 AND extra = $8 AND memory = $6"
            " AND id <> $1 LIMIT 1)",
            w);
  const std::string sc = "user_id, agent_id, run_id, tenant, extra";  // an exact scope: pg_scope_params
  c.prepare("erase", "DELETE FROM memories WHERE id = $1 RETURNING " + sc, w);
  c.prepare("add_event",
            "INSERT INTO history(" + hc + ", " + sc +
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            w);
  const std::string in_scope = "user_id = $1 AND agent_id = $2 AND run_id = $3 AND tenant = $4 AND extra = $5";
  c.prepare("scopes",
            "SELECT " + sc + " FROM memories UNION SELECT " + sc + " FROM pending UNION SELECT " + sc +
                " FROM history WHERE user_id IS NOT NULL ORDER BY 1, 2, 3, 4, 5",
            w);
  c.prepare("scope_records", "SELECT " + rc + " FROM memories WHERE " + in_scope + " ORDER BY id", w);
  c.prepare("scope_history",
            "SELECT " + hc + " FROM history WHERE (" + in_scope +
                ") OR (user_id IS NULL AND memory_id IN (SELECT id FROM memories WHERE " + in_scope +
                ")) ORDER BY seq",
            w);
  c.prepare("scope_pending",
            "SELECT id, user_id, agent_id, run_id, messages, options, created_at, attempts::bigint, tenant, extra"
            " FROM pending WHERE " + in_scope + " ORDER BY seq",
            w);
  c.prepare("import_event",
            "INSERT INTO history(" + hc + ", " + sc +
                ") SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::timestamptz, $7::timestamptz,"
                " $8::boolean, $9::text, $10::text, $11::text, $12::text, $13::text, $14::text, $15::text"
                " WHERE NOT EXISTS (SELECT 1 FROM history WHERE id = $1::text)",
            w);
  c.prepare("raise_version",
            "INSERT INTO scope_versions(" + sc + ", version) VALUES ($1, $2, $3, $4, $5, $6::bigint + 1)"
            " ON CONFLICT (" + sc + ") DO UPDATE SET version = greatest(scope_versions.version, $6::bigint) + 1",
            w);
  const std::string listed = " IN (SELECT jsonb_array_elements_text($1::jsonb))";
  c.prepare("drop_events", "DELETE FROM history WHERE id" + listed, w);
  c.prepare("drop_records", "DELETE FROM memories WHERE id" + listed + " RETURNING id", w);
  c.prepare("drop_pending", "DELETE FROM pending WHERE id" + listed, w);
  // FOR KEY SHARE: a concurrent erase of the memory waits for this count (then cascades to it), or this skips
  // the memory erased meanwhile
  c.prepare("add_access",
            "INSERT INTO access_counts(memory_id, count) SELECT i.key, i.value::bigint FROM jsonb_each_text($1::jsonb)"
            " AS i WHERE EXISTS (SELECT 1 FROM memories WHERE id = i.key FOR KEY SHARE) ORDER BY i.key"
            " ON CONFLICT (memory_id) DO UPDATE SET count = least(access_counts.count + EXCLUDED.count, " +
                std::to_string(pg_max_access_count) + ")",
            w);
  // purge: $1..$3 the query scope's ids, '' for any, $4 its tenant, $5 its extra (scope::selects); its records,
  // their history, and the history rows that name a scope it selects (also of records erased before)
  const std::string selected = "($1 = '' OR user_id = $1) AND ($2 = '' OR agent_id = $2) AND ($3 = '' OR run_id = $3)"
                               " AND user_id IS NOT NULL AND tenant = $4 AND " + pg_extra_within("$5");
  c.prepare("purge_history",
            "DELETE FROM history WHERE memory_id IN (SELECT id FROM memories WHERE " + selected + ") OR (" + selected +
                ")",
            w);
  c.prepare("purge_records", "DELETE FROM memories WHERE " + selected + " RETURNING id, " + sc,
            w);
  c.prepare("has_pending", "SELECT EXISTS (SELECT 1 FROM pending WHERE id = $1)", w);
  c.prepare("history_of", "SELECT " + hc + " FROM history WHERE memory_id = $1 ORDER BY seq", w);
  c.prepare("last_event", "SELECT event FROM history WHERE memory_id = $1 ORDER BY seq DESC LIMIT 1", w);
  c.prepare("all_history", "SELECT " + hc + " FROM history ORDER BY memory_id, seq", w);
  c.prepare("enqueue",
            "INSERT INTO pending(id, user_id, agent_id, run_id, messages, options, created_at, attempts, tenant,"
            " extra) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::integer, $9, $10) ON CONFLICT (id) DO UPDATE SET"
            " user_id = $2, agent_id = $3, run_id = $4, messages = $5, options = $6, created_at = $7,"
            " attempts = $8::integer, tenant = $9, extra = $10",
            w);
  c.prepare("dequeue", "DELETE FROM pending WHERE id = $1", w);
  c.prepare("all_pending",
            "SELECT id, user_id, agent_id, run_id, messages, options, created_at, attempts::bigint, tenant, extra"
            " FROM pending ORDER BY seq",
            w);
  c.prepare("bump_version",
            "INSERT INTO scope_versions(" + sc + ", version) VALUES ($1, $2, $3, $4, $5, 1) ON CONFLICT (" + sc +
                ") DO UPDATE SET version = scope_versions.version + 1",
            w);
  c.prepare("scope_version", "SELECT version FROM scope_versions WHERE " + in_scope, w);
  c.prepare("add_change", "INSERT INTO changes(memory_id, origin) VALUES ($1, $2)", w);
  c.prepare("changes_since", "SELECT seq, memory_id, origin FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2", w);
  c.prepare("change_position",
            "SELECT greatest(coalesce(max(seq), 0), coalesce((SELECT value::bigint FROM engram_meta WHERE key ="
            " 'changes_pruned_through'), 0))::bigint FROM changes",
            w);
  c.prepare("write_lock", "SELECT pg_advisory_xact_lock(hashtext('engram-write:' || current_schema()))", w);
  c.prepare("add_commit", "INSERT INTO commits(token) VALUES ($1)", w);
  // group_commit's flush: committed synchronously on its own (a transaction with a commit record to flush)
  c.prepare("flush_commits",
            "WITH mark AS (INSERT INTO commits(token) VALUES ($1)) SELECT token FROM commits WHERE token = ANY($2::text[])",
            w);
  c.prepare("notify", "SELECT pg_notify('engram_' || current_schema(), '')", w);
  c.prepare("prune",
            "WITH old_commits AS (DELETE FROM commits WHERE at < now() - $1::integer * interval '1 second'),"
            " gone AS (DELETE FROM changes WHERE at < now() - $1::integer * interval '1 second' RETURNING seq)"
            " INSERT INTO engram_meta(key, value) SELECT 'changes_pruned_through', max(seq)::text FROM gone"
            " HAVING count(*) > 0 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            w);
}

// The per-scope statements. PostgreSQL plans each combination of named ids with the (tenant, user_id,
// agent_id, run_id) index, where one generic plan would scan the table.

/// Which ids `q` names (bit 0 user, 1 agent, 2 run; bit 3: `q` is not empty, so its tenant and extra select
/// too, scope::selects) and their values, in that order (tenant and extra last).
inline std::pair<std::size_t, std::vector<pq_param>> pg_scope_filter(const scope& q) {
  std::size_t mask = 0;
  std::vector<pq_param> params;
  const std::string* ids[] = {&q.user_id, &q.agent_id, &q.run_id};
  for (std::size_t i = 0; i < 3; ++i)
    if (!ids[i]->empty()) {
      mask |= std::size_t{1} << i;
      params.push_back(pq_param::text(*ids[i]));
    }
  if (!q.empty()) {
    mask |= 8;
    params.push_back(pq_param::text(q.tenant));
    params.push_back(pq_param::text(q.extra));
  }
  return {mask, std::move(params)};
}

/// One query in 16 statements, one for each mask of pg_scope_filter, named `prefix`<mask>:
/// `head` WHERE <the named ids> [AND `more`<n>] [`tail`<n+1>] (n: the next parameter number).
struct pg_scope_query {
  std::vector<std::string> names = std::vector<std::string>(16);
  std::vector<std::string> sql = std::vector<std::string>(16);

  pg_scope_query(const std::string& prefix, const std::string& head, const std::string& more,
                 const std::string& tail) {
    const char* cols[] = {"user_id", "agent_id", "run_id"};
    for (std::size_t mask = 0; mask < 16; ++mask) {
      std::vector<std::string> conds;
      int n = 0;
      for (std::size_t i = 0; i < 3; ++i)
        if (mask & (std::size_t{1} << i)) conds.push_back(std::string(cols[i]) + " = $" + std::to_string(++n));
      if (mask & 8) {
        conds.push_back("tenant = $" + std::to_string(++n));
        conds.push_back(pg_extra_within("$" + std::to_string(++n)));
      }
      if (!more.empty()) conds.push_back(more + std::to_string(++n));
      std::string text = head;
      for (std::size_t i = 0; i < conds.size(); ++i) text += (i ? " AND " : " WHERE ") + conds[i];
      if (!tail.empty()) text += tail + std::to_string(++n);
      sql[mask] = std::move(text);
      names[mask] = prefix + std::to_string(mask);
    }
  }
};

/// Runs prepared statement `name`, preparing it from `sql` first when this connection does not have it
/// (SQLSTATE 26000). Outside a transaction only: the failed first attempt would abort one.
inline pq_result pg_run_lazily_prepared(pq_conn& c, const char* name, const std::string& sql,
                                        const std::vector<pq_param>& params, const std::string& where) {
  try {
    return c.run(name, params, true, where);
  } catch (const postgres_error& e) {
    if (e.sqlstate() != "26000") throw;
  }
  c.prepare(name, sql, where);
  return c.run(name, params, true, where);
}

/// Calls row(page, i) for every row `query` (made with "id > $" and " ORDER BY id LIMIT $", the id in column 0)
/// selects for `q`, page after page. `read(g)` runs g(pq_conn&) on a pooled connection, retried.
template <class Read, class Row>
void pg_for_each_scope_row(Read&& read, const pg_scope_query& query, const scope& q, const std::string& where,
                           Row&& row) {
  const auto [mask, params] = pg_scope_filter(q);
  std::string after;
  while (true) {
    auto page = read([&, mask = mask, &params = params](pq_conn& c) {  // bindings captured by name (C++20)
      auto p = params;
      p.push_back(pq_param::text(after));
      p.push_back(pq_param::int8(pg_page_size));
      return pg_run_lazily_prepared(c, query.names[mask].c_str(), query.sql[mask], p, where);
    });
    const int n = page.rows();
    for (int i = 0; i < n; ++i) row(page, i);
    if (n < pg_page_size) return;
    after = page.text(n - 1, 0);
  }
}

}  // namespace engram::inline v0::detail
