// Drives a real engram-mcp process over its stdin/stdout pipes: lifecycle, tool schemas, every tool, protocol
// errors, argument errors, and a bound scope that overrides the user_id the model passes.
#include "support/test_process.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

using nlohmann::json;

namespace {

/// engram-mcp on two pipes.
class mcp_process {
 public:
  explicit mcp_process(std::vector<std::string> args = {}) : dir_(fresh_dir()), child_(argv_of(dir_, std::move(args))) {}
  ~mcp_process() {
    (void)child_.finish();
    std::filesystem::remove_all(dir_);
  }
  /// Closes stdin and returns the exit status (-1 if killed by a signal).
  int finish() { return child_.finish(); }
  void send_raw(const std::string& text) { child_.write_all(text); }
  json read_message() {
    const auto line = child_.read_line();
    INFO(line);
    return json::parse(line);
  }
  json request(const std::string& method, json params = json::object()) {
    const int id = ++next_id_;
    send_raw(json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}}.dump() + "\n");
    auto reply = read_message();
    REQUIRE(reply["jsonrpc"] == "2.0");
    REQUIRE(reply["id"] == id);
    return reply;
  }
  json call(const std::string& tool, json args) {
    auto reply = request("tools/call", {{"name", tool}, {"arguments", std::move(args)}});
    INFO(reply.dump());
    REQUIRE(reply.contains("result"));
    return reply["result"];
  }
  void initialize() {
    auto r = request("initialize", {{"protocolVersion", "2025-06-18"},
                                    {"capabilities", json::object()},
                                    {"clientInfo", {{"name", "test"}, {"version", "1"}}}});
    REQUIRE(r["result"]["protocolVersion"] == "2025-06-18");
    send_raw(R"({"jsonrpc":"2.0","method":"notifications/initialized"})" "\n");
  }

 private:
  /// A new empty data directory, so that no test sees another's memories once the store is durable.
  static std::string fresh_dir() {
    char dir[] = "/tmp/engram-mcp-test-XXXXXX";
    REQUIRE(mkdtemp(dir) != nullptr);
    return dir;
  }
  static std::vector<std::string> argv_of(const std::string& dir, std::vector<std::string> args) {
    std::vector<std::string> all = {ENGRAM_MCP_BIN, "--data", dir};
    all.insert(all.end(), args.begin(), args.end());
    return all;
  }
  std::string dir_;
  engram_test::child_process child_;
  int next_id_ = 0;
};

/// The one text content block of a tool result.
std::string text_of(const json& result) {
  REQUIRE(result["content"].is_array());
  REQUIRE(result["content"].size() == 1);
  REQUIRE(result["content"][0]["type"] == "text");
  return result["content"][0]["text"].get<std::string>();
}

void require_tool_error(const json& result, const std::string& needle) {
  INFO(result.dump());
  REQUIRE(result["isError"] == true);
  REQUIRE_THAT(text_of(result), Catch::Contains(needle));
  REQUIRE_FALSE(result.contains("structuredContent"));
}

void require_ok(const json& result) {
  INFO(result.dump());
  REQUIRE(result["isError"] == false);
  REQUIRE(result["structuredContent"].is_object());
  REQUIRE_FALSE(text_of(result).empty());
}

}  // namespace

TEST_CASE("mcp: initialize negotiates the protocol version and advertises tools", "[mcp]") {
  mcp_process p;
  for (const std::string v : {"2025-06-18", "2025-03-26", "2024-11-05"}) {
    auto r = p.request("initialize", {{"protocolVersion", v}, {"capabilities", json::object()},
                                      {"clientInfo", {{"name", "t"}, {"version", "0"}}}});
    CHECK(r["result"]["protocolVersion"] == v);
    CHECK(r["result"]["capabilities"]["tools"].is_object());
    CHECK(r["result"]["serverInfo"]["name"] == "engram");
    CHECK(r["result"]["serverInfo"]["version"].is_string());
  }
  // An unknown (say newer) version gets our newest.
  auto r = p.request("initialize", {{"protocolVersion", "2099-01-01"}, {"capabilities", json::object()}});
  CHECK(r["result"]["protocolVersion"] == "2025-06-18");
  // No version at all is invalid params.
  r = p.request("initialize", {{"capabilities", json::object()}});
  CHECK(r["error"]["code"] == -32602);

  // A notification gets no reply: the next line is the ping's answer.
  p.send_raw(R"({"jsonrpc":"2.0","method":"notifications/initialized"})" "\n");
  p.send_raw(R"({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}})" "\n");
  p.send_raw("\n");  // blank lines are skipped
  r = p.request("ping");
  CHECK(r["result"] == json::object());
  CHECK(p.finish() == 0);
}

TEST_CASE("mcp: tools/list gives every tool a JSON Schema for its input", "[mcp]") {
  mcp_process p;
  p.initialize();
  auto r = p.request("tools/list");
  const auto& tools = r["result"]["tools"];
  REQUIRE(tools.is_array());
  std::set<std::string> names;
  for (const auto& t : tools) {
    INFO(t.dump());
    names.insert(t["name"].get<std::string>());
    REQUIRE(t["description"].is_string());
    const auto& s = t["inputSchema"];
    REQUIRE(s["type"] == "object");
    REQUIRE(s["properties"].is_object());
    REQUIRE(s["required"].is_array());
    for (const auto& req : s["required"]) CHECK(s["properties"].contains(req.get<std::string>()));
    for (const auto& [key, prop] : s["properties"].items()) {
      INFO(key);
      REQUIRE(prop["type"].is_string());
      CHECK(std::set<std::string>{"string", "integer", "number", "boolean", "object", "array"}.count(prop["type"]) == 1);
      if (prop["type"] == "array") CHECK(prop["items"].is_object());
    }
  }
  CHECK(names == std::set<std::string>{"add_memory", "search_memories", "list_memories", "get_memory",
                                       "update_memory", "delete_memory", "memory_history", "delete_all_memories",
                                       "list_entities", "delete_entities", "entity_graph"});
  CHECK(tools[1]["inputSchema"]["properties"].contains("user_id"));
}

TEST_CASE("mcp: every tool works end to end", "[mcp]") {
  mcp_process p;
  p.initialize();

  auto added = p.call("add_memory", {{"text", "Alice is allergic to peanuts"}, {"user_id", "alice"},
                                     {"metadata", {{"category", "health"}}}});
  require_ok(added);
  REQUIRE(added["structuredContent"]["results"].size() == 1);
  CHECK(added["structuredContent"]["results"][0]["event"] == "ADD");
  const std::string id = added["structuredContent"]["results"][0]["id"];
  CHECK_THAT(text_of(added), Catch::Contains(id));

  auto second = p.call("add_memory", {{"messages", {{{"role", "user"}, {"content", "I live in Lisbon"}}}},
                                      {"user_id", "alice"}, {"metadata", {{"category", "home"}}}});
  require_ok(second);
  const std::string id2 = second["structuredContent"]["results"][0]["id"];
  require_ok(p.call("add_memory", {{"text", "Bob likes chess"}, {"user_id", "bob"}, {"infer", false}}));
  // Newlines in a memory never break the one-message-per-line framing.
  auto multiline = p.call("add_memory", {{"text", "line one\nline two\r\n"}, {"user_id", "carol"}});
  require_ok(multiline);
  CHECK(p.call("get_memory", {{"memory_id", multiline["structuredContent"]["results"][0]["id"]}})["structuredContent"]["memory"] ==
        "line one\nline two\r\n");
  require_ok(p.call("delete_memory", {{"memory_id", multiline["structuredContent"]["results"][0]["id"]}}));

  auto found = p.call("search_memories", {{"query", "peanut allergy"}, {"user_id", "alice"}, {"limit", 5}});
  require_ok(found);
  const auto& hits = found["structuredContent"]["results"];
  REQUIRE(hits.size() == 2);  // only alice's two memories
  CHECK(hits[0]["id"] == id);
  CHECK(hits[0]["score"].get<double>() >= hits[1]["score"].get<double>());
  CHECK_THAT(text_of(found), Catch::Contains("peanuts") && Catch::Contains("score"));

  auto filtered = p.call("search_memories", {{"query", "where"}, {"user_id", "alice"},
                                             {"filters", {{"category", "home"}}}, {"threshold", -1.0}});
  require_ok(filtered);
  REQUIRE(filtered["structuredContent"]["results"].size() == 1);
  CHECK(filtered["structuredContent"]["results"][0]["id"] == id2);

  auto listed = p.call("list_memories", {{"user_id", "alice"}});
  require_ok(listed);
  CHECK(listed["structuredContent"]["results"].size() == 2);
  auto limited = p.call("list_memories", {{"user_id", "alice"}, {"limit", 1}});
  REQUIRE(limited["structuredContent"]["results"].size() == 1);
  // newest first, the limit applied after ordering
  CHECK(limited["structuredContent"]["results"][0]["id"] == listed["structuredContent"]["results"][0]["id"]);
  CHECK(listed["structuredContent"]["results"][0]["created_at"] >= listed["structuredContent"]["results"][1]["created_at"]);
  CHECK(p.call("list_memories", {{"user_id", "alice"}, {"limit", 0}})["isError"] == true);

  auto got = p.call("get_memory", {{"memory_id", id}});
  require_ok(got);
  CHECK(got["structuredContent"]["memory"] == "Alice is allergic to peanuts");
  CHECK(got["structuredContent"]["user_id"] == "alice");
  CHECK(got["structuredContent"]["metadata"]["category"] == "health");

  auto updated = p.call("update_memory", {{"memory_id", id}, {"text", "Alice is allergic to peanuts and cashews"}});
  require_ok(updated);
  CHECK(p.call("get_memory", {{"memory_id", id}})["structuredContent"]["memory"] ==
        "Alice is allergic to peanuts and cashews");

  auto history = p.call("memory_history", {{"memory_id", id}});
  require_ok(history);
  const auto& events = history["structuredContent"]["results"];
  REQUIRE(events.size() == 2);
  CHECK(events[0]["event"] == "ADD");
  CHECK(events[1]["event"] == "UPDATE");
  CHECK(events[1]["new_memory"] == "Alice is allergic to peanuts and cashews");

  require_ok(p.call("delete_memory", {{"memory_id", id}}));
  require_tool_error(p.call("get_memory", {{"memory_id", id}}), "not found");
  require_tool_error(p.call("delete_memory", {{"memory_id", id}}), "not found");
  CHECK(p.call("list_memories", {{"user_id", "alice"}})["structuredContent"]["results"].size() == 1);
  // Unbound, the local user may list every scope.
  CHECK(p.call("list_memories", json::object())["structuredContent"]["results"].size() == 2);
  CHECK(p.finish() == 0);
}

TEST_CASE("mcp: protocol errors are JSON-RPC errors and the server keeps going", "[mcp]") {
  mcp_process p;
  p.initialize();
  auto expect_error = [&](const std::string& line, int code, const json& id) {
    p.send_raw(line + "\n");
    auto r = p.read_message();
    INFO(line << " -> " << r.dump());
    CHECK(r["jsonrpc"] == "2.0");
    CHECK(r["id"] == id);
    CHECK(r["error"]["code"] == code);
    CHECK(r["error"]["message"].is_string());
  };
  expect_error(R"({"jsonrpc":"2.0","id":1,"method":"tools/list")", -32700, nullptr);
  expect_error("not json at all", -32700, nullptr);
  expect_error(std::string(100, '[') + std::string(100, ']'), -32700, nullptr);
  expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\xffng\"}", -32700, nullptr);  // invalid UTF-8
  expect_error(R"({"jsonrpc":"2.0","id":1,"method":"ping","params":{"n":1e400}})", -32700, nullptr);  // overflow
  expect_error("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"x\":\"\xc0\xae\"}}", -32700, nullptr);  // overlong
  expect_error(std::string(20000, '[') + std::string(20000, ']'), -32700, nullptr);
  expect_error("42", -32600, nullptr);
  expect_error("[]", -32600, nullptr);
  expect_error(R"({"jsonrpc":"1.0","id":2,"method":"ping"})", -32600, 2);
  expect_error(R"({"jsonrpc":"2.0","id":3})", -32600, 3);
  expect_error(R"({"jsonrpc":"2.0","id":4,"method":7})", -32600, 4);
  expect_error(R"({"jsonrpc":"2.0","id":{"x":1},"method":"ping"})", -32600, nullptr);
  expect_error(R"({"jsonrpc":"2.0","id":"s5","method":"resources/list"})", -32601, "s5");
  expect_error(R"({"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"drop_tables","arguments":{}}})", -32602, 6);
  expect_error(R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"arguments":{}}})", -32602, 7);
  expect_error(R"({"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"get_memory","arguments":[1]}})", -32602, 8);
  expect_error(R"({"jsonrpc":"2.0","id":9,"method":"tools/list","params":[1,2]})", -32602, 9);
  // A notification with an unknown method, and a client response, get no reply.
  p.send_raw(R"({"jsonrpc":"2.0","method":"no/such/notification"})" "\n");
  p.send_raw(R"({"jsonrpc":"2.0","id":99,"result":{}})" "\n");
  // A batch is answered with a batch (notifications in it get no entry).
  p.send_raw(R"([{"jsonrpc":"2.0","id":10,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":11,"method":"nope"}])" "\n");
  auto batch = p.read_message();
  REQUIRE(batch.is_array());
  REQUIRE(batch.size() == 2);
  CHECK(batch[0]["id"] == 10);
  CHECK(batch[1]["error"]["code"] == -32601);
  CHECK(p.request("ping")["result"] == json::object());
  CHECK(p.finish() == 0);
}

TEST_CASE("mcp: bad tool arguments are tool results with isError, and store nothing", "[mcp]") {
  mcp_process p;
  p.initialize();
  require_tool_error(p.call("add_memory", {{"text", 5}, {"user_id", "u"}}), "'text' must be of type string");
  require_tool_error(p.call("add_memory", {{"text", "x"}, {"user_id", 12}}), "'user_id' must be of type string");
  require_tool_error(p.call("add_memory", {{"text", "x"}, {"user_id", "u"}, {"includes", 3}}),
                     "'includes' must be of type array");
  require_tool_error(p.call("add_memory", {{"text", "x"}, {"user_id", "u"}, {"timestamp", "last week"}}), "'timestamp'");
  require_tool_error(p.call("add_memory", {{"text", "x"}, {"user_id", "u"}, {"metadata", "tag"}}), "'metadata'");
  require_tool_error(p.call("add_memory", {{"text", "x"}, {"user_id", "u"}, {"infer", "yes"}}), "'infer'");
  require_tool_error(p.call("add_memory", {{"messages", "hi"}, {"user_id", "u"}}), "'messages'");
  require_tool_error(p.call("add_memory", {{"messages", {{{"role", "user"}}}}, {"user_id", "u"}}), "messages[0]");
  require_tool_error(p.call("add_memory", {{"user_id", "u"}}), "'text'");
  require_tool_error(p.call("add_memory", {{"text", ""}, {"user_id", "u"}}), "invalid input");
  require_tool_error(p.call("add_memory", {{"text", " \n "}, {"user_id", "u"}}), "no text");
  require_tool_error(p.call("add_memory", {{"messages", {{{"role", "user"}, {"content", "  "}}}}, {"user_id", "u"}}), "no text");
  require_tool_error(p.call("add_memory", {{"text", "no scope"}}), "invalid input");
  require_tool_error(p.call("add_memory", {{"text", "x"}, {"user_id", "u"}, {"colour", "red"}}), "unknown argument 'colour'");
  require_tool_error(p.call("search_memories", {{"user_id", "u"}}), "'query' is required");
  require_tool_error(p.call("search_memories", {{"query", "q"}, {"user_id", "u"}, {"limit", "ten"}}), "'limit'");
  require_tool_error(p.call("search_memories", {{"query", "q"}, {"user_id", "u"}, {"limit", 0}}), "at least 1");
  require_tool_error(p.call("search_memories", {{"query", "q"}, {"user_id", "u"}, {"limit", 2.5}}), "'limit'");
  require_tool_error(p.call("search_memories", {{"query", "q"}, {"user_id", "u"}, {"threshold", "high"}}), "'threshold'");
  require_tool_error(p.call("search_memories", {{"query", "q"}, {"user_id", "u"}, {"filters", {{"x", {{"$bogus", 1}}}}}}),
                     "invalid input");
  require_tool_error(p.call("get_memory", {{"memory_id", 17}}), "'memory_id'");
  require_tool_error(p.call("get_memory", json::object()), "'memory_id' is required");
  require_tool_error(p.call("get_memory", {{"memory_id", "no-such-id"}}), "not found");
  require_tool_error(p.call("update_memory", {{"memory_id", "no-such-id"}, {"text", "t"}}), "not found");
  require_tool_error(p.call("update_memory", {{"memory_id", "x"}}), "'text' is required");
  require_tool_error(p.call("memory_history", {{"memory_id", false}}), "'memory_id'");
  // Nothing above was stored.
  CHECK(p.call("list_memories", json::object())["structuredContent"]["results"].empty());
  CHECK(p.finish() == 0);
}

TEST_CASE("mcp: --user-id binds every call to that user, whatever the arguments say", "[mcp]") {
  mcp_process p({"--user-id", "alice"});
  p.initialize();
  // The bound server does not offer user_id.
  const auto listed_tools = p.request("tools/list");
  for (const auto& t : listed_tools["result"]["tools"])
    CHECK_FALSE(t["inputSchema"]["properties"].contains("user_id"));

  // A user_id in the arguments is overridden: the memory is alice's.
  auto added = p.call("add_memory", {{"text", "the vault code is 1234"}, {"user_id", "mallory"}});
  require_ok(added);
  const std::string id = added["structuredContent"]["results"][0]["id"];
  CHECK(p.call("get_memory", {{"memory_id", id}})["structuredContent"]["user_id"] == "alice");
  require_ok(p.call("add_memory", {{"text", "agent note"}, {"agent_id", "helper"}}));

  // Reading "bob"'s memories (argument or filter) reads alice's own, never anything else.
  for (const json& args : {json{{"query", "vault"}, {"user_id", "bob"}},
                           json{{"query", "vault"}, {"filters", {{"user_id", "bob"}}}},
                           json{{"query", "vault"}, {"filters", {{"AND", {{{"user_id", "bob"}}}}}}}}) {
    auto r = p.call("search_memories", args);
    INFO(args.dump() << " -> " << r.dump());
    require_ok(r);
    for (const auto& hit : r["structuredContent"]["results"]) CHECK(hit["user_id"] == "alice");
    CHECK(r["structuredContent"]["results"].size() == 2);
  }
  // A filter that names another user deeper down can only narrow alice's scope, here to nothing.
  auto narrowed = p.call("list_memories", {{"filters", {{"OR", {{{"user_id", "bob"}}}}}}});
  require_ok(narrowed);
  CHECK(narrowed["structuredContent"]["results"].empty());
  auto listed = p.call("list_memories", {{"user_id", "bob"}});
  require_ok(listed);
  CHECK(listed["structuredContent"]["results"].size() == 2);
  // Without any scope argument, a bound server lists alice's memories only (not every scope).
  CHECK(p.call("list_memories", json::object())["structuredContent"]["results"].size() == 2);
  CHECK(p.call("list_memories", {{"agent_id", "helper"}})["structuredContent"]["results"].size() == 1);
  CHECK(p.finish() == 0);
}

TEST_CASE("mcp: delete_all_memories, list_entities and delete_entities, unbound and bound", "[mcp]") {
  {
    mcp_process p;
    p.initialize();
    for (const auto& [text, user, agent] : {std::tuple{"a1", "ann", ""}, {"a2", "ann", "helper"}, {"b1", "ben", "helper"},
                                            {"c1", "cy", ""}}) {
      json args = {{"text", text}, {"user_id", user}, {"infer", false}};
      if (*agent) args["agent_id"] = agent;
      require_ok(p.call("add_memory", args));
    }
    auto entities = p.call("list_entities", json::object());
    require_ok(entities);
    std::map<std::string, std::size_t> counts;
    for (const auto& e : entities["structuredContent"]["results"])
      counts[e["type"].get<std::string>() + ":" + e["id"].get<std::string>()] = e["total_memories"];
    CHECK(counts == std::map<std::string, std::size_t>{{"user:ann", 2}, {"user:ben", 1}, {"user:cy", 1}, {"agent:helper", 2}});
    CHECK_THAT(text_of(entities), Catch::Contains("user ann (2 memories)"));

    require_tool_error(p.call("delete_entities", json::object()), "exactly one");
    require_tool_error(p.call("delete_entities", {{"user_id", "ann"}, {"agent_id", "helper"}}), "exactly one");
    auto gone = p.call("delete_entities", {{"agent_id", "helper"}});  // ann's and ben's helper memories
    require_ok(gone);
    CHECK(gone["structuredContent"]["deleted"] == 2);
    CHECK(p.call("list_memories", {{"user_id", "ann"}})["structuredContent"]["results"].size() == 1);
    CHECK(p.call("list_memories", {{"user_id", "ben"}})["structuredContent"]["results"].empty());

    auto all = p.call("delete_all_memories", {{"user_id", "ann"}});
    require_ok(all);
    CHECK(all["structuredContent"]["deleted"] == 1);
    CHECK(p.call("list_memories", json::object())["structuredContent"]["results"].size() == 1);  // cy's
    CHECK(p.finish() == 0);
  }
  {
    mcp_process p({"--user-id", "ann"});
    p.initialize();
    require_ok(p.call("add_memory", {{"text", "mine"}, {"infer", false}}));
    require_ok(p.call("add_memory", {{"text", "my helper's"}, {"agent_id", "helper"}, {"infer", false}}));
    // A bound server never deletes for another user, even when the model names one.
    require_tool_error(p.call("delete_all_memories", {{"user_id", "ben"}}), "bound to user 'ann'");
    require_tool_error(p.call("delete_entities", {{"user_id", "ben"}}), "bound to user 'ann'");
    CHECK(p.call("list_memories", json::object())["structuredContent"]["results"].size() == 2);
    auto entities = p.call("list_entities", json::object());
    for (const auto& e : entities["structuredContent"]["results"]) CHECK((e["id"] == "ann" || e["id"] == "helper"));
    auto gone = p.call("delete_entities", {{"agent_id", "helper"}});
    require_ok(gone);
    CHECK(gone["structuredContent"]["deleted"] == 1);
    CHECK(p.call("list_memories", json::object())["structuredContent"]["results"].size() == 1);
    CHECK(p.finish() == 0);
  }
}

TEST_CASE("mcp: search modes, explain and expiration dates through the tools", "[mcp][rank]") {
  mcp_process p;
  p.initialize();
  require_ok(p.call("add_memory", {{"text", "The wifi password is zebra42"}, {"user_id", "carol"}}));
  require_ok(p.call("add_memory", {{"text", "Carol likes long walks"}, {"user_id", "carol"}}));
  auto old = p.call("add_memory", {{"text", "Carol's old flat was on Rua Augusta"}, {"user_id", "carol"},
                                   {"expiration_date", "2000-01-01"}});
  require_ok(old);
  const std::string old_id = old["structuredContent"]["results"][0]["id"];

  auto kw = p.call("search_memories", {{"query", "zebra42"}, {"user_id", "carol"}, {"mode", "keyword"}, {"explain", true}});
  require_ok(kw);
  const auto& hits = kw["structuredContent"]["results"];
  REQUIRE(hits.size() == 1);
  CHECK(hits[0]["memory"] == "The wifi password is zebra42");
  CHECK(hits[0]["score_details"]["final"].get<double>() == Approx(hits[0]["score"].get<double>()));
  require_tool_error(p.call("search_memories", {{"query", "x"}, {"user_id", "carol"}, {"mode", "fuzzy"}}), "fuzzy");

  auto count = [&](json args) {
    args["user_id"] = "carol";
    return p.call("list_memories", std::move(args))["structuredContent"]["results"].size();
  };
  CHECK(count(json::object()) == 2);
  CHECK(count({{"show_expired", true}}) == 3);
  require_ok(p.call("update_memory", {{"memory_id", old_id}, {"text", "Carol's old flat was on Rua Augusta"},
                                      {"expiration_date", ""}}));
  CHECK(count(json::object()) == 3);
  require_tool_error(p.call("update_memory", {{"memory_id", old_id}, {"text", "x"}, {"expiration_date", "soon"}}),
                     "soon");
  CHECK(p.finish() == 0);
}

TEST_CASE("mcp: a misconfigured provider refuses to start", "[mcp][providers]") {
  const std::string cmd = std::string(ENGRAM_MCP_BIN) + " --embedder word2vec </dev/null >/dev/null 2>&1";
  CHECK(WEXITSTATUS(std::system(cmd.c_str())) == 2);
  const std::string llm = std::string(ENGRAM_MCP_BIN) + " --extractor llm </dev/null >/dev/null 2>&1";
  CHECK(WEXITSTATUS(std::system(llm.c_str())) == 2);
}

TEST_CASE("mcp: as_of and include_invalid through search_memories and list_memories", "[mcp][time]") {
  mcp_process p;
  p.initialize();
  // declared in the tools' input schemas, with their types
  const auto tools = p.request("tools/list")["result"]["tools"];
  for (const char* name : {"search_memories", "list_memories"}) {
    INFO(name);
    const json* schema = nullptr;
    for (const auto& t : tools)
      if (t["name"] == name) schema = &t["inputSchema"];
    REQUIRE(schema);
    CHECK((*schema)["properties"]["as_of"]["type"] == "string");
    CHECK((*schema)["properties"]["include_invalid"]["type"] == "boolean");
  }
  // valid_from is the add's timestamp: as_of finds the memory from then on
  require_ok(p.call("add_memory", {{"text", "Ana lives in Lisbon"}, {"user_id", "ana"}, {"infer", false},
                                   {"timestamp", "2024-01-10T00:00:00Z"}}));
  auto found = [&](const char* tool, json args) {
    args["user_id"] = "ana";
    if (std::string(tool) == "search_memories") args["query"] = "where does Ana live";
    auto r = p.call(tool, std::move(args));
    require_ok(r);
    return r["structuredContent"]["results"].size();
  };
  for (const char* tool : {"search_memories", "list_memories"}) {
    INFO(tool);
    CHECK(found(tool, {{"as_of", "2023-06-01"}}) == 0);
    CHECK(found(tool, {{"as_of", "2024-06-01"}}) == 1);
    CHECK(found(tool, {{"as_of", "2024-01-10T01:00:00+02:00"}}) == 0);  // 2024-01-09T23:00Z
    CHECK(found(tool, {{"as_of", "1704844800"}}) == 1);                 // 2024-01-10T00:00:00Z, Unix seconds
    CHECK(found(tool, {{"include_invalid", true}}) == 1);
    const json base = {{"user_id", "ana"}, {"query", "Ana"}};
    auto with = [&](json extra) {
      json args = base;
      if (std::string(tool) == "list_memories") args.erase("query");
      args.update(extra);
      return p.call(tool, args);
    };
    require_tool_error(with({{"as_of", "soon"}}), "'as_of'");
    require_tool_error(with({{"as_of", 1704844800}}), "argument 'as_of' must be of type string");
    require_tool_error(with({{"include_invalid", "yes"}}), "argument 'include_invalid' must be of type boolean");
    require_tool_error(with({{"as_of", "2024-06-01"}, {"include_invalid", true}}), "'as_of' with 'include_invalid'");
  }
  CHECK(p.finish() == 0);
}

TEST_CASE("mcp: --on-contradiction and ENGRAM_ON_CONTRADICTION are checked at startup", "[mcp][time]") {
  auto status = [](const std::string& prefix, const std::string& args) {
    const std::string cmd = prefix + std::string(ENGRAM_MCP_BIN) + " --data /tmp/engram-mcp-never-opened " + args +
                            " </dev/null >/dev/null 2>&1";
    return WEXITSTATUS(std::system(cmd.c_str()));
  };
  CHECK(status("", "--on-contradiction keep") == 2);
  CHECK(status("ENGRAM_ON_CONTRADICTION=keep ", "") == 2);
  CHECK(status("", "--entities maybe") == 2);
  // a good value starts and serves
  mcp_process p({"--on-contradiction", "supersede", "--entities", "on"});
  p.initialize();
  require_ok(p.call("add_memory", {{"text", "Ana Silva lives in Lisbon"}, {"user_id", "ana"}, {"infer", false}}));
  auto r = p.call("search_memories", {{"query", "Ana Silva"}, {"user_id", "ana"}, {"explain", true},
                                      {"weights", {{"entity", 1}, {"entity_hops", 0}}}});
  require_ok(r);
  CHECK(r["structuredContent"]["results"][0]["score_details"]["entity"].get<double>() == Approx(1.0));
  CHECK(p.finish() == 0);
}

TEST_CASE("mcp: entity_graph lists a scope's entities and relations, never another user's", "[mcp][graph]") {
  {
    mcp_process p;  // no entity index: refused, saying how to get one
    p.initialize();
    require_tool_error(p.call("entity_graph", {{"user_id", "ana"}}), "--entities on");
    CHECK(p.finish() == 0);
  }
  mcp_process p({"--entities", "on"});
  p.initialize();
  require_ok(p.call("add_memory", {{"text", "Ana Silva lives in Lisbon"}, {"user_id", "ana"}, {"infer", false}}));
  require_ok(p.call("add_memory", {{"text", "Bruno Costa works at Acme Corp"}, {"user_id", "bruno"}, {"infer", false}}));
  auto r = p.call("entity_graph", {{"user_id", "ana"}});
  require_ok(r);
  const auto& g = r["structuredContent"];
  std::set<std::string> names;
  for (const auto& e : g["entities"]) names.insert(e["name"].get<std::string>());
  CHECK(names == std::set<std::string>{"Ana Silva", "Lisbon"});
  REQUIRE(g["relations"].size() == 1);
  CHECK(g["relations"][0] == json{{"source", "Ana Silva"}, {"relationship", "lives in"}, {"target", "Lisbon"}, {"memories", 1}});
  CHECK_THAT(text_of(r), Catch::Contains("Ana Silva -lives in-> Lisbon"));
  require_tool_error(p.call("entity_graph", json::object()), "scope is required");
  r = p.call("entity_graph", {{"user_id", "bruno"}});
  require_ok(r);
  names.clear();
  for (const auto& e : r["structuredContent"]["entities"]) names.insert(e["name"].get<std::string>());
  CHECK(names == std::set<std::string>{"Bruno Costa", "Acme Corp"});
  CHECK(p.finish() == 0);
}

TEST_CASE("mcp: enable_graph on search_memories and list_memories adds relations, or is refused without the index",
          "[mcp][graph]") {
  {
    mcp_process p;
    p.initialize();
    require_tool_error(p.call("search_memories", {{"query", "Ana"}, {"user_id", "ana"}, {"enable_graph", true}}),
                       "--entities on");
    require_tool_error(p.call("list_memories", {{"user_id", "ana"}, {"enable_graph", true}}), "--entities on");
    require_tool_error(p.call("search_memories", {{"query", "Ana"}, {"user_id", "ana"}, {"enable_graph", "yes"}}),
                       "enable_graph");
    require_tool_error(p.call("add_memory", {{"text", "Ana Silva lives in Lisbon"}, {"user_id", "ana"}, {"enable_graph", true}}),
                       "--entities on");
    CHECK(p.finish() == 0);
  }
  mcp_process p({"--entities", "on"});
  p.initialize();
  // accepted on an add (the offline extractor names no entities: the recogniser reads the text)
  require_ok(p.call("add_memory", {{"text", "Ana Silva lives in Lisbon"}, {"user_id", "ana"}, {"infer", false},
                                   {"enable_graph", true}}));
  auto r = p.call("search_memories", {{"query", "Where does Ana Silva live?"}, {"user_id", "ana"}, {"enable_graph", true}});
  require_ok(r);
  CHECK(r["structuredContent"]["relations"] ==
        json::array({{{"source", "Ana Silva"}, {"relationship", "lives in"}, {"destination", "Lisbon"}}}));
  r = p.call("list_memories", {{"user_id", "ana"}, {"enable_graph", true}});
  require_ok(r);
  CHECK(r["structuredContent"]["relations"] ==
        json::array({{{"source", "Ana Silva"}, {"relationship", "lives in"}, {"target", "Lisbon"}}}));
  CHECK(p.finish() == 0);
}
