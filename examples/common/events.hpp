#pragma once
/// @file examples/common/events.hpp
/// engram-server's events: the Mem0 Platform's record of an asynchronous add. An add queued with
/// basic_memory::add_async (a request's `async_mode`, or `--async-adds async`) is answered at once with an
/// event id, the entry's id; the event then goes PENDING -> RUNNING -> SUCCEEDED | FAILED as the memory's
/// workers report it (async_options::on_started / on_processed), with the memories the add added, updated or
/// deleted, or the error. GET /v1/event/{id}/ and GET /v1/events/ read them, confined to the caller's project and
/// user as memories are (principal::may_see).
///
/// Durability: the events live in memory and, given a path, in a journal of JSON Lines, appended to: one line
/// per change, holding the event's whole state (an id's last line wins). Lines that must survive a crash (an
/// accepted add, a final outcome) are fsynced before the call returns; RUNNING lines are only written (a lost
/// one leaves the event PENDING until its outcome). Loading skips a line that is not a whole event (the last
/// line cut short by a crash) and rewrites the journal compacted, one line per event (a temporary file, fsync,
/// rename); the log compacts it again whenever it holds more than twice as many lines as events (plus 64).
/// One process uses a journal at a time: it holds an flock on PATH.lock (journal.hpp).
///
/// Retention: at most `max_events` events; past that the oldest finished ones are dropped (PENDING and RUNNING
/// ones never are, so the count may exceed it while that many adds are outstanding).

#include "journal.hpp"
#include "request.hpp"
#include "say.hpp"
#include "scope_json.hpp"
#include "service.hpp"

#include <engram/engram.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <deque>
#include <iostream>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace engram_app {

/// Where an asynchronous add is.
enum class event_status { pending, running, succeeded, failed };

inline const char* to_string(event_status s) {
  switch (s) {
    case event_status::pending: return "PENDING";
    case event_status::running: return "RUNNING";
    case event_status::succeeded: return "SUCCEEDED";
    case event_status::failed: return "FAILED";
  }
  return "PENDING";
}

inline std::optional<event_status> parse_event_status(std::string_view s) {
  for (auto v : {event_status::pending, event_status::running, event_status::succeeded, event_status::failed})
    if (s == to_string(v)) return v;
  return std::nullopt;
}

inline bool is_final(event_status s) { return s == event_status::succeeded || s == event_status::failed; }

/// One asynchronous add, as the Platform's event describes it.
struct add_event {
  std::string id;                        ///< the add_async entry's id
  event_status status = event_status::pending;
  engram::scope owner;                   ///< whose memories: who may read the event
  json payload = json::object();         ///< the add's request body, as received
  std::string created_at;                ///< when the add was accepted (ISO-8601 UTC)
  std::string updated_at;                ///< the last change
  std::string started_at;                ///< the first attempt's start; empty before it
  std::string completed_at;              ///< the final outcome; empty before it
  std::optional<double> latency_ms;      ///< completed_at - started_at, in milliseconds
  std::uint32_t attempts = 0;            ///< attempts made
  json results = json::array();          ///< SUCCEEDED: one item per memory added, updated or deleted
  std::string error;                     ///< FAILED: why
};

namespace detail {
inline json null_if_empty(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

inline std::string string_or_empty(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

inline std::string now_iso() { return engram::format_iso8601(engram::utc_now()); }

/// Milliseconds from `from` to `to` (ISO-8601 texts); nullopt when either is not a time.
inline std::optional<double> millis_between(const std::string& from, const std::string& to) {
  const auto a = engram::try_parse_iso8601(from), b = engram::try_parse_iso8601(to);
  if (!a || !b) return std::nullopt;
  return std::chrono::duration<double, std::milli>(*b - *a).count();
}
}  // namespace detail

/// The event as the routes answer it and the journal keeps it: Mem0's fields (id, event_type, status, payload,
/// metadata, results, created_at, updated_at, started_at, completed_at, latency, error), the scope ids (org_id,
/// project_id and app_id too, when set: put_scope_ids), attempts.
inline json event_json(const add_event& e) {
  json j{{"id", e.id},
         {"event_type", "ADD"},
         {"status", to_string(e.status)},
         {"payload", e.payload},
         {"metadata", nullptr},
         {"results", e.results},
         {"created_at", e.created_at},
         {"updated_at", e.updated_at},
         {"started_at", detail::null_if_empty(e.started_at)},
         {"completed_at", detail::null_if_empty(e.completed_at)},
         {"latency", e.latency_ms ? json(*e.latency_ms) : json(nullptr)},
         {"error", detail::null_if_empty(e.error)},
         {"attempts", e.attempts}};
  put_scope_ids(j, e.owner);
  return j;
}

/// An event read back from a journal line; nullopt when the line is not a whole event.
inline std::optional<add_event> event_from_json(const json& j) {
  if (!j.is_object()) return std::nullopt;
  add_event e;
  e.id = detail::string_or_empty(j, "id");
  const auto status = parse_event_status(detail::string_or_empty(j, "status"));
  const auto results = j.find("results");
  if (e.id.empty() || !status || results == j.end() || !results->is_array()) return std::nullopt;
  e.status = *status;
  e.results = *results;
  e.owner = scope_ids_of(j);  // a line written before projects: the default project
  if (auto p = j.find("payload"); p != j.end() && p->is_object()) e.payload = *p;
  e.created_at = detail::string_or_empty(j, "created_at");
  e.updated_at = detail::string_or_empty(j, "updated_at");
  e.started_at = detail::string_or_empty(j, "started_at");
  e.completed_at = detail::string_or_empty(j, "completed_at");
  if (auto l = j.find("latency"); l != j.end() && l->is_number()) e.latency_ms = l->get<double>();
  if (auto a = j.find("attempts"); a != j.end() && a->is_number_unsigned()) e.attempts = a->get<std::uint32_t>();
  e.error = detail::string_or_empty(j, "error");
  return e;
}

/// An add's memory events as an event's results: each as the add route answers it (id, memory, event,
/// previous_memory), plus the Platform's `data.memory` and the add's scope ids.
inline json event_results(const engram::add_result& r, const engram::scope& owner) {
  json out = json::array();
  for (const auto& e : r.results) {
    json item = e;
    item["data"] = json{{"memory", e.memory}};
    put_scope_ids(item, owner);
    out.push_back(std::move(item));
  }
  return out;
}

/// The events of one server, and their journal. Thread-safe: the routes and the memory's workers call it
/// concurrently (one mutex; a journal line is written, and fsynced when it must be, under it).
class event_log {
 public:
  static constexpr std::size_t default_max_events = 1000;

  /// Opens the journal at `path` (created with its directory when missing; "" keeps the events in memory
  /// only), loading the events it holds, keeping at most `max_events` (at least 1).
  /// @throws engram::storage_error when it cannot be read or written, or another process uses it.
  explicit event_log(std::string path = {}, std::size_t max_events = default_max_events)
      : journal_(std::move(path), "events journal",
                 "another engram-server runs on this data directory, or give each server its own --events-file"),
        max_(std::max<std::size_t>(max_events, 1)) {
    if (journal_.path().empty()) return;
    skipped_ = journal_.load([&](const json& line) {
      auto e = event_from_json(line);
      if (e) insert(std::move(*e));
      return e.has_value();
    });
    trim();
    journal_.rewrite(compacted());
  }

  event_log(const event_log&) = delete;
  event_log& operator=(const event_log&) = delete;

  /// Feeds this log from the memory's workers. Call on the memory's config before the memory is opened (entries
  /// resumed on open are reported then), and keep this log alive until the memory is destroyed.
  void attach(engram::async_options& o) {
    o.on_started = [this](const std::string& id) { started(id); };
    o.on_processed = [this](const engram::async_outcome& out) { processed(out); };
  }

  /// Records an add accepted by add_async as entry `id` at `accepted_at`: PENDING, unless its worker has
  /// reported it already. A journal that cannot be written is reported on stderr and the event kept in memory:
  /// the add itself is durable, only its event may be forgotten by a restart.
  void accepted(const std::string& id, const engram::scope& owner, json payload, std::string accepted_at) {
    std::lock_guard lock(mtx_);
    add_event e;
    if (auto early = early_.find(id); early != early_.end()) {
      e = std::move(early->second);
      early_.erase(early);
    }
    e.id = id;
    e.owner = owner;
    e.payload = std::move(payload);
    e.created_at = accepted_at;
    if (e.updated_at.empty()) e.updated_at = accepted_at;
    auto& stored = insert(std::move(e));
    journal(stored, true);
    trim();
  }

  /// A worker started an attempt at entry `id`: RUNNING.
  void started(const std::string& id) {
    std::lock_guard lock(mtx_);
    auto* e = find_or_early(id);
    const auto now = detail::now_iso();
    e->status = event_status::running;
    e->updated_at = now;
    if (e->started_at.empty()) e->started_at = now;
    e->completed_at.clear();
    e->latency_ms.reset();
    e->error.clear();
    ++e->attempts;
    if (index_.count(id)) journal(*e, false);
  }

  /// An entry's final outcome: SUCCEEDED with the add's memory events, or FAILED with the error.
  void processed(const engram::async_outcome& o) {
    std::lock_guard lock(mtx_);
    auto* e = find_or_early(o.id);
    const auto now = detail::now_iso();
    e->status = o.succeeded ? event_status::succeeded : event_status::failed;
    e->updated_at = e->completed_at = now;
    if (e->started_at.empty()) e->started_at = now;
    e->latency_ms = detail::millis_between(e->started_at, now);
    e->attempts = std::max(e->attempts, o.attempts);
    e->results = o.succeeded ? event_results(o.result, o.scope) : json::array();
    e->error = o.error;
    if (index_.count(o.id)) {
      journal(*e, true);
      trim();
    }
  }

  /// Settles, once the memory has opened, the events an earlier run left PENDING or RUNNING whose entries are no
  /// longer waiting: those kept as failed in the store (`failed`) become FAILED; those gone from the store's
  /// queue (`queued`: every id it holds) were committed before the server stopped recording them, and become
  /// SUCCEEDED with unknown results (none listed). A worker's report arriving later replaces this.
  void reconcile(const std::vector<engram::failed_add>& failed, const std::unordered_set<std::string>& queued) {
    std::lock_guard lock(mtx_);
    std::unordered_map<std::string, const engram::failed_add*> failures;
    for (const auto& f : failed) failures.emplace(f.id, &f);
    const auto now = detail::now_iso();
    for (auto& [seq, e] : events_) {
      if (is_final(e.status)) continue;
      const auto f = failures.find(e.id);
      if (f == failures.end() && queued.count(e.id)) continue;  // still to be processed: its worker reports it
      e.status = f != failures.end() ? event_status::failed : event_status::succeeded;
      e.updated_at = e.completed_at = now;
      if (f != failures.end()) {
        e.error = f->second->error;
        e.attempts = f->second->attempts;
      }
      journal(e, true);
    }
    trim();
  }

  /// GET /v1/event/{id}/. @throws engram::not_found for an unknown id or another user's event (a bound key
  /// cannot learn that it exists).
  json get(const std::string& id, const principal& who) const {
    std::lock_guard lock(mtx_);
    const auto it = index_.find(id);
    if (it == index_.end() || !visible(events_.at(it->second), who))
      throw engram::not_found("no event with id '" + id + "'");
    return event_json(events_.at(it->second));
  }

  /// GET /v1/events/: the caller's events, newest first, paged as the Platform pages (`page` from 1, `page_size`
  /// default 100, at most 1,000): {"count", "next", "previous", "results"}, next and previous being this route
  /// with the neighbouring page, or null. @throws engram::validation_error for a bad page or page_size.
  json list(const json& query, const principal& who) const {
    const auto page = whole_number(query, "page", 1, 1'000'000'000).value_or(1);
    const auto size = whole_number(query, "page_size", 1, 1000).value_or(100);
    std::lock_guard lock(mtx_);
    std::size_t count = 0;
    json results = json::array();
    for (auto it = events_.rbegin(); it != events_.rend(); ++it) {
      if (!visible(it->second, who)) continue;
      if (count >= (page - 1) * size && results.size() < size) results.push_back(event_json(it->second));
      ++count;
    }
    const auto link = [&](std::size_t p) {
      return json("/v1/events/?page=" + std::to_string(p) + "&page_size=" + std::to_string(size));
    };
    return json{{"count", count},
                {"next", page * size < count ? link(page + 1) : json(nullptr)},
                {"previous", page > 1 ? link(page - 1) : json(nullptr)},
                {"results", std::move(results)}};
  }

  /// Erasure (purge.hpp): drops every event of a scope `q` selects (its request body and results hold the
  /// memories' text), whatever its status, and rewrites the journal without them (a temporary file, fsync,
  /// rename), so no line of the file keeps them. @returns how many. @throws engram::storage_error.
  std::size_t forget_scope(const engram::scope& q) {
    std::lock_guard lock(mtx_);
    std::size_t n = 0;
    for (auto it = events_.begin(); it != events_.end();) {
      if (!q.selects(it->second.owner)) {
        ++it;
        continue;
      }
      index_.erase(it->second.id);
      it = events_.erase(it);
      ++n;
    }
    std::erase_if(early_, [&](const auto& e) { return q.selects(e.second.owner); });
    journal_.rewrite(compacted());
    return n;
  }

  /// Events held (every user's).
  [[nodiscard]] std::size_t size() const {
    std::lock_guard lock(mtx_);
    return events_.size();
  }
  /// The journal's path; empty: none.
  [[nodiscard]] const std::string& path() const noexcept { return journal_.path(); }
  /// Journal lines skipped on load (cut short by a crash, or not an event).
  [[nodiscard]] std::size_t skipped_on_load() const noexcept { return skipped_; }

 private:
  /// A key sees the events of the memories it may see: its project's (any, for a server-wide admin), and of a
  /// key bound to a user, that user's.
  static bool visible(const add_event& e, const principal& who) { return who.may_see(e.owner); }

  /// Stores `e` (replacing the event of its id, which keeps its place) and returns it.
  add_event& insert(add_event e) {
    if (auto it = index_.find(e.id); it != index_.end()) return events_[it->second] = std::move(e);
    const auto seq = next_seq_++;
    index_[e.id] = seq;
    return events_[seq] = std::move(e);
  }

  /// The event of `id`, or a placeholder holding what a worker reported before accepted() (at most 1,024 are
  /// kept: an entry resumed after a crash that lost its acceptance is nobody's event).
  add_event* find_or_early(const std::string& id) {
    if (auto it = index_.find(id); it != index_.end()) return &events_.at(it->second);
    auto [it, fresh] = early_.try_emplace(id);
    if (fresh) {
      it->second.id = id;
      early_order_.push_back(id);
      while (early_order_.size() > 1024) {
        early_.erase(early_order_.front());
        early_order_.pop_front();
      }
    }
    return &it->second;
  }

  /// Drops the oldest finished events while more than max_ are held.
  void trim() {
    for (auto it = events_.begin(); events_.size() > max_ && it != events_.end();) {
      if (!is_final(it->second.status)) {
        ++it;
        continue;
      }
      index_.erase(it->second.id);
      it = events_.erase(it);
    }
  }

  /// Appends `e`'s state to the journal (fsynced when `durable`), compacting it when it has grown. A failure is
  /// reported on stderr: the event stays in memory.
  void journal(const add_event& e, bool durable) {
    if (journal_.path().empty()) return;
    try {
      journal_.append(event_json(e), durable, [&] { return compacted(); });
      if (journal_.lines() > 2 * events_.size() + 64) journal_.rewrite(compacted());
    } catch (const std::exception& ex) {
      say("engram-server: ", ex.what(), " (event ", e.id, " kept in memory only)");
    }
  }

  /// The journal as one line per event, in acceptance order.
  std::string compacted() const {
    std::string text;
    for (const auto& [seq, e] : events_) text += jsonl_journal::dump(event_json(e)) + '\n';
    return text;
  }

  jsonl_journal journal_;
  std::size_t max_;
  mutable std::mutex mtx_;
  std::map<std::uint64_t, add_event> events_;             // by acceptance order
  std::unordered_map<std::string, std::uint64_t> index_;  // id -> key in events_
  std::uint64_t next_seq_ = 0;
  std::unordered_map<std::string, add_event> early_;      // reported before accepted()
  std::deque<std::string> early_order_;
  std::size_t skipped_ = 0;
};

/// `--async-adds` (or ENGRAM_ASYNC_ADDS): "async" queues the Platform routes' adds by default, "sync" (the
/// default) answers them once stored. @throws engram::validation_error for anything else.
inline bool parse_async_adds(std::string_view v) {
  if (v == "async") return true;
  if (v == "sync") return false;
  throw engram::validation_error("--async-adds (or ENGRAM_ASYNC_ADDS) expects sync or async, got '" +
                                 engram::printable(v) + "'");
}

/// Whether an add on the Platform's routes is queued: the request's `async_mode` when it gives one (a boolean;
/// anything else is a 400), else the server's default, except that an add with `infer: false` (stored as given,
/// no model call) is answered once stored, as the Platform answers it, unless it asks for async_mode itself.
inline bool add_is_async(const json& req, bool async_by_default) {
  if (auto a = req.find("async_mode"); a != req.end() && !a->is_null()) {
    if (!a->is_boolean()) throw engram::validation_error("'async_mode' must be a boolean, got " + a->dump());
    return a->get<bool>();
  }
  const auto infer = req.find("infer");
  return async_by_default && !(infer != req.end() && infer->is_boolean() && !infer->get<bool>());
}

/// Queues the add `req` asks for (checked and parsed by service::parse_add) with add_async, records its event,
/// and answers as the Platform does: POST /v3/memories/add/ (`v3`) `{"message", "status": "PENDING", "event_id"}`;
/// POST /v1/memories/ that item in a list, shaped by `output_format` as other answers are.
template <class Memory>
json queue_add(Memory& memory, event_log& events, const add_request& a, const json& req, bool v3) {
  const auto accepted_at = detail::now_iso();
  const auto id = memory.add_async(a.messages, a.scope, a.options);
  events.accepted(id, a.scope, req, accepted_at);
  json item{{"message", "Add queued: poll GET /v1/event/" + id + "/ for its outcome"},
            {"status", "PENDING"},
            {"event_id", id}};
  if (v3) return item;
  return detail::in_output_format(req, json{{"results", json::array({std::move(item)})}});
}

/// Runs event_log::reconcile once `memory` has opened: its failed entries, and the ids its store still queues.
template <class Memory>
void reconcile(event_log& events, const Memory& memory) {
  std::unordered_set<std::string> queued;
  memory.store().for_each_pending([&](const engram::pending_add& p) { queued.insert(p.id); });
  events.reconcile(memory.failed_adds(), queued);
}

}  // namespace engram_app
