// The LLM extractor's entity call (entity memory): opt-in, kept with the memories, malformed replies refused whole.
#include "support/fake_server.hpp"

#include <engram/embed/openai.hpp>
#include <engram/extract/any_extractor.hpp>
#include <engram/extract/llm.hpp>
#include <engram/index/flat.hpp>
#include <engram/memory.hpp>
#include <engram/store/memory_store.hpp>

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using engram_test::fake_server;
using engram_test::fast;
using json = nlohmann::json;

namespace {

using llm_memory =
    engram::basic_memory<engram::openai_embedder, engram::flat_index, engram::memory_store, engram::llm_extractor>;

llm_memory make_memory(const fake_server& s, bool entities, engram::memory_config config = {}) {
  engram::llm_extractor_options x{.http = fast(s, {}, 1), .model = "chat-model"};
  x.entities = entities;
  return llm_memory(engram::openai_embedder({.http = fast(s, {}, 1), .model = "embed-model", .dimension = 64}),
                    engram::memory_store{}, engram::llm_extractor(std::move(x)), std::move(config));
}

const auto alice = engram::user("alice");

const char* maria_entities = R"({"memories": [{"entities": [{"name": "Maria Lopez", "type": "person"},
  {"name": "Acme Labs", "type": "Organisation"}, {"name": "Maria Lopez", "type": "person"}],
  "relations": [{"source": "Maria Lopez", "relationship": "works at", "destination": "Acme Labs"}]}]})";

engram::recognized_entities maria() {
  return {{{"Maria Lopez", engram::entity_type::person}, {"Acme Labs", engram::entity_type::organization}},
          {{"Maria Lopez", "works at", "Acme Labs"}}};
}

std::string user_message(const engram_test::seen_request& r) {
  return r.body.at("messages").at(1).at("content").get<std::string>();
}

}  // namespace

TEST_CASE("http_entities: off by default, the add makes no entity call and keeps none", "[http_extract][entities]") {
  fake_server server(64);
  auto mem = make_memory(server, false);
  server.push_chat(R"({"facts": ["Works with Maria Lopez at Acme Labs"]})");
  const auto r = mem.add("I work with Maria Lopez at Acme Labs", alice);
  REQUIRE(r.results.size() == 1);
  CHECK(server.count("/v1/chat/completions") == 1);
  CHECK_FALSE(mem.get(r.results[0].id)->entities.has_value());
}

TEST_CASE("http_entities: switched on, one call names the entities of the texts written, kept with each memory",
          "[http_extract][entities]") {
  fake_server server(64);
  auto mem = make_memory(server, true);
  server.push_chat(R"({"facts": ["Works with Maria Lopez at Acme Labs"]})");
  server.push_chat(maria_entities);
  const auto r = mem.add("I work with Maria Lopez at Acme Labs", alice);
  REQUIRE(r.results.size() == 1);
  const auto calls = server.requests("/v1/chat/completions");
  REQUIRE(calls.size() == 2);
  CHECK(user_message(calls[1]) == "Memories:\n1. Works with Maria Lopez at Acme Labs\n");
  CHECK(calls[1].body.at("messages").at(0).at("content") == engram::default_entity_prompt());
  const auto stored = mem.get(r.results[0].id);
  REQUIRE(stored->entities.has_value());
  CHECK(*stored->entities == maria());  // the repeated name kept once, "Organisation" read as organization

  SECTION("an add whose facts change nothing asks nothing more") {
    server.push_chat(R"({"facts": ["Works with Maria Lopez at Acme Labs"]})");
    server.push_chat(R"({"memory": [{"id": "0", "text": "Works with Maria Lopez at Acme Labs", "event": "NONE"}]})");
    (void)mem.add("Again: I work with Maria Lopez at Acme Labs", alice);
    CHECK(server.count("/v1/chat/completions") == 4);
  }
  SECTION("an UPDATE carries the entities of its new text") {
    server.push_chat(R"({"facts": ["Works with Maria Lopez at Acme Labs in Porto"]})");
    server.push_chat(R"({"memory": [{"id": "0", "text": "Works with Maria Lopez at Acme Labs in Porto", "event": "UPDATE"}]})");
    server.push_chat(R"({"memories": [{"entities": [{"name": "Porto", "type": "city"}], "relations": []}]})");
    const auto u = mem.add("We are in Porto now", alice);
    REQUIRE(u.results.size() == 1);
    CHECK(u.results[0].event == engram::event_kind::update);
    const auto after = mem.get(r.results[0].id);
    REQUIRE(after->entities.has_value());
    CHECK(after->entities->entities == std::vector<engram::entity_mention>{{"Porto", engram::entity_type::place}});
  }
  SECTION("update() of a text asks for the new text's entities") {
    server.push_chat(R"({"memories": [{"entities": [{"name": "Zed Corp", "type": "organization"}]}]})");
    const auto u = mem.update(r.results[0].id, "Works at Zed Corp");
    REQUIRE(u.entities.has_value());
    CHECK(u.entities->entities.at(0).name == "Zed Corp");
    CHECK(u.entities->relations.empty());
    // a metadata-only update keeps them and calls nothing
    engram::update_options meta;
    meta.metadata = json{{"k", 1}};
    CHECK(mem.update(r.results[0].id, meta).entities == u.entities);
    CHECK(server.count("/v1/chat/completions") == 3);
  }
}

TEST_CASE("http_entities: an add's own request overrides the setting both ways", "[http_extract][entities]") {
  fake_server server(64);
  engram::add_options ask;
  ask.extraction.entities = true;
  engram::add_options dont;
  dont.extraction.entities = false;
  {
    auto mem = make_memory(server, false);
    server.push_chat(R"({"facts": ["Works with Maria Lopez at Acme Labs"]})");
    server.push_chat(maria_entities);
    const auto r = mem.add("I work with Maria Lopez at Acme Labs", alice, ask);
    CHECK(mem.get(r.results.at(0).id)->entities == maria());
  }
  {
    auto mem = make_memory(server, true);
    server.push_chat(R"({"facts": ["Likes tea"]})");
    const auto r = mem.add("I like tea", alice, dont);
    CHECK_FALSE(mem.get(r.results.at(0).id)->entities.has_value());
  }
  CHECK(server.count("/v1/chat/completions") == 3);
}

TEST_CASE("http_entities: a malformed entity reply fails the add and stores nothing", "[http_extract][entities]") {
  fake_server server(64);
  auto mem = make_memory(server, true);
  server.push_chat(R"({"facts": ["Likes tea"]})");
  server.push_chat(R"({"memories": [{"entities": []}]})");
  (void)mem.add("I like tea", alice);
  const auto before = mem.get_all(alice);
  REQUIRE(before.size() == 1);
  const auto before_history = mem.history(before[0].id);

  const std::vector<std::string> bad = {
      "no json at all",
      R"({"entities": []})",                                                                 // not per memory
      R"({"memories": []})",                                                                 // too few items
      R"({"memories": [{}, {}]})",                                                           // too many items
      R"({"memories": ["Maria"]})",                                                          // item not an object
      R"({"memories": [{"entities": "Maria"}]})",                                            // not a list
      R"({"memories": [{"entities": [{"type": "person"}]}]})",                               // no name
      R"({"memories": [{"entities": [{"name": "  "}]}]})",                                   // empty name
      R"({"memories": [{"entities": [{"name": 7}]}]})",                                      // name not text
      R"({"memories": [{"relations": [{"source": "A", "relationship": "knows"}]}]})",        // no target
      R"({"memories": [{"relations": [{"source": "A", "relationship": "", "target": "B"}]}]})",  // empty relationship
  };
  for (const auto& reply : bad) {
    CAPTURE(reply);
    server.push_chat(R"({"facts": ["Lives in Porto with Maria"]})");
    server.push_chat(R"({"memory": [{"text": "Lives in Porto with Maria", "event": "ADD"}]})");
    server.push_chat(reply);
    CHECK_THROWS_AS(mem.add("I live in Porto with Maria", alice), engram::provider_error);
    CHECK(mem.get_all(alice) == before);
    CHECK(mem.history(before[0].id) == before_history);
  }
  SECTION("too many entities for one memory") {
    json many = json::array();
    for (int i = 0; i <= static_cast<int>(engram::max_entities_per_memory); ++i)
      many.push_back({{"name", "E" + std::to_string(i)}});
    server.push_chat(R"({"facts": ["Lives in Porto with Maria"]})");
    server.push_chat(R"({"memory": [{"text": "Lives in Porto with Maria", "event": "ADD"}]})");
    server.push_chat(json{{"memories", json::array({{{"entities", many}}})}}.dump());
    CHECK_THROWS_AS(mem.add("I live in Porto with Maria", alice), engram::provider_error);
    CHECK(mem.get_all(alice) == before);
  }
  SECTION("a failing update() changes nothing either") {
    server.push_chat("{}");
    CHECK_THROWS_AS(mem.update(before[0].id, "Likes green tea"), engram::provider_error);
    CHECK(mem.get_all(alice) == before);
  }
}

TEST_CASE("http_entities: a superseded memory's closed version keeps the entities of its text",
          "[http_extract][entities]") {
  fake_server server(64);
  engram::memory_config config;
  config.on_contradiction = engram::contradiction_policy::supersede;
  auto mem = make_memory(server, true, config);
  server.push_chat(R"({"facts": ["Works with Maria Lopez at Acme Labs"]})");
  server.push_chat(maria_entities);
  const auto first = mem.add("I work with Maria Lopez at Acme Labs", alice).results.at(0).id;
  server.push_chat(R"({"facts": ["Works at Zed Corp"]})");
  server.push_chat(R"({"memory": [{"id": "0", "text": "Works at Zed Corp", "event": "UPDATE"}]})");
  server.push_chat(R"({"memories": [{"entities": [{"name": "Zed Corp", "type": "organization"}]}]})");
  (void)mem.add("I moved to Zed Corp", alice);
  engram::get_all_options all;
  all.include_invalid = true;
  bool closed_seen = false;
  for (const auto& r : mem.get_all(alice, all)) {
    REQUIRE(r.entities.has_value());
    if (r.invalid_at) {
      closed_seen = true;
      CHECK(r.memory == "Works with Maria Lopez at Acme Labs");
      CHECK(*r.entities == maria());
    } else {
      CHECK(r.id == first);
      CHECK(r.entities->entities.at(0).name == "Zed Corp");
    }
  }
  CHECK(closed_seen);
}

TEST_CASE("http_entities: any_extractor forwards the entity call", "[http_extract][entities]") {
  fake_server server(64);
  engram::llm_extractor_options x{.http = fast(server, {}, 1), .model = "chat-model"};
  x.entities = true;
  engram::any_extractor any{engram::llm_extractor(std::move(x))};
  const std::vector<std::string> texts = {"Works with Maria Lopez at Acme Labs"};
  server.push_chat(maria_entities);
  const auto named = any.entities_of(texts, {alice, json::object()});
  REQUIRE(named.has_value());
  CHECK(named->at(0) == maria());
  engram::any_extractor verbatim;
  CHECK_FALSE(verbatim.entities_of(texts, {alice, json::object()}).has_value());
  STATIC_REQUIRE(engram::entity_extractor<engram::llm_extractor>);
  STATIC_REQUIRE_FALSE(engram::entity_extractor<engram::verbatim_extractor>);
}
