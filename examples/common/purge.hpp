#pragma once
/// @file examples/common/purge.hpp
/// Erasure: deleting an entity (a user, agent or run) with everything about it, for engram-server's entity
/// routes (`DELETE /v1/entities/{type}/{id}/`, `DELETE /v2/entities/{type}/{name}/`) and `engram purge`.
///
/// Unlike delete and delete_all (whose DELETE events keep the text in the history), a purge erases the scope's
/// memories, every version, and their history with basic_memory::purge, which has the store keep no copy of the
/// text (a file store rewrites its snapshot and log; SQLite vacuums; PostgreSQL deletes the rows in one
/// transaction). Then the app's own files that may hold the text drop what they hold of the scope: the events
/// journal (async adds' request bodies and results), the webhooks' outbox (pending deliveries) and the exports
/// (made for the scope: removed; others: rewritten without its memories). Each is rewritten to a temporary
/// file, fsynced and renamed. Adds accepted with async_mode are processed first (flush), so what they store is
/// purged too, and the scope's adds kept as failed are discarded. Last, the app is told (`purge_files::purged`):
/// webhooks get an `entity_purged` event with the scope and the count, no text; engram-server queues it at once,
/// `engram purge` and `engram-mcp` on a stopped server's directory queue it in the webhooks journal (delivered
/// when the server starts).
///
/// A crash part way: the store's purge is all or nothing (for the sharded store, per shard); the files after it
/// may still hold the scope's entries: run the purge again (it is idempotent) to finish.

#include "events.hpp"
#include "exports.hpp"
#include "service.hpp"
#include "webhook_records.hpp"

#include <engram/engram.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <filesystem>
#include <functional>  // std::function: purge_files
#include <limits>
#include <string>
#include <string_view>

namespace engram_app {

/// The scope an entity names: `type` "user", "agent", "run" or "app" and its id, with the caller's binding
/// enforced as on every route (a bound key purges within its own user and project; naming another user is
/// forbidden). The project is the key's own, or for a server-wide admin the default one, or the one `project`
/// (a request's query: org_id and project_id) names.
/// @throws engram::validation_error for another type or an empty id.
inline engram::scope entity_scope(std::string_view type, const std::string& id, const principal& who,
                                  const json& project = json::object()) {
  if (id.empty()) throw engram::validation_error("the entity id is empty");
  json req = json::object();
  for (const char* key : {"org_id", "project_id"})
    if (auto v = detail::optional_string(project, key); !v.empty()) req[key] = v;
  if (type == "user") req["user_id"] = id;
  else if (type == "agent") req["agent_id"] = id;
  else if (type == "run") req["run_id"] = id;
  else if (type == "app") req["app_id"] = id;
  else
    throw engram::validation_error("entity type '" + engram::printable(type) + "' is not one of user, agent, run, app");
  return request_scope(req, who);
}

/// The app's files besides the store that may hold memory text, each as the call that drops a scope from it and
/// returns how many entries it dropped or rewrote (event_log, webhook_hub and export_store's forget_scope);
/// empty: not kept by this app. `purged`, when set, is told of a finished purge (the scope, memories erased).
struct purge_files {
  std::function<std::size_t(const engram::scope&)> events, webhooks, exports;
  std::function<void(const engram::scope&, std::size_t)> purged;
};



/// The files engram-server keeps in data directory `dir` by default (events.jsonl, webhooks.jsonl, exports/),
/// scrubbed while no server runs there (engram purge, engram-mcp); a file that does not exist is left so.
inline purge_files offline_purge_files(const std::string& dir) {
  const auto exists = [](const std::string& p) { return std::filesystem::exists(p); };
  constexpr auto keep_all = std::numeric_limits<std::size_t>::max();  // opened to scrub, not to trim
  purge_files f;
  f.events = [=](const engram::scope& q) -> std::size_t {
    return exists(dir + "/events.jsonl") ? event_log(dir + "/events.jsonl", keep_all).forget_scope(q) : 0;
  };
  f.webhooks = [=](const engram::scope& q) -> std::size_t {
    return exists(dir + "/webhooks.jsonl") ? forget_scope_in_webhooks_journal(dir + "/webhooks.jsonl", q) : 0;
  };
  f.exports = [=](const engram::scope& q) -> std::size_t {
    return exists(dir + "/exports") ? export_store(dir + "/exports", keep_all).forget_scope(q) : 0;
  };
  f.purged = [=](const engram::scope& q, std::size_t deleted) {
    if (exists(dir + "/webhooks.jsonl")) (void)tell_purge_in_webhooks_journal(dir + "/webhooks.jsonl", q, deleted);
  };
  return f;
}

/// Purges scope `s` from `memory` and from `files` (see the file comment). @returns {"message", "deleted"
/// (memories), "events", "deliveries", "exports" (entries dropped or rewritten)}.
/// @throws engram::validation_error for an empty scope; storage errors (run it again to finish).
template <class Memory>
json purge_scope(Memory& memory, const engram::scope& s, const purge_files& files) {
  engram::validate_scope(s, "purge");
  if constexpr (requires { memory.flush(); }) {
    for (const auto& f : memory.flush().failed)
      if (s.selects(f.scope)) memory.discard_failed(f.id);
  }
  const auto deleted = memory.purge(s);
  json out{{"message", "Entity deleted with its memories and their history"}, {"deleted", deleted}};
  out["events"] = files.events ? files.events(s) : 0;
  out["deliveries"] = files.webhooks ? files.webhooks(s) : 0;
  out["exports"] = files.exports ? files.exports(s) : 0;
  if (files.purged) files.purged(s, deleted);
  return out;
}

}  // namespace engram_app
