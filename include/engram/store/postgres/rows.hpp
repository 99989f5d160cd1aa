// engram-requires: postgres
#pragma once
/// @file store/postgres/rows.hpp
/// postgres_store's rows <-> engram's records, history events and pending adds: the parameters of the
/// statements that write them, the reading of the rows the statements in statements.hpp return, and the
/// embedder identity in engram_meta.

#include <engram/error.hpp>
#include <engram/json_dump.hpp>
#include <engram/record.hpp>
#include <engram/scope.hpp>
#include <engram/store/entities_column.hpp>
#include <engram/store/postgres/libpq.hpp>
#include <engram/time.hpp>
#include <engram/write_batch.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace engram::inline v0::detail {

/// JSON as stored in a text column (invalid UTF-8 replaced, so the server accepts it).
inline std::string pg_json_text(const nlohmann::json& j) {
  return engram::dump_json(j);
}

/// A timestamp as binary timestamptz.
inline pq_param pg_time_param(timestamp t) {
  return pq_param::int8(t.time_since_epoch().count() - pq_epoch_offset_us);
}
/// The 5 parameters naming an exact scope: user_id, agent_id, run_id, tenant, extra.
inline std::vector<pq_param> pg_scope_params(const scope& s) {
  return {pq_param::text(s.user_id), pq_param::text(s.agent_id), pq_param::text(s.run_id), pq_param::text(s.tenant),
          pq_param::text(s.extra)};
}

/// The 15 parameters of add_event / import_event: the event, then its record's scope (if unknown: NULL ids,
/// tenant and extra '').
inline std::vector<pq_param> pg_event_params(const history_event& e, const std::optional<scope>& owner) {
  return {pq_param::text(e.id), pq_param::text(e.memory_id), pq_param::opt_text(e.old_memory),
          pq_param::opt_text(e.new_memory), pq_param::text(to_string(e.event)), pg_time_param(e.created_at),
          e.updated_at ? pg_time_param(*e.updated_at) : pq_param::null(), pq_param::text(e.is_deleted ? "t" : "f"),
          e.actor_id.empty() ? pq_param::null() : pq_param::text(e.actor_id),
          e.role.empty() ? pq_param::null() : pq_param::text(e.role),
          owner ? pq_param::text(owner->user_id) : pq_param::null(),
          owner ? pq_param::text(owner->agent_id) : pq_param::null(),
          owner ? pq_param::text(owner->run_id) : pq_param::null(), pq_param::text(owner ? owner->tenant : ""),
          pq_param::text(owner ? owner->extra : "")};
}

/// The 20 parameters of upsert / import_record, in pg_record_cols' order.
inline std::vector<pq_param> pg_record_params(const record& r) {
  auto time_or_null = [](const std::optional<timestamp>& t) { return t ? pg_time_param(*t) : pq_param::null(); };
  return {pq_param::text(r.id), pq_param::text(r.memory), pq_param::text(r.hash),
          pq_param::text(pg_json_text(r.metadata.is_null() ? nlohmann::json::object() : r.metadata)),
          pq_param::text(r.user_id), pq_param::text(r.agent_id), pq_param::text(r.run_id),
          pq_param::text(r.actor_id), pq_param::text(r.role), pg_time_param(r.created_at), pg_time_param(r.updated_at),
          pq_param::bytes(pq_floats_to_bytes(r.embedding)), pq_param::opt_text(r.expiration_date),
          pq_param::text(r.immutable ? "t" : "f"), time_or_null(r.valid_from), time_or_null(r.invalid_at),
          pq_param::opt_text(r.superseded_by), pq_param::opt_text(entities_column(r.entities)),
          pq_param::text(r.tenant), pq_param::text(r.extra)};
}

/// The 10 parameters of enqueue.
inline std::vector<pq_param> pg_pending_params(const pending_add& p) {
  nlohmann::json msgs = nlohmann::json::array();
  for (const auto& m : p.messages) msgs.push_back({{"role", m.role}, {"content", m.content}, {"name", m.name}});
  return {pq_param::text(p.id), pq_param::text(p.owner.user_id), pq_param::text(p.owner.agent_id),
          pq_param::text(p.owner.run_id), pq_param::text(pg_json_text(msgs)), pq_param::text(pg_json_text(p.options)),
          pq_param::text(p.created_at), pq_param::text(std::to_string(p.attempts)), pq_param::text(p.owner.tenant),
          pq_param::text(p.owner.extra)};
}

// Reading rows; `where` names the store in the storage_error thrown for a row that does not parse.

/// A binary timestamptz column as a timestamp.
inline timestamp pg_time_of(const pq_result& r, int row, int col) {
  return timestamp{std::chrono::microseconds{r.timestamp_us(row, col)}};
}

/// Column `col` of row `i`, scope::tenant or scope::extra of record (or pending add) `id`.
/// @throws storage_error naming it when the text is not canonical key=value lines.
inline std::string pg_scope_column(const pq_result& r, int i, int col, const char* field, const std::string& where,
                                   const std::string& id) {
  auto text = r.text(i, col);
  try {
    validate_scope_lines(text, field, where + ": '" + id + "'");
  } catch (const validation_error& e) {
    throw storage_error(e.what());
  }
  return text;
}

/// Row `i` of pg_record_cols as a record.
inline record pg_read_record(const pq_result& r, int i, const std::string& where) {
  record out;
  out.id = r.text(i, 0);
  out.memory = r.text(i, 1);
  out.hash = r.text(i, 2);
  out.metadata = nlohmann::json::parse(r.view(i, 3), nullptr, false);
  if (out.metadata.is_discarded()) throw storage_error(where + ": metadata of '" + out.id + "' is not JSON");
  out.user_id = r.text(i, 4);
  out.agent_id = r.text(i, 5);
  out.run_id = r.text(i, 6);
  out.actor_id = r.text(i, 7);
  out.role = r.text(i, 8);
  out.created_at = pg_time_of(r, i, 9);
  out.updated_at = pg_time_of(r, i, 10);
  if (!r.is_null(i, 11)) out.embedding = pq_bytes_to_floats(r.view(i, 11));
  out.expiration_date = r.opt_text(i, 12);
  out.immutable = r.integer(i, 13) != 0;
  if (!r.is_null(i, 14)) out.valid_from = pg_time_of(r, i, 14);
  if (!r.is_null(i, 15)) out.invalid_at = pg_time_of(r, i, 15);
  out.superseded_by = r.opt_text(i, 16);
  if (!r.is_null(i, 17)) out.entities = entities_of_column(r.view(i, 17), where, out.id);
  out.tenant = pg_scope_column(r, i, 18, "tenant", where, out.id);
  out.extra = pg_scope_column(r, i, 19, "extra", where, out.id);
  return out;
}

/// Row `i` of pg_history_cols as a history event.
inline history_event pg_read_event(const pq_result& r, int i, const std::string& where) {
  history_event e;
  e.id = r.text(i, 0);
  e.memory_id = r.text(i, 1);
  e.old_memory = r.opt_text(i, 2);
  e.new_memory = r.opt_text(i, 3);
  try {
    e.event = parse_event_kind(r.text(i, 4));
  } catch (const validation_error& err) {
    throw storage_error(where + ": " + err.what());
  }
  e.created_at = pg_time_of(r, i, 5);
  if (!r.is_null(i, 6)) e.updated_at = pg_time_of(r, i, 6);
  e.is_deleted = r.integer(i, 7) != 0;
  if (!r.is_null(i, 8)) e.actor_id = r.text(i, 8);
  if (!r.is_null(i, 9)) e.role = r.text(i, 9);
  return e;
}

/// Row `i` of (id, user_id, agent_id, run_id, messages, options, created_at, attempts, tenant, extra) as a
/// pending add.
inline pending_add pg_read_pending(const pq_result& r, int i, const std::string& where) {
  pending_add p;
  p.id = r.text(i, 0);
  p.owner = scope{r.text(i, 1), r.text(i, 2), r.text(i, 3)};
  const auto msgs = nlohmann::json::parse(r.view(i, 4), nullptr, false);
  p.options = nlohmann::json::parse(r.view(i, 5), nullptr, false);
  if (!msgs.is_array() || p.options.is_discarded())
    throw storage_error(where + ": pending add '" + p.id + "' is not valid JSON");
  for (const auto& m : msgs)
    p.messages.push_back(message{m.value("role", "user"), m.value("content", ""), m.value("name", "")});
  p.created_at = r.text(i, 6);
  p.attempts = static_cast<std::uint32_t>(r.integer(i, 7));
  p.owner.tenant = pg_scope_column(r, i, 8, "tenant", where, p.id);
  p.owner.extra = pg_scope_column(r, i, 9, "extra", where, p.id);
  return p;
}

/// The embedder identity recorded in engram_meta, if any.
inline std::optional<store_identity> pg_get_identity(pq_conn& c, const std::string& where) {
  auto name = c.run("get_meta", {pq_param::text("embedder")}, false, where);
  auto dim = c.run("get_meta", {pq_param::text("dimension")}, false, where);
  if (!name.rows() || !dim.rows()) return std::nullopt;
  auto keys = c.run("get_meta", {pq_param::text("scope_keys")}, false, where);  // absent: Mem0's
  return store_identity{name.text(0, 0), static_cast<std::size_t>(std::stoull(dim.text(0, 0))),
                        keys.rows() ? keys.text(0, 0) : std::string()};
}
/// Records (or replaces) the embedder identity in engram_meta; the scope key set recorded stays when `id`
/// names none (reembed's identity).
inline void pg_put_identity(pq_conn& c, const store_identity& id, const std::string& where) {
  c.run("put_meta", {pq_param::text("embedder"), pq_param::text(id.embedder)}, false, where);
  c.run("put_meta", {pq_param::text("dimension"), pq_param::text(std::to_string(id.dimension))}, false, where);
  if (!id.scope_keys.empty()) c.run("put_meta", {pq_param::text("scope_keys"), pq_param::text(id.scope_keys)}, false, where);
}

}  // namespace engram::inline v0::detail
