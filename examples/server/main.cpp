// engram-server: engram as a service, speaking Mem0's REST API (OSS routes and the Platform's), over HTTP.
#include "../common/app_memory.hpp"
#include "../common/auth.hpp"
#include "../common/errors.hpp"
#include "../common/events.hpp"
#include "../common/exports.hpp"
#include "../common/projects.hpp"
#include "../common/graph.hpp"
#include "../common/metrics.hpp"
#include "../common/request.hpp"
#include "../common/request_log.hpp"
#include "../common/say.hpp"
#include "../common/service.hpp"
#include "../common/mcp_handler.hpp"
#include "../common/purge.hpp"
#include "../common/webhooks.hpp"

#include <httplib.h>

#include "engram_assets.hpp"  // generated: docs/openapi.json and server/ui/ (examples/CMakeLists.txt)

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <string>
#include <thread>
#include <vector>

namespace {

using engram_app::json;

struct options {
  std::string host = "127.0.0.1";
  int port = 8888;
  std::string data;
  std::string store;  // empty: the file store in `data`; or a postgres:// URL
  std::vector<std::string> shards;  // every --store given: several make a sharded store
  int threads = 8;
  std::string keys;
  std::size_t max_body = 1 << 20;
  double rate_limit = 0;
  bool rebalance = false;  // move scopes to the shards that own them now, then exit
  engram_app::log_format log_format = engram_app::log_format::text;
  bool log_bodies = false;  // request bodies (memory text) in the log
  // Adds on the Platform routes without `async_mode`: answered once stored (sync, the default, what existing
  // deployments expect) or queued with an event id (async, the Platform's own default). ENGRAM_ASYNC_ADDS too.
  bool async_adds = false;
  std::string events_file;  // the events journal; empty: events.jsonl in the data directory (file store only)
  std::size_t max_events = engram_app::event_log::default_max_events;
  std::string webhooks_file;  // the webhooks and their outbox; empty: webhooks.jsonl in the data directory (file store only)
  long webhook_retry_ms = 1000;  // the first wait after a failed delivery, doubling up to 60 s
  std::size_t webhook_max_pending = engram_app::webhook_settings{}.max_pending;  // per webhook
  std::string projects_file;  // the projects' settings; empty: projects.json in the data directory (file store only)
  std::string exports_dir;  // where exports are kept; empty: DATA/exports with the file store, memory with --store
  std::size_t max_exports = engram_app::export_store::default_max_exports;
  std::size_t max_export_memories = engram_app::default_max_export_memories;
  engram_app::provider_settings providers = engram_app::provider_settings::from_env();
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "engram-server: " << why << "\n"
            << "usage: engram-server [--host 127.0.0.1] [--port 8888] [--data DIR | --store postgres://... [--store ...]]\n"
            << "                     [--threads N] [--keys FILE]"
            << "                     [--max-body BYTES] [--rate-limit REQUESTS_PER_SECOND_PER_KEY]\n"
            << "                     [--log-format text|json|off] [--log-bodies] [provider flags]\n"
            << "                     [--async-adds sync|async] [--events-file PATH] [--max-events N]\n"
            << "                     [--webhooks-file PATH] [--webhook-retry-ms MS] [--webhook-max-pending N]\n"
            << "                     [--exports-dir DIR] [--max-exports N] [--max-export-memories N] [--projects-file PATH]\n"
            << "       engram-server --rebalance --store URL --store URL [--store URL ...]\n"
            << "                     after adding a shard: moves each scope to the shard that owns it now, then exits\n"
            << "  --async-adds sync|async  adds on POST /v1/memories/ and /v3/memories/add/ without async_mode: answered\n"
            << "                     once stored (sync, the default) or queued, answered PENDING with an event id\n"
            << "                     (async, the Mem0 Platform's default)  env ENGRAM_ASYNC_ADDS\n"
            << "  --events-file PATH   the events journal (default DATA/events.jsonl; with --store: none, in memory)\n"
            << "  --max-events N       events kept, the oldest finished ones dropped first (default 1000)\n"
            << "  --webhooks-file PATH the webhooks and their undelivered events (default DATA/webhooks.jsonl; with\n"
            << "                     --store: none, in memory)\n"
            << "  --webhook-retry-ms MS  the first wait after a failed webhook delivery, doubling up to 60 s (default 1000)\n"
            << "  --webhook-max-pending N  deliveries queued per webhook; past it the oldest are dropped (default 100000)\n"
            << "  --exports-dir DIR    where memory exports are kept (default DATA/exports; with --store: none, in memory)\n"
            << "  --max-exports N      exports kept, the oldest dropped first (default 100)\n"
            << "  --max-export-memories N  the most memories one export may hold (default 10000; more: 413)\n"
            << "  --projects-file PATH the projects' settings (default DATA/projects.json; with --store: none, in memory)\n\n"
            << engram_app::provider_help;
  std::exit(2);
}

options parse_args(int argc, char** argv) {
  options o;
  if (const char* v = std::getenv("ENGRAM_ASYNC_ADDS"); v && *v) {
    try {
      o.async_adds = engram_app::parse_async_adds(v);
    } catch (const engram::validation_error& e) {
      usage(e.what());
    }
  }
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    auto number = [&](long lo, long hi) -> long {
      const auto v = value();
      char* end = nullptr;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || n < lo || n > hi) usage(a + " expects a number from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got '" + v + "'");
      return n;
    };
    if (a == "--host") o.host = value();
    else if (a == "--port") o.port = int(number(0, 65535));
    else if (a == "--data") o.data = value();
    else if (a == "--store") {
      o.store = value();
      o.shards.push_back(o.store);
      if (!engram_app::is_postgres_url(o.store))
        usage("--store expects a postgres:// or postgresql:// URL (the file store is the default: use --data DIR), got '" +
              o.store + "'");
      if (!engram_app::postgres_available) usage("--store " + o.store.substr(0, o.store.find(':')) +
                                                 "://...: this engram-server was built without PostgreSQL support (libpq)");
    } else if (a == "--threads") o.threads = int(number(1, 256));
    else if (a == "--keys") o.keys = value();
    else if (a == "--max-body") o.max_body = std::size_t(number(1024, 1L << 30));
    else if (a == "--rate-limit") o.rate_limit = double(number(0, 1000000));
    else if (a == "--rebalance") o.rebalance = true;
    else if (a == "--log-format") {
      try {
        o.log_format = engram_app::parse_log_format(value());
      } catch (const engram_app::settings_error& e) {
        usage(e.what());
      }
    } else if (a == "--log-bodies") o.log_bodies = true;
    else if (a == "--async-adds") {
      try {
        o.async_adds = engram_app::parse_async_adds(value());
      } catch (const engram::validation_error& e) {
        usage(e.what());
      }
    } else if (a == "--events-file") o.events_file = value();
    else if (a == "--max-events") o.max_events = std::size_t(number(1, 10'000'000));
    else if (a == "--webhooks-file") o.webhooks_file = value();
    else if (a == "--projects-file") o.projects_file = value();
    else if (a == "--webhook-retry-ms") o.webhook_retry_ms = number(1, 60'000);
    else if (a == "--webhook-max-pending") o.webhook_max_pending = std::size_t(number(1, 100'000'000));
    else if (a == "--exports-dir") o.exports_dir = value();
    else if (a == "--max-exports") o.max_exports = std::size_t(number(1, 100'000));
    else if (a == "--max-export-memories") o.max_export_memories = std::size_t(number(1, long(engram_app::most_export_memories)));
    else if (engram_app::provider_settings::is_flag(a)) {
      const auto v = value();
      try {
        o.providers.set(a, v);
      } catch (const engram_app::settings_error& e) {
        usage(e.what());
      }
    } else if (a == "--help" || a == "-h") usage("help");
    else usage("unknown option '" + a + "'");
  }
  try {
    o.providers.check(engram_app::http_available);
  } catch (const engram_app::settings_error& e) {
    usage(e.what());
  }
  return o;
}

/// The memory this server runs, composed from its options: the one place to extend with other stores.
std::unique_ptr<engram_app::app_memory> open_server_memory(const options& o, const engram::memory_config& config) {
  return engram_app::open_memory(engram_app::data_directory(o.data), o.providers, false, config);
}

/// The events journal: --events-file, else events.jsonl in the file store's data directory. Over PostgreSQL
/// (nodes may share a host and need no data directory) only --events-file: without it events live in memory.
std::string events_path(const options& o) {
  if (!o.events_file.empty()) return o.events_file;
  return o.store.empty() ? engram_app::data_directory(o.data) + "/events.jsonl" : std::string();
}

/// The webhooks' journal (registrations and outbox): --webhooks-file, else webhooks.jsonl in the file store's
/// data directory; over PostgreSQL only --webhooks-file (without it webhooks live in memory), as events_path.
std::string webhooks_path(const options& o) {
  if (!o.webhooks_file.empty()) return o.webhooks_file;
  return o.store.empty() ? engram_app::data_directory(o.data) + "/webhooks.jsonl" : std::string();
}

/// The projects' settings: --projects-file, else projects.json in the file store's data directory; over PostgreSQL
/// only --projects-file (without it the settings live in memory), as events_path.
std::string projects_path(const options& o) {
  if (!o.projects_file.empty()) return o.projects_file;
  return o.store.empty() ? engram_app::data_directory(o.data) + "/projects.json" : std::string();
}

/// The exports' directory: --exports-dir, else exports/ in the file store's data directory. Over PostgreSQL only
/// --exports-dir: without it exports live in memory.
std::string exports_path(const options& o) {
  if (!o.exports_dir.empty()) return o.exports_dir;
  return o.store.empty() ? engram_app::data_directory(o.data) + "/exports" : std::string();
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

/// cpp-httplib 0.11 listens with a backlog of 5: a burst of new connections (16 agents starting at once) overflows
/// it and the kernel resets some of them. Linux lets listen() be called again on a listening socket to raise
/// the backlog, so find our listening socket by its port and do that.
void raise_listen_backlog(int port) {
  for (int fd = 3; fd < 1024; ++fd) {
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) continue;
    sockaddr_storage addr{};
    socklen_t alen = sizeof addr;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) continue;
    int bound = -1;
    if (addr.ss_family == AF_INET) bound = ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    if (addr.ss_family == AF_INET6) bound = ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
    if (bound == port) ::listen(fd, SOMAXCONN);
  }
}

/// The query parameters of a request as a JSON object (for scope and paging). @throws validation_error.
/// The query parameters as JSON (request.hpp checks them); their scope goes to the request's log line.
json params_json(const httplib::Request& req) {
  auto q = engram_app::query_json(req.params);
  engram_app::note_scope(q);
  return q;
}

}  // namespace

/// Runs the server over `memory` until SIGTERM/SIGINT, then closes the memory. @returns the exit code.
template <class Memory>
int serve(const options& opt, std::unique_ptr<Memory>& memory,
          const std::optional<std::map<std::string, engram_app::principal>>& keys, sigset_t& stop_signals,
          engram_app::event_log& events, engram_app::webhook_hub& webhooks,
          engram_app::export_store& export_files, engram_app::project_registry& projects) {
  std::cerr << "engram-server: " << engram_app::describe_memory(opt.providers, *memory) << '\n';
  engram_app::service<Memory> service(*memory);
  service.set_project_settings([&](const std::string& tenant) { return projects.settings_of(tenant); });
  std::cerr << "engram-server: " << projects.size() << " projects, settings in "
            << (projects.path().empty() ? std::string("memory only (give --projects-file PATH to keep them)") : projects.path())
            << '\n';
  engram_app::reconcile(events, *memory);  // events an earlier run left unfinished
  std::cerr << "engram-server: adds on the Platform routes " << (opt.async_adds ? "queued" : "answered once stored")
            << " unless async_mode says otherwise; " << events.size() << " events in "
            << (events.path().empty() ? std::string("memory only") : events.path())
            << (events.skipped_on_load() ? " (" + std::to_string(events.skipped_on_load()) + " unreadable lines skipped)" : "")
            << '\n';
  engram_app::graph_service<Memory> graph(*memory);
  // Every committed change, whichever route made it, goes to the webhooks' outbox before the answer.
  const engram_app::change_observer tell_webhooks = [&](auto changes) { webhooks.memory_changed(changes); };
  service.set_observer(tell_webhooks);
  graph.set_observer(tell_webhooks);
  std::cerr << "engram-server: " << webhooks.stats().webhooks << " webhooks, " << webhooks.stats().pending
            << " deliveries pending in " << (webhooks.path().empty() ? std::string("memory only") : webhooks.path())
            << (webhooks.skipped_on_load() ? " (" + std::to_string(webhooks.skipped_on_load()) + " unreadable lines skipped)" : "")
            << '\n';
  engram_app::export_service<Memory> exports(service, export_files, opt.max_export_memories);
  std::cerr << "engram-server: " << export_files.size() << " memory exports in "
            << (export_files.directory().empty() ? std::string("memory only (give --exports-dir DIR to keep them)")
                                                 : export_files.directory())
            << ", at most " << export_files.max_exports() << " kept of " << opt.max_export_memories << " memories each"
            << (export_files.removed_on_load() ? " (" + std::to_string(export_files.removed_on_load()) +
                                                     " unfinished files removed)" : "")
            << '\n';
  engram_app::route_metrics metrics;
  engram_app::rate_limiter limiter(opt.rate_limit);

  httplib::Server server;
  server.new_task_queue = [n = opt.threads] { return new httplib::ThreadPool(static_cast<std::size_t>(n)); };
  server.set_payload_max_length(opt.max_body);
  server.set_keep_alive_max_count(1000);  // agents keep a session open; don't make them reconnect every 5 requests
  server.set_tcp_nodelay(true);  // answers go out as headers then body: without it Nagle + delayed ACK add ~40 ms
  // Every answer carries the request's id (the client's X-Request-Id when sane), and every request gets its
  // log line once answered (request_log.hpp).
  engram_app::request_logger request_log(opt.log_format, opt.log_bodies);
  engram_app::provider_watch provider_watch;
  server.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    auto& ctx = engram_app::current_request();
    ctx = engram_app::request_context{};
    ctx.id = engram_app::request_id_for(req.get_header_value("X-Request-Id"));
    ctx.start = std::chrono::steady_clock::now();
    ctx.started = true;
    res.set_header("X-Request-Id", ctx.id);
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server.set_logger([&](const httplib::Request& req, const httplib::Response& res) {
    request_log.request({req.method, req.path, res.status, req.body});
    provider_watch.check(*memory, request_log);
  });
  server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.has_header("X-Request-Id")) {  // answered before routing (413 on Content-Length)
      auto& ctx = engram_app::current_request();
      if (ctx.id.empty()) ctx.id = engram_app::request_id_for(req.get_header_value("X-Request-Id"));
      res.set_header("X-Request-Id", ctx.id);
    }
    if (res.body.empty()) {
      const char* what = res.status == 413 ? "request body too large"
                         : res.status == 404 ? "no such route"
                                             : "request failed";
      res.set_content(engram_app::error_body(what), "application/json");
    }
  });
  // Only reached if something outside a route's own error handling throws: a JSON answer, never the
  // exception's text in a header.
  server.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    res.status = 500;
    res.set_content(engram_app::error_body("internal error"), "application/json");
  });

  // Every route goes through here: auth, rate limit, error mapping, metrics.
  // A handler answers JSON, or JSON text already written (engram_app::answer::text).
  using body_handler = std::function<engram_app::answer(const httplib::Request&, const engram_app::principal&)>;
  // `ok_status`: the status of a success (201 where Mem0 answers a creation so).
  auto route = [&](const std::string& name, body_handler handler, int ok_status = 200) {
    return [&, name, handler, ok_status](const httplib::Request& req, httplib::Response& res) {
      const auto start = std::chrono::steady_clock::now();
      engram_app::principal who;
      engram_app::current_request().route = name;
      try {
        if (keys) {
          const auto key = engram_app::key_from_header(req.get_header_value("Authorization"));
          if (key.empty()) throw engram_app::unauthorized("missing API key: send `Authorization: Token KEY`");
          const auto it = keys->find(key);
          if (it == keys->end()) throw engram_app::unauthorized("unknown API key");
          who = it->second;
          engram_app::current_request().key_name = who.name;
          if (!limiter.allow(key)) {
            res.status = 429;
            res.set_header("Retry-After", "1");
            res.set_content(engram_app::error_body("rate limit exceeded"), "application/json");
            metrics.record(name, res.status, 0);
            return;
          }
        }
        res.set_content(engram_app::answer_body(handler(req, who)), "application/json");
        res.status = ok_status;
      } catch (const std::exception& e) {
        const auto kind = engram_app::current_error_kind();
        res.status = engram_app::http_status(kind);
        std::string detail = e.what();
        if (kind == engram_app::error_kind::storage) {
          engram_app::say("engram-server: storage error: ", e.what());
          res.set_header("Retry-After", "1");
          detail = "storage unavailable, retry later";
        } else if (kind == engram_app::error_kind::internal) {
          engram_app::say("engram-server: ", name, ": ", e.what());
          detail = "internal error";
        }
        res.set_content(engram_app::error_body(detail), "application/json");
      }
      metrics.record(name, res.status,
                     std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
    };
  };
  // The request-validation layer (request.hpp): every body, path id and query string is checked on the way in.
  auto body = [](const httplib::Request& req) {
    auto b = engram_app::parse_object_body(req.body);
    engram_app::note_scope(b);
    return b;
  };
  auto id_of = [](const httplib::Request& req) { return engram_app::path_id(req.matches[1].str()); };

  // ---- Mem0 OSS REST ----
  server.Post("/memories", route("POST /memories", [&](auto& req, auto& who) { return service.add(body(req), who); }));
  server.Get("/memories", route("GET /memories", [&](auto& req, auto& who) { return service.list(params_json(req), who); }));
  server.Delete("/memories", route("DELETE /memories", [&](auto& req, auto& who) { return service.remove_all(params_json(req), who); }));
  server.Get(R"(/memories/([^/]+))", route("GET /memories/{id}", [&](auto& req, auto& who) { return service.get(id_of(req), who); }));
  server.Put(R"(/memories/([^/]+))", route("PUT /memories/{id}", [&](auto& req, auto& who) { return service.update(id_of(req), body(req), who); }));
  server.Delete(R"(/memories/([^/]+))", route("DELETE /memories/{id}", [&](auto& req, auto& who) { return service.remove(id_of(req), who); }));
  server.Get(R"(/memories/([^/]+)/history)", route("GET /memories/{id}/history", [&](auto& req, auto& who) { return service.history(id_of(req), who); }));
  server.Post("/search", route("POST /search", [&](auto& req, auto& who) {
                return engram_app::answer::text(service.search_text(body(req), who));
              }));
  server.Post("/reset", route("POST /reset", [&](auto&, auto& who) { return service.reset(who); }));

  // ---- Mem0 Platform surface (clients built for the hosted API point their host here) ----
  server.Get("/v1/ping/", route("GET /v1/ping/", [&](auto&, auto& who) {
    const bool own = !who.project_id.empty();  // a key bound to none answers the default project
    return json{{"status", "ok"},
                {"org_id", own ? who.org_id : std::string(engram_app::default_org)},
                {"project_id", own ? who.project_id : std::string(engram_app::default_project)},
                {"user_email", who.name}};
  }));
  // Organizations and projects (projects.hpp): the key file's, read here; made and changed by editing it.
  auto fields_of = [](const httplib::Request& req) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < req.get_param_value_count("fields"); ++i)
      for (auto& f : engram_app::comma_list(req.get_param_value("fields", i))) out.push_back(std::move(f));
    return out;
  };
  auto arg = [](const httplib::Request& req, int n) { return engram_app::path_id(req.matches[n].str()); };
  auto refuse = [](const char* what) { return [what](auto&, auto&) -> json { engram_app::project_registry::refuse_change(what); }; };
  server.Get("/api/v1/orgs/organizations/", route("GET /api/v1/orgs/organizations/", [&](auto&, auto& who) { return projects.organizations(who); }));
  server.Post("/api/v1/orgs/organizations/", route("POST /api/v1/orgs/organizations/", refuse("creating an organization")));
  server.Get(R"(/api/v1/orgs/organizations/([^/]+)/)", route("GET /api/v1/orgs/organizations/{org_id}/", [&](auto& req, auto& who) { return projects.organization(arg(req, 1), who); }));
  server.Delete(R"(/api/v1/orgs/organizations/([^/]+)/)", route("DELETE /api/v1/orgs/organizations/{org_id}/", refuse("deleting an organization")));
  server.Get(R"(/api/v1/orgs/organizations/([^/]+)/members/)", route("GET /api/v1/orgs/organizations/{org_id}/members/", [&](auto& req, auto& who) { return projects.members(arg(req, 1), std::nullopt, who); }));
  server.Post(R"(/api/v1/orgs/organizations/([^/]+)/members/)", route("POST /api/v1/orgs/organizations/{org_id}/members/", refuse("adding a member")));
  server.Get(R"(/api/v1/orgs/organizations/([^/]+)/projects/)", route("GET /api/v1/orgs/organizations/{org_id}/projects/", [&](auto& req, auto& who) { return projects.projects(arg(req, 1), who); }));
  server.Post(R"(/api/v1/orgs/organizations/([^/]+)/projects/)", route("POST /api/v1/orgs/organizations/{org_id}/projects/", [&](auto& req, auto& who) { return projects.create(arg(req, 1), body(req), who); }));
  server.Get(R"(/api/v1/orgs/organizations/([^/]+)/projects/([^/]+)/)", route("GET /api/v1/orgs/organizations/{org_id}/projects/{project_id}/", [&](auto& req, auto& who) { return projects.project(arg(req, 1), arg(req, 2), fields_of(req), who); }));
  server.Patch(R"(/api/v1/orgs/organizations/([^/]+)/projects/([^/]+)/)", route("PATCH /api/v1/orgs/organizations/{org_id}/projects/{project_id}/", [&](auto& req, auto& who) { return projects.update(arg(req, 1), arg(req, 2), body(req), who); }));
  server.Delete(R"(/api/v1/orgs/organizations/([^/]+)/projects/([^/]+)/)", route("DELETE /api/v1/orgs/organizations/{org_id}/projects/{project_id}/", refuse("deleting a project")));
  server.Get(R"(/api/v1/orgs/organizations/([^/]+)/projects/([^/]+)/members/)", route("GET /api/v1/orgs/organizations/{org_id}/projects/{project_id}/members/", [&](auto& req, auto& who) { return projects.members(arg(req, 1), arg(req, 2), who); }));
  server.Post(R"(/api/v1/orgs/organizations/([^/]+)/projects/([^/]+)/members/)", route("POST /api/v1/orgs/organizations/{org_id}/projects/{project_id}/members/", refuse("adding a member")));
  // (each route's name is a literal "METHOD /path": the OpenAPI test reads them from this file)
  // An add is queued when its async_mode (or --async-adds async) asks: answered PENDING with an event id (events.hpp)
  auto add = [&](bool v3) {
    return [&, v3](auto& req, auto& who) {
      auto b = body(req);
      if (!engram_app::add_is_async(b, opt.async_adds)) return service.add(b, who);
      return engram_app::queue_add(*memory, events, service.parse_add(b, who), b, v3);
    };
  };
  server.Post("/v1/memories/", route("POST /v1/memories/", add(false)));
  server.Post("/v3/memories/add/", route("POST /v3/memories/add/", add(true)));
  server.Get(R"(/v1/event/([^/]+)/)", route("GET /v1/event/{event_id}/", [&](auto& req, auto& who) { return events.get(id_of(req), who); }));
  server.Get("/v1/events/", route("GET /v1/events/", [&](auto& req, auto& who) { return events.list(params_json(req), who); }));
  auto search = [&](auto& req, auto& who) { return engram_app::answer::text(service.search_text(body(req), who)); };
  server.Post("/v2/memories/search/", route("POST /v2/memories/search/", search));
  server.Post("/v3/memories/search/", route("POST /v3/memories/search/", search));
  auto list_page = [&](auto& req, auto& who) {
    // the official SDKs send getAll's page and page_size in the query string
    auto b = body(req);
    const auto q = params_json(req);
    for (const char* key : {"page", "page_size"})
      if (q.contains(key) && !b.contains(key)) b[key] = q[key];
    return service.list_page(b, who);
  };
  server.Post("/v2/memories/", route("POST /v2/memories/", list_page));
  server.Post("/v3/memories/", route("POST /v3/memories/", list_page));
  server.Get(R"(/v1/memories/([^/]+)/)", route("GET /v1/memories/{id}/", [&](auto& req, auto& who) { return service.get(id_of(req), who); }));
  server.Put(R"(/v1/memories/([^/]+)/)", route("PUT /v1/memories/{id}/", [&](auto& req, auto& who) { return service.update(id_of(req), body(req), who); }));
  server.Delete(R"(/v1/memories/([^/]+)/)", route("DELETE /v1/memories/{id}/", [&](auto& req, auto& who) { return service.remove(id_of(req), who); }));
  server.Delete("/v1/memories/", route("DELETE /v1/memories/", [&](auto& req, auto& who) { return service.remove_all(params_json(req), who); }));
  server.Get(R"(/v1/memories/([^/]+)/history/)", route("GET /v1/memories/{id}/history/", [&](auto& req, auto& who) { return service.history(id_of(req), who); }));
  // Batches of up to 1,000 memories, all or nothing (the official clients' batchUpdate / batchDelete)
  server.Put("/v1/batch/", route("PUT /v1/batch/", [&](auto& req, auto& who) { return service.batch_update(body(req), who); }));
  server.Delete("/v1/batch/", route("DELETE /v1/batch/", [&](auto& req, auto& who) { return service.batch_delete(body(req), who); }));
  // Memory exports (Mem0's structured exports: the memories themselves, see exports.hpp) and their summary
  server.Post("/v1/exports/", route("POST /v1/exports/", [&](auto& req, auto& who) { return exports.create(body(req), who); }, 201));
  server.Post("/v1/exports/get/", route("POST /v1/exports/get/", [&](auto& req, auto& who) { return exports.get(body(req), who); }));
  server.Post("/v1/summary/", route("POST /v1/summary/", [&](auto& req, auto& who) { return exports.summary(body(req), who); }));
  server.Get("/v1/entities/", route("GET /v1/entities/", [&](auto&, auto& who) { return service.entities(who); }));
  // Erasure: an entity's memories and their history, and what the app's files hold of it (purge.hpp)
  const engram_app::purge_files purge_files{[&](const engram::scope& s) { return events.forget_scope(s); },
                                            [&](const engram::scope& s) { return webhooks.forget_scope(s); },
                                            [&](const engram::scope& s) { return export_files.forget_scope(s); },
                                            [&](const engram::scope& s, std::size_t n) { webhooks.scope_purged(s, n); }};
  auto purge_entity = [&](auto& req, auto& who) {
    return engram_app::purge_scope(*memory, engram_app::entity_scope(engram_app::path_id(req.matches[1].str()), engram_app::path_id(req.matches[2].str()), who, params_json(req)), purge_files);
  };
  server.Delete(R"(/v1/entities/([^/]+)/([^/]+)/)", route("DELETE /v1/entities/{entity_type}/{entity_id}/", purge_entity));
  server.Delete(R"(/v2/entities/([^/]+)/([^/]+)/)", route("DELETE /v2/entities/{entity_type}/{entity_name}/", purge_entity));
  // The entity graph of a scope (--entities on): entities and relations, one entity with its memories, and
  // the purge of an entity (every memory mentioning it)
  server.Get("/v1/graph/", route("GET /v1/graph/", [&](auto& req, auto& who) { return graph.graph(params_json(req), who); }));
  server.Get("/v1/graph/entity/", route("GET /v1/graph/entity/", [&](auto& req, auto& who) { return graph.entity(params_json(req), who); }));
  server.Delete("/v1/graph/entity/", route("DELETE /v1/graph/entity/", [&](auto& req, auto& who) { return graph.delete_entity(params_json(req), who); }));
  // Webhooks (webhooks.hpp): an admin's, under the Platform's /api/ prefix; a project admin's are told of its
  // project's events, a server-wide admin's of every project's
  server.Get(R"(/api/v1/webhooks/projects/([^/]+)/)", route("GET /api/v1/webhooks/projects/{project_id}/", [&](auto& req, auto& who) { return webhooks.list(id_of(req), who); }));
  server.Post(R"(/api/v1/webhooks/projects/([^/]+)/)", route("POST /api/v1/webhooks/projects/{project_id}/", [&](auto& req, auto& who) { return webhooks.create(id_of(req), body(req), who); }));
  server.Put(R"(/api/v1/webhooks/([^/]+)/)", route("PUT /api/v1/webhooks/{webhook_id}/", [&](auto& req, auto& who) { return webhooks.update(id_of(req), body(req), who); }));
  server.Delete(R"(/api/v1/webhooks/([^/]+)/)", route("DELETE /api/v1/webhooks/{webhook_id}/", [&](auto& req, auto& who) { return webhooks.remove(id_of(req), who); }));

  // ---- Model Context Protocol, Streamable HTTP (JSON responses, no SSE stream); a key bound to a user binds
  // every tool call to that user, as engram-mcp --user-id does ----
  engram_app::mcp::server<Memory> mcp(*memory);
  mcp.set_observer(tell_webhooks);
  mcp.set_purge_files(purge_files);
  server.Post("/mcp", [mcp_route = route("POST /mcp", [&](auto& req, auto& who) {
                        return mcp.handle_text(req.body, who).value_or(json(nullptr));
                      })](const httplib::Request& req, httplib::Response& res) {
    mcp_route(req, res);
    if (res.status == 200 && res.body == "null") {  // only notifications or responses: 202 Accepted, no body
      res.status = 202;
      res.body.clear();
    }
  });
  server.Get("/mcp", [](const httplib::Request&, httplib::Response& res) {
    engram_app::current_request().route = "GET /mcp";
    res.status = 405;  // no server-initiated stream
    res.set_header("Allow", "POST");
    res.set_content(engram_app::error_body("POST JSON-RPC messages to /mcp"), "application/json");
  });

  // ---- operations ----
  // Liveness for anyone (load balancers send no key); the memory count only for a server-wide admin (any caller
  // without --keys, which listens on loopback only): it counts every project's memories.
  server.Get("/health", [&](const httplib::Request& req, httplib::Response& res) {
    engram_app::current_request().route = "GET /health";
    bool admin = !keys;
    if (keys) {
      const auto it = keys->find(engram_app::key_from_header(req.get_header_value("Authorization")));
      admin = it != keys->end() && it->second.any_project();
    }
    try {
      if constexpr (requires { memory->store().ping(); }) memory->store().ping();  // a shared database answers
      json answer{{"status", "ok"}};
      if (admin) answer["memories"] = memory->size();
      res.set_content(answer.dump(), "application/json");
    } catch (const engram::storage_error& e) {  // e.g. the database is down: not healthy, say why
      res.status = engram_app::http_status(engram_app::error_kind::storage);
      res.set_header("Retry-After", "1");
      res.set_content(engram_app::answer_body({{"status", "unavailable"}, {"detail", e.what()}}), "application/json");
    }
  });
  // The dashboard: static files that call the routes above with the user's key; they hold no data, so no key.
  // Its own scripts only (no inline script or style), nothing from elsewhere, never framed.
  auto asset = [](const char* route_name, const std::string& (*text)(), const char* type) {
    return [=](const httplib::Request&, httplib::Response& res) {
      engram_app::current_request().route = route_name;
      res.set_header("Content-Security-Policy",
                     "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
                     "form-action 'none'; frame-ancestors 'none'; base-uri 'none'");
      res.set_header("X-Content-Type-Options", "nosniff");
      res.set_header("Referrer-Policy", "no-referrer");
      res.set_header("Cache-Control", "no-cache");
      res.set_content(text(), type);
    };
  };
  server.Get("/ui", [](const httplib::Request&, httplib::Response& res) {
    engram_app::current_request().route = "GET /ui";
    res.set_redirect("/ui/");
  });
  server.Get("/ui/", asset("GET /ui/", engram_app::ui_index_html, "text/html; charset=utf-8"));
  server.Get("/ui/app.js", asset("GET /ui/app.js", engram_app::ui_app_js, "text/javascript; charset=utf-8"));
  server.Get("/ui/style.css", asset("GET /ui/style.css", engram_app::ui_style_css, "text/css; charset=utf-8"));
  // The OpenAPI 3.1 description of these routes, for anyone (as FastAPI's /openapi.json): it holds no data.
  server.Get("/openapi.json", [](const httplib::Request&, httplib::Response& res) {
    engram_app::current_request().route = "GET /openapi.json";
    res.set_content(engram_app::openapi_json(), "application/json");
  });
  const std::string store_kind = opt.shards.size() > 1 ? "sharded_postgres" : opt.store.empty() ? "file" : "postgres";
  // engram's JSON, or the Prometheus text format for `?format=prometheus` or a scraper's Accept header.
  server.Get("/metrics", [&](const httplib::Request& req, httplib::Response& res) {
    std::string exposition;
    route("GET /metrics", [&](auto&, auto& who) -> json {
      if (!who.any_project()) throw engram_app::forbidden("metrics need a server-wide admin key (one bound to no project)");
      if (engram_app::wants_prometheus(req.get_param_value("format"), req.get_header_value("Accept"))) {
        engram_app::prometheus_text text;
        metrics.write_prometheus(text);
        engram_app::write_memory_metrics(text, *memory, store_kind);
        engram_app::write_webhook_metrics(text, webhooks.stats());
        exposition = text.str();
        return nullptr;
      }
      auto m = metrics.snapshot();
      m["memories"] = memory->size();
      m["store"] = store_kind;
      m["providers"] = opt.providers.describe();
      m["on_contradiction"] = std::string(engram::to_string(memory->config().on_contradiction));
      m["entities"] = memory->config().entities;
      const auto hooks = webhooks.stats();
      m["webhooks"] = {{"webhooks", hooks.webhooks}, {"pending", hooks.pending}, {"delivered", hooks.delivered},
                       {"failed_attempts", hooks.failed_attempts}, {"dropped", hooks.dropped}};
      return m;
    })(req, res);
    if (!exposition.empty() && res.status == 200) res.set_content(exposition, engram_app::prometheus_content_type);
  });

  int port = opt.port;
  if (port == 0) {
    port = server.bind_to_any_port(opt.host);
  } else if (!server.bind_to_port(opt.host, port)) {
    port = -1;
  }
  if (port < 0) {
    std::cerr << "engram-server: cannot listen on " << opt.host << ':' << opt.port << '\n';
    return 1;
  }
  raise_listen_backlog(port);
  std::atomic<bool> listen_ended{false};
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (listen_ended) return;
    engram_app::say("engram-server: stopping (signal ", sig, "), finishing requests in flight");
    // httplib's stop() does nothing until the accept loop runs: a signal right after the banner would be lost.
    while (!server.is_running() && !listen_ended) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    server.stop();
  });
  std::cout << "engram-server listening on http://" << opt.host << ':' << port
            << (keys ? " (API keys required)" : " (no API keys: loopback only)") << std::endl;
  server.listen_after_bind();
  listen_ended = true;
  // Wake the stopper if the server ended for another reason.
  pthread_kill(stopper.native_handle(), SIGTERM);
  stopper.join();
  memory.reset();  // closes the store cleanly
  std::cerr << "engram-server: stopped\n";
  return 0;
}

int main(int argc, char** argv) {
  const auto opt = parse_args(argc, argv);
  if (opt.rebalance) {
    if (opt.shards.size() < 2)
      usage("--rebalance needs the --store URL of every shard, the new ones included (two or more)");
#ifdef ENGRAM_APP_POSTGRES
    try {
      auto store = engram_app::open_sharded_postgres_store(opt.shards);
      const auto r = store.rebalance();
      std::cout << "engram-server: rebalance: " << r.scopes_moved << " scopes moved (" << r.records_moved
                << " memories), " << r.retries << " moves repeated after concurrent writes" << std::endl;
      return 0;
    } catch (const engram_app::settings_error& e) {
      std::cerr << "engram-server: " << e.what() << '\n';
      return 2;
    } catch (const std::exception& e) {
      std::cerr << "engram-server: rebalance failed (run it again to finish it): " << e.what() << '\n';
      return 1;
    }
#endif
  }

  std::optional<std::map<std::string, engram_app::principal>> keys;
  try {
    if (!opt.keys.empty()) keys = engram_app::load_keys(opt.keys);
  } catch (const std::exception& e) {
    std::cerr << "engram-server: " << e.what() << '\n';
    return 2;
  }
  if (!keys && !is_loopback(opt.host)) {
    std::cerr << "engram-server: refusing to listen on " << opt.host
              << " without --keys: anyone could read every memory. Give --keys FILE, or listen on 127.0.0.1.\n";
    return 2;
  }

  // The events of queued adds: loaded before the memory opens, whose workers report to them from then on.
  // The memory exports, kept beside them.
  std::unique_ptr<engram_app::event_log> events;
  std::unique_ptr<engram_app::export_store> export_files;
  std::unique_ptr<engram_app::project_registry> projects;
  try {
    events = std::make_unique<engram_app::event_log>(events_path(opt), opt.max_events);
    export_files = std::make_unique<engram_app::export_store>(exports_path(opt), opt.max_exports);
    projects = std::make_unique<engram_app::project_registry>(keys, projects_path(opt));
  } catch (const std::exception& e) {
    std::cerr << "engram-server: " << e.what() << '\n';
    return 1;
  }
  // Block the stop signals in every thread (the webhooks' included); one thread waits for them and stops the server gracefully.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // The webhooks and their outbox, delivering from now on; told of the queued adds' outcomes too.
  std::unique_ptr<engram_app::webhook_hub> webhooks;
  try {
    if (const auto broken = engram_app::hmac_self_test(); !broken.empty())
      throw std::runtime_error("the HMAC-SHA256 of webhook signatures fails its known answer (" + broken + ")");
    webhooks = std::make_unique<engram_app::webhook_hub>(engram_app::webhook_settings{
        .path = webhooks_path(opt), .retry_base = std::chrono::milliseconds(opt.webhook_retry_ms),
        .max_pending = opt.webhook_max_pending});
  } catch (const std::exception& e) {
    std::cerr << "engram-server: " << e.what() << '\n';
    return 1;
  }
  engram::memory_config config;
  events->attach(config.async);
  config.async.on_processed = [told = config.async.on_processed, &events = *events,
                               &webhooks = *webhooks](const engram::async_outcome& o) {
    told(o);  // the event first: a receiver told of the outcome finds it final
    json metadata;
    try {
      metadata = events.get(o.id, {}).at("payload").value("metadata", json());
    } catch (const std::exception&) {  // not recorded yet: the worker was faster than the answer
    }
    webhooks.async_processed(o, metadata);
  };

  // The memory, composed from the options (the file store by default, PostgreSQL for --store postgres://),
  // then the same service over it.
  auto open_and_serve = [&](auto open) -> int {
    using memory_type = typename decltype(open())::element_type;
    std::unique_ptr<memory_type> memory;
    try {
      memory = open();
    } catch (const engram_app::settings_error& e) {
      std::cerr << "engram-server: " << e.what() << '\n';
      return 2;
    } catch (const engram::provider_error& e) {
      std::cerr << "engram-server: cannot open the memory: the embedding provider failed: " << e.what() << '\n';
      return 1;
    } catch (const std::exception& e) {
      std::cerr << "engram-server: cannot open the memory: " << e.what() << engram_app::embedder_mismatch_hint(e.what())
                << '\n';
      return 1;
    }
    return serve(opt, memory, keys, stop_signals, *events, *webhooks, *export_files, *projects);
  };
#ifdef ENGRAM_APP_POSTGRES
  if (opt.shards.size() > 1)  // several databases: scopes spread over them
    return open_and_serve([&] { return engram_app::open_sharded_postgres_memory(opt.shards, opt.providers, config); });
  if (!opt.store.empty())
    return open_and_serve([&] { return engram_app::open_postgres_memory(opt.store, opt.providers, config); });
#endif
  return open_and_serve([&] { return open_server_memory(opt, config); });
}
