#include <engram/engram.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <thread>
#include <vector>

using namespace engram;

TEST_CASE("memory: scopes are walls, also for identical texts", "[memory]") {
  memory mem;
  mem.add("I like green tea", user("alice"));
  mem.add("I like green tea", user("bob"));
  mem.add("I live in Lisbon", user("alice"));
  mem.add("I live in Oslo", user("bob"));
  mem.add("Meeting notes for the run", scope{"alice", "planner", "run-1"});

  for (const char* who : {"alice", "bob"}) {
    for (const auto& h : mem.search("green tea lisbon oslo", user(who), {.limit = 50})) {
      CHECK(h.record.user_id == who);
    }
    for (const auto& r : mem.get_all(user(who))) CHECK(r.user_id == who);
  }
  CHECK(mem.get_all(user("alice")).size() == 3);
  CHECK(mem.get_all(user("bob")).size() == 2);
  CHECK(mem.get_all(agent("planner")).size() == 1);
  CHECK(mem.get_all(scope{"bob", "planner", ""}).empty());
  CHECK(mem.search("tea", user("carol")).empty());
  CHECK(mem.get_all(all_scopes).size() == 5);
}

TEST_CASE("memory: search ranks the related memory first, with limit and threshold", "[memory]") {
  memory mem;
  mem.add("My favourite drink is green tea", user("alice"));
  mem.add("I work as a nurse in a hospital", user("alice"));
  mem.add("I have two cats named Miso and Tofu", user("alice"));
  const auto hits = mem.search("what does she drink? tea?", user("alice"));
  REQUIRE(hits.size() == 3);
  CHECK(hits[0].record.memory == "My favourite drink is green tea");
  CHECK(hits[0].score > hits[1].score);
  CHECK(mem.search("cats", user("alice"), {.limit = 1}).front().record.memory.find("cats") != std::string::npos);
  const auto strict = mem.search("green tea", user("alice"), {.limit = 10, .threshold = 0.3f});
  REQUIRE(strict.size() == 1);
  CHECK(strict.front().score >= 0.3f);
}

TEST_CASE("memory: add semantics", "[memory]") {
  memory mem;
  SECTION("messages: system skipped, each other message one memory with role and actor") {
    const std::vector<message> chat = {{"system", "be nice", ""},
                                       {"user", "I'm allergic to peanuts", "al"},
                                       {"assistant", "Noted, no peanuts.", ""},
                                       {"user", "   ", ""}};
    const auto r = mem.add(chat, user("alice"));
    REQUIRE(r.results.size() == 2);
    CHECK(r.results[0].event == event_kind::add);
    const auto rec = mem.get(r.results[0].id);
    REQUIRE(rec);
    CHECK(rec->role == "user");
    CHECK(rec->actor_id == "al");
    CHECK(rec->hash == detail::md5_hex("I'm allergic to peanuts"));
    CHECK(rec->created_at == rec->updated_at);
    CHECK(mem.get(r.results[1].id)->role == "assistant");
  }
  SECTION("an exact duplicate in the scope is NONE; in another scope it is new") {
    const auto first = mem.add("I like tea", user("alice"));
    const auto again = mem.add("I like tea", user("alice"));
    REQUIRE(again.results.size() == 1);
    CHECK(again.results[0].event == event_kind::none);
    CHECK(again.results[0].id == first.results[0].id);
    CHECK(mem.add("I like tea", user("bob")).results[0].event == event_kind::add);
    const std::vector<message> twice = {{"user", "same", ""}, {"user", "same", ""}};
    CHECK(mem.add(twice, user("carol")).results.size() == 1);
    CHECK(mem.get_all(user("carol")).size() == 1);
    CHECK(mem.size() == 3);
  }
  SECTION("infer=false stores as given") {
    const auto r = mem.add("Raw note", user("alice"), {.infer = false});
    CHECK(r.results.at(0).event == event_kind::add);
  }
  SECTION("metadata is stored") {
    const auto r = mem.add("Prefers aisle seats", user("alice"), {.metadata = {{"category", "travel"}}});
    CHECK(mem.get(r.results[0].id)->metadata["category"] == "travel");
  }
  SECTION("blank input stores nothing") {
    CHECK(mem.add("   ", user("alice")).results.empty());
    CHECK(mem.size() == 0);
  }
}

TEST_CASE("memory: errors are typed and store nothing", "[memory][errors]") {
  memory mem;
  mem.add("keep me", user("alice"));
  CHECK_THROWS_AS(mem.add("x", scope{}), validation_error);
  CHECK_THROWS_WITH(mem.add("x", scope{}), Catch::Contains("user_id, agent_id, run_id"));
  CHECK_THROWS_AS(mem.add("x", user("a"), {.metadata = {{"user_id", "bob"}}}), validation_error);
  CHECK_THROWS_WITH(mem.add("x", user("a"), {.metadata = {{"agent_id", "z"}}}), Catch::Contains("agent_id"));
  CHECK_THROWS_AS(mem.add("x", user("a"), {.metadata = nlohmann::json::array()}), validation_error);
  CHECK_THROWS_AS(mem.add(std::string(70000, 'a'), user("a")), validation_error);
  CHECK_THROWS_AS(mem.add("bad \xff utf8", user("a")), validation_error);
  CHECK_THROWS_AS(mem.add("x", user("a"), {.metadata = {{"blob", std::string(70000, 'b')}}}), validation_error);
  CHECK_THROWS_AS(mem.search("x", scope{}), validation_error);
  CHECK_THROWS_AS(mem.search("", user("alice")), validation_error);
  CHECK_THROWS_AS(mem.search("x", user("alice"), {.limit = 0}), validation_error);
  CHECK_THROWS_AS(mem.search("x", user("alice"), {.limit = 1001}), validation_error);
  CHECK_THROWS_AS(mem.get_all(scope{}), validation_error);
  CHECK_THROWS_AS(mem.delete_all(scope{}), validation_error);
  CHECK_THROWS_AS(mem.update("no-such-id", "x"), not_found);
  CHECK_THROWS_AS(mem.delete_memory("no-such-id"), not_found);
  CHECK_FALSE(mem.get("no-such-id").has_value());
  CHECK(mem.history("no-such-id").empty());
  const auto id = mem.get_all(user("alice")).at(0).id;
  CHECK_THROWS_AS(mem.update(id, ""), validation_error);
  CHECK_THROWS_AS(mem.update(id, "y", {.metadata = nlohmann::json{{"role", "admin"}}}), validation_error);
  // nothing above changed what was stored
  REQUIRE(mem.size() == 1);
  CHECK(mem.get(id)->memory == "keep me");
  CHECK(mem.history(id).size() == 1);
}

TEST_CASE("memory: update keeps created_at, bumps updated_at, re-embeds, records history", "[memory]") {
  memory mem;
  const auto id = mem.add("I live in Lisbon", user("alice")).results.at(0).id;
  const auto before = *mem.get(id);
  const auto after = mem.update(id, "I moved to Porto", {.metadata = nlohmann::json{{"city", "Porto"}}});
  CHECK(after.created_at == before.created_at);
  CHECK(after.updated_at >= before.updated_at);
  CHECK(after.hash == detail::md5_hex("I moved to Porto"));
  CHECK(mem.get(id)->metadata["city"] == "Porto");
  CHECK(mem.search("porto", user("alice")).at(0).record.id == id);
  CHECK(mem.search("porto", user("alice")).at(0).score > 0.5f);

  const auto h = mem.history(id);
  REQUIRE(h.size() == 2);
  CHECK(h[0].event == event_kind::add);
  CHECK(h[0].new_memory == "I live in Lisbon");
  CHECK_FALSE(h[0].old_memory);
  CHECK(h[1].event == event_kind::update);
  CHECK(h[1].old_memory == "I live in Lisbon");
  CHECK(h[1].new_memory == "I moved to Porto");
  CHECK(h[1].updated_at.has_value());
  // the old text is no longer an exact duplicate; the new one is
  CHECK(mem.add("I moved to Porto", user("alice")).results[0].event == event_kind::none);
  CHECK(mem.add("I live in Lisbon", user("alice")).results[0].event == event_kind::add);
}

TEST_CASE("memory: delete keeps history; delete_all touches only its scope; reset wipes", "[memory]") {
  memory mem;
  const auto a1 = mem.add("alice one", user("alice")).results[0].id;
  mem.add("alice two", scope{"alice", "agent-x", ""});
  mem.add("bob one", user("bob"));
  mem.add("carol one", user("carol"));

  mem.delete_memory(a1);
  CHECK_FALSE(mem.get(a1));
  const auto h = mem.history(a1);
  REQUIRE(h.size() == 2);
  CHECK(h[1].event == event_kind::del);
  CHECK(h[1].is_deleted);
  CHECK(h[1].old_memory == "alice one");
  CHECK(mem.search("alice one", user("alice"), {.limit = 10}).size() == 1);

  CHECK(mem.delete_all(user("alice")) == 1);
  CHECK(mem.get_all(user("alice")).empty());
  CHECK(mem.get_all(user("bob")).size() == 1);
  CHECK(mem.get_all(user("carol")).size() == 1);
  CHECK(mem.delete_all(user("nobody")) == 0);

  mem.reset();
  CHECK(mem.size() == 0);
  CHECK(mem.get_all(all_scopes).empty());
  CHECK(mem.history(a1).empty());
  // usable after reset, slots reused
  mem.add("fresh start", user("alice"));
  CHECK(mem.search("fresh", user("alice")).size() == 1);
}

TEST_CASE("memory: add results and search hits serialise in Mem0's shapes", "[memory][json]") {
  memory mem;
  const auto added = mem.add("I like jazz", user("alice"), {.metadata = {{"genre", "music"}}});
  const nlohmann::json aj = added;
  REQUIRE(aj["results"].size() == 1);
  CHECK(aj["results"][0]["event"] == "ADD");
  CHECK(aj["results"][0]["memory"] == "I like jazz");
  CHECK(is_uuid(aj["results"][0]["id"].get<std::string>()));
  CHECK_FALSE(aj.contains("skipped"));

  const auto sj = results(mem.search("jazz", user("alice")));
  REQUIRE(sj["results"].size() == 1);
  const auto& hit = sj["results"][0];
  for (const char* key : {"id", "memory", "hash", "metadata", "created_at", "updated_at", "user_id", "score"})
    CHECK(hit.contains(key));
  CHECK(hit["metadata"]["genre"] == "music");
  CHECK(hit["score"].get<double>() > 0.5);
}

namespace {
// A user-written Embedder: counts vowels and consonants. Not useful, but a valid policy.
struct letter_embedder {
  std::size_t dimension() const { return 2; }
  std::vector<float> embed(std::string_view t) const {
    float v = 0, c = 0;
    for (char ch : t) {
      if (std::string_view("aeiou").find(ch) != std::string_view::npos)
        ++v;
      else if (ch >= 'a' && ch <= 'z')
        ++c;
    }
    return {v + 0.01f, c + 0.01f};
  }
};
struct wrong_size_embedder {
  std::size_t dimension() const { return 4; }
  std::vector<float> embed(std::string_view) const { return {1.0f, 2.0f}; }
};
}  // namespace

TEST_CASE("memory: a user-written embedder plugs in", "[memory][policies]") {
  static_assert(embedder<letter_embedder>);
  static_assert(!embedder<int>);
  static_assert(vector_index<flat_index>);
  static_assert(record_store<memory_store>);
  static_assert(fact_extractor<verbatim_extractor>);
  basic_memory<letter_embedder, flat_index, memory_store, verbatim_extractor> mem;
  mem.add("aaaa", user("u"));
  mem.add("zzzz", user("u"));
  CHECK(mem.search("eeee", user("u")).at(0).record.memory == "aaaa");
  CHECK(mem.search("xxxx", user("u")).at(0).record.memory == "zzzz");

  basic_memory<wrong_size_embedder, flat_index, memory_store, verbatim_extractor> bad;
  CHECK_THROWS_AS(bad.add("x", user("u")), dimension_mismatch);
  CHECK(bad.size() == 0);
}

namespace {
/// Each message as a fact, as given.
std::vector<fact> facts_of(std::span<const message> msgs) {
  std::vector<fact> out;
  for (const auto& m : msgs) out.push_back({m.content, m.role, m.name, nlohmann::json::object()});
  return out;
}

// An extractor that tries to reach outside its scope and invent ids: the memory refuses.
struct rogue_extractor {
  std::shared_ptr<std::string> target;
  std::vector<fact> extract(std::span<const message> msgs, const extraction_context&) const { return facts_of(msgs); }
  std::vector<memory_action> decide(std::span<const fact> facts, std::span<const std::vector<existing_memory>>,
                                    const extraction_context&) const {
    return {memory_action{event_kind::update, facts[0].text, *target, 0},
            memory_action{event_kind::del, "", "invented-id", 0},
            memory_action{event_kind::add, facts[0].text, "", 0}};
  }
};
}  // namespace

TEST_CASE("memory: an extractor cannot touch another scope's memory", "[memory][policies]") {
  auto target = std::make_shared<std::string>();
  basic_memory<hashing_embedder, flat_index, memory_store, rogue_extractor> mem(hashing_embedder{}, memory_store{},
                                                                                 rogue_extractor{target});
  const auto bob_id = mem.add("bob's secret", user("bob"), {.infer = false}).results.at(0).id;
  *target = bob_id;
  const auto r = mem.add("alice says hi", user("alice"));
  CHECK(r.skipped.size() == 2);  // the update of bob's memory from alice's scope, and the invented id
  REQUIRE(r.results.size() == 1);
  CHECK(r.results[0].event == event_kind::add);
  CHECK(mem.get(bob_id)->memory == "bob's secret");
  CHECK(mem.history(bob_id).size() == 1);
  CHECK(nlohmann::json(r)["skipped"].size() == 2);
}

namespace {
// Reconciles every add against two given memories: UPDATEs the first with the new fact, DELETEs the second.
struct contradicting_extractor {
  std::shared_ptr<std::pair<std::string, std::string>> targets;
  std::vector<fact> extract(std::span<const message> msgs, const extraction_context&) const { return facts_of(msgs); }
  std::vector<memory_action> decide(std::span<const fact> facts, std::span<const std::vector<existing_memory>>,
                                    const extraction_context&) const {
    return {memory_action{event_kind::update, facts[0].text, targets->first, 0},
            memory_action{event_kind::del, "", targets->second, 0}};
  }
};
}  // namespace

TEST_CASE("memory: reconciliation never changes an immutable memory; update refuses it, delete removes it",
          "[memory][immutable]") {
  auto targets = std::make_shared<std::pair<std::string, std::string>>();
  basic_memory<hashing_embedder, flat_index, memory_store, contradicting_extractor> mem(
      hashing_embedder{}, memory_store{}, contradicting_extractor{targets});
  const auto blood = mem.add("Ivy's blood type is O negative", user("ivy"), {.infer = false, .immutable = true}).results.at(0).id;
  const auto allergy = mem.add("Ivy is allergic to penicillin", user("ivy"), {.infer = false, .immutable = true}).results.at(0).id;
  const auto plain = mem.add("Ivy likes tea", user("ivy"), {.infer = false}).results.at(0).id;
  CHECK(mem.get(blood)->immutable);
  CHECK_FALSE(mem.get(plain)->immutable);

  *targets = {blood, allergy};
  auto r = mem.add("Ivy's blood type is A positive", user("ivy"));
  CHECK(mem.get(blood)->memory == "Ivy's blood type is O negative");  // the UPDATE became an ADD
  CHECK(mem.get(allergy));                                            // the DELETE was skipped
  REQUIRE(r.results.size() == 1);
  CHECK(r.results[0].event == event_kind::add);
  CHECK(r.results[0].memory == "Ivy's blood type is A positive");
  CHECK_FALSE(mem.get(r.results[0].id)->immutable);
  REQUIRE(r.skipped.size() == 1);
  CHECK(r.skipped[0].reason.find("immutable") != std::string::npos);
  CHECK(mem.history(blood).size() == 1);

  *targets = {plain, allergy};  // a mutable memory is reconciled as before
  r = mem.add("Ivy likes coffee", user("ivy"));
  CHECK(mem.get(plain)->memory == "Ivy likes coffee");
  CHECK(mem.get(allergy));

  CHECK_THROWS_WITH(mem.update(blood, "Ivy's blood type is B"), Catch::Contains("immutable"));
  CHECK_THROWS_AS(mem.update(blood, update_options{.metadata = nlohmann::json{{"k", 1}}}), validation_error);
  CHECK(mem.get(blood)->memory == "Ivy's blood type is O negative");
  CHECK(mem.history(blood).size() == 1);
  mem.delete_memory(blood);
  CHECK_FALSE(mem.get(blood));
}

TEST_CASE("memory: an empty scope with a filter that names its scopes reads the scopes it names", "[memory]") {
  memory mem;
  mem.add("Ann likes green tea", user("ann"), {.infer = false});
  mem.add("Bo likes black tea", user("bo"), {.infer = false});
  mem.add("Cy likes mint tea", user("cy"), {.infer = false});
  const auto two = parse_filter(R"({"OR":[{"user_id":"ann"},{"user_id":"bo"}]})");
  const auto hits = mem.search("tea", scope{}, {.filter = two});
  std::set<std::string> users;
  for (const auto& h : hits) users.insert(h.record.user_id);
  CHECK(users == std::set<std::string>{"ann", "bo"});
  CHECK(mem.get_all(scope{}, {.filter = two}).size() == 2);
  // a filter that does not name its scopes is no scope
  const auto loose = parse_filter(R"({"OR":[{"user_id":"ann"},{"topic":"x"}]})");
  CHECK_THROWS_WITH(mem.search("tea", scope{}, {.filter = loose}), Catch::Contains("search: a scope is required"));
  CHECK_THROWS_WITH(mem.get_all(scope{}), Catch::Contains("get_all: a scope is required"));
}

namespace {
/// A memory_store that records which threads write access counts.
struct access_writer_log : memory_store {
  struct log {
    std::mutex mtx;
    std::vector<std::thread::id> writers;
  };
  std::shared_ptr<log> seen = std::make_shared<log>();
  void add_access(std::span<const access_increment> a) {
    {
      std::lock_guard lock(seen->mtx);
      seen->writers.push_back(std::this_thread::get_id());
    }
    memory_store::add_access(a);
  }
};
}  // namespace

TEST_CASE("memory: a search never writes to the store; its hits are written by the flusher", "[memory][access]") {
  memory_config cfg;
  cfg.access_flush_interval = std::chrono::milliseconds{0};  // written as soon as counted
  access_writer_log store;
  auto seen = store.seen;
  basic_memory<hashing_embedder, flat_index, access_writer_log, verbatim_extractor> mem(
      hashing_embedder(), flat_index(hashing_embedder().dimension()), std::move(store), verbatim_extractor(), cfg);
  const auto id = mem.add("The kettle is in the kitchen", user("kim"), {.infer = false}).results.at(0).id;
  for (int i = 0; i < 20; ++i) REQUIRE(mem.search("kettle", user("kim")).size() == 1);
  std::uint32_t stored = 0;
  for (int i = 0; i < 500 && stored < 20; ++i) {
    stored = 0;
    mem.store().for_each_access_count(scope{}, [&](const std::string& m, std::uint32_t n) { stored += m == id ? n : 0; });
    if (stored < 20) std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  CHECK(stored == 20);
  std::lock_guard lock(seen->mtx);
  REQUIRE(!seen->writers.empty());
  for (const auto& t : seen->writers) CHECK(t != std::this_thread::get_id());
}

TEST_CASE("memory: update merges metadata and may change text, metadata or expiration alone", "[memory]") {
  memory mem;
  const auto id = mem.add("Ann keeps bees", user("ann"),
                          {.metadata = {{"topic", "hobby"}, {"place", {{"city", "Lisbon"}, {"roof", true}}}},
                           .infer = false})
                      .results.at(0)
                      .id;
  const auto before = *mem.get(id);

  // metadata alone: merged as a JSON merge patch (null removes a key); the text and its vector stay
  const auto after = mem.update(id, update_options{.metadata = nlohmann::json{
                                                       {"topic", nullptr}, {"mood", "calm"}, {"place", {{"city", "Porto"}}}}});
  CHECK(after.memory == "Ann keeps bees");
  CHECK(after.embedding == before.embedding);
  CHECK(after.metadata == nlohmann::json{{"mood", "calm"}, {"place", {{"city", "Porto"}, {"roof", true}}}});
  CHECK(mem.get(id)->metadata == after.metadata);
  CHECK(mem.search("bees", user("ann")).at(0).record.id == id);
  const auto h = mem.history(id);
  REQUIRE(h.size() == 2);
  CHECK(h[1].event == event_kind::update);
  CHECK(h[1].old_memory == h[1].new_memory);

  // the expiration date alone hides it; clearing it shows it again
  mem.update(id, update_options{.expiration_date = "2000-01-01"});
  CHECK(mem.search("bees", user("ann")).empty());
  mem.update(id, update_options{.expiration_date = ""});
  CHECK(mem.search("bees", user("ann")).size() == 1);

  // text with a metadata patch: both change, other keys stay
  const auto text = mem.update(id, "Ann keeps two hives", {.metadata = nlohmann::json{{"count", 2}}});
  CHECK(text.metadata["mood"] == "calm");
  CHECK(text.metadata["count"] == 2);
  CHECK(mem.search("hives", user("ann")).at(0).record.id == id);

  // a timestamp (Mem0's, when the change happened) sets updated_at and the event's time; alone it is a change
  const auto when = parse_iso8601("2025-02-03T04:05:06Z");
  const auto stamped = mem.update(id, update_options{.timestamp = when});
  CHECK(stamped.updated_at == when);
  CHECK(stamped.memory == "Ann keeps two hives");
  CHECK(mem.get(id)->updated_at == when);
  CHECK(mem.history(id).back().updated_at == when);

  // nothing to change, or a patch that makes metadata too large: refused, nothing stored
  CHECK_THROWS_WITH(mem.update(id, update_options{}), Catch::Contains("nothing to change"));
  memory_config small;
  small.limits.max_metadata_bytes = 64;
  memory tight(hashing_embedder(), memory_store(), verbatim_extractor(), small);
  const auto t = tight.add("short", user("u"), {.metadata = {{"a", "x"}}, .infer = false}).results.at(0).id;
  CHECK_THROWS_AS(tight.update(t, update_options{.metadata = nlohmann::json{{"b", std::string(60, 'y')}}}),
                  validation_error);
  CHECK(tight.get(t)->metadata == nlohmann::json{{"a", "x"}});
  CHECK(tight.history(t).size() == 1);
}

namespace {
/// An embedder with fixed vectors: "query" and "near" have cosine 0.8 and share no word; "far" is orthogonal.
struct fixed_embedder {
  std::size_t dimension() const { return 2; }
  std::vector<float> embed(std::string_view text) const {
    if (text.find("query") != std::string_view::npos) return {1.0f, 0.0f};
    if (text.find("near") != std::string_view::npos) return {0.8f, 0.6f};
    return {0.0f, 1.0f};
  }
};
}  // namespace

TEST_CASE("memory: the threshold gates the semantic score, the fused score ranks", "[memory][rank]") {
  basic_memory<fixed_embedder, flat_index, memory_store, verbatim_extractor> mem;
  mem.add("near: a memory close in meaning", user("u"), {.infer = false});
  mem.add("far away memory", user("u"), {.infer = false});
  for (const float threshold : {0.35f, 0.6f}) {  // CrewAI's thresholds
    const auto hits = mem.search("the query words", user("u"), {.threshold = threshold, .explain = true});
    REQUIRE(hits.size() == 1);  // hybrid: fused 0.5 * 0.8 = 0.4, no keyword; kept by its cosine 0.8
    CHECK(hits[0].record.memory.starts_with("near"));
    CHECK(hits[0].details->cosine == Approx(0.8f));
    CHECK(hits[0].details->final == Approx(0.4f));
    CHECK(hits[0].score == Approx(0.4f));
  }
  CHECK(mem.search("the query words", user("u"), {.threshold = 0.81f}).empty());
  // keyword mode has no cosine: the threshold gates its fused score
  CHECK(mem.search("far", user("u"), {.threshold = 0.9f, .mode = search_mode::keyword}).size() == 1);
}

namespace {
/// Records the context of every extraction, then stores the messages as given.
struct context_recorder {
  std::shared_ptr<std::vector<extraction_context>> seen = std::make_shared<std::vector<extraction_context>>();
  std::vector<fact> extract(std::span<const message> m, const extraction_context& ctx) const {
    seen->push_back(ctx);
    return verbatim_extractor{}.extract(m, ctx);
  }
  std::vector<memory_action> decide(std::span<const fact> f, std::span<const std::vector<existing_memory>> n,
                                    const extraction_context& ctx) const {
    return verbatim_extractor{}.decide(f, n, ctx);
  }
};
}  // namespace

TEST_CASE("memory: an add's timestamp is when the conversation happened", "[memory]") {
  context_recorder x;
  auto seen = x.seen;
  basic_memory<hashing_embedder, flat_index, memory_store, context_recorder> mem(hashing_embedder(), memory_store(),
                                                                                 std::move(x));
  const auto then = parse_iso8601("2024-03-01T10:00:00Z");
  const auto id = mem.add("We adopted a dog", user("u"), {.timestamp = then}).results.at(0).id;
  CHECK(mem.get(id)->created_at == then);
  CHECK(mem.get(id)->valid_from == then);  // true since the conversation
  CHECK_FALSE(mem.get(id)->invalid_at);
  CHECK_FALSE(mem.get(id)->superseded_by);
  CHECK(mem.history(id).at(0).created_at == then);
  REQUIRE(seen->size() == 1);
  CHECK(seen->front().when == then);
  const auto now_id = mem.add("We bought a cat", user("u")).results.at(0).id;
  CHECK(mem.get(now_id)->created_at > then);
  CHECK(mem.get(now_id)->valid_from == mem.get(now_id)->created_at);  // no timestamp: since it was added
  mem.update(now_id, "We bought two cats");
  CHECK(mem.get(now_id)->valid_from == mem.get(now_id)->created_at);  // an update leaves it
  CHECK_FALSE(seen->back().when.has_value());
}

namespace {
/// A memory_store that counts get() calls.
struct get_counter : memory_store {
  std::shared_ptr<std::atomic<int>> gets = std::make_shared<std::atomic<int>>(0);
  [[nodiscard]] std::optional<record> get(std::string_view id) const {
    ++*gets;
    return memory_store::get(id);
  }
};

/// Stores each message as said and records how many neighbours each decision was given.
struct neighbour_recorder {
  std::shared_ptr<std::vector<std::size_t>> given = std::make_shared<std::vector<std::size_t>>();
  std::vector<fact> extract(std::span<const message> m, const extraction_context& ctx) const {
    return verbatim_extractor{}.extract(m, ctx);
  }
  std::vector<memory_action> decide(std::span<const fact> facts, std::span<const std::vector<existing_memory>> near,
                                    const extraction_context& ctx) const {
    for (const auto& n : near) given->push_back(n.size());
    return verbatim_extractor{}.decide(facts, near, ctx);
  }
};
using counted_memory = basic_memory<hashing_embedder, flat_index, get_counter, any_extractor>;
}  // namespace

TEST_CASE("memory: a verbatim add looks for its exact text only, without a neighbour search", "[memory][extractor]") {
  CHECK(detail::decides_verbatim(verbatim_extractor{}));
  CHECK(detail::decides_verbatim(any_extractor{}));
  CHECK_FALSE(detail::decides_verbatim(any_extractor(neighbour_recorder{})));
  CHECK_FALSE(detail::decides_verbatim(neighbour_recorder{}));

  get_counter store;
  auto gets = store.gets;
  counted_memory mem(hashing_embedder(), flat_index(hashing_embedder().dimension()), std::move(store), any_extractor{});
  for (const char* t : {"I like tea", "I live in Lisbon", "I keep bees", "I play the cello", "I fear spiders"})
    mem.add(t, user("alice"));
  *gets = 0;
  CHECK(mem.add("I collect stamps", user("alice")).results.at(0).event == event_kind::add);
  CHECK(*gets == 0);  // no neighbour was read: the scope holds no memory with this text
  const auto first = mem.get_all(user("alice")).front();
  const auto again = mem.add(first.memory, user("alice"));  // infer (the default) with the verbatim extractor
  REQUIRE(again.results.size() == 1);
  CHECK(again.results[0].event == event_kind::none);
  CHECK(again.results[0].id == first.id);
  CHECK(mem.add(first.memory, user("bob")).results.at(0).event == event_kind::add);
  CHECK(mem.get_all(user("alice")).size() == 6);

  // an extractor that decides by itself is given the neighbours, with infer
  neighbour_recorder recorder;
  auto given = recorder.given;
  counted_memory other(hashing_embedder(), flat_index(hashing_embedder().dimension()), get_counter{},
                       any_extractor(std::move(recorder)));
  for (const char* t : {"I like tea", "I live in Lisbon", "I keep bees"}) other.add(t, user("alice"));
  REQUIRE(given->size() == 3);
  CHECK(given->back() == 2);
  other.add("I fear spiders", user("alice"), {.infer = false});  // without infer, the verbatim decision: none given
  CHECK(given->size() == 3);
  CHECK(other.get_all(user("alice")).size() == 4);
}
