// Drives a real engram-server process over loopback: every route, every error status, auth, concurrency.
#include "support/fake_server.hpp"
#include "../../examples/common/events.hpp"  // engram_app::event_log, tested on its own at the end

#include <catch2/catch.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <tuple>
#include <utility>
#include <unistd.h>
#include <vector>

using nlohmann::json;

namespace {

/// Starts engram-server on a free loopback port; stops it with SIGTERM.
class server_process {
 public:
  /// @param data the data directory; empty: a fresh temporary one, removed at the end.
  explicit server_process(std::vector<std::string> args = {}, std::string data = {}) {
    if (data.empty()) {
      char tmpl[] = "/tmp/engram-server-test-XXXXXX";
      REQUIRE(mkdtemp(tmpl));
      data = owned_dir_ = tmpl;
    }
    args.push_back("--data");
    args.push_back(data);
    // argv is built before fork: the child of a threaded process (a fake provider's threads may be starting)
    // must not allocate, since another thread may have held the allocator's lock when it was forked
    std::vector<std::string> all = {ENGRAM_SERVER_BIN, "--host", "127.0.0.1", "--port", "0"};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out[2];
    REQUIRE(pipe(out) == 0);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);  // a test that dies leaves no server behind
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    pollfd ready{out[0], POLLIN, 0};
    INFO("engram-server printed no address within 120 s");
    REQUIRE(poll(&ready, 1, 120000) == 1);
    FILE* f = fdopen(out[0], "r");
    char line[512] = {};
    REQUIRE(std::fgets(line, sizeof line, f) != nullptr);
    const std::string s(line);
    const auto colon = s.rfind(':', s.find(" (") == std::string::npos ? s.size() : s.find(" ("));
    port_ = std::stoi(s.substr(colon + 1));
    out_ = f;
  }
  ~server_process() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int st = 0;
      waitpid(pid_, &st, 0);
    }
    if (out_) std::fclose(out_);
    if (!owned_dir_.empty()) std::filesystem::remove_all(owned_dir_);
  }
  /// Sends SIGTERM and returns the exit status.
  int stop() {
    kill(pid_, SIGTERM);
    int st = 0;
    waitpid(pid_, &st, 0);
    pid_ = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  int port() const { return port_; }
  httplib::Client client(const std::string& key = {}) const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(10, 0);
    if (!key.empty()) c.set_default_headers({{"Authorization", "Token " + key}});
    return c;
  }

 private:
  pid_t pid_ = -1;
  std::string owned_dir_;
  int port_ = 0;
  FILE* out_ = nullptr;
};

json body_of(const httplib::Result& r) {
  REQUIRE(r);
  return json::parse(r->body);
}

/// engram-server with --keys: an admin key and keys bound to the users alice and bob, from a key file in a
/// temporary directory (removed at the end).
class keyed_server {
 public:
  keyed_server() : keyfile_(write_keyfile()), srv_({"--keys", keyfile_}) {}
  ~keyed_server() { std::filesystem::remove_all(std::filesystem::path(keyfile_).parent_path()); }
  httplib::Client admin() const { return srv_.client("admin-key-0123456789"); }
  httplib::Client alice() const { return srv_.client("alice-key-0123456789"); }
  httplib::Client bob() const { return srv_.client("bob-key-012345678901"); }
  httplib::Client anonymous() const { return srv_.client(); }

 private:
  static std::string write_keyfile() {
    char dir[] = "/tmp/engram-keys-XXXXXX";
    REQUIRE(mkdtemp(dir));
    const std::string keyfile = std::string(dir) + "/keys";
    std::ofstream(keyfile) << "admin-key-0123456789 admin\nalice-key-0123456789 user alice\nbob-key-012345678901 user bob\n";
    return keyfile;
  }
  std::string keyfile_;
  server_process srv_;
};

}  // namespace

TEST_CASE("server: Mem0 OSS routes, happy paths and errors", "[server]") {
  server_process srv;
  auto c = srv.client();

  auto r = c.Post("/memories", R"({"messages":[{"role":"user","content":"I love hiking"},{"role":"user","content":"I live in Oslo"}],"user_id":"alice","metadata":{"src":"chat"}})", "application/json");
  REQUIRE(r->status == 200);
  auto added = body_of(r)["results"];
  REQUIRE(added.size() == 2);
  CHECK(added[0]["event"] == "ADD");
  const std::string id = added[0]["id"];
  c.Post("/memories", R"({"messages":"I love sailing","user_id":"bob"})", "application/json");

  r = c.Post("/search", R"({"query":"hiking","user_id":"alice","top_k":1})", "application/json");
  REQUIRE(r->status == 200);
  auto hits = body_of(r)["results"];
  REQUIRE(hits.size() == 1);
  CHECK(hits[0]["memory"] == "I love hiking");
  CHECK(hits[0].contains("score"));
  // scope inside filters (Mem0 Platform style) works on /search too
  r = c.Post("/search", R"({"query":"sailing","filters":{"user_id":"bob"}})", "application/json");
  CHECK(body_of(r)["results"][0]["user_id"] == "bob");

  r = c.Get("/memories?user_id=alice");
  CHECK(body_of(r)["results"].size() == 2);
  r = c.Get(("/memories/" + id).c_str());
  CHECK(body_of(r)["memory"] == "I love hiking");
  r = c.Put(("/memories/" + id).c_str(), R"({"text":"I love trail running"})", "application/json");
  REQUIRE(r->status == 200);
  CHECK(body_of(r)["memory"] == "I love trail running");
  r = c.Get(("/memories/" + id + "/history").c_str());
  auto h = body_of(r);
  REQUIRE(h.size() == 2);
  CHECK(h[1]["event"] == "UPDATE");
  CHECK(h[1]["old_memory"] == "I love hiking");
  r = c.Delete(("/memories/" + id).c_str());
  CHECK(r->status == 200);
  CHECK(c.Get(("/memories/" + id).c_str())->status == 404);

  // errors, each as {"detail": ...}
  r = c.Post("/memories", R"({"messages":"no scope"})", "application/json");
  CHECK(r->status == 400);
  CHECK(body_of(r)["detail"].get<std::string>().find("user_id") != std::string::npos);
  CHECK(c.Post("/memories", "{not json", "application/json")->status == 400);
  CHECK(c.Post("/search", R"({"user_id":"alice"})", "application/json")->status == 400);
  CHECK(c.Post("/search", R"({"query":"x","user_id":"alice","top_k":"many"})", "application/json")->status == 400);
  CHECK(c.Delete("/memories")->status == 400);  // delete_all needs a scope
  CHECK(c.Put("/memories/nope", R"({"text":"x"})", "application/json")->status == 404);
  std::string deep(200, '[');
  deep += std::string(200, ']');
  CHECK(c.Post("/memories", deep, "application/json")->status == 400);
  const std::string huge = json{{"messages", std::string(2 << 20, 'a')}, {"user_id", "alice"}}.dump();
  r = c.Post("/memories", huge, "application/json");
  REQUIRE(r);
  CHECK(r->status == 413);
  CHECK(c.Get("/no/such/route")->status == 404);

  // delete_all touches only its scope; reset wipes
  CHECK(c.Delete("/memories?user_id=alice")->status == 200);
  CHECK(body_of(c.Get("/memories?user_id=alice"))["results"].empty());
  CHECK(body_of(c.Get("/memories?user_id=bob"))["results"].size() == 1);
  CHECK(c.Post("/reset", "", "application/json")->status == 200);
  CHECK(body_of(c.Get("/memories"))["results"].empty());

  auto m = body_of(c.Get("/metrics"));
  CHECK(m["routes"]["POST /memories"]["count"].get<int>() >= 3);
  CHECK(body_of(c.Get("/health"))["status"] == "ok");
  CHECK(srv.stop() == 0);
}

TEST_CASE("server: metadata filters and scope filters", "[server][filter]") {
  server_process srv;
  auto c = srv.client();
  c.Post("/memories", R"({"messages":"I play chess on Sundays","user_id":"ann","metadata":{"kind":"hobby","priority":3}})", "application/json");
  c.Post("/memories", R"({"messages":"I play tennis on Mondays","user_id":"ann","metadata":{"kind":"sport","priority":7}})", "application/json");
  c.Post("/memories", R"({"messages":"I play golf on Fridays","user_id":"ben","metadata":{"kind":"sport","priority":9}})", "application/json");
  auto r = c.Post("/search", R"({"query":"play","user_id":"ann","filters":{"kind":"sport"}})", "application/json");
  auto hits = body_of(r)["results"];
  REQUIRE(hits.size() == 1);
  CHECK(hits[0]["memory"] == "I play tennis on Mondays");
  r = c.Post("/search", R"({"query":"play","user_id":"ann","filters":{"priority":{"$gte":5}}})", "application/json");
  CHECK(body_of(r)["results"].size() == 1);
  // an OR over users searches exactly those users (Platform style)
  r = c.Post("/v2/memories/search/", R"({"query":"play","filters":{"OR":[{"user_id":"ann"},{"user_id":"ben"}]},"top_k":10})", "application/json");
  CHECK(body_of(r)["results"].size() == 3);
  r = c.Post("/v2/memories/", R"({"filters":{"AND":[{"user_id":"ben"},{"kind":"sport"}]}})", "application/json");
  CHECK(body_of(r)["count"] == 1);
  // a bad operator is a 400 naming it
  r = c.Post("/search", R"({"query":"play","user_id":"ann","filters":{"priority":{"$between":[1,2]}}})", "application/json");
  CHECK(r->status == 400);
  CHECK(body_of(r)["detail"].get<std::string>().find("between") != std::string::npos);
  // a filter that names no scope is not a way around the scope requirement
  CHECK(c.Post("/search", R"({"query":"play","filters":{"kind":"sport"}})", "application/json")->status == 400);
}

TEST_CASE("server: Mem0 Platform routes", "[server]") {
  server_process srv;
  auto c = srv.client();
  CHECK(body_of(c.Get("/v1/ping/"))["status"] == "ok");
  auto r = c.Post("/v1/memories/", R"({"messages":[{"role":"user","content":"I drink oolong tea"}],"user_id":"carol"})", "application/json");
  const std::string id = body_of(r)["results"][0]["id"];
  c.Post("/v3/memories/add/", R"({"messages":[{"role":"user","content":"I ride a bike"}],"user_id":"carol"})", "application/json");
  r = c.Post("/v2/memories/search/", R"({"query":"tea","filters":{"AND":[{"user_id":"carol"}]},"top_k":1})", "application/json");
  CHECK(body_of(r)["results"][0]["memory"] == "I drink oolong tea");
  r = c.Post("/v2/memories/", R"({"filters":{"user_id":"carol"},"page":1,"page_size":1})", "application/json");
  auto page = body_of(r);
  CHECK(page["count"] == 2);
  CHECK(page["results"].size() == 1);
  CHECK(body_of(c.Get(("/v1/memories/" + id + "/").c_str()))["id"] == id);
  CHECK(body_of(c.Get(("/v1/memories/" + id + "/history/").c_str())).size() == 1);
  auto ents = body_of(c.Get("/v1/entities/"))["results"];
  REQUIRE(ents.size() == 1);
  CHECK(ents[0]["id"] == "carol");
  CHECK(ents[0]["total_memories"] == 2);
  CHECK(c.Delete(("/v1/memories/" + id + "/").c_str())->status == 200);
  CHECK(c.Delete("/v1/memories/?user_id=carol")->status == 200);
  CHECK(body_of(c.Post("/v2/memories/", R"({"filters":{"user_id":"carol"}})", "application/json"))["count"] == 0);
}

TEST_CASE("server: hostile input is a 4xx naming the field, never a 500, and is counted", "[server][hostile]") {
  server_process srv;
  auto c = srv.client();
  REQUIRE(c.Post("/memories", R"({"messages":"I like tea","user_id":"alice"})", "application/json")->status == 200);
  REQUIRE(c.Post("/memories", R"({"messages":"I like rain","user_id":"bob"})", "application/json")->status == 200);
  REQUIRE(c.Post("/memories", R"({"messages":"agent note","agent_id":"helper"})", "application/json")->status == 200);

  // (method, path, body, expected status, a word the detail must name)
  const std::vector<std::tuple<std::string, std::string, std::string, int, std::string>> cases = {
      {"POST", "/memories", "{\"messages\":\"\xff\",\"user_id\":\"alice\"}", 400, "UTF-8"},
      {"POST", "/memories", "{\"messages\":\"\xc0\xae\",\"user_id\":\"alice\"}", 400, "UTF-8"},
      {"POST", "/search", "{\"query\":\"tea\",\"user_id\":\"alice\",\"threshold\":1e400}", 400, "out of range"},
      {"POST", "/v2/memories/", R"({"user_id":"alice","page":"two"})", 400, "page"},
      {"POST", "/v2/memories/", R"({"user_id":"alice","page":0})", 400, "page"},
      {"POST", "/v2/memories/", R"({"user_id":"alice","page":null,"page_size":[1]})", 400, "page_size"},
      {"POST", "/v3/memories/", R"({"user_id":"alice","page_size":1.5})", 400, "page_size"},
      {"POST", "/v2/memories/", "[]", 400, "object"},
      {"POST", "/v3/memories/", "\"str\"", 400, "object"},
      {"POST", "/v2/memories/", "42", 400, "object"},
      {"POST", "/v2/memories/", "null", 400, "object"},
      {"POST", "/memories", "[]", 400, "object"},
      {"POST", "/memories", R"({"messages":"","user_id":"alice"})", 400, "messages"},
      {"POST", "/memories", R"({"messages":"   ","user_id":"alice"})", 400, "messages"},
      {"POST", "/memories", R"({"messages":[{"role":"user","content":" "}],"user_id":"alice"})", 400, "messages"},
      {"POST", "/memories", R"({"messages":[],"user_id":"alice"})", 400, "messages"},
      {"GET", "/memories/%FF", "", 400, "UTF-8"},
      {"GET", "/memories/%C0%AE%C0%AE", "", 400, "UTF-8"},
      {"GET", "/memories/%FF/history", "", 400, "UTF-8"},
      {"GET", "/v1/memories/%FF/", "", 400, "UTF-8"},
      {"DELETE", "/v1/memories/%C0%AE/", "", 400, "UTF-8"},
      {"GET", "/memories?user_id=%FF", "", 400, "user_id"},
      {"GET", "/memories?user_id=alice&filters=%FF", "", 400, "filters"},
      {"GET", "/memories?user_id=alice&filters=%7B%22a%22%3A%22%C0%AE%22%7D", "", 400, "filters"},
      {"GET", "/memories?user_id=alice&top_k=-1", "", 400, "top_k"},
      {"GET", "/memories?user_id=alice&limit=99999999999999999999", "", 400, "limit"},
      {"POST", "/search", R"({"query":"tea","user_id":"alice","top_k":"-1"})", 400, "top_k"},
      {"POST", "/search", R"({"query":"tea","user_id":"alice","top_k":-1})", 400, "top_k"},
  };
  std::map<std::string, int> errors_sent;
  for (const auto& [method, path, body, status, word] : cases) {
    INFO(method << ' ' << path << ' ' << body);
    auto r = method == "GET"    ? c.Get(path.c_str())
             : method == "DELETE" ? c.Delete(path.c_str())
                                  : c.Post(path.c_str(), body, "application/json");
    REQUIRE(r);
    CHECK(r->status == status);
    CHECK_FALSE(r->has_header("EXCEPTION_WHAT"));
    const auto j = json::parse(r->body);  // valid JSON and UTF-8, whatever came in
    REQUIRE(j.contains("detail"));
    CHECK(j["detail"].get<std::string>().find(word) != std::string::npos);
    CHECK(j["detail"].get<std::string>().find("json.exception") == std::string::npos);
  }
  // /mcp answers a JSON-RPC parse error to invalid UTF-8, not a 500
  auto r = c.Post("/mcp", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}", "application/json");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(json::parse(r->body)["error"]["code"] == -32700);

  // every refusal went through the routes' metrics
  const auto m = body_of(c.Get("/metrics"));
  CHECK(m["routes"]["POST /v2/memories/"]["errors"].get<int>() >= 5);
  CHECK(m["routes"]["GET /memories/{id}"]["errors"].get<int>() >= 2);
  CHECK(m["routes"]["GET /memories"]["errors"].get<int>() >= 5);
  CHECK(m["routes"]["POST /mcp"]["count"].get<int>() >= 1);
  CHECK(m["memories"] == 3);  // nothing stored, nothing lost

  // numbers as strings of digits are read as numbers (query strings carry nothing else); null is the default
  auto paged = body_of(c.Post("/v2/memories/", R"({"user_id":"alice","page":"1","page_size":"1"})", "application/json"));
  CHECK(paged["page"] == 1);
  CHECK(paged["results"].size() == 1);
  CHECK(body_of(c.Post("/v3/memories/", R"({"user_id":"alice","page":null})", "application/json"))["page"] == 1);
  CHECK(body_of(c.Post("/v2/memories/", R"({"user_id":"alice","page":"2"})", "application/json"))["results"].empty());
  // top_k in a query string is a whole number, as in a body
  CHECK(body_of(c.Get("/memories?user_id=alice&top_k=1"))["results"].size() == 1);

  // a scope id "*" means "present", as the filter grammar says: every memory that has a user id
  auto listed = body_of(c.Get("/memories?user_id=*"))["results"];
  CHECK(listed.size() == 2);
  for (const auto& x : listed) CHECK(x.contains("user_id"));
  listed = body_of(c.Post("/v2/memories/", R"({"filters":{"user_id":"*"}})", "application/json"))["results"];
  CHECK(listed.size() == 2);
  listed = body_of(c.Get("/memories?filters=%7B%22user_id%22%3A%22*%22%7D"))["results"];
  CHECK(listed.size() == 2);
  listed = body_of(c.Post("/v2/memories/", R"({"filters":{"AND":[{"user_id":"*"},{"agent_id":"helper"}]}})", "application/json"))["results"];
  CHECK(listed.empty());
  CHECK(srv.stop() == 0);
}

TEST_CASE("server: API keys bind users and guard admin routes", "[server][auth]") {
  char dir[] = "/tmp/engram-keys-XXXXXX";
  REQUIRE(mkdtemp(dir));
  const std::string keyfile = std::string(dir) + "/keys";
  std::ofstream(keyfile) << "# key role [user]\nadmin-key-0123456789 admin\nalice-key-0123456789 user alice\n"
                            "bob-key-012345678901 user bob\n";
  server_process srv({"--keys", keyfile});
  auto anon = srv.client();
  auto admin = srv.client("admin-key-0123456789");
  auto alice = srv.client("alice-key-0123456789");
  auto bob = srv.client("bob-key-012345678901");

  CHECK(anon.Get("/memories?user_id=alice")->status == 401);
  CHECK(srv.client("wrong-key-0123456789").Get("/memories?user_id=alice")->status == 401);
  // alice's key writes to alice even without naming her, and cannot name bob
  auto r = alice.Post("/memories", R"({"messages":"alice's secret plan"})", "application/json");
  REQUIRE(r->status == 200);
  const std::string id = body_of(r)["results"][0]["id"];
  CHECK(alice.Post("/memories", R"({"messages":"x","user_id":"bob"})", "application/json")->status == 403);
  CHECK(bob.Post("/search", R"({"query":"secret plan","user_id":"alice"})", "application/json")->status == 403);
  // bob's search with his own scope never sees alice's memory; her id is invisible to him
  CHECK(body_of(bob.Post("/search", R"({"query":"secret plan"})", "application/json"))["results"].empty());
  CHECK(bob.Get(("/memories/" + id).c_str())->status == 404);
  CHECK(bob.Delete(("/memories/" + id).c_str())->status == 404);
  CHECK(bob.Put(("/memories/" + id).c_str(), R"({"text":"hacked"})", "application/json")->status == 404);
  CHECK(bob.Get(("/memories/" + id + "/history").c_str())->status == 404);
  CHECK(alice.Get(("/memories/" + id).c_str())->status == 200);
  // admin-only routes
  CHECK(alice.Post("/reset", "", "application/json")->status == 403);
  CHECK(alice.Get("/metrics")->status == 403);
  CHECK(bob.Get("/memories")->status == 200);  // bound: lists bob's own
  CHECK(body_of(bob.Get("/memories"))["results"].empty());
  CHECK(admin.Get("/memories")->status == 200);
  CHECK(body_of(admin.Get("/memories"))["results"].size() == 1);
  CHECK(admin.Get("/metrics")->status == 200);
  // /health: liveness for anyone, the memory count only for an admin
  for (auto* client : {&anon, &alice}) {
    const auto h = body_of(client->Get("/health"));
    CHECK(h["status"] == "ok");
    CHECK_FALSE(h.contains("memories"));
  }
  CHECK(body_of(admin.Get("/health"))["memories"] == 1);
  CHECK(admin.Post("/reset", "", "application/json")->status == 200);
}

TEST_CASE("server: keys bound to projects keep the same user's memories apart, across a restart", "[server][auth][projects]") {
  char dir[] = "/tmp/engram-keys-XXXXXX";
  REQUIRE(mkdtemp(dir));
  const std::string keyfile = std::string(dir) + "/keys", data = std::string(dir) + "/data";
  std::ofstream(keyfile) << "root-key-01234567890 admin\n"
                            "prod-key-01234567890 admin org=acme project=prod\n"
                            "stag-key-01234567890 admin org=acme project=staging\n"
                            "alice-prod-key-01234 user alice org=acme project=prod\n"
                            "alice-key-0123456789 user alice\n";
  auto ids_of = [](const json& listing) {
    std::set<std::string> out;
    for (const auto& m : listing["results"]) out.insert(m["memory"].get<std::string>());
    return out;
  };
  std::string prod_id;
  for (int round = 0; round < 2; ++round) {
    server_process srv({"--keys", keyfile}, data);
    auto root = srv.client("root-key-01234567890"), prod = srv.client("prod-key-01234567890");
    auto staging = srv.client("stag-key-01234567890"), alice_prod = srv.client("alice-prod-key-01234");
    auto alice = srv.client("alice-key-0123456789");
    if (round == 0) {
      // ping answers each key's own project; a key bound to none, the default one
      CHECK(body_of(prod.Get("/v1/ping/"))["project_id"] == "prod");
      CHECK(body_of(alice_prod.Get("/v1/ping/"))["org_id"] == "acme");
      CHECK(body_of(alice.Get("/v1/ping/"))["project_id"] == "engram");
      // the same user and text in three projects: three memories
      for (auto* c : {&prod, &staging, &alice}) {
        auto r = c->Post("/v1/memories/", R"({"messages":"alice likes green tea","user_id":"alice","infer":false,"async_mode":false})",
                         "application/json");
        REQUIRE(r->status == 200);
        REQUIRE(body_of(r)["results"].size() == 1);
        if (c == &prod) prod_id = body_of(r)["results"][0]["id"];
      }
      CHECK(alice_prod.Post("/v1/memories/", R"({"messages":"alice plans a trip","infer":false,"async_mode":false,"app_id":"travel"})",
                            "application/json")->status == 200);
      // naming another project with a bound key is 403; naming half a project is 400
      CHECK(alice_prod.Post("/search", R"({"query":"tea","org_id":"acme","project_id":"staging"})", "application/json")->status == 403);
      CHECK(prod.Get("/memories?user_id=alice&org_id=acme&project_id=staging")->status == 403);
      CHECK(alice.Post("/search", R"({"query":"tea","org_id":"acme","project_id":"prod"})", "application/json")->status == 403);
      CHECK(prod.Post("/search", R"({"query":"tea","user_id":"alice","org_id":"acme"})", "application/json")->status == 400);
      CHECK(prod.Post("/search", R"({"query":"tea","user_id":"alice","org_id":"acme","project_id":"prod"})",
                      "application/json")->status == 200);
    }
    // each key sees its own project's memories only, by search, listing, filter-named scopes and id
    CHECK(ids_of(body_of(alice_prod.Get("/memories"))) == std::set<std::string>{"alice likes green tea", "alice plans a trip"});
    CHECK(ids_of(body_of(staging.Get("/memories?user_id=alice"))) == std::set<std::string>{"alice likes green tea"});
    CHECK(ids_of(body_of(alice.Get("/memories"))) == std::set<std::string>{"alice likes green tea"});
    const auto filtered = body_of(staging.Post("/v2/memories/search/",
                                               R"({"query":"trip","filters":{"OR":[{"user_id":"alice"},{"user_id":"bob"}]}})",
                                               "application/json"));
    for (const auto& h : filtered["results"]) CHECK(h["memory"] == "alice likes green tea");
    CHECK(ids_of(body_of(prod.Post("/v2/memories/search/", R"({"query":"trip","filters":{"app_id":"travel"}})",
                                   "application/json"))) == std::set<std::string>{"alice plans a trip"});
    CHECK(body_of(staging.Post("/v2/memories/search/", R"({"query":"trip","filters":{"app_id":"travel"}})",
                               "application/json"))["results"].empty());
    CHECK(staging.Get(("/v1/memories/" + prod_id + "/").c_str())->status == 404);
    CHECK(staging.Delete(("/v1/memories/" + prod_id + "/").c_str())->status == 404);
    CHECK(alice.Put(("/v1/memories/" + prod_id + "/").c_str(), R"({"text":"x"})", "application/json")->status == 404);
    CHECK(alice_prod.Get(("/v1/memories/" + prod_id + "/").c_str())->status == 200);
    const auto one = body_of(alice_prod.Get(("/v1/memories/" + prod_id + "/").c_str()));
    CHECK(one["org_id"] == "acme");
    CHECK(one["project_id"] == "prod");
    // the project admin lists its project, the server-wide admin every project or the one it names
    CHECK(body_of(prod.Get("/memories"))["results"].size() == 2);
    CHECK(body_of(root.Get("/memories"))["results"].size() == 4);
    CHECK(body_of(root.Get("/memories?org_id=acme&project_id=staging"))["results"].size() == 1);
    // wiping and server figures are the server-wide admin's
    CHECK(prod.Post("/reset", "", "application/json")->status == 403);
    CHECK(prod.Get("/metrics")->status == 403);
    CHECK_FALSE(body_of(prod.Get("/health")).contains("memories"));
    CHECK(body_of(root.Get("/health"))["memories"] == 4);
    // delete_all of alice in staging leaves her other projects' memories
    if (round == 1) {
      CHECK(staging.Delete("/memories?user_id=alice")->status == 200);
      CHECK(body_of(staging.Get("/memories?user_id=alice"))["results"].empty());
      CHECK(body_of(alice_prod.Get("/memories"))["results"].size() == 2);
      CHECK(body_of(alice.Get("/memories"))["results"].size() == 1);
    }
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("server: the Platform's project routes: projects from the key file, settings that reach the adds",
          "[server][projects][providers]") {
  char dir[] = "/tmp/engram-keys-XXXXXX";
  REQUIRE(mkdtemp(dir));
  const std::string keyfile = std::string(dir) + "/keys", data = std::string(dir) + "/data";
  std::ofstream(keyfile) << "root-key-01234567890 admin\n"
                            "prod-key-01234567890 admin org=acme project=prod\n"
                            "stag-key-01234567890 admin org=acme project=staging\n"
                            "alice-prod-key-01234 user alice org=acme project=prod\n";
  engram_test::fake_server fake;
  const std::vector<std::string> args{"--keys", keyfile, "--embedder", "openai", "--base-url", fake.base_url(),
                                      "--embed-model", "fake-embed", "--extractor", "llm", "--llm-model", "fake-chat",
                                      "--llm-mode", "additive"};
  const std::string project_path = "/api/v1/orgs/organizations/acme/projects/prod/";
  {
    server_process srv(args, data);
    auto root = srv.client("root-key-01234567890"), prod = srv.client("prod-key-01234567890");
    auto staging = srv.client("stag-key-01234567890"), alice = srv.client("alice-prod-key-01234");
    // what each key sees
    CHECK(body_of(root.Get("/api/v1/orgs/organizations/")).size() == 2);  // acme and the default engram
    CHECK(body_of(prod.Get("/api/v1/orgs/organizations/")) == json::array({json{{"org_id", "acme"}, {"name", "acme"}}}));
    CHECK(body_of(root.Get("/api/v1/orgs/organizations/acme/projects/")).size() == 2);
    const auto mine = body_of(staging.Get("/api/v1/orgs/organizations/acme/projects/"));
    REQUIRE(mine.size() == 1);
    CHECK(mine[0]["project_id"] == "staging");
    CHECK(staging.Get(project_path.c_str())->status == 404);  // another project is not even named
    CHECK(prod.Get("/api/v1/orgs/organizations/other/projects/")->status == 404);
    const auto members = body_of(prod.Get((project_path + "members/").c_str()))["members"];
    CHECK(members.size() == 2);
    CHECK(members.dump().find("prod-key-01234567890") == std::string::npos);  // names, never the keys
    // a server-wide admin creates a project (Mem0's shape: a name, an optional description, a uuid back)
    const std::string projects_path = "/api/v1/orgs/organizations/acme/projects/";
    auto made = root.Post(projects_path.c_str(), R"({"name":"Support bot","description":"tickets"})", "application/json");
    REQUIRE(made->status == 200);
    const auto new_id = body_of(made)["project_id"].get<std::string>();
    CHECK(engram::is_uuid(new_id));
    const auto listed = body_of(root.Get(projects_path.c_str()));
    CHECK(listed.size() == 3);
    CHECK(body_of(root.Get((projects_path + new_id + "/").c_str()))["name"] == "Support bot");
    CHECK(body_of(staging.Get(projects_path.c_str())).size() == 1);  // a project admin still sees its own only
    for (auto [key, body, status] : std::vector<std::tuple<httplib::Client*, std::string, int>>{
             {&prod, R"({"name":"mine"})", 403},                   // a project's admin creates none
             {&alice, R"({"name":"mine"})", 403},
             {&root, R"({"name":"Support bot"})", 400},            // the name is taken in acme
             {&root, R"({"name":""})", 400},
             {&root, R"({"description":"no name"})", 400},
             {&root, R"({"name":"x","memory_depth":3})", 400},     // a field the route does not know
             {&root, R"({"name":7})", 400},
             {&root, R"(["name"])", 400}}) {
      auto r = key->Post(projects_path.c_str(), body, "application/json");
      INFO(body);
      CHECK(r->status == status);
    }
    CHECK(root.Post("/api/v1/orgs/organizations/nowhere/projects/", R"({"name":"x"})", "application/json")->status == 404);
    CHECK(body_of(root.Get(projects_path.c_str())).size() == 3);  // the refused ones made nothing
    // made by the key file: organizations, deletions and membership changes are refused, saying so
    for (auto [path, body] : std::vector<std::pair<std::string, std::string>>{
             {"/api/v1/orgs/organizations/", R"({"name":"x"})"},
             {project_path + "members/", R"({"email":"a@b.c","role":"READER"})"}}) {
      auto r = root.Post(path.c_str(), body, "application/json");
      CHECK(r->status == 403);
      CHECK(body_of(r)["detail"].get<std::string>().find("key file") != std::string::npos);
    }
    CHECK(root.Delete(project_path.c_str())->status == 403);
    // settings: an admin of the project changes them; a user key cannot; what engram cannot honour is refused
    CHECK(alice.Patch(project_path.c_str(), R"({"custom_instructions":"x"})", "application/json")->status == 403);
    CHECK(staging.Patch(project_path.c_str(), R"({"custom_instructions":"x"})", "application/json")->status == 404);
    auto r = prod.Patch(project_path.c_str(), R"({"multilingual":true})", "application/json");
    CHECK(r->status == 400);
    CHECK(body_of(r)["detail"].get<std::string>().find("'multilingual'") != std::string::npos);
    r = prod.Patch(project_path.c_str(),
                   R"({"custom_instructions":"Never remember information of these kinds: health","custom_categories":[{"hobbies":"pastimes"}],"multilingual":null})",
                   "application/json");
    REQUIRE(r->status == 200);
    CHECK(body_of(r)["project"]["custom_instructions"] == "Never remember information of these kinds: health");
    CHECK(body_of(prod.Get((project_path + "?fields=custom_categories").c_str())) ==
          json{{"custom_categories", json::array({json{{"hobbies", "pastimes"}}})}});
    CHECK(prod.Get((project_path + "?fields=nope").c_str())->status == 400);
  }
  // across a restart the settings hold and reach the project's adds (not another project's); the created project stays
  server_process srv(args, data);
  auto alice = srv.client("alice-prod-key-01234"), staging = srv.client("stag-key-01234567890");
  {
    auto root = srv.client("root-key-01234567890");
    const auto kept = body_of(root.Get("/api/v1/orgs/organizations/acme/projects/"));
    REQUIRE(kept.size() == 3);
    CHECK(kept.dump().find(R"("description":"tickets")") != std::string::npos);
  }
  for (auto* c : {&alice, &staging}) {
    fake.push_chat([](const json&) { return json{{"facts", json::array({"Loves hiking"})}}.dump(); });
    REQUIRE(c->Post("/v1/memories/", R"({"messages":"I love hiking","user_id":"alice","async_mode":false})",
                    "application/json")->status == 200);
    const auto chats = fake.requests("/v1/chat/completions");  // kept: a range-for over its member would dangle
    REQUIRE_FALSE(chats.empty());
    std::string prompt;
    for (const auto& m : chats.back().body["messages"]) prompt += m["content"].get<std::string>() + "\n";
    INFO(prompt);
    CHECK((prompt.find("Never remember information of these kinds: health") != std::string::npos) == (c == &alice));
    CHECK((prompt.find("- hobbies") != std::string::npos) == (c == &alice));
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("server: a key file that binds a project wrongly refuses to start, naming the line", "[server][auth][projects]") {
  char dir[] = "/tmp/engram-keys-XXXXXX";
  REQUIRE(mkdtemp(dir));
  const std::string keyfile = std::string(dir) + "/keys";
  for (const auto& [line, says] : std::vector<std::pair<std::string, std::string>>{
           {"prod-key-01234567890 admin org=acme", "give both"},
           {"prod-key-01234567890 admin project=prod", "give both"},
           {"prod-key-01234567890 admin org= project=prod", "needs a value"},
           {"prod-key-01234567890 admin org=a org=b project=p", "given twice"},
           {"prod-key-01234567890 user org=acme project=prod", "must name its user id"},
           {"prod-key-01234567890 user alice bob org=acme project=prod", "unexpected 'bob'"},
           {"prod-key-01234567890 admin org=acme project=p\x01", "control character"}}) {
    std::ofstream(keyfile) << line << "\n";
    const std::string cmd = std::string(ENGRAM_SERVER_BIN) + " --keys " + keyfile + " --port 0 2>&1";
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p);
    char buf[512];
    while (fgets(buf, sizeof buf, p)) out += buf;
    const int st = pclose(p);
    INFO(line << " -> " << out);
    CHECK(WEXITSTATUS(st) == 2);
    CHECK(out.find(keyfile + ":1:") != std::string::npos);
    CHECK(out.find(says) != std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("server: refuses a public address without keys", "[server][auth]") {
  const std::string cmd = std::string(ENGRAM_SERVER_BIN) + " --host 0.0.0.0 --port 0 2>/dev/null";
  CHECK(WEXITSTATUS(std::system(cmd.c_str())) == 2);
}

TEST_CASE("server: many concurrent clients lose no write", "[server][concurrency]") {
  server_process srv({"--threads", "16"});
  constexpr int threads = 16, per_thread = 200;
  std::atomic<int> failures{0}, adds{0};
  std::vector<std::thread> pool;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      auto c = srv.client();
      c.set_keep_alive(true);  // one connection per client thread, as a pooled HTTP session would
      const std::string user = "u" + std::to_string(t % 4);
      for (int i = 0; i < per_thread && std::chrono::steady_clock::now() < deadline; ++i) {
        auto request = [&]() -> httplib::Result {
          if (i % 4 == 0) return c.Post("/memories", json{{"messages", "note " + std::to_string(t) + "-" + std::to_string(i)}, {"user_id", user}}.dump(), "application/json");
          if (i % 4 == 1) return c.Get(("/memories?user_id=" + user).c_str());
          return c.Post("/search", json{{"query", "note " + std::to_string(i)}, {"user_id", user}, {"top_k", 5}}.dump(), "application/json");
        };
        const auto t0 = std::chrono::steady_clock::now();
        const auto r = request();
        const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (!r || r->status != 200) {
          ++failures;
          std::fprintf(stderr, "request %d failed after %.0f ms: %s\n", i % 4, ms, r ? std::to_string(r->status).c_str() : httplib::to_string(r.error()).c_str());
        }
        else if (i % 4 == 0) ++adds;
      }
    });
  for (auto& th : pool) th.join();
  CHECK(failures == 0);
  CHECK(adds == threads * per_thread / 4);
  auto c = srv.client();
  std::size_t total = 0;
  for (int u = 0; u < 4; ++u)
    total += body_of(c.Get(("/memories?top_k=100000&user_id=u" + std::to_string(u)).c_str()))["results"].size();
  CHECK(total == std::size_t(adds.load()));
  CHECK(srv.stop() == 0);
}

TEST_CASE("server: the CrewAI storage example works against a live server", "[server][python]") {
  if (std::system("python3 --version >/dev/null 2>&1") != 0) {
    WARN("python3 not found: CrewAI example not run");
    return;
  }
  server_process srv;
  const std::string cmd = std::string("python3 ") + ENGRAM_EXAMPLES_DIR + "/server/crewai_storage.py --self-test http://127.0.0.1:" +
                          std::to_string(srv.port());
  CHECK(std::system(cmd.c_str()) == 0);
}

TEST_CASE("server: SIGTERM under load, then a restart, loses no acknowledged write", "[server][durability]") {
  char tmpl[] = "/tmp/engram-server-restart-XXXXXX";
  REQUIRE(mkdtemp(tmpl));
  const std::string data = tmpl;
  std::vector<std::string> acknowledged;
  std::mutex mtx;
  {
    server_process srv({}, data);
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; ++t)
      writers.emplace_back([&, t] {
        auto c = srv.client();
        for (int i = 0; !stop; ++i) {
          const auto text = "durable note " + std::to_string(t) + "-" + std::to_string(i);
          auto r = c.Post("/memories", json{{"messages", text}, {"user_id", "dur"}}.dump(), "application/json");
          if (!r) break;  // the server has stopped
          if (r->status == 200) {
            std::lock_guard lock(mtx);
            acknowledged.push_back(json::parse(r->body)["results"][0]["id"]);
          }
        }
      });
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    CHECK(srv.stop() == 0);  // SIGTERM while the writers are still sending
    stop = true;
    for (auto& w : writers) w.join();
  }
  REQUIRE(acknowledged.size() > 10);
  server_process again({}, data);
  auto c = again.client();
  std::set<std::string> stored;
  const auto listed = body_of(c.Get("/memories?user_id=dur&top_k=1000000"));
  for (const auto& r : listed["results"]) stored.insert(r["id"]);
  std::size_t missing = 0;
  for (const auto& id : acknowledged) missing += stored.count(id) == 1 ? 0 : 1;
  INFO("acknowledged " << acknowledged.size() << ", stored " << stored.size());
  CHECK(missing == 0);
  again.stop();
  if (missing == 0) std::filesystem::remove_all(data);
  else WARN("data kept in " << data);
}

namespace {

/// Runs engram-server with `args` expecting it to refuse to start; returns (exit status, stderr).
std::pair<int, std::string> failed_start(const std::string& args) {
  char tmpl[] = "/tmp/engram-server-err-XXXXXX";
  const int fd = mkstemp(tmpl);
  REQUIRE(fd >= 0);
  close(fd);
  const std::string cmd = std::string(ENGRAM_SERVER_BIN) + " --port 0 " + args + " >/dev/null 2>" + tmpl;
  const int st = std::system(cmd.c_str());
  std::ifstream in(tmpl);
  std::string err((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::remove(tmpl);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, err};
}

}  // namespace

TEST_CASE("server: search modes, explain, expiry on the OSS and Platform routes", "[server][rank]") {
  server_process srv;
  auto c = srv.client();
  REQUIRE(c.Post("/memories", R"({"messages":"The wifi password is zebra42","user_id":"carol"})", "application/json")->status == 200);
  REQUIRE(c.Post("/memories", R"({"messages":"Carol likes long walks on the beach","user_id":"carol"})", "application/json")->status == 200);
  auto r = c.Post("/v1/memories/", R"({"messages":[{"role":"user","content":"Carol's old flat was on Rua Augusta"}],"user_id":"carol","expiration_date":"2000-01-01"})", "application/json");
  REQUIRE(r->status == 200);
  const std::string old_id = body_of(r)["results"][0]["id"];

  // mode: keyword finds only keyword matches; semantic and hybrid rank by their own scores
  r = c.Post("/search", R"({"query":"zebra42","user_id":"carol","mode":"keyword"})", "application/json");
  REQUIRE(r->status == 200);
  auto hits = body_of(r)["results"];
  REQUIRE(hits.size() == 1);
  CHECK(hits[0]["memory"] == "The wifi password is zebra42");
  CHECK_FALSE(hits[0].contains("score_details"));
  r = c.Post("/search", R"({"query":"zebra42","user_id":"carol","mode":"fuzzy"})", "application/json");
  CHECK(r->status == 400);
  CHECK(body_of(r)["detail"].get<std::string>().find("fuzzy") != std::string::npos);
  CHECK(c.Post("/search", R"({"query":"x","user_id":"carol","explain":"maybe"})", "application/json")->status == 400);

  // explain: score_details whose parts sum to the score
  for (const char* path : {"/search", "/v2/memories/search/", "/v3/memories/search/"}) {
    r = c.Post(path, R"({"query":"wifi password zebra42","filters":{"user_id":"carol"},"explain":true,"top_k":5})", "application/json");
    REQUIRE(r->status == 200);
    hits = body_of(r)["results"];
    REQUIRE_FALSE(hits.empty());
    CHECK(hits[0]["memory"] == "The wifi password is zebra42");
    for (const auto& h : hits) {
      REQUIRE(h.contains("score_details"));
      const auto& d = h["score_details"];
      const double parts = d["semantic"].get<double>() + d["keyword"].get<double>() + d["recency"].get<double>() +
                           d["importance"].get<double>() + d["access"].get<double>();
      CHECK(parts == Approx(d["final"].get<double>()).margin(1e-4));
      CHECK(h["score"].get<double>() == Approx(d["final"].get<double>()).margin(1e-4));
    }
  }
  // Mem0's keyword_search asks for hybrid (a keyword-only match is found); semantic mode scores by cosine
  r = c.Post("/v2/memories/search/", R"({"query":"zebra42","filters":{"user_id":"carol"},"keyword_search":true,"rerank":false,"explain":true})", "application/json");
  REQUIRE(r->status == 200);
  CHECK(body_of(r)["results"][0]["score_details"]["keyword"].get<double>() > 0.0);
  r = c.Post("/search", R"({"query":"zebra42","user_id":"carol","mode":"semantic","explain":true})", "application/json");
  const auto semantic_hits = body_of(r)["results"];
  REQUIRE_FALSE(semantic_hits.empty());
  for (const auto& h : semantic_hits) CHECK(h["score_details"]["keyword"].get<double>() == 0.0);

  // weights: an importance term lifts the memory whose metadata says it matters; bad weights are a 400
  REQUIRE(c.Post("/memories", R"({"messages":"Carol walks the dog daily","user_id":"carol","metadata":{"importance":1}})", "application/json")->status == 200);
  r = c.Post("/v2/memories/search/", R"({"query":"Carol walks","filters":{"user_id":"carol"},"explain":true,"weights":{"importance":2,"fusion":"rrf"}})", "application/json");
  REQUIRE(r->status == 200);
  const auto weighted = body_of(r)["results"];
  REQUIRE(weighted.size() >= 2);
  CHECK(weighted[0]["memory"] == "Carol walks the dog daily");
  CHECK(weighted[0]["score_details"]["importance"].get<double>() == Approx(2.0));
  r = c.Post("/search", R"({"query":"x","user_id":"carol","weights":{"gravity":1}})", "application/json");
  CHECK(r->status == 400);
  CHECK(body_of(r)["detail"].get<std::string>().find("gravity") != std::string::npos);
  CHECK(c.Post("/search", R"({"query":"x","user_id":"carol","weights":{"recency":-1}})", "application/json")->status == 400);
  CHECK(c.Post("/search", R"({"query":"x","user_id":"carol","weights":{"fusion":"max"}})", "application/json")->status == 400);
  CHECK(c.Post("/search", R"({"query":"x","user_id":"carol","weights":[1]})", "application/json")->status == 400);

  // expiry: hidden from search and listing unless show_expired (query parameter or body)
  auto find = [](const json& results, const std::string& text) {
    for (const auto& h : results)
      if (h["memory"] == text) return true;
    return false;
  };
  const std::string flat = "Carol's old flat was on Rua Augusta";
  CHECK_FALSE(find(body_of(c.Post("/search", R"({"query":"Rua Augusta flat","user_id":"carol"})", "application/json"))["results"], flat));
  CHECK(find(body_of(c.Post("/search", R"({"query":"Rua Augusta flat","user_id":"carol","show_expired":true})", "application/json"))["results"], flat));
  CHECK_FALSE(find(body_of(c.Get("/memories?user_id=carol"))["results"], flat));
  CHECK(find(body_of(c.Get("/memories?user_id=carol&show_expired=true"))["results"], flat));
  CHECK_FALSE(find(body_of(c.Post("/v2/memories/", R"({"filters":{"user_id":"carol"}})", "application/json"))["results"], flat));
  CHECK(find(body_of(c.Post("/v2/memories/", R"({"filters":{"user_id":"carol"},"show_expired":true})", "application/json"))["results"], flat));
  CHECK(body_of(c.Get(("/memories/" + old_id).c_str()))["expiration_date"] == "2000-01-01");

  // update: a bad date is a 400 and changes nothing; null clears (visible again); a date alone keeps the text
  r = c.Put(("/memories/" + old_id).c_str(), R"({"expiration_date":"2024-02-30"})", "application/json");
  CHECK(r->status == 400);
  CHECK(body_of(c.Get(("/memories/" + old_id).c_str()))["expiration_date"] == "2000-01-01");
  r = c.Put(("/v1/memories/" + old_id + "/").c_str(), R"({"expiration_date":null})", "application/json");
  REQUIRE(r->status == 200);
  CHECK(body_of(r)["memory"] == flat);
  CHECK_FALSE(body_of(r).contains("expiration_date"));
  CHECK(find(body_of(c.Post("/search", R"({"query":"Rua Augusta flat","user_id":"carol"})", "application/json"))["results"], flat));
  r = c.Put(("/memories/" + old_id).c_str(), R"({"text":"Carol's first flat was on Rua Augusta","expiration_date":"2999-12-31"})", "application/json");
  REQUIRE(r->status == 200);
  CHECK(body_of(r)["expiration_date"] == "2999-12-31");
  CHECK(c.Put(("/memories/" + old_id).c_str(), R"({})", "application/json")->status == 400);
  CHECK(c.Post("/memories", R"({"messages":"x","user_id":"carol","expiration_date":"tomorrow"})", "application/json")->status == 400);
  CHECK(c.Post("/memories", R"({"messages":"x","user_id":"carol","expiration_date":20300101})", "application/json")->status == 400);
}

TEST_CASE("server: a misconfigured provider refuses to start, saying what is wrong", "[server][providers]") {
  auto [status, err] = failed_start("--embedder word2vec");
  CHECK(status == 2);
  CHECK(err.find("unknown embedder 'word2vec'") != std::string::npos);
  std::tie(status, err) = failed_start("--embedder openai");
  CHECK(status == 2);
  CHECK(err.find("--base-url") != std::string::npos);
  std::tie(status, err) = failed_start("--extractor llm --base-url http://127.0.0.1:9/v1");
  CHECK(status == 2);
  CHECK(err.find("--llm-model") != std::string::npos);
  std::tie(status, err) = failed_start("--dimensions -3");
  CHECK(status == 2);
}

TEST_CASE("server: OpenAI-compatible embeddings and LLM extraction through a loopback provider", "[server][providers]") {
  engram_test::fake_server fake;  // computed 64-dimensional embeddings, scripted chat replies
  char tmpl[] = "/tmp/engram-server-provider-XXXXXX";
  REQUIRE(mkdtemp(tmpl));
  const std::string data = tmpl;
  {
    server_process srv({"--embedder", "openai", "--base-url", fake.base_url(), "--embed-model", "fake-embed",
                        "--extractor", "llm", "--llm-model", "fake-chat"},
                       data);
    auto c = srv.client();
    fake.push_chat(R"({"facts": ["Name is Dana", "Lives in Lisbon"]})");
    auto r = c.Post("/v1/memories/", R"({"messages":[{"role":"user","content":"Hi, I am Dana and I live in Lisbon."},{"role":"assistant","content":"Hello Dana!"}],"user_id":"dana"})", "application/json");
    REQUIRE(r->status == 200);
    auto added = body_of(r)["results"];
    REQUIRE(added.size() == 2);
    CHECK(added[0]["memory"] == "Name is Dana");
    CHECK(added[1]["memory"] == "Lives in Lisbon");
    const auto chats = fake.requests("/v1/chat/completions");
    REQUIRE(chats.size() == 1);
    CHECK(chats[0].body["model"] == "fake-chat");
    CHECK(chats[0].body.dump().find("I live in Lisbon") != std::string::npos);

    // Reconcile: the model sees the near memories under short ids and updates one
    fake.push_chat(R"({"facts": ["Lives in Porto"]})");
    fake.push_chat([](const json& req) {
      const std::string prompt = req["messages"][1]["content"];
      // find the short id shown for "Lives in Lisbon"
      const auto at = prompt.find("Lives in Lisbon");
      REQUIRE(at != std::string::npos);
      const auto id_key = prompt.rfind("\"id\": \"", at);
      const auto id = prompt.substr(id_key + 7, prompt.find('"', id_key + 7) - id_key - 7);
      return json{{"memory", {{{"id", id}, {"text", "Lives in Porto"}, {"event", "UPDATE"}}}}}.dump();
    });
    r = c.Post("/memories", R"({"messages":"I moved to Porto last month","user_id":"dana"})", "application/json");
    REQUIRE(r->status == 200);
    added = body_of(r)["results"];
    REQUIRE(added.size() == 1);
    CHECK(added[0]["event"] == "UPDATE");
    CHECK(added[0]["memory"] == "Lives in Porto");

    r = c.Post("/search", R"({"query":"lives in Porto?","user_id":"dana","mode":"semantic","top_k":1})", "application/json");
    REQUIRE(r->status == 200);
    CHECK(body_of(r)["results"][0]["memory"] == "Lives in Porto");
    CHECK(fake.count("/v1/embeddings") >= 3);  // probe, facts, query

    // infer false: stored as given, no chat call
    const auto chat_calls = fake.count("/v1/chat/completions");
    r = c.Post("/memories", R"({"messages":"raw note","user_id":"dana","infer":false})", "application/json");
    CHECK(body_of(r)["results"][0]["memory"] == "raw note");
    CHECK(fake.count("/v1/chat/completions") == chat_calls);

    // The provider failing is a 502 and stores nothing
    fake.push_chat("Sorry, I cannot help with that.");  // a reply without JSON: nothing is stored
    fake.push("/v1/chat/completions", engram_test::reply{400, R"({"error":{"message":"bad request"}})"});
    const auto before = body_of(c.Get("/memories?user_id=dana"))["results"].size();
    r = c.Post("/memories", R"({"messages":"I have a cat","user_id":"dana"})", "application/json");
    CHECK(r->status == 200);
    r = c.Post("/memories", R"({"messages":"I have a dog","user_id":"dana"})", "application/json");
    CHECK(r->status == 502);
    CHECK(body_of(c.Get("/memories?user_id=dana"))["results"].size() == before);
    CHECK(srv.stop() == 0);
  }
  // The data directory remembers its embedder: opening it offline is refused with a clear message
  auto [status, err] = failed_start("--data " + data);
  CHECK(status == 1);
  CHECK(err.find("openai:fake-embed") != std::string::npos);
  CHECK(err.find("another embedder") != std::string::npos);
  std::filesystem::remove_all(data);
}

TEST_CASE("server: Mem0 request fields are honoured or refused by name", "[server][mem0]") {
  server_process srv;
  auto c = srv.client();
  // timestamp (Unix seconds or ISO-8601) is the memory's created_at and valid_from
  auto r = c.Post("/memories", R"({"messages":"We adopted a dog","user_id":"tia","timestamp":1709287200,
                                   "metadata":{"pet":"dog","home":{"city":"Oslo","floor":2}},
                                   "includes":"pets, family","excludes":["health"],
                                   "custom_categories":[{"pets":"animals they keep"}],"custom_instructions":"x"})",
                  "application/json");
  REQUIRE(r->status == 200);
  const std::string id = body_of(r)["results"][0]["id"];
  r = c.Get(("/memories/" + id).c_str());
  CHECK(body_of(r)["created_at"].get<std::string>().rfind("2024-03-01T10:00:00", 0) == 0);
  CHECK(body_of(r)["valid_from"] == body_of(r)["created_at"]);
  CHECK_FALSE(body_of(r).contains("invalid_at"));  // still true
  CHECK_FALSE(body_of(r).contains("superseded_by"));
  r = c.Post("/memories", R"({"messages":"Another","user_id":"tia","timestamp":"2023-01-02T03:04:05Z"})",
             "application/json");
  REQUIRE(r->status == 200);
  // an update may change metadata alone, merged as Mem0 merges (null removes a key)
  r = c.Put(("/memories/" + id).c_str(), R"({"metadata":{"pet":null,"home":{"floor":3},"mood":"happy"}})",
            "application/json");
  REQUIRE(r->status == 200);
  CHECK(body_of(r)["memory"] == "We adopted a dog");
  CHECK(body_of(r)["metadata"] == json{{"home", {{"city", "Oslo"}, {"floor", 3}}}, {"mood", "happy"}});
  // the SDK's update may carry `timestamp` (when the change happened), alone too
  r = c.Put(("/v1/memories/" + id + "/").c_str(), R"({"timestamp":"2025-06-07T08:09:10Z"})", "application/json");
  REQUIRE(r->status == 200);
  CHECK(body_of(r)["updated_at"].get<std::string>().rfind("2025-06-07T08:09:10", 0) == 0);
  CHECK(c.Put(("/memories/" + id).c_str(), R"({"timestamp":"yesterday"})", "application/json")->status == 400);
  // what cannot be honoured is refused, naming the field; what is malformed too
  for (const auto& [body, field] : std::vector<std::pair<std::string, std::string>>{
           {R"({"messages":"x","user_id":"tia","enable_graph":true})", "'enable_graph'"},
           {R"({"messages":"x","user_id":"tia","immutable":"yes"})", "'immutable'"},
           {R"({"messages":"x","user_id":"tia","memory_type":"semantic_memory"})", "'memory_type'"},
           {R"({"messages":"x","agent_id":"bot","memory_type":"procedural_memory"})", "LLM extractor"},
           {R"({"messages":"x","user_id":"tia","memory_type":"procedural_memory"})", "agent_id"},
           {R"({"messages":"x","user_id":"tia","org_id":"acme"})", "'org_id'"},
           {R"({"messages":"x","user_id":"tia","project_id":"p1"})", "'project_id'"},
           {R"({"messages":"x","user_id":"tia","includes":42})", "'includes'"},
           {R"({"messages":"x","user_id":"tia","custom_categories":"pets"})", "'custom_categories'"},
           {R"({"messages":"x","user_id":"tia","timestamp":"last tuesday"})", "'timestamp'"},
           {R"({"messages":"x","user_id":"tia","timestamp":-5})", "'timestamp'"},
           {R"({"messages":"x","user_id":"tia","async_mode":true})", "'async_mode'"},
           {R"({"messages":"x","user_id":"tia","version":"v3"})", "'version'"},
           {R"({"messages":"x","user_id":"tia","output_format":"v2.0"})", "'output_format'"}}) {
    r = c.Post("/memories", body, "application/json");
    INFO(body);
    REQUIRE(r->status == 400);
    CHECK(body_of(r)["detail"].get<std::string>().find(field) != std::string::npos);
  }
  r = c.Put(("/memories/" + id).c_str(), R"({"immutable":true,"text":"y"})", "application/json");
  CHECK(r->status == 400);
  // immutable: stored and shown, never updated (400 naming it), still deletable
  r = c.Post("/v1/memories/", R"({"messages":"Ivy's blood type is O negative","user_id":"ivy","infer":false,"immutable":true})",
             "application/json");
  REQUIRE(r->status == 200);
  const auto frozen = body_of(r)["results"][0]["id"].get<std::string>();
  r = c.Get(("/v1/memories/" + frozen + "/").c_str());
  CHECK(body_of(r)["immutable"] == true);
  r = c.Put(("/v1/memories/" + frozen + "/").c_str(), R"({"text":"Ivy's blood type is A"})", "application/json");
  CHECK(r->status == 400);
  CHECK(body_of(r)["detail"].get<std::string>().find("immutable") != std::string::npos);
  CHECK(body_of(c.Get(("/v1/memories/" + frozen + "/").c_str()))["memory"] == "Ivy's blood type is O negative");
  CHECK(c.Delete(("/v1/memories/" + frozen + "/").c_str())->status == 200);
  // false and null mean "not asked for"
  r = c.Post("/memories", R"({"messages":"Plain","user_id":"tia","enable_graph":false,"org_id":null,"immutable":false})",
             "application/json");
  CHECK(r->status == 200);
  r = c.Get("/memories?user_id=tia");
  CHECK(body_of(r)["results"].size() == 3);
  // output_format: v1.1 (what the SDKs send) wraps the results, v1.0 answers the bare list, as Mem0 did
  r = c.Post("/v3/memories/search/", R"({"query":"dog","filters":{"user_id":"tia"},"output_format":"v1.1","version":"v2"})",
             "application/json");
  REQUIRE(r->status == 200);
  CHECK(body_of(r)["results"].is_array());
  r = c.Post("/v3/memories/search/", R"({"query":"dog","filters":{"user_id":"tia"},"output_format":"v1.0"})",
             "application/json");
  REQUIRE(r->status == 200);
  CHECK(body_of(r).is_array());
  CHECK_FALSE(body_of(r).empty());
  r = c.Post("/v3/memories/", R"({"filters":{"user_id":"tia"},"output_format":"v1.0","page_size":2})", "application/json");
  REQUIRE(r->status == 200);
  CHECK(body_of(r).is_array());
  CHECK(body_of(r).size() == 2);
  r = c.Post("/v3/memories/add/", R"({"messages":"I walk the dog daily","user_id":"tia","async_mode":false,"output_format":"v1.0"})",
             "application/json");
  REQUIRE(r->status == 200);
  CHECK(body_of(r).is_array());
}

TEST_CASE("server: the Python SDK's option shorthands filter as they say", "[server][mem0]") {
  server_process srv;
  auto c = srv.client();
  for (const auto& body : {R"({"messages":"Rex is our dog","filters":{"user_id":"uma"},"infer":false,"timestamp":1577836800,
                              "metadata":{"categories":["pets"],"room":"garden"}})",
                           R"({"messages":"We fly to Oslo in May","filters":{"user_id":"uma"},"infer":false,"timestamp":1704067200,
                              "metadata":{"categories":["travel"],"room":"hall"}})",
                           R"({"messages":"The dog sleeps in the hall","filters":{"user_id":"uma"},"infer":false,
                              "metadata":{"categories":["pets","home"],"room":"hall"},"agent_custom_instructions":"x"})"})
    REQUIRE(c.Post("/v3/memories/add/", body, "application/json")->status == 200);
  auto texts = [&](const char* path, const std::string& body) {
    auto r = c.Post(path, body, "application/json");
    INFO(body << " -> " << r->body);
    REQUIRE(r->status == 200);
    const auto doc = body_of(r);  // kept: a range-for over a temporary's member would dangle
    std::set<std::string> out;
    for (const auto& m : doc["results"]) out.insert(m.value("memory", std::string()));
    return out;
  };
  using S = std::set<std::string>;
  const std::string scope = R"("filters":{"user_id":"uma"})";
  CHECK(texts("/v3/memories/search/", "{\"query\":\"dog\"," + scope + ",\"categories\":[\"pets\"]}") ==
        S{"Rex is our dog", "The dog sleeps in the hall"});
  CHECK(texts("/v3/memories/search/", "{\"query\":\"dog\"," + scope + ",\"metadata\":{\"room\":\"hall\"}}") ==
        S{"The dog sleeps in the hall", "We fly to Oslo in May"});
  CHECK(texts("/v3/memories/", "{" + scope + ",\"categories\":\"travel\"}") == S{"We fly to Oslo in May"});
  CHECK(texts("/v3/memories/", "{" + scope + ",\"start_date\":\"2023-06-01\",\"end_date\":\"2024-06-01\"}") ==
        S{"We fly to Oslo in May"});
  CHECK(texts("/v3/memories/", "{" + scope + ",\"end_date\":\"2020-01-02\",\"latest_only\":true}") ==
        S{"Rex is our dog"});
  // fields: each result reduced to them (and its id)
  auto r = c.Post("/v3/memories/search/", "{\"query\":\"Oslo\"," + scope + ",\"fields\":[\"memory\"]}", "application/json");
  REQUIRE(r->status == 200);
  const auto projected = body_of(r);
  REQUIRE_FALSE(projected["results"].empty());
  for (const auto& m : projected["results"]) CHECK(m.size() == 2);
  // what cannot be honoured is refused by name, and nothing is stored
  for (const auto& [path, body, field] : std::vector<std::tuple<const char*, std::string, std::string>>{
           {"/v3/memories/search/", "{\"query\":\"dog\"," + scope + ",\"reference_date\":\"2024-01-01\"}", "'reference_date'"},
           {"/v3/memories/", "{" + scope + ",\"start_date\":5}", "'start_date'"},
           {"/v3/memories/add/", "{\"messages\":\"x\"," + scope + ",\"structured_data_schema\":{\"a\":1}}",
            "'structured_data_schema'"}}) {
    r = c.Post(path, body, "application/json");
    INFO(body);
    REQUIRE(r->status == 400);
    CHECK(body_of(r)["detail"].get<std::string>().find(field) != std::string::npos);
  }
  CHECK(texts("/v3/memories/", "{" + scope + "}").size() == 3);
}

TEST_CASE("server: the SDKs' getAll paging in the query string returns the page asked for", "[server][mem0]") {
  server_process srv;
  auto c = srv.client();
  for (int i = 0; i < 5; ++i)
    REQUIRE(c.Post("/memories", json{{"messages", "note number " + std::to_string(i)}, {"user_id", "pat"}}.dump(),
                   "application/json")
                ->status == 200);
  auto r = c.Post("/v3/memories/?page=2&page_size=2", R"({"filters":{"user_id":"pat"}})", "application/json");
  REQUIRE(r->status == 200);
  auto b = body_of(r);
  CHECK(b["count"] == 5);
  REQUIRE(b["results"].size() == 2);
  CHECK(b["results"][0]["memory"] == "note number 2");
  r = c.Post("/v3/memories/?page=3&page_size=2", R"({"filters":{"user_id":"pat"}})", "application/json");
  REQUIRE(body_of(r)["results"].size() == 1);
  r = c.Post("/v2/memories/?page=x", R"({"user_id":"pat"})", "application/json");
  CHECK(r->status == 400);
}

TEST_CASE("server: request bodies of the Mem0 SDKs and CrewAI reach the extractor and change what is stored",
          "[server][providers][mem0]") {
  // The fixture holds what each client sends (written from its source); the model files facts under the
  // categories the prompt offers and leaves health facts out when the prompt says to exclude them.
  std::ifstream in(std::string(ENGRAM_EXAMPLES_DIR) + "/../tests/apps/fixtures/mem0_client_requests.json");
  REQUIRE(in);
  const auto fixture = json::parse(in);
  engram_test::fake_server fake;
  const auto model = [](const json& req) {
    std::string prompt;
    for (const auto& m : req["messages"]) prompt += m["content"].get<std::string>() + "\n";
    const bool no_health = prompt.find("Never remember information of these kinds: health") != std::string::npos;
    const bool filed = prompt.find("File every fact under") != std::string::npos;
    json facts = json::array();
    for (const auto& [text, category] : {std::pair{"Has a peanut allergy", "health"}, {"Loves hiking", "hobbies"}}) {
      if (no_health && std::string(category) == "health") continue;
      if (!filed) {
        facts.push_back(text);
        continue;
      }
      const bool offered = prompt.find(std::string("- ") + category) != std::string::npos;
      facts.push_back({{"text", text}, {"categories", offered ? json::array({category}) : json::array()}});
    }
    return json{{"facts", facts}}.dump();
  };
  server_process srv({"--embedder", "openai", "--base-url", fake.base_url(), "--embed-model", "fake-embed",
                      "--extractor", "llm", "--llm-model", "fake-chat", "--llm-mode", "additive"});
  auto c = srv.client();
  for (const auto& add : fixture["adds"]) {
    INFO(add["client"].get<std::string>());
    fake.push_chat(model);
    auto r = c.Post(add["path"].get<std::string>().c_str(), add["body"].dump(), "application/json");
    INFO(r->body);
    REQUIRE(r->status == 200);
    const auto chats = fake.requests("/v1/chat/completions");
    REQUIRE_FALSE(chats.empty());
    std::string prompt;
    for (const auto& m : chats.back().body["messages"]) prompt += m["content"].get<std::string>() + "\n";
    for (const auto& piece : add["prompt_has"]) {
      INFO("prompt piece: " << piece.get<std::string>());
      CHECK(prompt.find(piece.get<std::string>()) != std::string::npos);
    }
    const auto results = body_of(r)["results"];
    std::map<std::string, json> stored;
    for (const auto& e : results) {
      const auto got = body_of(c.Get(("/v1/memories/" + e["id"].get<std::string>() + "/").c_str()));
      stored[got["memory"]] = got.value("categories", json::array());
      if (add["body"].contains("metadata"))
        for (const auto& [k, v] : add["body"]["metadata"].items()) CHECK(got["metadata"][k] == v);
    }
    std::map<std::string, json> expected;
    for (const auto& [text, cats] : add["stored"].items()) expected[text] = cats;
    CHECK(stored == expected);
  }
  for (const auto& read : fixture["reads"]) {
    INFO(read["client"].get<std::string>());
    auto r = c.Post(read["path"].get<std::string>().c_str(), read["body"].dump(), "application/json");
    INFO(r->body);
    REQUIRE(r->status == 200);
    const auto doc = body_of(r);
    CHECK(doc["results"].size() == read["count"].get<std::size_t>());
    if (read.contains("total")) CHECK(doc["count"] == read["total"]);
  }
  // memory_type procedural_memory (Mem0's, with an agent_id): the run summarised into one memory
  fake.push_chat(R"({"procedure": "Task: book a table. 1. Called the restaurant. 2. Booked 8pm for two. Done."})");
  auto p = c.Post("/v3/memories/add/", R"({"messages":[{"role":"user","content":"Book a table for two"},
                                          {"role":"assistant","content":"Called; booked 8pm for two."}],
                                          "filters":{"agent_id":"concierge"},"memory_type":"procedural_memory"})",
                  "application/json");
  INFO(p->body);
  REQUIRE(p->status == 200);
  const auto procedure = body_of(p)["results"];
  REQUIRE(procedure.size() == 1);
  const auto stored_procedure = body_of(c.Get(("/v1/memories/" + procedure[0]["id"].get<std::string>() + "/").c_str()));
  CHECK(stored_procedure["metadata"]["memory_type"] == "procedural_memory");
  CHECK(stored_procedure["agent_id"] == "concierge");

  // The MCP add_memory tool takes the same per-call extraction fields
  fake.push_chat(model);
  const json call = {{"jsonrpc", "2.0"}, {"id", 1}, {"method", "tools/call"},
                     {"params", {{"name", "add_memory"},
                                 {"arguments", {{"text", "Peanuts make me ill; I hike on Sundays."}, {"user_id", "mo"},
                                                {"excludes", {"health"}}, {"custom_instructions", "Say it plainly."}}}}}};
  auto r = c.Post("/mcp", call.dump(), "application/json");
  REQUIRE(r->status == 200);
  const auto reply = body_of(r);
  INFO(reply.dump());
  REQUIRE(reply["result"]["isError"] == false);
  const auto stored = reply["result"]["structuredContent"]["results"];
  REQUIRE(stored.size() == 1);
  CHECK(stored[0]["memory"] == "Loves hiking");
  const auto last_chats = fake.requests("/v1/chat/completions");  // kept: the loop below reads into it
  std::string prompt;
  for (const auto& m : last_chats.back().body["messages"]) prompt += m["content"].get<std::string>();
  CHECK(prompt.find("Say it plainly.") != std::string::npos);
}

TEST_CASE("server: batch update and batch delete, all or nothing, bound to the key's user", "[server][batch]") {
  keyed_server srv;
  auto admin = srv.admin();
  auto alice = srv.alice();
  auto bob = srv.bob();
  auto add = [](httplib::Client& c, const std::string& text, bool immutable = false) {
    const json req{{"messages", text}, {"infer", false}, {"immutable", immutable}};
    const auto r = c.Post("/v1/memories/", req.dump(), "application/json");
    REQUIRE(r->status == 200);
    return body_of(r)["results"][0]["id"].get<std::string>();
  };
  const auto a1 = add(alice, "Alice keeps bees"), a2 = add(alice, "Alice lives in Porto"), a3 = add(alice, "Alice plays cello");
  const auto frozen = add(alice, "Alice's blood type is A", true);
  const auto b1 = add(bob, "Bob flies kites");
  auto texts = [&] {
    std::map<std::string, std::string> out;
    const auto all = body_of(admin.Get("/memories"));
    for (const auto& m : all["results"]) out[m["id"].get<std::string>()] = m["memory"].get<std::string>();
    INFO(all.dump());
    return out;
  };
  auto put = [](httplib::Client& c, const json& items) { return c.Put("/v1/batch/", json{{"memories", items}}.dump(), "application/json"); };
  auto del = [](httplib::Client& c, const json& items) { return c.Delete("/v1/batch/", json{{"memories", items}}.dump(), "application/json"); };
  const auto before = texts();
  REQUIRE(before.size() == 5);

  // one bad item: nothing changes, the detail names the item
  auto refused = [&](const httplib::Result& r, int status, const std::string& says) {
    REQUIRE(r);
    CHECK(r->status == status);
    CHECK_THAT(body_of(r)["detail"].get<std::string>(), Catch::Matchers::Contains(says));
    CHECK(texts() == before);
  };
  refused(put(alice, {{{"memory_id", a1}, {"text", "changed"}}, {{"memory_id", "no-such-id"}, {"text", "x"}}}), 404, "memories[1]");
  refused(put(alice, {{{"memory_id", a1}, {"text", "changed"}}, {{"memory_id", a2}, {"text", "  "}}}), 400, "memories[1].text");
  refused(put(alice, {{{"memory_id", a1}, {"text", "changed"}}, {{"memory_id", frozen}, {"text", "B"}}}), 400, "immutable");
  refused(put(alice, {{{"memory_id", a1}, {"text", "changed"}}, {{"memory_id", a1}, {"text", "again"}}}), 400, "already item 0");
  refused(put(alice, {{{"memory_id", a1}, {"text", "changed"}}, {{"memory_id", a2}}}), 400, "memories[1]");
  refused(put(alice, {{{"memory_id", a1}, {"text", "changed"}}, {{"memory_id", 7}, {"text", "x"}}}), 400, "memories[1].memory_id");
  refused(put(alice, json::array()), 400, "empty");
  refused(alice.Put("/v1/batch/", R"({"memories": {"memory_id": "x"}})", "application/json"), 400, "'memories'");
  refused(del(alice, {{{"memory_id", a1}}, {{"memory_id", "no-such-id"}}}), 404, "memories[1]");
  refused(del(alice, {{{"memory_id", a1}}, {{"memory_id", a1}}}), 400, "already item 0");
  // another user's id with a user-bound key: refused as unknown (404), nothing changed
  refused(put(alice, {{{"memory_id", a1}, {"text", "changed"}}, {{"memory_id", b1}, {"text", "hacked"}}}), 404, "memories[1]");
  refused(del(bob, {{{"memory_id", b1}}, {{"memory_id", a1}}}), 404, "memories[1]");
  // 1,001 items: 413
  json many = json::array();
  for (int i = 0; i < 1001; ++i) many.push_back({{"memory_id", a1}, {"text", "t"}});
  refused(put(admin, many), 413, "at most 1000");
  many = json::array();
  for (int i = 0; i < 1001; ++i) many.push_back({{"memory_id", a1}});
  refused(del(admin, many), 413, "at most 1000");

  // all applied
  auto r = put(alice, {{{"memory_id", a1}, {"text", "Alice keeps bees and sells honey"}},
                       {{"memory_id", a3}, {"metadata", {{"instrument", "cello"}}}}});
  REQUIRE(r->status == 200);
  CHECK(body_of(r)["message"] == "Successfully updated 2 memories");
  CHECK(body_of(alice.Get(("/v1/memories/" + a1 + "/").c_str()))["memory"] == "Alice keeps bees and sells honey");
  CHECK(body_of(alice.Get(("/v1/memories/" + a3 + "/").c_str()))["metadata"]["instrument"] == "cello");
  const auto hits = body_of(alice.Post("/v2/memories/search/", R"({"query":"honey","mode":"keyword"})", "application/json"))["results"];
  REQUIRE(hits.size() == 1);
  CHECK(hits[0]["id"] == a1);
  r = del(alice, {{{"memory_id", a1}}, {{"memory_id", a2}}, {{"memory_id", frozen}}});
  REQUIRE(r->status == 200);
  CHECK(body_of(r)["message"] == "Successfully deleted 3 memories");
  const auto left = texts();
  CHECK(left.size() == 2);
  CHECK(left.count(a3) == 1);
  CHECK(left.count(b1) == 1);
  CHECK(body_of(admin.Get(("/v1/memories/" + a1 + "/history/").c_str())).back()["event"] == "DELETE");
  // an admin may batch across users
  r = put(admin, {{{"memory_id", a3}, {"text", "Alice plays the viola"}}, {{"memory_id", b1}, {"text", "Bob flies big kites"}}});
  REQUIRE(r->status == 200);
  CHECK(texts()[b1] == "Bob flies big kites");
}

// ---- asynchronous adds and their events (async_mode, --async-adds, GET /v1/event/{id}/, GET /v1/events/) ----

namespace {

/// Polls GET /v1/event/{id}/ until its status is SUCCEEDED or FAILED (or `seconds` pass); returns the last answer.
json wait_for_event(httplib::Client& c, const std::string& id, int seconds = 30) {
  json e;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  do {
    auto r = c.Get(("/v1/event/" + id + "/").c_str());
    REQUIRE(r);
    REQUIRE(r->status == 200);
    e = json::parse(r->body);
    if (e["status"] == "SUCCEEDED" || e["status"] == "FAILED") return e;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (std::chrono::steady_clock::now() < until);
  FAIL("event " << id << " still " << e.dump() << " after " << seconds << " s");
  return e;
}

/// POSTs an add to `path` and returns the event id of its PENDING answer.
std::string queued_add(httplib::Client& c, const std::string& path, const json& body) {
  auto r = c.Post(path.c_str(), body.dump(), "application/json");
  REQUIRE(r);
  INFO(r->body);
  REQUIRE(r->status == 200);
  auto j = json::parse(r->body);
  const auto& item = path == "/v3/memories/add/" ? j : j.at("results").at(0);
  REQUIRE(item["status"] == "PENDING");
  return item.at("event_id").get<std::string>();
}

}  // namespace

TEST_CASE("server: async_mode queues an add: PENDING, then its event SUCCEEDED with the memories", "[server][async]") {
  server_process srv;  // --async-adds sync: only a request's async_mode queues
  auto c = srv.client();
  // POST /v3/memories/add/: the Platform's object
  auto r = c.Post("/v3/memories/add/", R"({"messages":"I keep bees on the roof","user_id":"ana","async_mode":true,"metadata":{"src":"chat"}})",
                  "application/json");
  REQUIRE(r->status == 200);
  const auto v3 = body_of(r);
  CHECK(v3["status"] == "PENDING");
  CHECK(v3["message"].is_string());
  const std::string id = v3["event_id"];
  CHECK_FALSE(v3.contains("results"));

  const auto e = wait_for_event(c, id);
  CHECK(e["id"] == id);
  CHECK(e["event_type"] == "ADD");
  REQUIRE(e["status"] == "SUCCEEDED");
  CHECK(e["error"].is_null());
  CHECK(e["user_id"] == "ana");
  CHECK(e["payload"]["messages"] == "I keep bees on the roof");
  CHECK(e["attempts"] == 1);
  for (const char* t : {"created_at", "updated_at", "started_at", "completed_at"}) CHECK(e[t].is_string());
  CHECK(e["latency"].is_number());
  CHECK(e["created_at"].get<std::string>() <= e["started_at"].get<std::string>());
  CHECK(e["started_at"].get<std::string>() <= e["completed_at"].get<std::string>());
  REQUIRE(e["results"].size() == 1);
  const auto& added = e["results"][0];
  CHECK(added["event"] == "ADD");
  CHECK(added["memory"] == "I keep bees on the roof");
  CHECK(added["data"]["memory"] == "I keep bees on the roof");
  CHECK(added["user_id"] == "ana");
  // the memory is there: by id, and searchable
  r = c.Get(("/v1/memories/" + added["id"].get<std::string>() + "/").c_str());
  REQUIRE(r->status == 200);
  CHECK(body_of(r)["metadata"]["src"] == "chat");
  r = c.Post("/v2/memories/search/", R"({"query":"bees","filters":{"user_id":"ana"}})", "application/json");
  REQUIRE(body_of(r)["results"].size() == 1);
  CHECK(body_of(r)["results"][0]["id"] == added["id"]);

  // POST /v1/memories/: the PENDING item in a list, shaped by output_format like every answer
  const auto second = queued_add(c, "/v1/memories/", {{"messages", "I grow tomatoes"}, {"user_id", "ana"}, {"async_mode", true}});
  r = c.Post("/v1/memories/", R"({"messages":"I cycle to work","user_id":"ana","async_mode":true,"output_format":"v1.0"})",
             "application/json");
  REQUIRE(r->status == 200);
  REQUIRE(body_of(r).is_array());
  const std::string third = body_of(r)[0]["event_id"];
  CHECK(body_of(r)[0]["status"] == "PENDING");
  CHECK(wait_for_event(c, second)["results"][0]["memory"] == "I grow tomatoes");
  CHECK(wait_for_event(c, third)["status"] == "SUCCEEDED");
  // async_mode false, or none on a sync server: answered once stored, as before
  r = c.Post("/v3/memories/add/", R"({"messages":"I speak Greek","user_id":"ana","async_mode":false})", "application/json");
  REQUIRE(r->status == 200);
  CHECK(body_of(r)["results"][0]["memory"] == "I speak Greek");
  r = c.Post("/v1/memories/", R"({"messages":"I speak Dutch","user_id":"ana"})", "application/json");
  CHECK(body_of(r)["results"][0]["event"] == "ADD");

  // the list: newest first, paged as the Platform pages
  auto page = body_of(c.Get("/v1/events/"));
  CHECK(page["count"] == 3);
  CHECK(page["next"].is_null());
  CHECK(page["previous"].is_null());
  REQUIRE(page["results"].size() == 3);
  CHECK(page["results"][0]["id"] == third);
  CHECK(page["results"][1]["id"] == second);
  CHECK(page["results"][2]["id"] == id);
  page = body_of(c.Get("/v1/events/?page=2&page_size=1"));
  CHECK(page["count"] == 3);
  REQUIRE(page["results"].size() == 1);
  CHECK(page["results"][0]["id"] == second);
  CHECK(page["next"] == "/v1/events/?page=3&page_size=1");
  CHECK(page["previous"] == "/v1/events/?page=1&page_size=1");
  CHECK(body_of(c.Get("/v1/events/?page=9"))["results"].empty());
  CHECK(c.Get("/v1/events/?page=0")->status == 400);
  CHECK(c.Get("/v1/events/?page_size=-1")->status == 400);

  // an unknown event is a 404; a malformed async_mode a 400 naming it, and nothing is stored
  r = c.Get("/v1/event/00000000-0000-4000-8000-000000000000/");
  CHECK(r->status == 404);
  CHECK(body_of(r)["detail"].get<std::string>().find("no event") != std::string::npos);
  const auto before = body_of(c.Get("/memories?user_id=ana"))["results"].size();
  for (const char* path : {"/v1/memories/", "/v3/memories/add/", "/memories"})
    for (const char* value : {R"("yes")", "1", "[true]", R"({"on":true})"}) {
      r = c.Post(path, std::string(R"({"messages":"Never stored","user_id":"ana","async_mode":)") + value + "}",
                 "application/json");
      INFO(path << " async_mode " << value);
      CHECK(r->status == 400);
      CHECK(body_of(r)["detail"].get<std::string>().find("'async_mode'") != std::string::npos);
    }
  // the OSS route answers once stored: true is refused there
  r = c.Post("/memories", R"({"messages":"Never stored","user_id":"ana","async_mode":true})", "application/json");
  CHECK(r->status == 400);
  // a queued add is validated before it is queued
  CHECK(c.Post("/v3/memories/add/", R"({"messages":"","user_id":"ana","async_mode":true})", "application/json")->status == 400);
  CHECK(c.Post("/v3/memories/add/", R"({"messages":"x","async_mode":true})", "application/json")->status == 400);
  CHECK(body_of(c.Get("/memories?user_id=ana"))["results"].size() == before);
  CHECK(body_of(c.Get("/v1/events/"))["count"] == 3);
}

TEST_CASE("server: --async-adds async (or ENGRAM_ASYNC_ADDS) queues Platform adds unless the request says otherwise",
          "[server][async]") {
  auto check_async_default = [](server_process& srv) {
    auto c = srv.client();
    const auto id = queued_add(c, "/v3/memories/add/", {{"messages", "Rex is my dog"}, {"user_id", "bo"}});
    CHECK(wait_for_event(c, id)["results"][0]["memory"] == "Rex is my dog");
    (void)queued_add(c, "/v1/memories/", {{"messages", "Rex likes walks"}, {"user_id", "bo"}});
    // async_mode false: answered once stored
    auto r = c.Post("/v3/memories/add/", R"({"messages":"Rex is five","user_id":"bo","async_mode":false})", "application/json");
    CHECK(body_of(r)["results"][0]["memory"] == "Rex is five");
    // infer false: stored as given, answered once stored as the Platform does, unless async_mode asks
    r = c.Post("/v3/memories/add/", R"({"messages":"Rex is brown","user_id":"bo","infer":false})", "application/json");
    CHECK(body_of(r)["results"][0]["memory"] == "Rex is brown");
    (void)queued_add(c, "/v3/memories/add/", {{"messages", "Rex is fast"}, {"user_id", "bo"}, {"infer", false}, {"async_mode", true}});
    // the OSS route always answers once stored
    r = c.Post("/memories", R"({"messages":"Rex sleeps a lot","user_id":"bo"})", "application/json");
    CHECK(body_of(r)["results"][0]["memory"] == "Rex sleeps a lot");
    CHECK(body_of(c.Get("/v1/events/"))["count"] == 3);
  };
  {
    server_process srv({"--async-adds", "async"});
    check_async_default(srv);
  }
  {
    setenv("ENGRAM_ASYNC_ADDS", "async", 1);
    server_process srv;
    unsetenv("ENGRAM_ASYNC_ADDS");
    check_async_default(srv);
  }
  {  // the flag wins over the environment
    setenv("ENGRAM_ASYNC_ADDS", "async", 1);
    server_process srv({"--async-adds", "sync"});
    unsetenv("ENGRAM_ASYNC_ADDS");
    auto c = srv.client();
    auto r = c.Post("/v3/memories/add/", R"({"messages":"Rex is my dog","user_id":"bo"})", "application/json");
    CHECK(body_of(r)["results"][0]["memory"] == "Rex is my dog");
  }
  auto [status, err] = failed_start("--async-adds later");
  CHECK(status == 2);
  CHECK(err.find("--async-adds") != std::string::npos);
  std::tie(status, err) = failed_start("--max-events 0");
  CHECK(status == 2);
}

TEST_CASE("server: a key bound to a user sees only its user's events", "[server][async][auth]") {
  keyed_server srv;
  auto admin = srv.admin();
  auto alice = srv.alice();
  auto bob = srv.bob();
  // alice's key queues into alice's scope without naming her
  const auto id = queued_add(alice, "/v3/memories/add/", {{"messages", "Alice's secret plan"}, {"async_mode", true}});
  CHECK(wait_for_event(alice, id)["user_id"] == "alice");
  const auto bobs = queued_add(bob, "/v1/memories/", {{"messages", "Bob's kite"}, {"async_mode", true}});
  (void)wait_for_event(bob, bobs);
  // bob cannot read it, nor learn that it exists; his list holds his own only
  auto r = bob.Get(("/v1/event/" + id + "/").c_str());
  CHECK(r->status == 404);
  CHECK(body_of(r)["detail"].get<std::string>().find("Alice") == std::string::npos);
  auto page = body_of(bob.Get("/v1/events/"));
  CHECK(page["count"] == 1);
  CHECK(page["results"][0]["id"] == bobs);
  CHECK(alice.Get(("/v1/event/" + bobs + "/").c_str())->status == 404);
  // the admin sees both; a key is needed at all
  CHECK(admin.Get(("/v1/event/" + id + "/").c_str())->status == 200);
  CHECK(body_of(admin.Get("/v1/events/"))["count"] == 2);
  CHECK(srv.anonymous().Get("/v1/events/")->status == 401);
  CHECK(srv.anonymous().Get(("/v1/event/" + id + "/").c_str())->status == 401);
  // naming another user on a queued add is refused like any add
  CHECK(alice.Post("/v3/memories/add/", R"({"messages":"x","user_id":"bob","async_mode":true})", "application/json")->status == 403);
}

TEST_CASE("server: events survive a restart, pending ones finish after it; --max-events bounds them",
          "[server][async][durability]") {
  engram_test::fake_server fake;
  char tmpl[] = "/tmp/engram-server-events-XXXXXX";
  REQUIRE(mkdtemp(tmpl));
  const std::string data = tmpl;
  const std::vector<std::string> llm = {"--extractor", "llm", "--llm-model", "fake-chat", "--llm-mode", "additive",
                                        "--llm-base-url", fake.base_url()};
  std::string done_id, pending_id;
  {
    server_process srv(llm, data);
    auto c = srv.client();
    // the first extraction takes a while; the second add of the scope waits behind it
    fake.push("/v1/chat/completions", engram_test::reply{200, engram_test::fake_server::chat_body(R"({"facts": ["Ana keeps bees"]})"),
                                                         {}, std::chrono::milliseconds(1500)});
    done_id = queued_add(c, "/v3/memories/add/", {{"messages", "I keep bees"}, {"user_id", "ana"}, {"async_mode", true}});
    for (int i = 0; i < 500 && fake.count("/v1/chat/completions") == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(fake.count("/v1/chat/completions") == 1);
    CHECK(body_of(c.Get(("/v1/event/" + done_id + "/").c_str()))["status"] == "RUNNING");
    pending_id = queued_add(c, "/v3/memories/add/", {{"messages", "I grow tomatoes"}, {"user_id", "ana"}, {"async_mode", true}});
    CHECK(body_of(c.Get(("/v1/event/" + pending_id + "/").c_str()))["status"] == "PENDING");
    CHECK(srv.stop() == 0);  // the running add finishes; the waiting one stays queued
  }
  CHECK(fake.count("/v1/chat/completions") == 1);
  REQUIRE(std::filesystem::exists(data + "/events.jsonl"));
  std::ofstream(data + "/events.jsonl", std::ios::app) << R"({"id":"cut-short","status":"SUCC)";  // a crash mid-line
  fake.always("/v1/chat/completions", engram_test::reply{200, engram_test::fake_server::chat_body(R"({"facts": ["Ana grows tomatoes"]})"),
                                                         {}, std::chrono::milliseconds(1500)});
  {
    server_process srv(llm, data);
    auto c = srv.client();
    auto e = body_of(c.Get(("/v1/event/" + done_id + "/").c_str()));
    CHECK(e["status"] == "SUCCEEDED");
    REQUIRE(e["results"].size() == 1);
    CHECK(e["results"][0]["memory"] == "Ana keeps bees");
    e = body_of(c.Get(("/v1/event/" + pending_id + "/").c_str()));
    CHECK((e["status"] == "PENDING" || e["status"] == "RUNNING"));  // resumed by the restarted server
    e = wait_for_event(c, pending_id);
    CHECK(e["status"] == "SUCCEEDED");
    REQUIRE(e["results"].size() == 1);
    CHECK(e["results"][0]["memory"] == "Ana grows tomatoes");
    CHECK(e["payload"]["messages"] == "I grow tomatoes");
    CHECK(body_of(c.Get("/v1/events/"))["count"] == 2);
    CHECK(c.Get("/v1/event/cut-short/")->status == 404);
    CHECK(body_of(c.Get("/memories?user_id=ana"))["results"].size() == 2);
    CHECK(srv.stop() == 0);
  }
  {  // --max-events 2: the oldest finished events go, from the journal too
    server_process srv({"--max-events", "2"}, data);
    auto c = srv.client();
    std::vector<std::string> ids;
    for (const auto* text : {"one fact", "two facts", "three facts"}) {
      ids.push_back(queued_add(c, "/v3/memories/add/", {{"messages", text}, {"user_id", "max"}, {"async_mode", true}, {"infer", false}}));
      (void)wait_for_event(c, ids.back());
    }
    auto page = body_of(c.Get("/v1/events/"));
    CHECK(page["count"] == 2);
    CHECK(page["results"][0]["id"] == ids[2]);
    CHECK(page["results"][1]["id"] == ids[1]);
    CHECK(c.Get(("/v1/event/" + ids[0] + "/").c_str())->status == 404);
    CHECK(c.Get(("/v1/event/" + done_id + "/").c_str())->status == 404);
    CHECK(srv.stop() == 0);
  }
  server_process srv({"--max-events", "2"}, data);
  CHECK(body_of(srv.client().Get("/v1/events/"))["count"] == 2);
  std::ifstream journal(data + "/events.jsonl");
  std::size_t lines = 0;
  for (std::string line; std::getline(journal, line);) ++lines;
  CHECK(lines == 2);  // compacted on open: one line per event kept
  CHECK(srv.stop() == 0);
  std::filesystem::remove_all(data);
}

TEST_CASE("server: a queued add whose extraction keeps failing ends FAILED with the error", "[server][async][providers]") {
  engram_test::fake_server fake;
  fake.always("/v1/chat/completions", engram_test::reply{400, R"({"error":{"message":"model overloaded"}})"});
  server_process srv({"--extractor", "llm", "--llm-model", "fake-chat", "--llm-base-url", fake.base_url()});
  auto c = srv.client();
  const auto id = queued_add(c, "/v3/memories/add/", {{"messages", "I moved to Porto"}, {"user_id", "dan"}, {"async_mode", true}});
  const auto e = wait_for_event(c, id, 60);
  REQUIRE(e["status"] == "FAILED");
  CHECK(e["results"].empty());
  CHECK(e["error"].is_string());
  CHECK(e["error"].get<std::string>().find("400") != std::string::npos);
  CHECK(e["attempts"] == 5);  // every attempt of the default async_options
  CHECK(e["completed_at"].is_string());
  CHECK(fake.count("/v1/chat/completions") >= 5);
  CHECK(body_of(c.Get("/memories?user_id=dan"))["results"].empty());
  CHECK(body_of(c.Get("/v1/events/"))["results"][0]["status"] == "FAILED");
}

TEST_CASE("server: the event log: reports before acceptance, journal reload, retention, settling, one user", "[server][async]") {
  char tmpl[] = "/tmp/engram-event-log-XXXXXX";
  REQUIRE(mkdtemp(tmpl));
  const std::string path = std::string(tmpl) + "/sub/events.jsonl";  // the directory is created
  const engram_app::principal admin;
  auto outcome = [](const std::string& id, bool ok) {
    engram::async_outcome o;
    o.id = id;
    o.scope = engram::user("ana");
    o.succeeded = ok;
    o.attempts = ok ? 1 : 5;
    o.error = ok ? "" : "provider down";
    if (ok) o.result.results.push_back({"mem-" + id, "fact of " + id, engram::event_kind::add, std::nullopt});
    o.batch = {id};
    return o;
  };
  auto lines_of = [&] {
    std::ifstream in(path);
    std::size_t n = 0;
    for (std::string line; std::getline(in, line);) ++n;
    return n;
  };
  {
    engram_app::event_log log(path, 3);
    // a worker may report an entry before add_async has returned its id: kept, and applied on acceptance
    log.started("early");
    log.processed(outcome("early", true));
    CHECK_THROWS_AS(log.get("early", admin), engram::not_found);
    log.accepted("early", engram::user("ana"), {{"messages", "x"}}, "2025-01-01T00:00:00.000000Z");
    auto e = log.get("early", admin);
    CHECK(e["status"] == "SUCCEEDED");
    CHECK(e["created_at"] == "2025-01-01T00:00:00.000000Z");
    CHECK(e["attempts"] == 1);
    CHECK(e["results"][0]["memory"] == "fact of early");
    CHECK(e["results"][0]["data"]["memory"] == "fact of early");
    CHECK(e["payload"]["messages"] == "x");
    for (const auto* id : {"a", "b", "c"}) log.accepted(id, engram::user(std::string(id) == "c" ? "bo" : "ana"), json::object(), "2025-01-02T00:00:00Z");
    log.started("a");
    CHECK(log.get("a", admin)["status"] == "RUNNING");
    log.processed(outcome("a", false));
    e = log.get("a", admin);
    CHECK(e["status"] == "FAILED");
    CHECK(e["error"] == "provider down");
    CHECK(e["latency"].is_number());
    // at most 3: "early", the oldest finished one, went; unfinished ones are never dropped
    CHECK(log.size() == 3);
    CHECK_THROWS_AS(log.get("early", admin), engram::not_found);
    for (int i = 0; i < 300; ++i) log.started("b");  // many lines: the journal is compacted as it goes
    CHECK(lines_of() <= 2 * 3 + 64 + 1);
    // a key bound to a user: its own events only
    const engram_app::principal ana{"user:ana", "ana", false};
    CHECK_THROWS_AS(log.get("c", ana), engram::not_found);
    CHECK(log.list(json::object(), ana)["count"] == 2);
    CHECK(log.list(json::object(), admin)["count"] == 3);
    // one process per journal
    CHECK_THROWS_AS(engram_app::event_log(path), engram::storage_error);
  }
  std::ofstream(path, std::ios::app) << R"({"id":"torn","status":"PEND)";
  {
    engram_app::event_log log(path, 3);
    CHECK(log.skipped_on_load() == 1);
    CHECK(log.size() == 3);
    CHECK(lines_of() == 3);
    CHECK(log.get("a", admin)["status"] == "FAILED");
    CHECK(log.get("b", admin)["status"] == "RUNNING");
    CHECK(log.get("b", admin)["attempts"] == 300);
    const auto page = log.list(json::object(), admin);
    CHECK(page["results"][0]["id"] == "c");  // newest first, in the order accepted before the restart
    CHECK(page["results"][2]["id"] == "a");
    // settled on start: b was kept as failed by the store, c is no longer queued (it was committed)
    engram::failed_add f{"b", engram::user("ana"), 5, "gave up"};
    log.reconcile({f}, {});
    CHECK(log.get("b", admin)["status"] == "FAILED");
    CHECK(log.get("b", admin)["error"] == "gave up");
    CHECK(log.get("c", admin)["status"] == "SUCCEEDED");
    CHECK(log.get("c", admin)["results"].empty());
    // a worker's later report replaces the settlement
    log.processed(outcome("c", true));
    CHECK(log.get("c", admin)["results"].size() == 1);
    log.accepted("d", engram::user("ana"), json::object(), "2025-01-03T00:00:00Z");
    log.reconcile({}, {"d"});  // still queued: left to its worker
    CHECK(log.get("d", admin)["status"] == "PENDING");
  }
  std::filesystem::remove_all(tmpl);
}

namespace {

/// The texts of a listing or search answer ({"results": [...]}), sorted.
std::vector<std::string> texts_of(const httplib::Result& r) {
  REQUIRE(r);
  INFO(r->body);
  REQUIRE(r->status == 200);
  std::vector<std::string> out;
  const auto answer = json::parse(r->body);
  for (const auto& m : answer["results"]) out.push_back(m["memory"].get<std::string>());
  std::sort(out.begin(), out.end());
  return out;
}

/// The server's stderr from starting with `args` over a fresh data directory until SIGTERM after `seconds`.
std::string startup_log(const std::string& args, int seconds = 2) {
  char dir[] = "/tmp/engram-server-startup-XXXXXX";
  REQUIRE(mkdtemp(dir));
  const std::string err = std::string(dir) + "/stderr";
  const std::string cmd = "timeout -s TERM " + std::to_string(seconds) + " " + ENGRAM_SERVER_BIN + " --port 0 --data " +
                          dir + "/data " + args + " >/dev/null 2>" + err;
  (void)std::system(cmd.c_str());
  std::ifstream in(err);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove_all(dir);
  return text;
}

}  // namespace

TEST_CASE("server: --on-contradiction supersede keeps the old version, found by as_of and include_invalid on every "
          "search and listing route", "[server][time]") {
  engram_test::fake_server fake;
  server_process srv({"--embedder", "openai", "--base-url", fake.base_url(), "--embed-model", "fake-embed",
                      "--extractor", "llm", "--llm-model", "fake-chat", "--on-contradiction", "supersede"});
  auto c = srv.client();
  fake.push_chat(R"({"facts": ["Ana lives in Lisbon"]})");  // no neighbour yet: added without a reconcile call
  auto r = c.Post("/memories", R"({"messages":"I live in Lisbon","user_id":"ana","timestamp":"2024-01-10T09:00:00Z"})",
                  "application/json");
  REQUIRE(r->status == 200);
  const std::string id = body_of(r)["results"][0]["id"];
  fake.push_chat(R"({"facts": ["Ana lives in Porto"]})");
  fake.push_chat(R"({"memory": [{"id": "0", "text": "Ana lives in Porto", "event": "UPDATE"}]})");
  r = c.Post("/memories", R"({"messages":"I moved to Porto","user_id":"ana","timestamp":"2025-06-01T00:00:00Z"})",
             "application/json");
  REQUIRE(r->status == 200);
  const auto added = body_of(r)["results"];
  REQUIRE(added.size() == 1);
  CHECK(added[0]["event"] == "UPDATE");  // what a Mem0 client sees: the same as with erasure
  CHECK(added[0]["id"] == id);

  using texts = std::vector<std::string>;
  const texts lisbon{"Ana lives in Lisbon"}, porto{"Ana lives in Porto"}, both{"Ana lives in Lisbon", "Ana lives in Porto"};
  auto search = [&](const std::string& path, json extra) {
    extra["query"] = "where does Ana live";
    return texts_of(c.Post(path, extra.dump(), "application/json"));
  };
  // the default views: the current fact only
  CHECK(texts_of(c.Get("/memories?user_id=ana")) == porto);
  CHECK(search("/search", {{"user_id", "ana"}}) == porto);
  // as_of before the move, on each search route and in each form of time
  CHECK(search("/search", {{"user_id", "ana"}, {"as_of", "2024-06-01"}}) == lisbon);
  CHECK(search("/v2/memories/search/", {{"filters", {{"user_id", "ana"}}}, {"as_of", "2025-05-31T23:59:59Z"}}) == lisbon);
  CHECK(search("/v3/memories/search/", {{"filters", {{"user_id", "ana"}}}, {"as_of", 1717200000}}) == lisbon);
  // after it; the boundary belongs to the new version (here written with an offset: 02:00+02:00 is 00:00Z)
  CHECK(search("/search", {{"user_id", "ana"}, {"as_of", "2025-06-01T02:00:00+02:00"}}) == porto);
  CHECK(search("/search", {{"user_id", "ana"}, {"as_of", "2025-06-01T01:59:59+02:00"}}) == lisbon);
  // before anything was true: nothing
  CHECK(search("/search", {{"user_id", "ana"}, {"as_of", "2023-01-01"}}).empty());
  // every version
  CHECK(search("/search", {{"user_id", "ana"}, {"include_invalid", true}}) == both);
  CHECK(search("/v3/memories/search/", {{"filters", {{"user_id", "ana"}}}, {"include_invalid", false}}) == porto);

  // the listings: GET /memories (query string) and the Platform's paged POST /v2|v3/memories/ (body)
  CHECK(texts_of(c.Get("/memories?user_id=ana&as_of=2024-06-01")) == lisbon);
  CHECK(texts_of(c.Get("/memories?user_id=ana&as_of=1717200000")) == lisbon);
  CHECK(texts_of(c.Get("/memories?user_id=ana&as_of=2025-06-01T02:00:00%2B02:00")) == porto);
  CHECK(texts_of(c.Get("/memories?user_id=ana&include_invalid=true")) == both);
  CHECK(texts_of(c.Post("/v2/memories/", R"({"filters":{"user_id":"ana"},"include_invalid":true})", "application/json")) == both);
  CHECK(texts_of(c.Post("/v3/memories/", R"({"filters":{"user_id":"ana"},"as_of":"2024-06-01"})", "application/json")) == lisbon);
  // the closed version says when it stopped holding and what replaced it
  const auto all = body_of(c.Get("/memories?user_id=ana&include_invalid=true"))["results"];
  for (const auto& m : all)
    if (m["memory"] == "Ana lives in Lisbon") {
      CHECK(m["invalid_at"].get<std::string>().rfind("2025-06-01T00:00:00", 0) == 0);
      CHECK(m["superseded_by"] == id);
    }

  // the policy is shown with the other settings
  const auto metrics = body_of(c.Get("/metrics"));
  CHECK(metrics["on_contradiction"] == "supersede");
  CHECK(metrics["entities"] == false);
}

TEST_CASE("server: as_of and include_invalid are read as times and booleans, or refused naming the field",
          "[server][time]") {
  server_process srv;
  auto c = srv.client();
  REQUIRE(c.Post("/memories", R"({"messages":"Bo keeps bees","user_id":"bo","infer":false,"timestamp":"2024-01-10"})",
                 "application/json")->status == 200);
  using texts = std::vector<std::string>;
  const texts bees{"Bo keeps bees"};
  // valid_from is the add's timestamp: as_of sees the memory from then on (Unix seconds: 1704844800 is 2024-01-10)
  CHECK(texts_of(c.Get("/memories?user_id=bo&as_of=1704844800")) == bees);
  CHECK(texts_of(c.Get("/memories?user_id=bo&as_of=1704844799")).empty());
  CHECK(texts_of(c.Get("/memories?user_id=bo&as_of=1704844799.5")).empty());
  CHECK(texts_of(c.Post("/search", R"({"query":"bees","user_id":"bo","as_of":"2024-01-09T23:59:59Z"})", "application/json")).empty());
  CHECK(texts_of(c.Post("/search", R"({"query":"bees","user_id":"bo","as_of":"2024-01-10T00:30:00+00:30"})", "application/json")) == bees);
  CHECK(texts_of(c.Post("/search", R"({"query":"bees","user_id":"bo","as_of":"2024-01-10T00:29:59+00:30"})", "application/json")).empty());
  CHECK(texts_of(c.Post("/search", R"({"query":"bees","user_id":"bo","as_of":null})", "application/json")) == bees);

  auto refused = [&](const httplib::Result& res, const std::string& says) {
    REQUIRE(res);
    INFO(res->body);
    CHECK(res->status == 400);
    CHECK_THAT(body_of(res)["detail"].get<std::string>(), Catch::Matchers::Contains(says));
  };
  for (const std::string bad : {R"("yesterday")", R"("2024-13-01")", R"("2024-06-01T25:00:00Z")", R"("-5")", "-5",
                                R"("1e9")", "{}", "[2024]", "true", "1e13"}) {
    INFO(bad);
    for (const char* path : {"/search", "/v2/memories/search/", "/v3/memories/search/"})
      refused(c.Post(path, R"({"query":"bees","user_id":"bo","as_of":)" + bad + "}", "application/json"), "'as_of'");
    for (const char* path : {"/v2/memories/", "/v3/memories/"})
      refused(c.Post(path, R"({"filters":{"user_id":"bo"},"as_of":)" + bad + "}", "application/json"), "'as_of'");
  }
  refused(c.Get("/memories?user_id=bo&as_of=yesterday"), "'as_of'");
  // a '+' a client left unescaped in a query string arrives as a space: the answer says so
  refused(c.Get("/memories?user_id=bo&as_of=2024-01-10T02:00:00 02:00"), "send a '+' as %2B");
  for (const std::string bad : {R"("maybe")", "3", "{}"}) {
    refused(c.Post("/search", R"({"query":"bees","user_id":"bo","include_invalid":)" + bad + "}", "application/json"),
            "'include_invalid'");
    refused(c.Post("/v3/memories/", R"({"filters":{"user_id":"bo"},"include_invalid":)" + bad + "}", "application/json"),
            "'include_invalid'");
  }
  refused(c.Get("/memories?user_id=bo&include_invalid=yes"), "'include_invalid'");
  // both at once would ignore the time: refused, not guessed
  refused(c.Post("/search", R"({"query":"bees","user_id":"bo","as_of":"2024-06-01","include_invalid":true})", "application/json"),
          "'as_of' with 'include_invalid'");
  refused(c.Get("/memories?user_id=bo&as_of=2024-06-01&include_invalid=true"), "'as_of' with 'include_invalid'");
  CHECK(texts_of(c.Get("/memories?user_id=bo&as_of=2024-06-01&include_invalid=false")) == bees);

  // the default policy, in the stats and the startup line
  CHECK(body_of(c.Get("/metrics"))["on_contradiction"] == "erase");
  CHECK_THAT(startup_log(""), Catch::Matchers::Contains("on contradiction: erase"));
  CHECK_THAT(startup_log("--on-contradiction supersede"), Catch::Matchers::Contains("on contradiction: supersede"));
}

TEST_CASE("server: --on-contradiction, ENGRAM_ON_CONTRADICTION, --entities: a bad value refuses to start",
          "[server][time]") {
  auto [status, err] = failed_start("--on-contradiction keep");
  CHECK(status == 2);
  CHECK_THAT(err, Catch::Matchers::Contains("--on-contradiction"));
  CHECK_THAT(err, Catch::Matchers::Contains("'keep'"));
  ::setenv("ENGRAM_ON_CONTRADICTION", "overwrite", 1);
  std::tie(status, err) = failed_start("");
  ::unsetenv("ENGRAM_ON_CONTRADICTION");
  CHECK(status == 2);
  CHECK_THAT(err, Catch::Matchers::Contains("ENGRAM_ON_CONTRADICTION"));
  CHECK_THAT(err, Catch::Matchers::Contains("'overwrite'"));
  char cfg[] = "/tmp/engram-server-cfg-XXXXXX";
  const int fd = mkstemp(cfg);
  REQUIRE(fd >= 0);
  close(fd);
  std::ofstream(cfg) << R"({"on-contradiction": "forget"})";
  std::tie(status, err) = failed_start(std::string("--config ") + cfg);
  CHECK(status == 2);
  CHECK_THAT(err, Catch::Matchers::Contains("'forget'"));
  std::ofstream(cfg) << R"({"on-contradiction": "supersede"})";
  CHECK_THAT(startup_log(std::string("--config ") + cfg), Catch::Matchers::Contains("on contradiction: supersede"));
  std::remove(cfg);
  std::tie(status, err) = failed_start("--entities yes");
  CHECK(status == 2);
  CHECK_THAT(err, Catch::Matchers::Contains("--entities"));
  std::tie(status, err) = failed_start("--entities llm");  // the offline extractor names no entities
  CHECK(status == 2);
  CHECK_THAT(err, Catch::Matchers::Contains("needs --extractor llm"));
  for (const char* bad : {"--entities on --entity-similarity 1.5", "--entities on --entity-similarity high",
                          "--entity-similarity 0.9"}) {
    std::tie(status, err) = failed_start(bad);
    CHECK(status == 2);
    CHECK_THAT(err, Catch::Matchers::Contains("--entity-similarity"));
  }
  CHECK_THAT(startup_log("--entities on --entity-similarity 0.9"),
             Catch::Matchers::Contains("names resolved at cosine 0.9"));
}

TEST_CASE("server: --entities llm keeps the entities the LLM names, across a restart; a bad reply stores nothing",
          "[server][graph][providers]") {
  engram_test::fake_server fake;
  char dir[] = "/tmp/engram-llm-entities-XXXXXX";
  REQUIRE(mkdtemp(dir));
  const std::vector<std::string> args = {"--extractor", "llm", "--llm-model", "fake-chat", "--llm-base-url",
                                         fake.base_url(), "--entities", "llm"};
  const json expected_graph = {
      {"entities", json::array({{{"name", "Maria Lopez"}, {"type", "person"}, {"aliases", json::array()}, {"memories", 1}, {"merges", json::array()}},
                                {{"name", "Acme Labs"}, {"type", "organization"}, {"aliases", json::array()}, {"memories", 1}, {"merges", json::array()}}})},
      {"relations", json::array({{{"source", "Maria Lopez"}, {"relationship", "manages"}, {"target", "Acme Labs"}, {"memories", 1}}})}};
  {
    server_process srv(args, dir);
    auto c = srv.client();
    // lowercase text: the offline recogniser would find nothing in it
    fake.push_chat(R"({"facts": ["my manager maria runs the lab at acme"]})");
    fake.push_chat(R"({"memories": [{"entities": [{"name": "Maria Lopez", "type": "person"}, {"name": "Acme Labs",
      "type": "organization"}], "relations": [{"source": "Maria Lopez", "relationship": "manages", "destination": "Acme Labs"}]}]})");
    REQUIRE(c.Post("/memories", R"({"messages":"my manager maria runs the lab at acme","user_id":"ana"})",
                   "application/json")->status == 200);
    CHECK(body_of(c.Get("/v1/graph/?user_id=ana")) == expected_graph);
    // a malformed entity reply: the add fails (a provider error), nothing is stored
    fake.push_chat(R"({"facts": ["likes tea"]})");
    fake.push_chat(R"({"memory": [{"text": "likes tea", "event": "ADD"}]})");
    fake.push_chat(R"({"memories": [{"entities": [{"type": "person"}]}]})");
    const auto bad = c.Post("/memories", R"({"messages":"i like tea","user_id":"ana"})", "application/json");
    CHECK(bad->status >= 500);
    CHECK(body_of(c.Get("/memories?user_id=ana"))["results"].size() == 1);
    // another user sees none of it
    CHECK(body_of(c.Get("/v1/graph/?user_id=bruno"))["entities"].empty());
    CHECK(srv.stop() == 0);
  }
  {
    server_process srv(args, dir);
    auto c = srv.client();
    CHECK(body_of(c.Get("/v1/graph/?user_id=ana")) == expected_graph);  // kept with the memory, no call made
    const auto entity = body_of(c.Get("/v1/graph/entity/?user_id=ana&name=maria%20lopez"));
    CHECK(entity["results"].size() == 1);
    CHECK(srv.stop() == 0);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("server: ranking weights newest_first, entity and entity_hops are read and range-checked",
          "[server][time][rank]") {
  auto search = [](httplib::Client& c, const std::string& user, const std::string& query, const json& weights) {
    return c.Post("/search",
                  json{{"query", query}, {"user_id", user}, {"weights", weights}, {"explain", true}}.dump(),
                  "application/json");
  };
  auto refused = [](const httplib::Result& res, const std::string& says) {
    REQUIRE(res);
    INFO(res->body);
    CHECK(res->status == 400);
    CHECK_THAT(body_of(res)["detail"].get<std::string>(), Catch::Matchers::Contains(says));
  };
  {
    server_process srv;
    auto c = srv.client();
    // two statements about one subject, kept side by side; the older one matches the query better
    REQUIRE(c.Post("/memories", R"({"messages":"Dee's favourite colour is green","user_id":"dee","infer":false,"timestamp":"2023-03-01"})",
                   "application/json")->status == 200);
    REQUIRE(c.Post("/memories", R"({"messages":"Dee's favourite colour is now blue","user_id":"dee","infer":false,"timestamp":"2025-03-01"})",
                   "application/json")->status == 200);
    auto r = search(c, "dee", "Dee's favourite colour is green", json::object());
    REQUIRE(r->status == 200);
    CHECK(body_of(r)["results"][0]["memory"] == "Dee's favourite colour is green");
    r = search(c, "dee", "Dee's favourite colour is green", {{"newest_first", 0.3}});
    REQUIRE(r->status == 200);
    INFO(r->body);
    CHECK(body_of(r)["results"][0]["memory"] == "Dee's favourite colour is now blue");  // the latest first

    refused(search(c, "dee", "colour", {{"newest_first", 1.5}}), "newest_first");
    refused(search(c, "dee", "colour", {{"newest_first", -0.1}}), "newest_first");
    refused(search(c, "dee", "colour", {{"newest_first", "yes"}}), "weights.newest_first must be a number");
    refused(search(c, "dee", "colour", {{"entity", "high"}}), "weights.entity must be a number");
    refused(search(c, "dee", "colour", {{"entity", -1}}), "entity");
    refused(search(c, "dee", "colour", {{"entity_hops", 2}}), "weights.entity_hops must be 0 or 1");
    refused(search(c, "dee", "colour", {{"entity_hops", -1}}), "weights.entity_hops must be 0 or 1");
    refused(search(c, "dee", "colour", {{"entity_hops", 0.5}}), "weights.entity_hops must be 0 or 1");
    refused(search(c, "dee", "colour", {{"gravity", 1}}), "newest_first, entity or entity_hops");
    // an entity weight over a memory without an entity index would change nothing: refused, saying how
    refused(search(c, "dee", "colour", {{"entity", 1}}), "--entities on");
    CHECK(search(c, "dee", "colour", {{"entity", 0}, {"entity_hops", 0}})->status == 200);
  }
  server_process srv({"--entities", "on"});
  auto c = srv.client();
  REQUIRE(c.Post("/memories", R"({"messages":"Ana Silva lives in Lisbon","user_id":"eve","infer":false})", "application/json")->status == 200);
  REQUIRE(c.Post("/memories", R"({"messages":"The weather was mild all week","user_id":"eve","infer":false})", "application/json")->status == 200);
  auto r = search(c, "eve", "Ana Silva", {{"entity", 1}, {"entity_hops", 0}});
  REQUIRE(r->status == 200);
  INFO(r->body);
  const auto hits = body_of(r)["results"];
  REQUIRE(!hits.empty());
  CHECK(hits[0]["memory"] == "Ana Silva lives in Lisbon");
  CHECK(hits[0]["score_details"]["entity"].get<double>() == Approx(1.0));
  for (std::size_t i = 1; i < hits.size(); ++i) CHECK(hits[i]["score_details"]["entity"].get<double>() == 0.0);
  CHECK(body_of(c.Get("/metrics"))["entities"] == true);
}

TEST_CASE("server: enable_graph is refused without an entity index, saying how to start one", "[server][graph]") {
  server_process srv;
  auto c = srv.client();
  auto refused = [](const httplib::Result& res, const std::string& says) {
    REQUIRE(res);
    INFO(res->body);
    CHECK(res->status == 400);
    CHECK_THAT(body_of(res)["detail"].get<std::string>(), Catch::Matchers::Contains(says));
  };
  refused(c.Post("/memories", R"({"messages":"Ana Silva lives in Lisbon","user_id":"ana","enable_graph":true})",
                 "application/json"), "--entities on");
  CHECK(body_of(c.Get("/memories?user_id=ana"))["results"].empty());  // refused before anything is stored
  refused(c.Post("/search", R"({"query":"Ana","user_id":"ana","enable_graph":true})", "application/json"), "--entities on");
  refused(c.Post("/v2/memories/search/", R"({"query":"Ana","filters":{"user_id":"ana"},"enable_graph":true})",
                 "application/json"), "--entities on");
  refused(c.Get("/memories?user_id=ana&enable_graph=true"), "--entities on");
  refused(c.Post("/v2/memories/", R"({"filters":{"user_id":"ana"},"enable_graph":true})", "application/json"), "--entities on");
  refused(c.Get("/v1/graph/?user_id=ana"), "--entities on");
  refused(c.Get("/v1/graph/entity/?user_id=ana&name=Ana"), "--entities on");
  refused(c.Post("/search", R"({"query":"Ana","user_id":"ana","enable_graph":"yes"})", "application/json"),
          "'enable_graph' must be true or false");
  // false (or absent) asks for nothing
  CHECK(c.Post("/search", R"({"query":"Ana","user_id":"ana","enable_graph":false})", "application/json")->status == 200);
}

TEST_CASE("server: enable_graph adds Mem0's relations to searches and listings", "[server][graph]") {
  server_process srv({"--entities", "on"});
  auto c = srv.client();
  for (const char* text : {"Ana Silva lives in Lisbon", "Ana Silva works at Acme Corp", "The weather was mild all week"})
    REQUIRE(c.Post("/memories", json{{"messages", text}, {"user_id", "ana"}, {"infer", false}, {"enable_graph", true}}.dump(),
                   "application/json")->status == 200);
  REQUIRE(c.Post("/memories", R"({"messages":"Bruno Costa lives in Porto","user_id":"bruno","infer":false})",
                 "application/json")->status == 200);

  // search: the relations of the entities the query names (a one-word name of a person too), with their other end
  for (const char* route : {"/search", "/v2/memories/search/", "/v3/memories/search/"}) {
    INFO(route);
    auto r = c.Post(route, R"({"query":"Where does Ana live?","filters":{"user_id":"ana"},"enable_graph":true})",
                    "application/json");
    REQUIRE(r->status == 200);
    const auto out = body_of(r);
    INFO(out.dump());
    CHECK(!out["results"].empty());
    REQUIRE(out["relations"].size() == 2);
    CHECK(out["relations"][0] == json{{"source", "Ana Silva"}, {"relationship", "lives in"}, {"destination", "Lisbon"}});
    CHECK(out["relations"][1] == json{{"source", "Ana Silva"}, {"relationship", "works at"}, {"destination", "Acme Corp"}});
  }
  auto r = c.Post("/search", R"({"query":"Lisbon","user_id":"ana","enable_graph":true})", "application/json");
  CHECK(body_of(r)["relations"] ==
        json::array({{{"source", "Ana Silva"}, {"relationship", "lives in"}, {"destination", "Lisbon"}}}));
  r = c.Post("/search", R"({"query":"the weather","user_id":"ana","enable_graph":true})", "application/json");
  CHECK(body_of(r)["relations"] == json::array());
  // another user's entities are never in the answer, even when the query names them
  r = c.Post("/search", R"({"query":"Bruno Costa in Porto","user_id":"ana","enable_graph":true})", "application/json");
  CHECK(body_of(r)["relations"] == json::array());
  // without enable_graph the answer is as before
  CHECK_FALSE(body_of(c.Post("/search", R"({"query":"Ana","user_id":"ana"})", "application/json")).contains("relations"));

  // listings: the scope's relations, as {source, relationship, target}
  const json ana_relations = json::array({{{"source", "Ana Silva"}, {"relationship", "lives in"}, {"target", "Lisbon"}},
                                          {{"source", "Ana Silva"}, {"relationship", "works at"}, {"target", "Acme Corp"}}});
  auto listed = body_of(c.Get("/memories?user_id=ana&enable_graph=true"));
  CHECK(listed["results"].size() == 3);
  CHECK(listed["relations"] == ana_relations);
  listed = body_of(c.Post("/v2/memories/", R"({"filters":{"user_id":"ana"},"enable_graph":true,"page_size":1})", "application/json"));
  CHECK(listed["results"].size() == 1);
  CHECK(listed["count"] == 3);
  CHECK(listed["relations"] == ana_relations);
  listed = body_of(c.Get("/memories?user_id=bruno&enable_graph=1"));
  CHECK(listed["relations"] ==
        json::array({{{"source", "Bruno Costa"}, {"relationship", "lives in"}, {"target", "Porto"}}}));
  // the graph of a scope needs the scope
  CHECK(c.Get("/memories?user_id=*&enable_graph=true")->status == 400);
}

TEST_CASE("server: /v1/graph/ and /v1/graph/entity/ answer a scope's entities, confined to the key's user",
          "[server][graph]") {
  char dir[] = "/tmp/engram-graph-keys-XXXXXX";
  REQUIRE(mkdtemp(dir));
  const std::string keyfile = std::string(dir) + "/keys";
  std::ofstream(keyfile) << "admin-key-0123456789 admin\nana-key-012345678901 user ana\nbruno-key-0123456789 user bruno\n";
  server_process srv({"--keys", keyfile, "--entities", "on"});
  auto admin = srv.client("admin-key-0123456789");
  auto ana = srv.client("ana-key-012345678901");
  auto bruno = srv.client("bruno-key-0123456789");
  for (const char* text : {"Ana Silva lives in Lisbon", "Ana Silva works at Acme Corp", "Ana met Carla Reis in Lisbon"})
    REQUIRE(ana.Post("/memories", json{{"messages", text}, {"infer", false}}.dump(), "application/json")->status == 200);
  REQUIRE(bruno.Post("/memories", R"({"messages":"Bruno Costa works at Acme Corp","infer":false})", "application/json")->status == 200);

  auto r = ana.Get("/v1/graph/");  // a bound key's scope is its user
  REQUIRE(r->status == 200);
  auto g = body_of(r);
  INFO(g.dump());
  REQUIRE(g["entities"].is_array());
  REQUIRE(g["relations"].is_array());
  std::map<std::string, json> by_name;
  for (const auto& e : g["entities"]) by_name[e["name"].get<std::string>()] = e;
  REQUIRE(by_name.count("Ana Silva"));
  CHECK(by_name["Ana Silva"]["type"] == "person");
  CHECK(by_name["Ana Silva"]["memories"] == 3);  // "Ana" is her one-word alias
  CHECK(by_name["Ana Silva"]["aliases"] == json::array({"Ana"}));
  // the merge is recorded with the memory that caused it: the one naming "Ana" alone, after "Ana Silva"
  REQUIRE(by_name["Ana Silva"]["merges"].size() == 1);
  CHECK(by_name["Ana Silva"]["merges"][0]["name"] == "Ana");
  CHECK(by_name["Ana Silva"]["merges"][0]["by"] == "word");
  const std::string merged_by = by_name["Ana Silva"]["merges"][0]["memory_id"];
  CHECK(body_of(ana.Get("/memories/" + merged_by))["memory"] == "Ana met Carla Reis in Lisbon");
  CHECK(by_name["Lisbon"]["memories"] == 2);
  CHECK(by_name.count("Acme Corp"));
  CHECK_FALSE(by_name.count("Bruno Costa"));
  for (const auto& rel : g["relations"]) {
    CHECK(rel.contains("source"));
    CHECK(rel.contains("relationship"));
    CHECK(rel.contains("target"));
    CHECK(rel["memories"].get<int>() >= 1);
  }
  CHECK(std::find(g["relations"].begin(), g["relations"].end(),
                  json{{"source", "Ana Silva"}, {"relationship", "lives in"}, {"target", "Lisbon"}, {"memories", 1}}) !=
        g["relations"].end());

  // isolation: bruno's key cannot name ana, and his graph holds only his entities
  CHECK(bruno.Get("/v1/graph/?user_id=ana")->status == 403);
  g = body_of(bruno.Get("/v1/graph/"));
  for (const auto& e : g["entities"]) CHECK(e["name"] != "Ana Silva");
  CHECK(bruno.Get("/v1/graph/entity/?name=Ana%20Silva")->status == 404);
  CHECK(bruno.Delete("/v1/graph/entity/?user_id=ana&name=Lisbon")->status == 403);
  // an admin names the scope, which is required
  CHECK(admin.Get("/v1/graph/")->status == 400);
  CHECK(body_of(admin.Get("/v1/graph/?user_id=bruno"))["entities"].size() == 2);

  // one entity: found by name or alias, case ignored, with its relations and the memories naming it
  r = ana.Get("/v1/graph/entity/?name=ana");
  REQUIRE(r->status == 200);
  auto e = body_of(r);
  INFO(e.dump());
  CHECK(e["name"] == "Ana Silva");
  CHECK(e["memories"] == 3);
  CHECK(e["results"].size() == 3);
  for (const auto& m : e["results"]) {
    CHECK(m["id"].is_string());
    CHECK(m["memory"].get<std::string>().find("Ana") != std::string::npos);
  }
  CHECK(e["relations"].size() >= 2);
  CHECK(ana.Get("/v1/graph/entity/?name=Zed%20Nobody")->status == 404);
  CHECK(ana.Get("/v1/graph/entity/")->status == 400);  // a name is required

  // deleting an entity deletes every memory naming it, and with them its relations
  e = body_of(ana.Get("/v1/graph/entity/?name=Lisbon"));
  CHECK(e["results"].size() == 2);
  r = ana.Delete("/v1/graph/entity/?name=LISBON");
  REQUIRE(r->status == 200);
  CHECK(body_of(r)["deleted"] == 2);
  CHECK(ana.Get("/v1/graph/entity/?name=Lisbon")->status == 404);
  const auto left = body_of(ana.Get("/memories"))["results"];
  REQUIRE(left.size() == 1);
  CHECK(left[0]["memory"] == "Ana Silva works at Acme Corp");
  g = body_of(ana.Get("/v1/graph/"));
  for (const auto& rel : g["relations"]) {
    CHECK(rel["source"] != "Lisbon");
    CHECK(rel["target"] != "Lisbon");
  }
  // bruno's memory naming Acme Corp is untouched by ana's purge of Acme Corp
  CHECK(body_of(ana.Delete("/v1/graph/entity/?name=Acme%20Corp"))["deleted"] == 1);
  CHECK(body_of(bruno.Get("/memories"))["results"].size() == 1);
  CHECK(body_of(ana.Get("/v1/graph/"))["entities"].empty());
  std::filesystem::remove_all(dir);
}
