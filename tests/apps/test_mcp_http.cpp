// MCP over Streamable HTTP: engram-server's POST /mcp, with an API key bound to one user.
#include "support/test_process.hpp"

#include <catch2/catch.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

using nlohmann::json;

namespace {

/// engram-server on a free loopback port, stopped with SIGTERM.
class server_process {
 public:
  explicit server_process(const std::vector<std::string>& args) : child_(argv_of(args), SIGTERM) {
    const auto line = child_.read_line();  // "engram-server listening on http://127.0.0.1:PORT (...)"
    port_ = std::stoi(line.substr(line.rfind(':', line.find(" (")) + 1));
  }
  httplib::Client client(const std::string& key) const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(10, 0);
    if (!key.empty()) c.set_default_headers({{"Authorization", "Bearer " + key}});
    return c;
  }

 private:
  static std::vector<std::string> argv_of(const std::vector<std::string>& args) {
    std::vector<std::string> all = {ENGRAM_SERVER_BIN, "--host", "127.0.0.1", "--port", "0"};
    all.insert(all.end(), args.begin(), args.end());
    return all;
  }
  engram_test::child_process child_;
  int port_ = 0;
};

const std::string admin_key = "admin-key-0123456789";
const std::string alice_key = "alice-key-0123456789";

json rpc(httplib::Client& c, const json& msg, int status = 200) {
  auto r = c.Post("/mcp", msg.dump(), "application/json");
  REQUIRE(r);
  INFO(r->body);
  REQUIRE(r->status == status);
  if (status != 200) return nullptr;
  CHECK(r->get_header_value("Content-Type") == "application/json");
  return json::parse(r->body);
}

json call(httplib::Client& c, const std::string& tool, json args) {
  static int id = 0;
  auto reply = rpc(c, {{"jsonrpc", "2.0"}, {"id", ++id}, {"method", "tools/call"},
                       {"params", {{"name", tool}, {"arguments", std::move(args)}}}});
  REQUIRE(reply.contains("result"));
  return reply["result"];
}

}  // namespace

TEST_CASE("mcp_http: POST /mcp speaks MCP, and a key bound to a user binds every tool call", "[mcp]") {
  char dir[] = "/tmp/engram-mcp-keys-XXXXXX";
  REQUIRE(mkdtemp(dir));
  const std::string keyfile = std::string(dir) + "/keys";
  std::ofstream(keyfile) << admin_key << " admin\n" << alice_key << " user alice\n";
  server_process srv({"--keys", keyfile});
  auto admin = srv.client(admin_key);
  auto alice = srv.client(alice_key);

  // Lifecycle over HTTP.
  auto init = rpc(alice, {{"jsonrpc", "2.0"}, {"id", 1}, {"method", "initialize"},
                          {"params", {{"protocolVersion", "2025-03-26"}, {"capabilities", json::object()},
                                      {"clientInfo", {{"name", "t"}, {"version", "0"}}}}}});
  CHECK(init["result"]["protocolVersion"] == "2025-03-26");
  CHECK(init["result"]["capabilities"]["tools"].is_object());
  rpc(alice, {{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}}, 202);
  CHECK(rpc(alice, {{"jsonrpc", "2.0"}, {"id", 2}, {"method", "ping"}})["result"] == json::object());

  // Bob's memory, written by an admin over REST.
  auto r = admin.Post("/memories", R"({"messages":"bob's bank pin is 9999","user_id":"bob"})", "application/json");
  REQUIRE(r->status == 200);
  const std::string bob_id = json::parse(r->body)["results"][0]["id"];

  // Alice's key asks for bob's memories every way it can: it only ever sees its own.
  auto added = call(alice, "add_memory", {{"text", "alice's pin is 1111"}, {"user_id", "bob"}});
  REQUIRE(added["isError"] == false);
  const std::string alice_id = added["structuredContent"]["results"][0]["id"];
  auto found = call(alice, "search_memories", {{"query", "bank pin"}, {"user_id", "bob"}});
  REQUIRE(found["isError"] == false);
  REQUIRE(found["structuredContent"]["results"].size() == 1);
  CHECK(found["structuredContent"]["results"][0]["id"] == alice_id);
  CHECK(call(alice, "list_memories", {{"filters", {{"user_id", "bob"}}}})["structuredContent"]["results"].size() == 1);
  for (const char* tool : {"get_memory", "memory_history", "delete_memory"}) {
    auto res = call(alice, tool, {{"memory_id", bob_id}});
    CHECK(res["isError"] == true);
  }
  CHECK(call(alice, "update_memory", {{"memory_id", bob_id}, {"text", "hacked"}})["isError"] == true);
  // Bob's memory is untouched; an admin key is unbound and can read it.
  auto bob = call(admin, "get_memory", {{"memory_id", bob_id}});
  CHECK(bob["structuredContent"]["memory"] == "bob's bank pin is 9999");
  const auto listed = rpc(alice, {{"jsonrpc", "2.0"}, {"id", 3}, {"method", "tools/list"}});
  for (const auto& t : listed["result"]["tools"])
    CHECK_FALSE(t["inputSchema"]["properties"].contains("user_id"));

  // Protocol errors are JSON-RPC errors; auth errors stay HTTP errors.
  auto bad = alice.Post("/mcp", "{oops", "application/json");
  REQUIRE(bad);
  CHECK(bad->status == 200);
  CHECK(json::parse(bad->body)["error"]["code"] == -32700);
  auto anon = srv.client("");
  CHECK(anon.Post("/mcp", R"({"jsonrpc":"2.0","id":1,"method":"ping"})", "application/json")->status == 401);
  CHECK(alice.Get("/mcp")->status == 405);
  std::remove(keyfile.c_str());
  rmdir(dir);
}
