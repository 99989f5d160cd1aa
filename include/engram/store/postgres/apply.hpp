// engram-requires: postgres
#pragma once
/// @file store/postgres/apply.hpp
/// postgres_store's write of one batch, inside the transaction its caller holds: records with the duplicate
/// and deleted-meanwhile checks, erases, history, the pending queue, scope versions and the change feed.

#include <engram/concepts.hpp>  // duplicate_record
#include <engram/error.hpp>
#include <engram/record.hpp>
#include <engram/scope.hpp>
#include <engram/store/postgres/libpq.hpp>
#include <engram/store/postgres/rows.hpp>
#include <engram/write_batch.hpp>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace engram::inline v0::detail {

/// Writes `b` on `c` (inside a transaction, under the write lock) with the statements of statements.hpp,
/// entering every changed record in the change feed as written by `origin`.
/// `unique_content`: drop a new record whose exact scope (tenant and extra too) holds the same text under
/// another id (and its events).
/// `upsert_statement`: "upsert", or "import_record" (a stored copy updated later is kept).
/// @returns the dropped duplicates. @throws not_found for an UPDATE of a record deleted meanwhile.
inline std::vector<duplicate_record> pg_apply_batch(pq_conn& c, const write_batch& b, bool unique_content,
                                                    const char* upsert_statement, const std::string& origin,
                                                    const std::string& w) {
  std::vector<duplicate_record> dups;
  std::vector<scope> touched;
  std::vector<std::pair<std::string, scope>> owners;  // memory id -> its scope, for the history rows
  auto touch = [&](scope s) {
    if (std::find(touched.begin(), touched.end(), s) == touched.end()) touched.push_back(std::move(s));
  };
  auto change = [&](const std::string& id) {
    c.run("add_change", {pq_param::text(id), pq_param::text(origin)}, false, w);
  };
  for (const auto& r : b.upserts) {
    // with an UPDATE event, a record whose last event is a DELETE was deleted meanwhile (by another node)
    const bool is_update = std::any_of(b.events.begin(), b.events.end(), [&](const history_event& e) {
      return e.memory_id == r.id && e.event == event_kind::update;
    });
    if (unique_content || is_update) {
      auto d = c.run("is_duplicate",
                     {pq_param::text(r.id), pq_param::text(r.user_id), pq_param::text(r.agent_id),
                      pq_param::text(r.run_id), pq_param::text(r.hash), pq_param::text(r.memory),
                      pq_param::text(r.tenant), pq_param::text(r.extra)},
                     false, w);
      if (d.view(0, 0) == "f" && is_update) {
        auto last = c.run("last_event", {pq_param::text(r.id)}, false, w);
        if (last.rows() && last.view(0, 0) == to_string(event_kind::del))
          throw not_found("update: memory '" + r.id + "' no longer exists (deleted by another node)");
      }
      if (unique_content && d.view(0, 0) == "f" && !d.is_null(0, 1)) {
        dups.push_back({r.id, d.text(0, 1)});
        continue;
      }
    }
    c.run(upsert_statement, pg_record_params(r), false, w);
    touch(r.scope());
    change(r.id);
    owners.emplace_back(r.id, r.scope());
  }
  for (const auto& id : b.erases) {
    auto gone = c.run("erase", {pq_param::text(id)}, false, w);
    if (gone.rows()) {
      scope s{gone.text(0, 0), gone.text(0, 1), gone.text(0, 2), gone.text(0, 3), gone.text(0, 4)};
      touch(s);
      change(id);
      owners.emplace_back(id, std::move(s));
    }
  }
  for (const auto& e : b.events) {
    if (std::any_of(dups.begin(), dups.end(), [&](const duplicate_record& d) { return d.dropped_id == e.memory_id; }))
      continue;
    const auto owner = std::find_if(owners.begin(), owners.end(), [&](const auto& o) { return o.first == e.memory_id; });
    c.run("add_event", pg_event_params(e, owner == owners.end() ? std::optional<scope>{} : owner->second), false, w);
  }
  for (const auto& p : b.enqueued) c.run("enqueue", pg_pending_params(p), false, w);
  for (const auto& id : b.dequeued) c.run("dequeue", {pq_param::text(id)}, false, w);
  for (const auto& s : touched) c.run("bump_version", pg_scope_params(s), false, w);
  return dups;
}

}  // namespace engram::inline v0::detail
