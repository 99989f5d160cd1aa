#include "support/fake_server.hpp"

#include <engram/embed/openai.hpp>
#include <engram/extract/llm.hpp>
#include <engram/extract/parse_json_reply.hpp>
#include <engram/index/flat.hpp>
#include <engram/memory.hpp>
#include <engram/store/memory_store.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using engram_test::fake_server;
using engram_test::fast;
using engram_test::reply;
using json = nlohmann::json;

namespace {

using llm_memory =
    engram::basic_memory<engram::openai_embedder, engram::flat_index, engram::memory_store, engram::llm_extractor>;

llm_memory make_memory(const fake_server& s, engram::llm_extractor_options x = {},
                       std::chrono::milliseconds read_timeout = 2000ms) {
  x.http = fast(s, {}, 1);
  x.http.read_timeout = read_timeout;
  x.model = "chat-model";
  return llm_memory(engram::openai_embedder({.http = fast(s, {}, 1), .model = "embed-model", .dimension = 64}),
                    engram::memory_store{}, engram::llm_extractor(std::move(x)));
}

/// The short id under which the reconcile prompt shows the memory `text` ("absent" when not shown).
std::string shown_id(const json& request, const std::string& text) {
  const auto user = request.at("messages").at(1).at("content").get<std::string>();
  const auto a = user.find("Existing memories:\n");
  const auto b = user.find("\n\nNew facts:");
  if (a == std::string::npos || b == std::string::npos) return "absent";
  const auto existing = json::parse(user.substr(a + 19, b - a - 19));
  for (const auto& m : existing)
    if (m.at("text") == text) return m.at("id").get<std::string>();
  return "absent";
}

/// The new facts as the reconcile prompt shows them.
json shown_facts(const json& request) {
  const auto user = request.at("messages").at(1).at("content").get<std::string>();
  const auto b = user.find("\n\nNew facts:\n");
  return b == std::string::npos ? json() : json::parse(user.substr(b + 13));
}

std::string system_prompt(const engram_test::seen_request& r) {
  return r.body.at("messages").at(0).at("content").get<std::string>();
}

std::vector<std::string> texts(const std::vector<engram::record>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) out.push_back(r.memory);
  std::sort(out.begin(), out.end());
  return out;
}

const engram::memory_event* find_event(const engram::add_result& r, engram::event_kind e) {
  for (const auto& x : r.results)
    if (x.event == e) return &x;
  return nullptr;
}

const auto alice = engram::user("alice");

}  // namespace

TEST_CASE("http_extract: parse_json_reply finds the object through fences, think blocks and prose", "[http_extract]") {
  using engram::parse_json_reply;
  CHECK(parse_json_reply(R"({"facts":["a"]})")->at("facts")[0] == "a");
  CHECK(parse_json_reply("```json\n{\"facts\": [\"b\"]}\n```")->at("facts")[0] == "b");
  CHECK(parse_json_reply("<think>maybe {\"facts\": [\"wrong\"]}</think>{\"facts\": [\"c\"]}")->at("facts")[0] == "c");
  CHECK(parse_json_reply("Sure! Here you go: {\"facts\": [\"has } brace\"]} Hope it helps.")->at("facts")[0] ==
        "has } brace");
  CHECK(parse_json_reply("{not json} then {\"ok\": 1}")->at("ok") == 1);
  CHECK_FALSE(parse_json_reply("I'm sorry, I cannot help with that."));
  CHECK_FALSE(parse_json_reply("[1, 2, 3]"));
  CHECK_FALSE(parse_json_reply("<think>{\"facts\": [\"only thinking\"]}"));
  CHECK_FALSE(parse_json_reply("{\"facts\": [\"never closed\""));
  CHECK_FALSE(parse_json_reply(""));
}

TEST_CASE("http_extract: reconcile flow produces ADD, UPDATE, DELETE and NONE", "[http_extract]") {
  fake_server server(64);
  auto mem = make_memory(server);

  server.push_chat(R"({"facts": ["Lives in Lisbon", "Works as a nurse", "Likes green tea"]})");
  const auto first = mem.add("I live in Lisbon, I'm a nurse and I love green tea.", alice);
  REQUIRE(first.results.size() == 3);
  for (const auto& e : first.results) CHECK(e.event == engram::event_kind::add);
  CHECK(server.count("/v1/chat/completions") == 1);  // nothing to reconcile against: no second call
  std::string lisbon_id;
  for (const auto& e : first.results)
    if (e.memory == "Lives in Lisbon") lisbon_id = e.id;
  REQUIRE_FALSE(lisbon_id.empty());

  server.push_chat(R"({"facts": ["Moved to Porto", "Likes green tea", "Stopped working as a nurse"]})");
  server.push_chat([](const json& req) {
    return json{{"memory",
                 {{{"id", shown_id(req, "Lives in Lisbon")},
                   {"text", "Lives in Porto"},
                   {"event", "UPDATE"},
                   {"old_memory", "Lives in Lisbon"}},
                  {{"id", shown_id(req, "Likes green tea")}, {"text", "Likes green tea"}, {"event", "NONE"}},
                  {{"id", shown_id(req, "Works as a nurse")}, {"text", "Works as a nurse"}, {"event", "DELETE"}},
                  {{"id", "new"}, {"text", "Stopped working as a nurse"}, {"event", "ADD"}}}}}
        .dump();
  });
  const auto second = mem.add(std::vector<engram::message>{{"user", "I moved to Porto and quit nursing.", "alice"},
                                                           {"assistant", "Noted!", ""}},
                              alice);
  REQUIRE(second.skipped.empty());
  REQUIRE(second.results.size() == 4);
  const auto* upd = find_event(second, engram::event_kind::update);
  REQUIRE(upd);
  CHECK(upd->id == lisbon_id);
  CHECK(upd->memory == "Lives in Porto");
  CHECK(upd->previous_memory == "Lives in Lisbon");
  REQUIRE(find_event(second, engram::event_kind::del));
  CHECK(find_event(second, engram::event_kind::del)->memory == "Works as a nurse");
  REQUIRE(find_event(second, engram::event_kind::none));
  CHECK(find_event(second, engram::event_kind::none)->memory == "Likes green tea");
  REQUIRE(find_event(second, engram::event_kind::add));
  CHECK(find_event(second, engram::event_kind::add)->memory == "Stopped working as a nurse");

  CHECK(texts(mem.get_all(alice)) ==
        std::vector<std::string>{"Likes green tea", "Lives in Porto", "Stopped working as a nurse"});
  const auto h = mem.history(lisbon_id);
  REQUIRE(h.size() == 2);
  CHECK(h[1].event == engram::event_kind::update);
  CHECK(h[1].old_memory == "Lives in Lisbon");
  CHECK(h[1].new_memory == "Lives in Porto");
  for (const auto& r : mem.get_all(alice)) {
    CHECK(r.role == "user");
    if (r.memory == "Stopped working as a nurse") CHECK(r.actor_id == "alice");
  }

  // The reconcile prompt shows short ids, never the real ones.
  const auto chats = server.requests("/v1/chat/completions");
  REQUIRE(chats.size() == 3);
  const auto prompt = chats[2].body.dump();
  for (const auto& e : first.results) CHECK(prompt.find(e.id) == std::string::npos);
  CHECK(prompt.find("Lives in Lisbon") != std::string::npos);
  CHECK(chats[2].body["response_format"]["type"] == "json_object");
  CHECK(chats[2].body["model"] == "chat-model");
  // The conversation reached the extraction call, system turns aside.
  CHECK(chats[1].body["messages"][1]["content"].get<std::string>().find("user (alice): I moved to Porto") !=
        std::string::npos);
}

TEST_CASE("http_extract: an id the model invents is skipped and reported, never applied", "[http_extract]") {
  fake_server server(64);
  auto mem = make_memory(server);
  server.push_chat(R"({"facts": ["Likes jazz"]})");
  (void)mem.add("I like jazz", alice);
  const auto before = mem.get_all(alice);

  server.push_chat(R"({"facts": ["Likes blues"]})");
  server.push_chat(R"({"memory": [{"id": "42", "text": "Likes blues", "event": "UPDATE"},
                                  {"id": "x7", "event": "DELETE"}]})");
  const auto r = mem.add("I like blues", alice);
  CHECK(r.results.empty());
  REQUIRE(r.skipped.size() == 2);
  CHECK(r.skipped[0].reason.find("llm-invented-id:42") != std::string::npos);
  CHECK(r.skipped[1].action.event == engram::event_kind::del);
  CHECK(mem.get_all(alice) == before);
}

TEST_CASE("http_extract: an event name the model invents is skipped and reported with the reason", "[http_extract]") {
  fake_server server(64);
  auto mem = make_memory(server);
  server.push_chat(R"({"facts": ["Likes jazz"]})");
  (void)mem.add("I like jazz", alice);
  const auto before = mem.get_all(alice);
  REQUIRE(before.size() == 1);

  server.push_chat(R"({"facts": ["Likes jazz and blues"]})");
  server.push_chat([](const json& req) {
    const auto id = shown_id(req, "Likes jazz");
    return R"({"memory": [{"id": ")" + id + R"(", "text": "Likes jazz and blues", "event": "MERGE"},
                          {"text": "Likes blues", "event": "append"}]})";
  });
  const auto r = mem.add("I like jazz and blues", alice);
  CHECK(r.results.empty());
  REQUIRE(r.skipped.size() == 2);
  CHECK(r.skipped[0].reason.find("'MERGE'") != std::string::npos);
  CHECK(r.skipped[0].reason.find("not one of ADD, UPDATE, DELETE, NONE") != std::string::npos);
  CHECK(r.skipped[0].action.target_id == before[0].id);  // the memory it named, for diagnosis
  CHECK(r.skipped[0].action.text == "Likes jazz and blues");
  CHECK(r.skipped[1].reason.find("'append'") != std::string::npos);
  CHECK(mem.extractor().stats().unknown_events == 2);
  CHECK(mem.get_all(alice) == before);
  const auto j = json(r);
  REQUIRE(j.at("skipped").size() == 2);
  CHECK(j["skipped"][0].at("reason").get<std::string>().find("MERGE") != std::string::npos);
}

TEST_CASE("http_extract: decide maps short ids back and marks invented ones", "[http_extract]") {
  fake_server server(64);
  engram::llm_extractor x({.http = fast(server), .model = "m"});
  const std::vector<engram::fact> facts = {{"Likes blues", "user", "", json::object()},
                                           {"Owns a red guitar", "user", "", json::object()}};
  const std::vector<std::vector<engram::existing_memory>> near = {
      {{"uuid-a", "Likes jazz", "h1", 0.8f}, {"uuid-b", "Owns a guitar", "h2", 0.5f}},
      {{"uuid-b", "Owns a guitar", "h2", 0.9f}}};
  server.push_chat(R"({"memory": [
      {"id": "1", "text": "Owns a red guitar", "event": "update", "old_memory": "Owns a guitar"},
      {"id": 0, "text": "Likes jazz", "event": "NONE"},
      {"id": "2", "text": "Likes blues", "event": "DELETE"},
      {"id": "9", "text": "whatever", "event": "NONE"},
      {"id": "3", "text": "Likes blues", "event": "ADD"},
      {"id": "0", "text": "Likes blues", "event": "FROBNICATE"}]})");
  const auto actions = x.decide(facts, near, {alice, json::object()});
  REQUIRE(actions.size() == 5);
  CHECK(actions[0].event == engram::event_kind::update);
  CHECK(actions[0].target_id == "uuid-b");
  CHECK(actions[0].text == "Owns a red guitar");
  CHECK(actions[0].fact_index == 1);
  CHECK(actions[1].event == engram::event_kind::none);
  CHECK(actions[1].target_id == "uuid-a");
  CHECK(actions[2].event == engram::event_kind::del);
  CHECK(actions[2].target_id == std::string(engram::invented_id_prefix) + "2");
  CHECK(actions[3].event == engram::event_kind::add);
  CHECK(actions[3].target_id.empty());
  CHECK(actions[3].fact_index == 0);
  CHECK(actions[3].skip_reason.empty());
  CHECK(actions[4].target_id == "uuid-a");  // an unknown event is passed on to be reported, never applied
  CHECK(actions[4].skip_reason.find("'FROBNICATE'") != std::string::npos);
  CHECK(x.stats().unknown_events == 1);
  CHECK(x.stats().invented_ids == 1);
  CHECK(x.stats().calls == 1);
  const auto prompt = server.requests("/v1/chat/completions").at(0).body.dump();
  CHECK(prompt.find("uuid-") == std::string::npos);
  CHECK(shown_id(server.requests("/v1/chat/completions").at(0).body, "Owns a guitar") == "1");
}

TEST_CASE("http_extract: fenced and <think> replies are understood", "[http_extract]") {
  fake_server server(64);
  auto mem = make_memory(server);
  server.push_chat(
      "<think>The user mentions a pet. Output {\"facts\": [\"wrong\"]}?</think>\n"
      "```json\n{\"facts\": [\"Has a dog named Rex\"]}\n```");
  const auto r = mem.add("My dog Rex is great", alice);
  REQUIRE(r.results.size() == 1);
  CHECK(r.results[0].memory == "Has a dog named Rex");

  server.push_chat("Here is the JSON you asked for:\n{\"facts\": [\"Rex is a beagle\"]}");
  server.push_chat(
      "<think>Rex again.</think>```\n{\"memory\": [{\"id\": \"0\", \"text\": \"Has a beagle named Rex\", "
      "\"event\": \"UPDATE\", \"old_memory\": \"Has a dog named Rex\"}]}\n```");
  const auto u = mem.add("Rex is a beagle", alice);
  REQUIRE(u.results.size() == 1);
  CHECK(u.results[0].event == engram::event_kind::update);
  CHECK(texts(mem.get_all(alice)) == std::vector<std::string>{"Has a beagle named Rex"});
}

TEST_CASE("http_extract: garbage output stores nothing and says so", "[http_extract]") {
  fake_server server(64);
  SECTION("extraction reply") {
    auto mem = make_memory(server);
    server.push_chat("I'm sorry, I can't help with that.");
    const auto r = mem.add("I like sailing", alice);
    CHECK(r.results.empty());
    CHECK(r.skipped.empty());
    CHECK(mem.size() == 0);
    server.push_chat(R"({"facts": "not a list"})");
    CHECK(mem.add("I like sailing", alice).results.empty());
    server.push_chat(R"({"facts": [42, {"no_text": 1}, "", "  "]})");
    CHECK(mem.add("I like sailing", alice).results.empty());
    CHECK(mem.size() == 0);
  }
  SECTION("reconcile reply") {
    auto mem = make_memory(server);
    server.push_chat(R"({"facts": ["Likes sailing"]})");
    (void)mem.add("I like sailing", alice);
    server.push_chat(R"({"facts": ["Likes sailing at dawn"]})");
    server.push_chat(R"({"memory": [{"id": "0", "text": "Likes sailing at dawn", "event": "UPDATE")");  // cut off
    CHECK(mem.add("I sail at dawn", alice).results.empty());
    CHECK(texts(mem.get_all(alice)) == std::vector<std::string>{"Likes sailing"});
  }
  SECTION("the count and the strict option") {
    engram::llm_extractor x({.http = fast(server), .model = "m"});
    const std::vector<engram::message> msgs = {{"user", "hello there", ""}};
    server.push_chat("no json here");
    CHECK(x.extract(msgs, {alice, json::object()}).empty());
    CHECK(x.stats().unparseable == 1);
    engram::llm_extractor strict({.http = fast(server), .model = "m", .throw_on_unparseable = true});
    server.push_chat("no json here either");
    CHECK_THROWS_AS(strict.extract(msgs, {alice, json::object()}), engram::provider_error);
    server.push("/v1/chat/completions", reply{200, R"({"choices": []})"});
    CHECK(x.extract(msgs, {alice, json::object()}).empty());
    CHECK(x.stats().unparseable == 2);
  }
}

TEST_CASE("http_extract: a provider failing mid-add changes nothing", "[http_extract]") {
  fake_server server(64);
  auto mem = make_memory(server);
  server.push_chat(R"({"facts": ["Lives in Lisbon", "Likes green tea"]})");
  (void)mem.add("I live in Lisbon and like green tea", alice);
  const auto before = mem.get_all(alice);
  const auto before_history = mem.history(before.at(0).id);

  SECTION("the reconcile call fails for good") {
    server.push_chat(R"({"facts": ["Moved to Porto"]})");
    server.always("/v1/chat/completions", reply{500, R"({"error": "overloaded"})"});
    try {
      (void)mem.add("I moved to Porto", alice);
      FAIL("no exception");
    } catch (const engram::provider_error& e) {
      CHECK(e.status() == 500);
      CHECK(e.body_excerpt().find("overloaded") != std::string::npos);
    }
  }
  SECTION("the embedding call fails for good") {
    server.push_chat(R"({"facts": ["Moved to Porto"]})");
    server.always("/v1/embeddings", reply{503, "busy"});
    CHECK_THROWS_AS(mem.add("I moved to Porto", alice), engram::provider_error);
  }
  SECTION("the server is slow") {
    server.always("/v1/chat/completions", reply{200, fake_server::chat_body(R"({"facts": ["late"]})"), {}, 3000ms});
    auto slow = make_memory(server, {}, 150ms);  // same server, fresh store
    const auto t0 = std::chrono::steady_clock::now();
    try {
      (void)slow.add("anything", alice);
      FAIL("no exception");
    } catch (const engram::provider_error& e) {
      CHECK(e.status() == 0);  // no response: a timeout
    }
    CHECK(std::chrono::steady_clock::now() - t0 < 2000ms);
    CHECK(slow.size() == 0);
  }
  CHECK(mem.get_all(alice) == before);
  CHECK(mem.history(before.at(0).id) == before_history);
}

TEST_CASE("http_extract: 429 then success completes the add", "[http_extract]") {
  fake_server server(64);
  auto mem = make_memory(server);
  server.push("/v1/chat/completions", reply{429, R"({"error": "rate limited"})", {{"Retry-After", "0"}}});
  server.push_chat(R"({"facts": ["Plays chess"]})");
  const auto r = mem.add("I play chess", alice);
  REQUIRE(r.results.size() == 1);
  CHECK(r.results[0].memory == "Plays chess");
  CHECK(server.count("/v1/chat/completions") == 2);
}

TEST_CASE("http_extract: additive mode makes one call and skips facts already remembered", "[http_extract]") {
  fake_server server(64);
  auto mem = make_memory(server, {.mode = engram::extraction_mode::additive});
  server.push_chat(R"({"facts": ["Speaks Portuguese", "Runs marathons"]})");
  CHECK(mem.add("I speak Portuguese and run marathons", alice).results.size() == 2);
  server.push_chat(R"({"facts": ["Speaks Portuguese", "Learns Japanese"]})");
  const auto r = mem.add("I speak Portuguese and now learn Japanese", alice);
  REQUIRE(r.results.size() == 2);
  CHECK(r.results[0].event == engram::event_kind::none);
  CHECK(r.results[0].memory == "Speaks Portuguese");
  CHECK(r.results[1].event == engram::event_kind::add);
  CHECK(server.count("/v1/chat/completions") == 2);
  CHECK(mem.size() == 3);
  CHECK(system_prompt(server.requests("/v1/chat/completions")[0]).find("stored exactly as you write them") !=
        std::string::npos);
}

TEST_CASE("http_extract: options shape the prompt and categories reach the metadata", "[http_extract]") {
  fake_server server(64);
  auto mem = make_memory(server, {.custom_instructions = "Ignore anything about the weather.",
                                  .includes = {"food preferences"},
                                  .excludes = {"small_talk"},
                                  .categories = {{"food", "what they eat or drink"}, {"work", ""}}});
  server.push_chat(R"({"facts": [{"text": "Is vegetarian", "categories": ["Food", "sports"]},
                                 {"text": "Is a nurse", "categories": "work"},
                                 "Likes rain"]})");
  (void)mem.add("I'm a vegetarian nurse and I like rain", alice, {.metadata = {{"source", "chat"}}});
  const auto all = mem.get_all(alice);
  REQUIRE(all.size() == 3);
  for (const auto& r : all) {
    CHECK(r.metadata["source"] == "chat");
    if (r.memory == "Is vegetarian") CHECK(r.metadata["categories"] == json::array({"food"}));
    if (r.memory == "Is a nurse") CHECK(r.metadata["categories"] == json::array({"work"}));
    if (r.memory == "Likes rain") CHECK_FALSE(r.metadata.contains("categories"));
  }
  const auto sys = system_prompt(server.requests("/v1/chat/completions").at(0));
  CHECK(sys.find("Ignore anything about the weather.") != std::string::npos);
  CHECK(sys.find("food preferences") != std::string::npos);
  CHECK(sys.find("small_talk") != std::string::npos);
  CHECK(sys.find("- food: what they eat or drink") != std::string::npos);
  CHECK(sys.find("JSON") != std::string::npos);

  engram::llm_extractor custom({.http = fast(server),
                                .model = "m",
                                .fact_prompt = "MY OWN PROMPT: return JSON facts",
                                .update_prompt = "MY UPDATE PROMPT in JSON"});
  server.push_chat(R"({"facts": ["x"]})");
  (void)custom.extract(std::vector<engram::message>{{"user", "hello", ""}}, {alice, json::object()});
  CHECK(system_prompt(server.requests("/v1/chat/completions").back()).rfind("MY OWN PROMPT", 0) == 0);
  server.push_chat(R"({"memory": []})");
  const std::vector<engram::fact> f = {{"x", "user", "", json::object()}};
  const std::vector<std::vector<engram::existing_memory>> near = {{{"id1", "y", "h", 0.5f}}};
  CHECK(custom.decide(f, near, {alice, json::object()}).empty());
  CHECK(system_prompt(server.requests("/v1/chat/completions").back()) == "MY UPDATE PROMPT in JSON");
}

TEST_CASE("http_extract: an agent's memory comes from the assistant's turns", "[http_extract]") {
  fake_server server(64);
  auto mem = make_memory(server);
  const std::vector<engram::message> chat = {{"system", "secret system prompt", ""},
                                             {"user", "Who are you?", "bob"},
                                             {"assistant", "I am Jack, a pirate-themed guide.", "jack"}};
  SECTION("agent scope") {
    server.push_chat(R"({"facts": ["Is called Jack and guides in a pirate style"]})");
    const auto r = mem.add(chat, engram::agent("guide"));
    REQUIRE(r.results.size() == 1);
    const auto rec = mem.get(r.results[0].id);
    REQUIRE(rec);
    CHECK(rec->role == "assistant");
    CHECK(rec->actor_id == "jack");
    const auto req = server.requests("/v1/chat/completions").at(0);
    CHECK(system_prompt(req).find("Take facts only from the assistant turns") != std::string::npos);
    CHECK(req.body.dump().find("secret system prompt") == std::string::npos);
  }
  SECTION("user scope without user turns makes no call") {
    const std::vector<engram::message> only_bot = {{"assistant", "Ahoy!", ""}};
    CHECK(mem.add(only_bot, alice).results.empty());
    CHECK(server.count("/v1/chat/completions") == 0);
  }
}

TEST_CASE("http_extract: an add's own extraction request joins the configured one for that call", "[http_extract]") {
  fake_server server(64);
  auto mem = make_memory(server, {.includes = {"food preferences"}, .categories = {{"food", ""}}});
  server.push_chat(R"({"facts": [{"text": "Plays chess on Sundays", "categories": ["hobbies"]}]})");
  const engram::extraction_request req{.custom_instructions = "Keep hobbies only.",
                                       .includes = {"hobbies"},
                                       .excludes = {"health"},
                                       .categories = {{"hobbies", "what they do for fun"}}};
  (void)mem.add("I play chess on Sundays and my knee hurts", alice,
                {.timestamp = engram::parse_iso8601("2023-05-02T09:00:00Z"), .extraction = req});
  const auto sys = system_prompt(server.requests("/v1/chat/completions").at(0));
  CHECK(sys.find("food preferences, hobbies") != std::string::npos);
  CHECK(sys.find("Never remember information of these kinds: health") != std::string::npos);
  CHECK(sys.find("- hobbies: what they do for fun") != std::string::npos);
  CHECK(sys.find("Keep hobbies only.") != std::string::npos);
  CHECK(sys.find("Today is 2023-05-02") != std::string::npos);  // the conversation's date
  const auto all = mem.get_all(alice);
  REQUIRE(all.size() == 1);
  CHECK(all[0].metadata["categories"] == json::array({"hobbies"}));  // a category offered by this call only

  // the next add without a request is back to the configured settings, and a request prompt replaces the base
  server.push_chat(R"({"facts": []})");
  (void)mem.add("hello", alice);
  const auto plain = system_prompt(server.requests("/v1/chat/completions").back());
  CHECK(plain.find("hobbies") == std::string::npos);
  server.push_chat(R"({"facts": []})");
  (void)mem.add("hello again", alice, {.extraction = {.prompt = "CALL PROMPT: facts as JSON"}});
  CHECK(system_prompt(server.requests("/v1/chat/completions").back()).rfind("CALL PROMPT", 0) == 0);
}

TEST_CASE("http_extract: a procedural add summarises an agent's run into one memory, without reconciling",
          "[http_extract]") {
  fake_server server(64);
  auto mem = make_memory(server);  // reconcile mode: a plain add with neighbours would make a second call
  const engram::scope agent{"", "browser-agent", ""};
  const std::vector<engram::message> run = {
      {"user", "Find the cheapest flight from Lisbon to Oslo in May.", ""},
      {"assistant", "Searched flights.example for LIS-OSL, May: 14 results.", ""},
      {"assistant", "Cheapest: 89 EUR on May 12, flight XY123. Task done.", ""}};
  const engram::extraction_request procedural{.custom_instructions = "Mention prices.", .procedural = true};
  for (int round = 0; round < 2; ++round) {  // the second time, the first summary is a near neighbour
    server.push_chat(R"({"procedure": "Task: cheapest LIS-OSL flight in May. 1. Searched flights.example (14 results). 2. Cheapest 89 EUR, May 12, XY123. Done."})");
    const auto calls = server.count("/v1/chat/completions");
    const auto added = mem.add(run, agent, {.extraction = procedural});
    CHECK(server.count("/v1/chat/completions") == calls + 1);  // one call: the summary, no reconcile
    const auto sys = system_prompt(server.requests("/v1/chat/completions").back());
    CHECK(sys.find("procedural memory of an AI agent") != std::string::npos);
    CHECK(sys.find("Mention prices.") != std::string::npos);
    const auto user = server.requests("/v1/chat/completions").back().body.at("messages").at(1).at("content").get<std::string>();
    CHECK(user.find("assistant: Cheapest: 89 EUR") != std::string::npos);  // every role of the run is shown
    if (round == 0) {
      REQUIRE(added.results.size() == 1);
      CHECK(added.results[0].event == engram::event_kind::add);
    }
  }
  const auto all = mem.get_all(agent);
  REQUIRE(all.size() == 1);  // the same summary twice is one memory
  CHECK(all[0].memory.rfind("Task: cheapest LIS-OSL flight", 0) == 0);
  CHECK(all[0].metadata["memory_type"] == "procedural_memory");
  CHECK(all[0].role == "assistant");

  // a run needs an agent; the verbatim path (infer false) cannot summarise; a reply without a summary stores nothing
  CHECK_THROWS_WITH(mem.add(run, alice, {.extraction = procedural}), Catch::Contains("give an agent_id"));
  CHECK_THROWS_WITH(mem.add(run, agent, {.infer = false, .extraction = procedural}), Catch::Contains("LLM extractor"));
  server.push_chat(R"({"facts": ["not a summary"]})");
  CHECK(mem.add(run, agent, {.extraction = procedural}).results.empty());
  CHECK(mem.get_all(agent).size() == 1);
}

TEST_CASE("http_extract: a fact may say since when it is true", "[http_extract]") {
  fake_server server(64);
  engram::llm_extractor x({.http = fast(server), .model = "m"});
  const std::vector<engram::message> msgs = {{"user", "I moved to Porto last month", ""}};
  const engram::extraction_context ctx{alice, json::object(), engram::parse_iso8601("2026-12-04T10:00:00Z")};
  server.push_chat(R"({"facts": ["Likes tea",
      {"fact": "Moved to Porto", "valid_from": "2026-11-01"},
      {"text": "Started at Acme", "valid_from": "2023-03-15T09:30:00+01:00"},
      {"fact": "Learns piano", "valid_from": "2026-12-04"},
      {"fact": "Owns a boat", "valid_from": "last spring"},
      {"fact": "Adopted a cat", "valid_from": 2024},
      {"fact": "Will move to Oslo", "valid_from": "2027-03-01"},
      {"fact": "Starts a course tonight", "valid_from": "2026-12-04T19:00:00Z"},
      {"fact": "Has a sister", "valid_from": null},
      {"fact": "Has a brother", "valid_from": ""}]})");
  const auto facts = x.extract(msgs, ctx);
  REQUIRE(facts.size() == 10);  // a bad date never costs the fact
  CHECK_FALSE(facts[0].valid_from);
  CHECK(facts[1].text == "Moved to Porto");
  CHECK(facts[1].valid_from == engram::parse_iso8601("2026-11-01T00:00:00Z"));  // a date alone: midnight UTC
  CHECK(facts[2].valid_from == engram::parse_iso8601("2023-03-15T08:30:00Z"));
  CHECK(facts[3].valid_from == engram::parse_iso8601("2026-12-04"));  // the conversation's own day
  for (std::size_t i = 4; i < facts.size(); ++i) CHECK_FALSE(facts[i].valid_from);
  CHECK(facts[6].text == "Will move to Oslo");  // a plan: after the conversation, so no start date
  CHECK(x.stats().bad_dates == 4);              // malformed, not a string, two after the conversation
  const auto sys = system_prompt(server.requests("/v1/chat/completions").at(0));
  CHECK(sys.find("Today is 2026-12-04") != std::string::npos);
  CHECK(sys.find("{\"fact\": \"...\", \"valid_from\": \"YYYY-MM-DD\"}") != std::string::npos);

  // with categories every fact is an object already; the date is one more member
  engram::llm_extractor cats({.http = fast(server), .model = "m", .categories = {{"home", ""}}});
  server.push_chat(R"({"facts": [{"text": "Lives in Porto", "categories": ["home"], "valid_from": "2026-11-01"}]})");
  const auto dated = cats.extract(msgs, ctx);
  REQUIRE(dated.size() == 1);
  CHECK(dated[0].metadata["categories"] == json::array({"home"}));
  CHECK(dated[0].valid_from == engram::parse_iso8601("2026-11-01"));
  CHECK(system_prompt(server.requests("/v1/chat/completions").back()).find("adding \"valid_from\"") !=
        std::string::npos);
}

TEST_CASE("http_extract: the reconcile call shows dates and reads corrections", "[http_extract]") {
  fake_server server(64);
  engram::llm_extractor x({.http = fast(server), .model = "m"});
  const std::vector<engram::fact> facts = {
      {"Lives in Porto", "user", "", json::object(), engram::parse_iso8601("2026-11-01")},
      {"Name is spelled Ana", "user", "", json::object()}};
  const std::vector<std::vector<engram::existing_memory>> near = {
      {{"uuid-a", "Lives in Lisbon", "h1", 0.8f, engram::parse_iso8601("2024-05-01T12:00:00Z")},
       {"uuid-c", "Rents a flat in Porto", "h3", 0.6f, engram::parse_iso8601("2026-11-20")},
       {"uuid-d", "Likes Porto", "h4", 0.5f, engram::parse_iso8601("2026-11-01T18:00:00Z")}},
      {{"uuid-b", "Name is Anna", "h2", 0.9f}}};  // of unknown age
  const engram::extraction_context ctx{alice, json::object(), engram::parse_iso8601("2026-12-04T10:00:00Z")};
  server.push_chat(R"({"memory": [
      {"id": "0", "text": "Lives in Porto", "event": "UPDATE", "old_memory": "Lives in Lisbon"},
      {"id": "3", "text": "Name is Ana", "event": "UPDATE", "old_memory": "Name is Anna", "correction": true},
      {"id": "1", "event": "DELETE", "correction": true},
      {"id": "2", "text": "Loves Porto", "event": "UPDATE", "correction": "yes"},
      {"id": "0", "text": "Lived in Lisbon", "event": "ADD", "correction": true}]})");
  const auto actions = x.decide(facts, near, ctx);
  REQUIRE(actions.size() == 5);
  CHECK(actions[0].event == engram::event_kind::update);
  CHECK_FALSE(actions[0].correction);  // absent: a change in the world
  CHECK(actions[1].target_id == "uuid-b");
  CHECK(actions[1].correction);
  CHECK(actions[2].event == engram::event_kind::del);
  CHECK_FALSE(actions[2].correction);  // only an UPDATE corrects
  CHECK_FALSE(actions[3].correction);  // not a boolean
  CHECK_FALSE(actions[4].correction);

  const auto req = server.requests("/v1/chat/completions").at(0).body;
  const auto user = req.at("messages").at(1).at("content").get<std::string>();
  const auto existing = json::parse(user.substr(19, user.find("\n\nNew facts:") - 19));
  REQUIRE(existing.size() == 4);
  CHECK(existing[0] == json{{"id", "0"}, {"text", "Lives in Lisbon"}, {"since", "2024-05-01"}});
  CHECK(existing[1].at("since") == "2026-11-20");
  CHECK_FALSE(existing[3].contains("since"));  // unknown age: no date rather than 1970
  const auto shown = shown_facts(req);
  REQUIRE(shown.size() == 2);
  CHECK(shown[0] == json{{"text", "Lives in Porto"},
                         {"since", "2026-11-01"},
                         {"newer_than", {"0"}},     // Lisbon is older: a move, not a mistake
                         {"older_than", {"1"}}});  // the same day ("2") is neither
  CHECK(shown[1] == json{{"text", "Name is spelled Ana"}, {"since", "2026-12-04"}});  // the conversation's day
  const auto sys = req.at("messages").at(0).at("content").get<std::string>();
  CHECK(sys.find("\"correction\": true") != std::string::npos);
  CHECK(sys.find("newer_than") != std::string::npos);
}
