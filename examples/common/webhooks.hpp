#pragma once
/// @file examples/common/webhooks.hpp
/// engram-server's webhooks, on the Mem0 Platform's routes: a registry of receivers, a durable outbox of the
/// deliveries owed to them, and a delivery thread per receiver.
///
/// - Events: `memory_add`, `memory_update`, `memory_delete` (Mem0's names: a memory changed by any route, told by
///   the service's observer, or by an asynchronous add once it commits), `async_add_completed` (an
///   asynchronous add's event reached SUCCEEDED or FAILED) and `entity_purged` (a user, agent or run was erased
///   with its memories: the scope and the count, never a text, so that a receiver drops its copies). A webhook
///   subscribes to some of them, or to all.
/// - Delivery: a POST of a JSON body to the webhook's URL, signed `X-Engram-Signature: sha256=HEX` (HMAC-SHA256 of
///   the raw body under the webhook's secret), with `X-Engram-Event-Id` and `X-Engram-Delivery-Id`. A 2xx answer
///   delivers it; anything else (no answer, a timeout, another status) is retried after a wait that doubles from
///   `retry_base` up to `retry_max`, for as long as the webhook exists: at least once, in publish order per
///   webhook, a failing delivery holding back only its own webhook's later ones. A webhook's queue holds at most
///   `max_pending` deliveries: past that (a receiver gone for good) its oldest one is dropped, counted and told
///   on stderr, so a dead receiver can neither fill the disk nor block writes.
/// - Projects: a webhook created with a key bound to a project is told only of that project's memories (and its
///   purges and asynchronous adds); one created by a server-wide admin key (or on a server without keys) is
///   told of every project's. A project's admin manages only its project's webhooks, under its own project id
///   in the path; a server-wide admin manages all.
/// - Durability: a journal of JSON Lines (journal.hpp) holds the webhooks (with their secrets: the file is 0600)
///   and every delivery not yet made. publish() appends the deliveries and fsyncs once before it returns, so a
///   write that was answered has its events in the outbox (a crash between the memory's commit and that fsync
///   loses that write's events: the window is one fsync); a restart resumes them. Deliveries made are marked
///   without fsync (a mark lost to a crash repeats the delivery). Compacted on start and whenever the journal
///   holds more than twice as many lines as webhooks and pending deliveries (plus 64).
///
/// Thread-safe: one mutex guards the registry and the outbox; no HTTP request is made under it.

#include "events.hpp"
#include "hmac_sha256.hpp"
#include "journal.hpp"
#include "webhook_records.hpp"
#include "metrics.hpp"
#include "say.hpp"
#include "service.hpp"

#include <engram/engram.hpp>

#include <httplib.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace engram_app {



/// A change as a delivery's `event_details`: Mem0's `{"id", "event", "data": {"memory"}}`, plus
/// `previous_memory` (an update's text before), the scope ids (org_id, project_id, app_id too, when set) and the
/// metadata when known.
inline json change_details(const memory_change& c) {
  json d{{"id", c.id}, {"event", std::string(engram::to_string(c.event))}, {"data", {{"memory", c.memory}}}};
  if (c.previous_memory) d["previous_memory"] = *c.previous_memory;
  put_scope_ids(d, c.scope);
  if (!c.metadata.is_null()) d["metadata"] = c.metadata;
  return d;
}

/// An asynchronous add's final outcome as `async_add_completed`'s `event_details`: the event as
/// GET /v1/event/{id}/ answers it, without the request's payload (read the event for it).
inline json completion_details(const engram::async_outcome& o) {
  add_event e;
  e.id = o.id;
  e.status = o.succeeded ? event_status::succeeded : event_status::failed;
  e.owner = o.scope;
  e.attempts = o.attempts;
  e.results = o.succeeded ? event_results(o.result, o.scope) : json::array();
  e.error = o.error;
  e.updated_at = e.completed_at = detail::now_iso();
  auto j = event_json(e);
  for (const char* key : {"payload", "created_at", "started_at", "latency"}) j.erase(key);
  return j;
}


/// Settings of the webhooks of a server.
struct webhook_settings {
  std::string path;                                 ///< the journal; empty: in memory only
  std::chrono::milliseconds retry_base{1000};       ///< the first wait after a failed delivery
  std::chrono::milliseconds retry_max{60'000};      ///< the longest wait
  std::chrono::milliseconds connect_timeout{5000};  ///< a receiver's connection
  std::chrono::milliseconds timeout{10'000};        ///< reading its answer, writing the body
  std::size_t max_pending = 100'000;                ///< deliveries queued per webhook; past it the oldest is dropped
};

/// Counters for /metrics.
struct webhook_stats {
  std::size_t webhooks = 0;         ///< registered
  std::size_t pending = 0;          ///< deliveries waiting, every webhook's
  std::uint64_t delivered = 0;      ///< deliveries made since start
  std::uint64_t failed_attempts = 0;  ///< attempts that failed since start (each is retried)
  std::uint64_t dropped = 0;          ///< deliveries dropped since start, their webhook's queue being full
};

namespace webhook_detail {
/// `url` split into the origin cpp-httplib connects to and the target it posts to. Only http://, and https://
/// when cpp-httplib was built with OpenSSL. @throws engram::validation_error naming what is wrong.
inline std::pair<std::string, std::string> split_url(std::string_view url) {
  const auto bad = [&](const std::string& why) {
    return engram::validation_error("'url' " + why + ", got '" + engram::printable(url) + "'");
  };
  if (url.size() > 2048) throw bad("is longer than 2,048 characters");
  if (std::any_of(url.begin(), url.end(), [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; }))
    throw bad("must not hold spaces or control characters");
  const bool tls = url.rfind("https://", 0) == 0;
  if (!tls && url.rfind("http://", 0) != 0) throw bad("must be an http:// URL (e.g. http://127.0.0.1:9000/hooks)");
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
  if (tls)
    throw bad("is https://, and this engram-server was built without TLS (cpp-httplib without OpenSSL): use an "
              "http:// URL, e.g. a local TLS proxy in front of the receiver");
#endif
  const auto host = url.find("://") + 3;
  auto path = url.find_first_of("/?#", host);
  if (path == std::string_view::npos) path = url.size();
  if (path == host || url[host] == ':' || url[host] == '@') throw bad("names no host");
  if (url.find('#') != std::string_view::npos) throw bad("must not hold a fragment (#...)");
  std::string target(url.substr(path));
  if (target.empty() || target[0] == '?') target.insert(0, "/");
  return {std::string(url.substr(0, path)), std::move(target)};
}

/// 32 random bytes as 64 hex digits (the kernel's random source).
inline std::string random_secret() {
  std::array<std::uint8_t, 32> bytes{};
  std::ifstream in("/dev/urandom", std::ios::binary);
  if (!in.read(reinterpret_cast<char*>(bytes.data()), bytes.size()))
    throw engram::storage_error("webhooks: cannot read /dev/urandom for a webhook's secret");
  return to_hex(bytes);
}


/// A request's `event_types`: a list of known types (duplicates dropped); empty (or absent) means all.
/// @throws engram::validation_error naming an unknown type.
inline std::vector<std::string> event_types_of(const json& v) {
  std::vector<std::string> out;
  if (v.is_null()) return out;
  if (!v.is_array()) throw engram::validation_error("'event_types' must be a list of event types, got " + v.dump());
  for (const auto& t : v) {
    if (!t.is_string()) throw engram::validation_error("'event_types' must list strings, got " + t.dump());
    const auto& s = t.get_ref<const std::string&>();
    if (s == "memory_categorize")
      throw engram::validation_error("'event_types': memory_categorize is not sent by engram-server: categories are "
                                     "filed when a memory is added (memory_add carries its metadata)");
    if (std::find(webhook_event_types.begin(), webhook_event_types.end(), s) == webhook_event_types.end())
      throw engram::validation_error("'event_types': unknown event type '" + engram::printable(s) +
                                     "' (expected memory_add, memory_update, memory_delete, async_add_completed or "
                                     "entity_purged)");
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
  }
  return out;
}
}  // namespace webhook_detail

/// The webhooks of one server: registry, outbox and delivery (see the file's comment).
class webhook_hub {
 public:
  /// Loads the journal at settings.path (created when missing; "" keeps everything in memory) and starts
  /// delivering what it holds. @throws engram::storage_error when it cannot be read or another process uses it.
  explicit webhook_hub(webhook_settings settings)
      : settings_(std::move(settings)),
        journal_(settings_.path, "webhooks journal",
                 "another engram-server runs on this data directory, or give each server its own --webhooks-file") {
    std::lock_guard lock(mtx_);
    skipped_ = journal_.load([&](const json& line) {
      try {
        return replay(line);
      } catch (const json::exception&) {  // a field of the wrong type
        return false;
      }
    });
    for (auto it = pending_.begin(); it != pending_.end();)  // a delivery whose webhook is gone
      it = webhooks_.count(it->second.webhook_id) ? std::next(it) : forget(it);
    journal_.rewrite(compacted());
    for (const auto& [id, w] : webhooks_) start_lane(id);
    for (const auto& [seq, d] : pending_) lanes_.at(d.webhook_id)->queue.push_back(seq);
    for (const auto& [id, l] : lanes_) trim(id, *l);  // a journal of a server run with a larger max_pending
    listening_ = !webhooks_.empty();
  }

  ~webhook_hub() {
    std::vector<std::unique_ptr<lane>> all;
    {
      std::lock_guard lock(mtx_);
      for (auto& [id, l] : lanes_) all.push_back(std::move(l));
      for (auto& l : retired_) all.push_back(std::move(l));
      lanes_.clear();
      retired_.clear();
      for (auto& l : all) halt(*l);
    }
    for (auto& l : all)
      if (l->worker.joinable()) l->worker.join();
  }
  webhook_hub(const webhook_hub&) = delete;
  webhook_hub& operator=(const webhook_hub&) = delete;

  // ---- the routes (an admin's: webhooks see every user's memories; a project's admin, its project's) ----

  /// GET /api/v1/webhooks/projects/{project}/: the webhooks created under `project` that the caller manages
  /// (webhook::managed_by), oldest first, without their secrets, each with its `pending_deliveries` and
  /// `last_error`. @throws forbidden (not an admin, or another project than a project's admin's own).
  json list(const std::string& project, const principal& who) const {
    require_admin(who, project);
    std::lock_guard lock(mtx_);
    json out = json::array();
    for (const auto& [id, w] : webhooks_)
      if (w.project == project && w.managed_by(who)) out.push_back(shown(w));
    return out;
  }

  /// POST /api/v1/webhooks/projects/{project}/: {"name", "url", "event_types"?, "is_active"?}. Answers the
  /// webhook with its `secret`, the only answer that shows it (rotate it with update's `rotate_secret`).
  /// @throws engram::validation_error, forbidden.
  json create(const std::string& project, const json& req, const principal& who) {
    require_admin(who, project);
    webhook w;
    w.name = name_of(req, true);
    w.url = url_of(req, true);
    if (auto t = req.find("event_types"); t != req.end()) w.event_types = webhook_detail::event_types_of(*t);
    w.active = active_of(req).value_or(true);
    w.project = project;
    w.owner = who.name;
    if (!who.any_project()) {  // told of its project's memories only
      w.org_id = who.org_id;
      w.project_id = who.project_id;
    }
    w.secret = webhook_detail::random_secret();
    w.created_at = w.updated_at = detail::now_iso();
    std::lock_guard lock(mtx_);
    w.id = next_id_++;
    const auto& stored = webhooks_[w.id] = std::move(w);
    listening_ = true;
    record(json{{"webhook", webhook_detail::webhook_record(stored)}}, true);
    reap();
    start_lane(stored.id);
    auto out = shown(stored);
    out["secret"] = stored.secret;
    return out;
  }

  /// PUT /api/v1/webhooks/{id}/: any of "name", "url", "event_types" (null or [] for all), "is_active",
  /// "rotate_secret": true (answers the new secret). Pending deliveries go to the new URL, signed with the new
  /// secret; a failing one is tried again at once. @throws engram::not_found (also for a webhook the caller does
  /// not manage), validation_error, forbidden.
  json update(const std::string& id, const json& req, const principal& who) {
    require_admin(who, {});
    const auto name = req.contains("name") ? std::optional(name_of(req, false)) : std::nullopt;
    const auto url = req.contains("url") ? std::optional(url_of(req, false)) : std::nullopt;
    const auto types = req.contains("event_types") ? std::optional(webhook_detail::event_types_of(req["event_types"]))
                                                    : std::nullopt;
    const auto active = active_of(req);
    const bool rotate = detail::optional_bool(req, "rotate_secret").value_or(false);
    if (!name && !url && !types && !active && !rotate)
      throw engram::validation_error("nothing to change: give 'name', 'url', 'event_types', 'is_active' or "
                                     "'rotate_secret': true");
    const auto secret = rotate ? webhook_detail::random_secret() : std::string();
    std::lock_guard lock(mtx_);
    auto& w = find(id, who);
    if (name) w.name = *name;
    if (url) w.url = *url;
    if (types) w.event_types = *types;
    if (active) w.active = *active;
    if (rotate) w.secret = secret;
    w.updated_at = detail::now_iso();
    record(json{{"webhook", webhook_detail::webhook_record(w)}}, true);
    auto& l = *lanes_.at(w.id);
    l.next_attempt = {};
    l.wake.notify_all();
    auto out = shown(w);
    out["message"] = "Webhook updated successfully";
    if (rotate) out["secret"] = w.secret;
    return out;
  }

  /// DELETE /api/v1/webhooks/{id}/: the webhook and its pending deliveries (a delivery under way may still
  /// arrive). @throws engram::not_found, forbidden.
  json remove(const std::string& id, const principal& who) {
    require_admin(who, {});
    std::lock_guard lock(mtx_);
    const auto wid = find(id, who).id;
    drop(wid);
    record(json{{"webhook_deleted", wid}}, true);
    return json{{"message", "Webhook deleted successfully"}};
  }

  // ---- the events ----

  /// Queues `changes` (service's observer) for the webhooks that want them (and are told of their project);
  /// durable when this returns.
  void memory_changed(std::span<const memory_change> changes) {
    if (!listening_.load()) return;  // no webhook: nothing to build
    std::vector<event> events;
    for (const auto& c : changes) events.push_back({webhook_event_type(c.event), change_details(c), c.scope.tenant});
    publish(events);
  }

  /// Queues what an asynchronous add's final outcome tells: the memories it changed (`metadata`: the add's;
  /// told once for entries merged into one add, with the first of them) and `async_add_completed`.
  void async_processed(const engram::async_outcome& o, const json& metadata) {
    std::vector<event> events;
    if (o.succeeded && (o.batch.empty() || o.batch.front() == o.id))
      for (const auto& c : changes_of(o.result, o.scope, metadata))
        events.push_back({webhook_event_type(c.event), change_details(c), c.scope.tenant});
    events.push_back({"async_add_completed", completion_details(o), o.scope.tenant});
    publish(events);
  }

  /// Queues `entity_purged` for a purge of scope `s` that erased `deleted` memories (purge.hpp): the scope's
  /// ids and the count, no text. Called after forget_scope, so a later purge of the scope drops it too if it is
  /// still owed.
  void scope_purged(const engram::scope& s, std::size_t deleted) {
    if (!listening_.load()) return;
    const event events[] = {{"entity_purged", purge_details(s, deleted), s.tenant}};
    publish(events);
  }

  [[nodiscard]] webhook_stats stats() const {
    std::lock_guard lock(mtx_);
    return {webhooks_.size(), pending_.size(), delivered_, failed_, dropped_};
  }
  /// Erasure (purge.hpp): drops every pending delivery about a scope `q` selects (its body holds the memory's
  /// text; one already under way may still arrive) and rewrites the journal without them (a temporary file,
  /// fsync, rename). @returns how many. @throws engram::storage_error.
  std::size_t forget_scope(const engram::scope& q) {
    std::lock_guard lock(mtx_);
    std::size_t n = 0;
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (!delivery_about_scope(it->second.body, q)) {
        ++it;
        continue;
      }
      if (auto l = lanes_.find(it->second.webhook_id); l != lanes_.end()) std::erase(l->second->queue, it->first);
      it = forget(it);
      ++n;
    }
    journal_.rewrite(compacted());
    return n;
  }

  /// The journal's path; empty: none.
  [[nodiscard]] const std::string& path() const noexcept { return journal_.path(); }
  /// Journal lines skipped on load (cut short by a crash, or not understood).
  [[nodiscard]] std::size_t skipped_on_load() const noexcept { return skipped_; }

 private:
  using clock = std::chrono::steady_clock;

  using delivery = webhook_detail::delivery;

  /// An event to publish: its type, its event_details, and the tenant of the memories it tells of.
  struct event {
    std::string_view type;
    json details;
    std::string tenant;
  };

  /// A webhook's queue and the thread delivering it, in order.
  struct lane {
    std::deque<std::uint64_t> queue;  // keys of pending_
    std::thread worker;
    std::condition_variable wake;
    bool stop = false, finished = false;
    std::uint32_t failures = 0;       // of the delivery at the head, in a row
    bool overflowing = false;         // dropped deliveries since it last delivered (told once)
    clock::time_point next_attempt{};
    std::string last_error;
    std::unique_ptr<httplib::Client> client;  // the worker's; stop() may be called under mtx_
    std::string origin;
  };

  /// @throws forbidden unless `who` is an admin, and a project's admin names its own project id (`project`,
  /// when not empty: the path's).
  static void require_admin(const principal& who, const std::string& project) {
    if (!who.admin)
      throw forbidden("webhooks are told of every user's memories: managing them needs an admin key");
    if (!project.empty() && !who.any_project() && project != who.project_id)
      throw forbidden("this key manages the webhooks of project '" + who.project_id + "' only, not of '" +
                      engram::printable(project) + "'");
  }

  static std::string name_of(const json& req, bool required) {
    const auto name = detail::optional_string(req, "name");
    if (name.empty() && (required || req.contains("name"))) throw engram::validation_error("'name' (a non-empty string) is required");
    if (name.size() > 256) throw engram::validation_error("'name' is longer than 256 characters");
    return name;
  }

  static std::string url_of(const json& req, bool required) {
    const auto url = detail::optional_string(req, "url");
    if (url.empty() && (required || req.contains("url")))
      throw engram::validation_error("'url' (where to POST the events, http://...) is required");
    (void)webhook_detail::split_url(url);
    return url;
  }

  static std::optional<bool> active_of(const json& req) {
    const auto it = req.find("is_active");
    if (it == req.end() || it->is_null()) return std::nullopt;
    if (!it->is_boolean()) throw engram::validation_error("'is_active' must be a boolean, got " + it->dump());
    return it->get<bool>();
  }

  /// The webhook as the routes show it: no secret; its queue's length and last failure.
  json shown(const webhook& w) const {
    auto j = webhook_detail::webhook_record(w);
    j.erase("secret");
    if (w.event_types.empty())
      for (const auto t : webhook_event_types) j["event_types"].push_back(t);
    const auto l = lanes_.find(w.id);
    j["pending_deliveries"] = l == lanes_.end() ? 0 : l->second->queue.size();
    j["last_error"] = l == lanes_.end() || l->second->last_error.empty() ? json(nullptr) : json(l->second->last_error);
    return j;
  }

  /// The webhook `id` if `who` manages it (another project's is unknown to it). @throws engram::not_found.
  webhook& find(const std::string& id, const principal& who) {
    const bool digits = !id.empty() && id.size() <= 19 && std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; });
    const auto it = digits ? webhooks_.find(std::stoull(id)) : webhooks_.end();
    if (it == webhooks_.end() || !it->second.managed_by(who))
      throw engram::not_found("no webhook with id '" + engram::printable(id) + "'");
    return it->second;
  }

  /// Queues one delivery of each event for every webhook that wants it and is told of its project; one fsync
  /// for them all.
  void publish(std::span<const event> events) {
    std::lock_guard lock(mtx_);
    if (webhooks_.empty()) return;
    bool queued = false;
    for (const auto& [type, details, tenant] : events) {
      const auto event_id = engram::make_uuid_v4();
      const auto now = detail::now_iso();
      for (const auto& [id, w] : webhooks_) {
        if (!w.wants(type) || !w.told_of(tenant)) continue;
        auto d = webhook_detail::make_delivery(w, event_id, type, now, details);
        const auto seq = next_seq_++;
        seq_of_[d.id] = seq;
        const auto& queued_d = pending_.emplace(seq, std::move(d)).first->second;
        record(json{{"delivery", webhook_detail::delivery_record(queued_d)}}, false);
        auto& l = *lanes_.at(id);
        l.queue.push_back(seq);
        trim(id, l);
        l.wake.notify_all();
        queued = true;
      }
    }
    if (queued) {
      try {
        journal_.sync();
      } catch (const std::exception& e) {
        say("engram-server: ", e.what(), " (deliveries kept in memory only)");
      }
    }
  }

  /// Applies one journal line while loading. @returns false for a line it does not understand.
  bool replay(const json& line) {
    if (!line.is_object() || line.size() != 1) return false;
    // Not a structured binding over items(): the proxy it would bind is a temporary.
    const auto first = line.begin();
    const std::string& key = first.key();
    const json& v = first.value();
    if (key == "next_webhook_id" && v.is_number_unsigned()) {
      next_id_ = std::max(next_id_, v.get<std::uint64_t>());
    } else if (key == "webhook") {
      auto w = webhook_detail::webhook_from_record(v);
      if (!w) return false;
      next_id_ = std::max(next_id_, w->id + 1);
      webhooks_[w->id] = std::move(*w);
    } else if (key == "webhook_deleted" && v.is_number_unsigned()) {
      webhooks_.erase(v.get<std::uint64_t>());
      for (auto it = pending_.begin(); it != pending_.end();)
        it = it->second.webhook_id == v.get<std::uint64_t>() ? forget(it) : std::next(it);
    } else if (key == "delivery" && v.is_object()) {
      delivery d{detail::string_or_empty(v, "id"), detail::string_or_empty(v, "event_id"),
                 detail::string_or_empty(v, "event_type"), detail::string_or_empty(v, "body"),
                 v.value("webhook_id", std::uint64_t{0})};
      if (d.id.empty() || d.body.empty() || seq_of_.count(d.id)) return false;
      const auto seq = next_seq_++;
      seq_of_[d.id] = seq;
      pending_.emplace(seq, std::move(d));
    } else if ((key == "delivered" || key == "dropped") && v.is_string()) {
      if (auto it = seq_of_.find(v.get<std::string>()); it != seq_of_.end()) forget(pending_.find(it->second));
    } else {
      return false;
    }
    return true;
  }

  std::map<std::uint64_t, delivery>::iterator forget(std::map<std::uint64_t, delivery>::iterator it) {
    seq_of_.erase(it->second.id);
    return pending_.erase(it);
  }

  /// The journal's whole content: the next id, the webhooks, the pending deliveries in their order.
  std::string compacted() const {
    std::string text = jsonl_journal::dump(json{{"next_webhook_id", next_id_}}) + '\n';
    for (const auto& [id, w] : webhooks_) text += jsonl_journal::dump(json{{"webhook", webhook_detail::webhook_record(w)}}) + '\n';
    for (const auto& [seq, d] : pending_) text += jsonl_journal::dump(json{{"delivery", webhook_detail::delivery_record(d)}}) + '\n';
    return text;
  }

  /// Appends `line` to the journal (fsynced when `durable`), compacting it when it has grown. A failure is
  /// told on stderr: the state stays in memory.
  void record(const json& line, bool durable) {
    try {
      journal_.append(line, durable, [&] { return compacted(); });
      if (journal_.lines() > 2 * (webhooks_.size() + pending_.size()) + 64) journal_.rewrite(compacted());
    } catch (const std::exception& e) {
      say("engram-server: ", e.what(), " (webhooks kept in memory only)");
    }
  }

  /// Drops the oldest deliveries of webhook `id` while its queue holds more than max_pending (under mtx_). One
  /// being sent meanwhile may still arrive: the lane's thread copied it and finds it gone from the queue.
  void trim(std::uint64_t id, lane& l) {
    if (l.queue.size() <= settings_.max_pending) return;
    const auto n = l.queue.size() - settings_.max_pending;
    if (!l.overflowing)
      say("engram-server: webhook ", id, ": ", l.queue.size(), " deliveries queued, more than ", settings_.max_pending,
          " (--webhook-max-pending): dropping the oldest ones until it delivers again");
    l.overflowing = true;
    for (std::size_t i = 0; i < n; ++i) {
      const auto it = pending_.find(l.queue.front());
      l.queue.pop_front();
      const auto dropped_id = it->second.id;
      forget(it);
      ++dropped_;
      record(json{{"dropped", dropped_id}}, false);
    }
  }

  void start_lane(std::uint64_t id) {
    auto& l = lanes_[id] = std::make_unique<lane>();
    l->worker = std::thread([this, id, p = l.get()] { run(id, *p); });
  }

  /// Stops a lane's thread (under mtx_): a request under way is cut short.
  static void halt(lane& l) {
    l.stop = true;
    if (l.client) l.client->stop();
    l.wake.notify_all();
  }

  /// Deletes webhook `id` and its pending deliveries (under mtx_).
  void drop(std::uint64_t id) {
    webhooks_.erase(id);
    listening_ = !webhooks_.empty();
    for (auto it = pending_.begin(); it != pending_.end();) it = it->second.webhook_id == id ? forget(it) : std::next(it);
    if (auto l = lanes_.find(id); l != lanes_.end()) {
      halt(*l->second);
      retired_.push_back(std::move(l->second));
      lanes_.erase(l);
    }
    reap();
  }

  /// Joins the threads of deleted webhooks that have ended (under mtx_: a finished thread no longer takes it).
  void reap() {
    for (auto it = retired_.begin(); it != retired_.end();) {
      if (!(*it)->finished) {
        ++it;
        continue;
      }
      (*it)->worker.join();
      it = retired_.erase(it);
    }
  }

  /// A lane's thread: delivers the head of its queue until it is delivered, waiting between failures.
  void run(std::uint64_t id, lane& l) {
    std::unique_lock lock(mtx_);
    while (!l.stop) {
      if (l.queue.empty()) {
        l.wake.wait(lock);
        continue;
      }
      if (clock::now() < l.next_attempt) {
        l.wake.wait_until(lock, l.next_attempt);
        continue;
      }
      const auto seq = l.queue.front();
      const auto& w = webhooks_.at(id);
      const auto& d = pending_.at(seq);
      std::string error;
      std::pair<std::string, std::string> where;
      try {
        where = webhook_detail::split_url(w.url);
      } catch (const std::exception& e) {
        error = e.what();  // a journal edited by hand: told, and retried as any failure
      }
      httplib::Client* client = nullptr;
      if (error.empty()) {
        if (!l.client || l.origin != where.first) {
          l.client = std::make_unique<httplib::Client>(where.first);
          l.client->set_connection_timeout(settings_.connect_timeout);
          l.client->set_read_timeout(settings_.timeout);
          l.client->set_write_timeout(settings_.timeout);
          l.client->set_keep_alive(true);
          l.origin = where.first;
        }
        client = l.client.get();
      }
      const httplib::Headers headers{{"X-Engram-Signature", "sha256=" + hmac_sha256_hex(w.secret, d.body)},
                                     {"X-Engram-Event-Id", d.event_id},
                                     {"X-Engram-Delivery-Id", d.id},
                                     {"X-Engram-Event-Type", d.event_type},
                                     {"User-Agent", "engram-server-webhooks"}};
      const std::string body = d.body, url = w.url;
      lock.unlock();
      if (client) {
        const auto res = client->Post(where.second, headers, body, "application/json");
        if (!res) error = httplib::to_string(res.error());
        else if (res->status < 200 || res->status >= 300) error = "HTTP " + std::to_string(res->status);
      }
      lock.lock();
      if (l.stop) break;
      if (l.queue.empty() || l.queue.front() != seq) continue;
      if (error.empty()) {
        if (l.failures > 0) say("engram-server: webhook ", id, " (", url, "): delivering again");
        l.queue.pop_front();
        const auto delivered_id = pending_.at(seq).id;
        forget(pending_.find(seq));
        ++delivered_;
        l.failures = 0;
        l.overflowing = false;
        l.last_error.clear();
        record(json{{"delivered", delivered_id}}, false);
      } else {
        ++failed_;
        if (l.failures == 0)
          say("engram-server: webhook ", id, " (", url, "): delivery failed (", error, "); retrying with backoff while ",
              l.queue.size(), " wait");
        ++l.failures;
        l.last_error = error;
        const auto wait = std::min<double>(double(settings_.retry_max.count()),
                                           double(settings_.retry_base.count()) * double(std::uint64_t{1} << std::min(l.failures - 1, 30u)));
        l.next_attempt = clock::now() + std::chrono::milliseconds(static_cast<std::int64_t>(wait));
      }
    }
    l.finished = true;
  }

  webhook_settings settings_;
  mutable std::mutex mtx_;
  jsonl_journal journal_;
  std::map<std::uint64_t, webhook> webhooks_;
  std::map<std::uint64_t, delivery> pending_;                // by queueing order
  std::unordered_map<std::string, std::uint64_t> seq_of_;    // delivery id -> key in pending_
  std::map<std::uint64_t, std::unique_ptr<lane>> lanes_;     // by webhook id
  std::vector<std::unique_ptr<lane>> retired_;               // of deleted webhooks, until their threads end
  std::uint64_t next_id_ = 1, next_seq_ = 0, delivered_ = 0, failed_ = 0, dropped_ = 0;
  std::size_t skipped_ = 0;
  std::atomic<bool> listening_{false};  // any webhook (a hint read without the lock; publish checks again)
};

/// The webhooks' families in the Prometheus text format.
inline void write_webhook_metrics(prometheus_text& out, const webhook_stats& s) {
  out.single("engram_webhooks", "gauge", "Webhooks registered.", double(s.webhooks));
  out.single("engram_webhook_deliveries_pending", "gauge", "Webhook deliveries queued and not yet delivered.",
             double(s.pending));
  out.single("engram_webhook_deliveries_total", "counter", "Webhook deliveries made (a 2xx answer) since start.",
             double(s.delivered));
  out.single("engram_webhook_delivery_failures_total", "counter",
             "Webhook delivery attempts that failed since start (each is retried).", double(s.failed_attempts));
  out.single("engram_webhook_deliveries_dropped_total", "counter",
             "Webhook deliveries dropped since start, their webhook's queue being full (--webhook-max-pending).",
             double(s.dropped));
}

}  // namespace engram_app
