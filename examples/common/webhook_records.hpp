#pragma once
/// @file examples/common/webhook_records.hpp
/// What engram-server's webhooks are on disk and on the wire, without the delivering (webhooks.hpp): the event
/// types, a webhook's journal record, a delivery's body and record, and the edits a purge makes to the journal
/// of a server that is not running (engram purge, engram-mcp: purge.hpp), which the server delivers once it
/// starts. Needs no HTTP library.

#include "events.hpp"
#include "journal.hpp"
#include "scope_json.hpp"
#include "service.hpp"

#include <engram/engram.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace engram_app {

/// The event types a webhook may subscribe to.
inline constexpr std::array<std::string_view, 5> webhook_event_types{"memory_add", "memory_update", "memory_delete",
                                                                     "async_add_completed", "entity_purged"};

/// The webhook event type of a memory change: memory_add, memory_update or memory_delete.
inline std::string_view webhook_event_type(engram::event_kind e) noexcept {
  return e == engram::event_kind::add ? "memory_add" : e == engram::event_kind::update ? "memory_update" : "memory_delete";
}

/// A receiver of events.
struct webhook {
  std::uint64_t id = 0;
  std::string name;
  std::string url;
  std::string project;                   ///< the project named when it was created (the path's)
  std::string owner;                     ///< the key's name that created it
  /// The project of the key that created it (both empty: a server-wide admin's, told of every project's events;
  /// so is every webhook recorded before projects). Otherwise it is told only of that project's memories.
  std::string org_id, project_id;
  std::string secret;                    ///< the HMAC key, 64 hex digits
  std::vector<std::string> event_types;  ///< empty: every type
  bool active = true;                    ///< false: no new deliveries are made for it (pending ones still go)
  std::string created_at, updated_at;

  [[nodiscard]] bool wants(std::string_view type) const {
    return active && (event_types.empty() || std::find(event_types.begin(), event_types.end(), type) != event_types.end());
  }
  /// True when it is told of the events of memories of tenant `tenant` (engram::scope::tenant).
  [[nodiscard]] bool told_of(const std::string& tenant) const { return server_wide() || tenant == this->tenant(); }
  /// True for a webhook told of every project's events.
  [[nodiscard]] bool server_wide() const noexcept { return project_id.empty(); }
  /// The tenant of its project (empty: the default project's; meaningless when server_wide()).
  [[nodiscard]] std::string tenant() const { return principal{"", "", true, org_id, project_id}.tenant(); }
  /// True when `who` may manage it: a server-wide admin any webhook, a project's admin its project's.
  [[nodiscard]] bool managed_by(const principal& who) const {
    return who.any_project() || (!server_wide() && who.org_id == org_id && who.project_id == project_id);
  }
};

/// Whether a webhook delivery's body tells of a memory or an add of a scope `q` selects (by the scope ids of its
/// event_details): what a purge drops. Not an `entity_purged` delivery, which holds no text: the receiver is
/// told of every purge, also of one repeated.
inline bool delivery_about_scope(const std::string& body, const engram::scope& q) {
  const auto j = json::parse(body, nullptr, false);
  const auto d = j.is_object() ? j.find("event_details") : j.end();
  if (d == j.end() || !d->is_object() || detail::string_or_empty(j, "event_type") == "entity_purged") return false;
  return q.selects(scope_ids_of(*d));
}

/// `entity_purged`'s event_details: the purged scope's ids (its project's and app's too) and how many memories
/// the purge erased, no text.
inline json purge_details(const engram::scope& s, std::size_t deleted) {
  json d{{"deleted", deleted}};
  put_scope_ids(d, s);
  return d;
}

namespace webhook_detail {

/// A webhook's journal record (org_id and project_id only for a project's webhook: a record without them is a
/// server-wide one, as every record written before projects is).
inline json webhook_record(const webhook& w) {
  json j{{"webhook_id", w.id},  {"name", w.name},       {"url", w.url},           {"project", w.project},
         {"owner", w.owner},    {"secret", w.secret},   {"event_types", w.event_types}, {"is_active", w.active},
         {"created_at", w.created_at}, {"updated_at", w.updated_at}};
  if (!w.server_wide()) {
    j["org_id"] = w.org_id;
    j["project_id"] = w.project_id;
  }
  return j;
}

inline std::optional<webhook> webhook_from_record(const json& j) {
  if (!j.is_object() || !j.contains("webhook_id") || !j["webhook_id"].is_number_unsigned()) return std::nullopt;
  webhook w;
  w.id = j["webhook_id"].get<std::uint64_t>();
  w.name = detail::string_or_empty(j, "name");
  w.url = detail::string_or_empty(j, "url");
  w.project = detail::string_or_empty(j, "project");
  w.owner = detail::string_or_empty(j, "owner");
  w.org_id = detail::string_or_empty(j, "org_id");
  w.project_id = detail::string_or_empty(j, "project_id");
  if (w.org_id.empty() != w.project_id.empty()) return std::nullopt;
  w.secret = detail::string_or_empty(j, "secret");
  if (auto t = j.find("event_types"); t != j.end() && t->is_array())
    for (const auto& x : *t)
      if (x.is_string()) w.event_types.push_back(x.get<std::string>());
  w.active = j.value("is_active", true);
  w.created_at = detail::string_or_empty(j, "created_at");
  w.updated_at = detail::string_or_empty(j, "updated_at");
  if (w.url.empty() || w.secret.empty()) return std::nullopt;
  return w;
}

/// One delivery owed: its body is fixed when it is queued (the signature is made when it is sent).
struct delivery {
  std::string id, event_id, event_type, body;
  std::uint64_t webhook_id = 0;
};

/// A new delivery to `w` of event `event_id` (`type`, made at `created_at`, telling `details`): its own id and
/// the body as it is POSTed.
inline delivery make_delivery(const webhook& w, const std::string& event_id, std::string_view type,
                              const std::string& created_at, const json& details) {
  delivery d{engram::make_uuid_v4(), event_id, std::string(type), {}, w.id};
  d.body = jsonl_journal::dump(json{{"event_id", event_id},
                                    {"delivery_id", d.id},
                                    {"event_type", type},
                                    {"created_at", created_at},
                                    {"webhook_id", w.id},
                                    {"project", w.project},
                                    {"event_details", details}});
  return d;
}

/// A delivery as its journal line's value (`{"delivery": ...}`).
inline json delivery_record(const delivery& d) {
  return json{{"id", d.id}, {"event_id", d.event_id}, {"event_type", d.event_type}, {"webhook_id", d.webhook_id}, {"body", d.body}};
}

/// The journal of a server that is not running, at `path` (stop engram-server first: it holds the lock).
inline jsonl_journal offline_journal(const std::string& path) {
  return jsonl_journal(path, "webhooks journal", "stop engram-server first, or purge through its REST API");
}

}  // namespace webhook_detail

/// webhook_hub::forget_scope on the journal at `path` of a server that is not running: the pending deliveries
/// about scope `q` are dropped (nothing is delivered). @returns how many. @throws engram::storage_error (also
/// when a running server holds the journal).
inline std::size_t forget_scope_in_webhooks_journal(const std::string& path, const engram::scope& q) {
  auto journal = webhook_detail::offline_journal(path);
  std::string kept;
  std::size_t n = 0;
  journal.load([&](const json& line) {
    const auto d = line.is_object() ? line.find("delivery") : line.end();
    if (d != line.end() && d->is_object() && delivery_about_scope(detail::string_or_empty(*d, "body"), q)) ++n;
    else kept += jsonl_journal::dump(line) + '\n';
    return true;
  });
  journal.rewrite(kept);  // a line that was not JSON (cut short by a crash) is dropped too
  return n;
}

/// webhook_hub::scope_purged on the journal at `path` of a server that is not running: an `entity_purged`
/// delivery for every webhook that wants it, queued after what the journal holds (the server delivers it once it
/// starts). @returns how many. @throws engram::storage_error (also when a running server holds the journal).
inline std::size_t tell_purge_in_webhooks_journal(const std::string& path, const engram::scope& s, std::size_t deleted) {
  auto journal = webhook_detail::offline_journal(path);
  std::string text;
  std::map<std::uint64_t, webhook> hooks;
  journal.load([&](const json& line) {
    text += jsonl_journal::dump(line) + '\n';
    if (!line.is_object() || line.size() != 1) return true;
    const auto first = line.begin();
    if (first.key() == "webhook") {
      if (auto w = webhook_detail::webhook_from_record(first.value())) hooks[w->id] = std::move(*w);
    } else if (first.key() == "webhook_deleted" && first.value().is_number_unsigned()) {
      hooks.erase(first.value().get<std::uint64_t>());
    }
    return true;
  });
  const auto event_id = engram::make_uuid_v4();
  const auto now = detail::now_iso();
  std::size_t n = 0;
  for (const auto& [id, w] : hooks) {
    if (!w.wants("entity_purged") || !w.told_of(s.tenant)) continue;
    const auto d = webhook_detail::make_delivery(w, event_id, "entity_purged", now, purge_details(s, deleted));
    text += jsonl_journal::dump(json{{"delivery", webhook_detail::delivery_record(d)}}) + '\n';
    ++n;
  }
  if (n) journal.rewrite(text);
  return n;
}

}  // namespace engram_app
