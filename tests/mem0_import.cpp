// Reading Mem0's memories (its get_all answers and JSON Lines) into records: each shape, every field kept, bad
// items reported with their line and index.
#include <engram/engram.hpp>

#include <catch2/catch.hpp>

#include <string>

using namespace engram;
using Catch::Matchers::Contains;

namespace {

// Two memories as Mem0's OSS Memory.get_all returns them (promoted scope keys, metadata without them).
const char* const oss_item_1 =
    R"({"id": "3f1c3a2e-8b4d-4e5f-9a6b-7c8d9e0f1a2b", "memory": "Likes hiking in the Alps", )"
    R"("hash": "ignored", "metadata": {"source": "chat"}, "created_at": "2024-07-20T12:34:56.123456-07:00", )"
    R"("updated_at": "2024-07-21T08:00:00", "user_id": "alice", "role": "user", "actor_id": "al"})";
const char* const oss_item_2 =
    R"({"id": "5A6B7C8D-1E2F-4A3B-8C4D-5E6F7A8B9C0D", "memory": "Is allergic to peanuts", "metadata": null, )"
    R"("created_at": "2024-07-22T09:15:00+00:00", "updated_at": null, "user_id": "alice", "agent_id": "nurse", )"
    R"("run_id": "visit-1", "expiration_date": "2030-01-31", "immutable": true})";

}  // namespace

TEST_CASE("mem0_import: the OSS {\"results\": [...]} keeps ids, texts, scopes, metadata and times", "[mem0_import]") {
  const std::string doc = std::string("{\"results\": [\n  ") + oss_item_1 + ",\n  " + oss_item_2 + "\n]}";
  const auto got = parse_mem0(doc);
  CHECK_FALSE(got.json_lines);
  CHECK(got.items == 2);
  REQUIRE(got.bad.empty());
  REQUIRE(got.records.size() == 2);
  const auto& a = got.records[0];
  CHECK(a.id == "3f1c3a2e-8b4d-4e5f-9a6b-7c8d9e0f1a2b");
  CHECK(a.memory == "Likes hiking in the Alps");
  CHECK(a.hash == detail::md5_hex("Likes hiking in the Alps"));
  CHECK(a.user_id == "alice");
  CHECK(a.agent_id.empty());
  CHECK(a.metadata == nlohmann::json{{"source", "chat"}});
  CHECK(a.role == "user");
  CHECK(a.actor_id == "al");
  CHECK(format_iso8601(a.created_at) == "2024-07-20T19:34:56.123456+00:00");  // the zone applied
  CHECK(format_iso8601(a.updated_at) == "2024-07-21T08:00:00.000000+00:00");  // no zone: UTC
  CHECK(a.embedding.empty());
  CHECK_FALSE(a.immutable);
  const auto& b = got.records[1];
  CHECK(b.id == "5a6b7c8d-1e2f-4a3b-8c4d-5e6f7a8b9c0d");  // lower-cased
  CHECK(b.scope() == scope{"alice", "nurse", "visit-1"});
  CHECK(b.metadata == nlohmann::json::object());
  CHECK(b.updated_at == b.created_at);
  CHECK(b.expiration_date == "2030-01-31");
  CHECK(b.immutable);
}

TEST_CASE("mem0_import: the Platform's paged answer, a bare list, {\"memories\"} and one object", "[mem0_import]") {
  const std::string platform =
      R"({"id": "9b2f8c1d-0a3e-4b5c-8d6e-7f8091a2b3c4", "memory": "Works at TechCorp", "user_id": "dev",
          "agent_id": null, "app_id": "crm", "session_id": "s-7", "metadata": {"type": "professional"},
          "categories": ["professional_details", "work"], "created_at": "2025-03-01T10:00:00Z",
          "updated_at": "2025-03-02T10:00:00Z", "expiration_date": null, "structured_attributes": {"year": 2025},
          "memory_type": "procedural_memory", "score": 0.9})";
  auto check_one = [](const mem0_parse_result& got) {
    REQUIRE(got.bad.empty());
    REQUIRE(got.records.size() == 1);
    const auto& r = got.records[0];
    CHECK(r.memory == "Works at TechCorp");
    CHECK(r.scope() == scope{"dev", "", "s-7"});  // session_id is the run
    CHECK(r.metadata["type"] == "professional");
    CHECK(r.metadata["categories"] == nlohmann::json{"professional_details", "work"});
    CHECK(r.metadata["app_id"] == "crm");
    CHECK(r.metadata["memory_type"] == "procedural_memory");
    CHECK_FALSE(r.metadata.contains("structured_attributes"));
    CHECK(format_iso8601(r.updated_at) == "2025-03-02T10:00:00.000000+00:00");
  };
  check_one(parse_mem0(R"({"count": 1, "next": null, "previous": null, "results": [)" + platform + "]}"));
  check_one(parse_mem0("[" + platform + "]"));
  check_one(parse_mem0(R"({"memories": [)" + platform + "]}"));
  check_one(parse_mem0(platform));
  // as the TypeScript client returns it: camelCase keys, metadata as stored
  const auto ts = parse_mem0(R"([{"id": "9b2f8c1d-0a3e-4b5c-8d6e-7f8091a2b3c4", "memory": "Works at TechCorp",
      "userId": "dev", "agentId": null, "runId": "s-7", "appId": "crm", "metadata": {"type": "professional",
      "first_seen": 2019}, "categories": ["work"], "createdAt": "2025-03-01T10:00:00Z",
      "updatedAt": "2025-03-02T10:00:00Z", "expirationDate": "2031-01-01", "memoryType": "procedural_memory"}])");
  REQUIRE(ts.records.size() == 1);
  CHECK(ts.records[0].scope() == scope{"dev", "", "s-7"});
  CHECK(ts.records[0].metadata["first_seen"] == 2019);
  CHECK(ts.records[0].metadata["app_id"] == "crm");
  CHECK(ts.records[0].expiration_date == "2031-01-01");
  CHECK(format_iso8601(ts.records[0].created_at) == "2025-03-01T10:00:00.000000+00:00");
  CHECK(parse_mem0("[]").items == 0);
}

TEST_CASE("mem0_import: JSON Lines, one memory per line; a bad line is reported with its number", "[mem0_import]") {
  const std::string text = std::string(oss_item_1) + "\n\n{not json\n" + oss_item_2 + "\n" +
                           R"({"id": "x-1", "memory": "no scope here"})" + "\n" +
                           R"({"id": "x-2", "memory": "Plays chess", "agent_id": "coach"})" + "\n";
  const auto got = parse_mem0(text);
  CHECK(got.json_lines);
  CHECK(got.items == 5);
  REQUIRE(got.records.size() == 3);
  REQUIRE(got.bad.size() == 2);
  CHECK(got.bad[0].line == 3);
  CHECK(got.bad[0].index == 1);
  CHECK_THAT(got.bad[0].reason, Contains("not valid JSON (parse error at column 3"));
  CHECK(got.bad[0].where(true) == "line 3");
  CHECK(got.bad[1].line == 5);
  CHECK_THAT(got.bad[1].reason, Contains("no scope"));
  // an id that is not a UUID: a stable name-based UUID, the original kept in metadata
  const auto& chess = got.records[2];
  CHECK(chess.id == mem0_id_to_uuid("x-2"));
  CHECK(is_uuid(chess.id));
  CHECK(chess.id[14] == '3');
  CHECK(chess.metadata["mem0_id"] == "x-2");
  CHECK(mem0_id_to_uuid("x-2") != mem0_id_to_uuid("x-3"));
}

TEST_CASE("mem0_import: each bad item names its field, its index and its line; the rest are kept", "[mem0_import]") {
  const std::string doc = R"({"results": [
    {"id": "a1", "memory": "fine", "user_id": "u"},
    {"memory": "no id", "user_id": "u"},
    {"id": "a3", "memory": "   ", "user_id": "u"},
    {"id": "a4", "user_id": "u"},
    {"id": "a5", "memory": "bad time", "user_id": "u", "created_at": "yesterday"},
    {"id": "a6", "memory": "bad update", "user_id": "u", "updated_at": "2024-13-40T00:00:00Z"},
    {"id": "a7", "memory": "bad metadata", "user_id": "u", "metadata": [1, 2]},
    {"id": "a8", "memory": "identity in metadata", "user_id": "u", "metadata": {"user_id": "eve"}},
    {"id": "a9", "memory": "bad categories", "user_id": "u", "categories": ["ok", 3]},
    {"id": "a10", "memory": "bad expiry", "user_id": "u", "expiration_date": "soon"},
    {"id": "a11", "memory": "bad immutable", "user_id": "u", "immutable": "yes"},
    {"id": "a12", "memory": "bad scope type", "user_id": 12},
    "just a string",
    {"id": "a1", "memory": "the same id again", "user_id": "u"},
    {"id": 15, "memory": "a numeric id", "run_id": "r", "expiration_date": "2030-05-01T23:30:00-02:00"}
  ]})";
  const auto got = parse_mem0(doc);
  CHECK(got.items == 15);
  REQUIRE(got.records.size() == 2);
  CHECK(got.records[0].metadata["mem0_id"] == "a1");
  CHECK(got.records[1].metadata["mem0_id"] == "15");
  CHECK(got.records[1].expiration_date == "2030-05-02");  // a time: its UTC day
  REQUIRE(got.bad.size() == 13);
  const std::vector<std::pair<std::size_t, const char*>> expected = {
      {1, "'id' is missing"},        {2, "'memory'"},         {3, "'memory'"},       {4, "'created_at'"},
      {5, "'updated_at'"},           {6, "'metadata'"},       {7, "user_id"},        {8, "'categories'"},
      {9, "'expiration_date'"},      {10, "'immutable'"},     {11, "'user_id'"},     {12, "memory object"},
      {13, "given again (first at line 2)"}};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO(got.bad[i].reason);
    CHECK(got.bad[i].index == expected[i].first);
    CHECK(got.bad[i].line == expected[i].first + 2);  // the list starts on line 2
    CHECK_THAT(got.bad[i].reason, Contains(expected[i].second));
  }
  CHECK(got.bad[0].where(false) == "item 1 (line 3)");
}

TEST_CASE("mem0_import: engram's exports keep the entities an LLM named; malformed ones are a bad item",
          "[mem0_import][entities]") {
  const std::string text =
      R"({"id": "e-1", "memory": "runs the lab", "user_id": "ana", "entities": {"entities": [{"name": "Maria Lopez", )"
      R"("type": "person"}], "relations": [{"source": "Maria Lopez", "relationship": "runs", "target": "Acme Labs"}]}})"
      "\n"
      R"({"id": "e-2", "memory": "named nothing", "user_id": "ana", "entities": {"entities": []}})"
      "\n"
      R"({"id": "e-3", "memory": "Mem0's own item", "user_id": "ana"})"
      "\n"
      R"({"id": "e-4", "memory": "bad", "user_id": "ana", "entities": {"entities": [{"type": "person"}]}})"
      "\n";
  const auto got = parse_mem0(text);
  REQUIRE(got.records.size() == 3);
  REQUIRE(got.records[0].entities.has_value());
  CHECK(*got.records[0].entities ==
        recognized_entities{{{"Maria Lopez", entity_type::person}}, {{"Maria Lopez", "runs", "Acme Labs"}}});
  CHECK(got.records[1].entities == recognized_entities{});  // set, empty: the memory names nothing
  CHECK_FALSE(got.records[2].entities.has_value());        // recognised from the text when indexed
  REQUIRE(got.bad.size() == 1);
  CHECK(got.bad[0].line == 4);
  CHECK_THAT(got.bad[0].reason, Contains("entities.entities[0].name"));
}

TEST_CASE("mem0_import: input that is not Mem0's as a whole is refused, naming where", "[mem0_import]") {
  CHECK_THROWS_WITH(parse_mem0(""), Contains("empty"));
  CHECK_THROWS_WITH(parse_mem0("[{\"id\": \"a\",\n \"memory\": }]"), Contains("line 2"));
  CHECK_THROWS_WITH(parse_mem0(R"({"count": 0})"), Contains("no list of memories"));
  CHECK_THROWS_WITH(parse_mem0("42"), Contains("object or list"));
  CHECK_THROWS_AS(parse_mem0(std::string(100, '[') + std::string(100, ']')), validation_error);  // too deep
  const std::string huge = R"({"id": "a", "user_id": "u", "memory": ")" + std::string(70 * 1024, 'x') + "\"}";
  const auto got = parse_mem0(huge);
  REQUIRE(got.bad.size() == 1);
  CHECK_THAT(got.bad[0].reason, Contains("bytes"));
}

TEST_CASE("mem0_import: the write batch adds each memory with its ADD event", "[mem0_import]") {
  const auto got = parse_mem0(std::string("[") + oss_item_1 + "," + oss_item_2 + "]");
  const auto batch = mem0_write_batch(got.records);
  REQUIRE(batch.upserts.size() == 2);
  REQUIRE(batch.events.size() == 2);
  CHECK(batch.events[0].memory_id == got.records[0].id);
  CHECK(batch.events[0].event == event_kind::add);
  CHECK(batch.events[0].new_memory == "Likes hiking in the Alps");
  CHECK(batch.events[0].created_at == got.records[0].created_at);
  memory_store store;
  store.apply(batch);
  memory mem(hashing_embedder(), std::move(store));  // embeds the imported texts on open
  CHECK(mem.search("hiking", user("alice"), {.limit = 1}).front().record.id == got.records[0].id);
  CHECK(mem.history(got.records[1].id).size() == 1);
}
