#pragma once
#include "kill_child.hpp"
#include "temp_dir.hpp"
// The store behaviour suite, shared by tests/store.cpp and tests/sqlite/store_sqlite.cpp.
// Before including it, define:
//   using store_kinds = std::tuple<...>;          every store kind (volatile ones too)
//   using durable_store_kinds = std::tuple<...>;  kinds whose data survives reopening
// A kind has: `using store_type`, `static store_type open(const std::string& dir)`.

#include <engram/engram.hpp>
#include <engram/tools/jsonl.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

namespace store_test {

using namespace engram;

using engram_test::temp_dir;

template <class Store>
using memory_over = basic_memory<hashing_embedder, flat_index, Store, verbatim_extractor>;
template <class Store>
using platform_memory_over = basic_memory<hashing_embedder, flat_index, Store, verbatim_extractor, platform_scope_keys>;

/// Scope `s` in organisation `org`, project `project` (platform_scope_keys), with app `app` when not empty.
inline scope in_project(scope s, std::string_view org, std::string_view project, std::string_view app = {}) {
  set_scope_key<platform_scope_keys>(s, "org_id", org);
  set_scope_key<platform_scope_keys>(s, "project_id", project);
  set_scope_key<platform_scope_keys>(s, "app_id", app);
  return s;
}

/// An extractor's answer for sample `i`: unset (recognised from the text) for i % 3 == 0, set but empty (the
/// extractor found none) for i % 6 == 2, else entities of every type (quoted, non-ASCII) and a relation.
inline std::optional<recognized_entities> sample_entities(int i) {
  if (i % 3 == 0) return std::nullopt;
  if (i % 6 == 2) return recognized_entities{};
  const auto n = std::to_string(i);
  recognized_entities e;
  e.entities = {{"Zo\xC3\xAB \"Z\" " + n, static_cast<entity_type>(i % 7)}, {"Acme " + n, entity_type::organization}};
  if (i % 2) e.entities.push_back({"", entity_type::name});  // kept as given, even an empty name
  e.relations = {{"Zo\xC3\xAB \"Z\" " + n, "works at", "Acme " + n}};
  return e;
}

inline record sample_record(int i, std::size_t dim = 8) {
  record r;
  r.id = "rec-" + std::to_string(i);
  r.memory = "memory number " + std::to_string(i) + " \xC3\xA9t\xC3\xA9 \"quoted\"\n";
  r.hash = "hash-" + std::to_string(i);
  r.metadata = nlohmann::json{{"n", i},
                              {"neg", -i - 1},
                              {"pi", 3.14159265358979 * i},
                              {"tiny", 1e-300},
                              {"tags", {"a", "b"}},
                              {"nested", {{"ok", true}, {"none", nullptr}}}};
  r.user_id = i % 2 ? "alice" : "bob";
  r.agent_id = i % 3 ? "" : "planner";
  r.run_id = i % 5 ? "" : "run-" + std::to_string(i);
  r.actor_id = "actor";
  r.role = "user";
  if (i % 4 == 1) r.expiration_date = "2030-01-0" + std::to_string(1 + i % 9);
  r.immutable = i % 3 == 2;
  r.created_at = timestamp{std::chrono::microseconds{1700000000123456LL + i}};
  r.updated_at = r.created_at + std::chrono::microseconds{7};
  if (i % 2 == 0) r.valid_from = r.created_at - std::chrono::hours{24 * 30} - std::chrono::microseconds{i};
  if (i % 4 == 3) {  // contradicted: closed and linked to its successor
    r.invalid_at = r.created_at + std::chrono::hours{24} + std::chrono::microseconds{i};
    r.superseded_by = "rec-" + std::to_string(i + 1);
  }
  r.entities = sample_entities(i);
  if (i % 7 == 3) r.tenant = "org_id=acme\nproject_id=p" + std::to_string(i % 2);  // key sets beyond Mem0's
  if (i % 5 == 4) r.extra = "app_id=app-" + std::to_string(i);
  std::mt19937 rng(static_cast<unsigned>(i));
  std::normal_distribution<float> nd;
  for (std::size_t k = 0; k < dim; ++k) r.embedding.push_back(nd(rng));
  return r;
}

inline history_event sample_event(const record& r, event_kind k, int n) {
  history_event e;
  e.id = "ev-" + r.id + "-" + std::to_string(n);
  e.memory_id = r.id;
  e.event = k;
  e.created_at = r.created_at;
  if (k != event_kind::add) e.updated_at = r.updated_at + std::chrono::microseconds{n};
  if (k != event_kind::add) e.old_memory = "old " + r.memory;
  if (k != event_kind::del) e.new_memory = r.memory;
  e.is_deleted = k == event_kind::del;
  e.actor_id = n % 2 ? "" : "someone";
  e.role = n % 2 ? "" : "assistant";
  return e;
}

/// Whether store kind `Kind` keeps its data through reopening (is one of durable_store_kinds).
template <class Kind, class Kinds = durable_store_kinds>
inline constexpr bool is_durable = false;
template <class Kind, class... Kinds>
inline constexpr bool is_durable<Kind, std::tuple<Kinds...>> = (std::is_same_v<Kind, Kinds> || ...);

/// The identity a store reports, when it reports one (identity_reporting_store).
template <class Store>
std::optional<store_identity> store_identity_of(const Store& s) {
  if constexpr (identity_reporting_store<Store>) return s.identity();
  return std::nullopt;
}

template <class Store>
std::map<std::string, record> all_records(const Store& s) {
  std::map<std::string, record> out;
  s.for_each([&](const record& r) { out.emplace(r.id, r); });
  return out;
}

}  // namespace store_test

TEMPLATE_LIST_TEST_CASE("store: a batch is applied whole, history outlives the record", "[store]", store_kinds) {
  using namespace store_test;
  temp_dir dir;
  auto s = TestType::open(dir.sub("db"));
  const auto a = sample_record(1), b = sample_record(2);
  write_batch w;
  w.upserts = {a, b};
  w.events = {sample_event(a, event_kind::add, 0), sample_event(b, event_kind::add, 0)};
  s.apply(w);
  CHECK(s.get(a.id) == a);
  CHECK(s.get(b.id) == b);
  CHECK_FALSE(s.get("nope").has_value());

  auto a2 = a;
  a2.memory = "changed";
  write_batch u;
  u.upserts = {a2};
  u.erases = {b.id};
  u.events = {sample_event(a2, event_kind::update, 1), sample_event(b, event_kind::del, 2)};
  s.apply(u);
  CHECK(s.get(a.id) == a2);
  CHECK_FALSE(s.get(b.id).has_value());
  const auto hb = s.history(b.id);
  REQUIRE(hb.size() == 2);
  CHECK(hb[0] == sample_event(b, event_kind::add, 0));
  CHECK(hb[1] == sample_event(b, event_kind::del, 2));
  CHECK(s.history(a.id).back().event == event_kind::update);
  CHECK(s.history("never").empty());
  CHECK(all_records(s).size() == 1);

  s.clear();
  CHECK(all_records(s).empty());
  CHECK(s.history(a.id).empty());
}

TEMPLATE_LIST_TEST_CASE("store: bind refuses another embedder, naming both", "[store]", store_kinds) {
  using namespace store_test;
  temp_dir dir;
  auto s = TestType::open(dir.sub("db"));
  s.bind(store_identity{"hashing-v1", 64});
  s.bind(store_identity{"hashing-v1", 64});
  try {
    s.bind(store_identity{"hashing-v1", 128});
    FAIL("expected dimension_mismatch");
  } catch (const dimension_mismatch& e) {
    CHECK(e.expected() == 64);
    CHECK(e.actual() == 128);
  }
  try {
    s.bind(store_identity{"openai:text-embedding-3-small", 64});
    FAIL("expected validation_error");
  } catch (const validation_error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("hashing-v1") != std::string::npos);
    CHECK(msg.find("openai:text-embedding-3-small") != std::string::npos);
  }
}

TEMPLATE_LIST_TEST_CASE("store: scope key sets: a wider one is recorded, a narrower one refused naming both; "
                        "projects stay apart through delete_all, purge and reopening",
                        "[store][scope_keys]", store_kinds) {
  using namespace store_test;
  using mem0_t = memory_over<typename TestType::store_type>;
  using platform_t = platform_memory_over<typename TestType::store_type>;
  temp_dir dir;
  {
    mem0_t m(hashing_embedder(64), TestType::open(dir.sub("db")));  // written before key sets: Mem0's keys
    m.add("alice likes tea", user("a"), {.infer = false});
  }
  const auto prod = in_project(user("a"), "acme", "prod"), staging = in_project(user("a"), "acme", "staging");
  auto check_apart = [&](const platform_t& m) {
    CHECK(m.get_all(user("a")).size() == 1);  // the memory of before, in no project
    CHECK(m.get_all(prod).size() == 2);
    CHECK(m.get_all(staging).size() == 1);
    CHECK(m.get_all(in_project(scope{}, "acme", "prod", "mobile")).size() == 1);
    for (const auto& r : m.get_all(prod)) CHECK(r.tenant == prod.tenant);
    for (const auto& h : m.search("coffee", staging)) CHECK(h.record.scope().tenant == staging.tenant);
  };
  {
    platform_t m(hashing_embedder(64), TestType::open(dir.sub("db")));  // wider: recorded from now on
    if constexpr (!TestType::durable) m.add("alice likes tea", user("a"), {.infer = false});
    m.add("alice likes coffee", prod, {.infer = false});
    m.add("alice likes juice", in_project(user("a"), "acme", "prod", "mobile"), {.infer = false});
    m.add("alice likes coffee", staging, {.infer = false});  // the same text, another project: not a duplicate
    check_apart(m);
    if (auto id = store_identity_of(m.store())) CHECK(id->scope_keys == "tenant=org_id,project_id;extra=app_id");
  }
  if constexpr (TestType::durable) {
    {
      platform_t m(hashing_embedder(64), TestType::open(dir.sub("db")));
      check_apart(m);
      CHECK(m.delete_all(staging) == 1);
      CHECK(m.get_all(prod).size() == 2);
      CHECK(m.purge(prod) == 2);
      CHECK(m.get_all(user("a")).size() == 1);
    }
    try {
      mem0_t narrow(hashing_embedder(64), TestType::open(dir.sub("db")));
      FAIL("expected validation_error");
    } catch (const validation_error& e) {
      const std::string msg = e.what();
      CHECK(msg.find("org_id") != std::string::npos);
      CHECK(msg.find("user_id,agent_id,run_id") != std::string::npos);
    }
  }
  try {
    mem0_t m(hashing_embedder(64), TestType::open(dir.sub("db")));
    m.add("x", prod, {.infer = false});
    FAIL("expected validation_error");
  } catch (const validation_error& e) {
    CHECK(std::string(e.what()).find("org_id") != std::string::npos);
  }
}

TEMPLATE_LIST_TEST_CASE("store: delete_all of one user leaves every other scope intact; reset wipes all",
                        "[store]", store_kinds) {
  using namespace store_test;
  using mem_t = memory_over<typename TestType::store_type>;
  temp_dir dir;
  {
    mem_t m(hashing_embedder(64), TestType::open(dir.sub("db")));
    m.add("alice likes tea", user("a"), {.infer = false});
    m.add("alice lives in Lisbon", scope{"a", "planner", "r1"}, {.infer = false});
    m.add("bob likes coffee", user("b"), {.infer = false});
    m.add("the planner agent note", agent("planner"), {.infer = false});
    m.add("run note", run("r1"), {.infer = false});
    const auto alice_ids = m.get_all(user("a"));
    REQUIRE(alice_ids.size() == 2);
    CHECK(m.delete_all(user("a")) == 2);
    CHECK(m.get_all(user("a")).empty());
    CHECK(m.get_all(user("b")).size() == 1);
    CHECK(m.get_all(agent("planner")).size() == 1);
    CHECK(m.get_all(run("r1")).size() == 1);
    CHECK(m.get_all(all_scopes).size() == 3);
    for (const auto& r : alice_ids) CHECK(m.history(r.id).back().event == event_kind::del);
  }
  if constexpr (TestType::durable) {
    mem_t m(hashing_embedder(64), TestType::open(dir.sub("db")));
    CHECK(m.get_all(all_scopes).size() == 3);
    CHECK(m.get_all(user("a")).empty());
    m.reset();
    CHECK(m.get_all(all_scopes).empty());
  }
  if constexpr (TestType::durable) {
    mem_t m(hashing_embedder(64), TestType::open(dir.sub("db")));
    CHECK(m.get_all(all_scopes).empty());
    m.add("after reset", user("a"), {.infer = false});
    CHECK(m.get_all(user("a")).size() == 1);
  }
}

TEMPLATE_LIST_TEST_CASE("store: reopen round-trips records, vectors, history and metadata exactly", "[store]",
                        durable_store_kinds) {
  using namespace store_test;
  temp_dir dir;
  std::map<std::string, record> expected;
  std::map<std::string, std::vector<history_event>> hist;
  {
    auto s = TestType::open(dir.sub("db"));
    s.bind(store_identity{"custom", 8});
    for (int i = 0; i < 40; ++i) {
      const auto r = sample_record(i);
      write_batch w;
      w.upserts = {r};
      w.events = {sample_event(r, event_kind::add, 0)};
      if (i % 7 == 6) {
        w.erases = {"rec-" + std::to_string(i - 1)};
        w.events.push_back(sample_event(sample_record(i - 1), event_kind::del, 1));
        expected.erase("rec-" + std::to_string(i - 1));
      }
      s.apply(w);
      expected[r.id] = r;
      for (const auto& e : w.events) hist[e.memory_id].push_back(e);
    }
    CHECK(all_records(s) == expected);
  }
  for (int round = 0; round < 2; ++round) {
    auto s = TestType::open(dir.sub("db"));
    CHECK(all_records(s) == expected);
    for (const auto& [id, events] : hist) CHECK(s.history(id) == events);
    s.bind(store_identity{"custom", 8});
    CHECK_THROWS_AS(s.bind(store_identity{"custom", 9}), dimension_mismatch);
    if constexpr (requires { s.compact(); }) s.compact();  // the second round reads the snapshot
  }
}

TEMPLATE_LIST_TEST_CASE("store: export then import into a fresh store gives identical get_all and search",
                        "[store]", store_kinds) {
  using namespace store_test;
  using mem_t = memory_over<typename TestType::store_type>;
  temp_dir dir;
  std::stringstream whole, alice_only, no_vectors;
  std::vector<record> before;
  std::vector<search_hit> hits_before;
  std::vector<history_event> hist_before;
  {
    mem_t m(hashing_embedder(64), TestType::open(dir.sub("src")));
    const char* texts[] = {"green tea in the morning", "lives in Lisbon", "two cats named Miso and Tofu",
                           "works as a nurse", "allergic to peanuts"};
    for (const char* t : texts) m.add(t, user("alice"), {.metadata = {{"src", t}, {"n", 1.5}}, .infer = false});
    m.add("bob's note", user("bob"), {.infer = false});
    const auto id = m.get_all(user("alice")).front().id;
    m.update(id, "green tea, no sugar");
    before = m.get_all(all_scopes);
    hits_before = m.search("tea with sugar", user("alice"));
    hist_before = m.history(id);
    CHECK(export_jsonl(m.store(), whole).memories == 6);
    CHECK(export_jsonl(m.store(), alice_only, {.only = user("alice")}).memories == 5);
    export_jsonl(m.store(), no_vectors, {.with_vectors = false});
  }
  auto same_hits = [](const std::vector<search_hit>& a, const std::vector<search_hit>& b) {
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i].record == b[i].record);
      CHECK(a[i].score == Approx(b[i].score));
    }
  };
  {
    auto s = TestType::open(dir.sub("dst"));
    const auto n = import_jsonl(s, whole);
    CHECK(n.memories == 6);
    mem_t m(hashing_embedder(64), std::move(s));
    CHECK(m.get_all(all_scopes) == before);
    same_hits(m.search("tea with sugar", user("alice")), hits_before);
    CHECK(m.history(hist_before.front().memory_id) == hist_before);
  }
  {
    auto s = TestType::open(dir.sub("alice"));
    import_jsonl(s, alice_only);
    mem_t m(hashing_embedder(64), std::move(s));
    CHECK(m.get_all(user("alice")).size() == 5);
    CHECK(m.get_all(user("bob")).empty());
  }
  {
    auto s = TestType::open(dir.sub("novec"));
    import_jsonl(s, no_vectors);
    mem_t m(hashing_embedder(64), std::move(s));  // embeds the texts once
    CHECK(m.get_all(all_scopes) == before);
    same_hits(m.search("tea with sugar", user("alice")), hits_before);
  }
  {
    auto s = TestType::open(dir.sub("bad"));
    std::stringstream bad(R"({"type":"memory","id":"x","memory":"ok"})"
                          "\n"
                          R"({"type":"memory","id":"y"})"
                          "\n");
    try {
      import_jsonl(s, bad);
      FAIL("expected validation_error");
    } catch (const validation_error& e) {
      CHECK(std::string(e.what()).find("line 2") != std::string::npos);
    }
    CHECK(all_records(s).empty());  // nothing applied
  }
}

TEMPLATE_LIST_TEST_CASE("store: JSONL carries valid_from, invalid_at and superseded_by; an export without them "
                        "imports as valid since created_at",
                        "[store][validity]", store_kinds) {
  using namespace store_test;
  temp_dir dir;
  auto src = TestType::open(dir.sub("src"));
  write_batch w;
  for (int i = 0; i < 8; ++i) w.upserts.push_back(sample_record(i));
  src.apply(w);
  std::stringstream out;
  export_jsonl(src, out);
  CHECK(out.str().find(R"("superseded_by":"rec-4")") != std::string::npos);
  auto expected = all_records(src);
  for (auto& [id, r] : expected) r.valid_from = r.valid_since();  // written as valid_from, always
  {
    auto dst = TestType::open(dir.sub("dst"));
    std::stringstream in(out.str());
    CHECK(import_jsonl(dst, in).memories == 8);
    CHECK(all_records(dst) == expected);
  }
  // an export of before validity: no such keys, every memory valid since created_at and never invalidated
  std::stringstream old_lines;
  for (std::string line; std::getline(out, line);) {
    auto j = nlohmann::json::parse(line);
    for (const char* key : {"valid_from", "invalid_at", "superseded_by"}) j.erase(key);
    old_lines << j.dump() << "\n";
  }
  auto old = TestType::open(dir.sub("old"));
  import_jsonl(old, old_lines);
  for (auto& [id, r] : expected) {
    r.valid_from = r.invalid_at = std::nullopt;
    r.superseded_by = std::nullopt;
  }
  CHECK(all_records(old) == expected);
}

TEMPLATE_LIST_TEST_CASE("store: entities are kept as given (unset, empty, full) through updates, reopening and "
                        "JSONL; an export without them imports unset",
                        "[store][entities]", store_kinds) {
  using namespace store_test;
  temp_dir dir;
  std::map<std::string, record> expected;
  {
    auto s = TestType::open(dir.sub("db"));
    write_batch w;
    for (int i : {0, 1, 2, 3, 4, 5, 8}) w.upserts.push_back(sample_record(i));
    s.apply(w);
    // updates: an answer replaced by another, dropped (recognised again), or given to a record without one
    w.upserts = {sample_record(1), sample_record(2), sample_record(3)};
    w.upserts[0].entities = sample_entities(5);
    w.upserts[1].entities = std::nullopt;
    w.upserts[2].entities = sample_entities(4);
    s.apply(w);
    expected = all_records(s);
    CHECK(expected.at("rec-1").entities == sample_entities(5));
    CHECK_FALSE(expected.at("rec-2").entities);
    CHECK(expected.at("rec-3").entities == sample_entities(4));
    CHECK(expected.at("rec-8").entities == recognized_entities{});  // set and empty is not unset
    CHECK(s.get("rec-5")->entities == sample_entities(5));
  }
  if constexpr (requires(typename TestType::store_type& t) { t.compact(); }) {
    auto s = TestType::open(dir.sub("db"));
    CHECK(all_records(s) == expected);
    s.compact();
  }
  if constexpr (is_durable<TestType>) CHECK(all_records(TestType::open(dir.sub("db"))) == expected);
  auto src = TestType::open(dir.sub("src"));
  write_batch w;
  for (const auto& [id, r] : expected) w.upserts.push_back(r);
  src.apply(w);
  std::stringstream out;
  export_jsonl(src, out);
  CHECK(out.str().find(R"("entities":{"entities":[],"relations":[]})") != std::string::npos);
  for (auto& [id, r] : expected) r.valid_from = r.valid_since();  // written as valid_from, always
  std::stringstream in(out.str()), old_lines;
  auto dst = TestType::open(dir.sub("dst"));
  import_jsonl(dst, in);
  CHECK(all_records(dst) == expected);
  // an export of before entities: no such key, every memory's entities recognised from its text
  for (std::string line; std::getline(out, line);) {
    auto j = nlohmann::json::parse(line);
    j.erase("entities");
    old_lines << j.dump() << "\n";
  }
  auto old = TestType::open(dir.sub("old"));
  import_jsonl(old, old_lines);
  for (auto& [id, r] : expected) r.entities = std::nullopt;
  CHECK(all_records(old) == expected);
}

TEMPLATE_LIST_TEST_CASE("store: SIGKILL while applying batches with entities loses no returned batch and tears "
                        "none",
                        "[store][crash][entities]", durable_store_kinds) {
  using namespace store_test;
  temp_dir dir;
  const auto db = dir.sub("db");
  engram_test::kill_delays delays(Catch::rngSeed() + 29, std::chrono::microseconds(100), std::chrono::milliseconds(10));
  // batch `n`: records n-a and n-b, samples 2n+1 and 2n+2 (their entities unset, empty or full) renamed
  auto batch_record = [](long n, int half) {
    auto r = sample_record(2 * static_cast<int>(n % 1000) + 1 + half);
    r.id = std::to_string(n) + (half ? "-b" : "-a");
    r.user_id = "crash";  // one scope, as an add's batch (a sharded store is atomic per scope)
    r.agent_id = r.run_id = r.tenant = r.extra = "";
    return r;
  };
  std::set<std::string> reported;
  int rounds_with_batches = 0;
  long next = 0;
  for (int round = 0; round < 15; ++round) {
    const auto child = engram_test::run_and_kill(
        [&](const engram_test::child_channel& parent) {
          auto s = TestType::open(db);
          parent.ready();
          for (long n = next;; ++n) {
            write_batch w;
            w.upserts = {batch_record(n, 0), batch_record(n, 1)};
            s.apply(w);
            parent.report(std::to_string(n));
          }
        },
        delays.next());
    REQUIRE(child.ready);
    REQUIRE(child.killed);
    delays.observed(child);
    reported.insert(child.reported.begin(), child.reported.end());
    rounds_with_batches += !child.reported.empty();
    auto s = TestType::open(db);
    std::map<std::string, int> halves;
    bool exact = true;
    long last = next - 1;
    s.for_each([&](const record& r) {
      const auto n = std::stol(r.id.substr(0, r.id.find('-')));
      ++halves[std::to_string(n)];
      last = std::max(last, n);
      exact = exact && r == batch_record(n, r.id.back() == 'b');
    });
    INFO("round " << round << ": " << child.reported.size() << " batches reported");
    CHECK(exact);  // every record read back with its entities as written
    for (const auto& [n, k] : halves) CHECK(k == 2);
    for (const auto& n : reported) CHECK(halves.count(n) == 1);
    next = last + 1;
  }
  CHECK(rounds_with_batches >= 5);  // the kills did land in the middle of applying
}

TEMPLATE_LIST_TEST_CASE("store: reopening with another embedder is a typed error naming both", "[store]",
                        durable_store_kinds) {
  using namespace store_test;
  using mem_t = memory_over<typename TestType::store_type>;
  temp_dir dir;
  {
    mem_t m(hashing_embedder(64), TestType::open(dir.sub("db")));
    m.add("something", user("a"), {.infer = false});
  }
  try {
    mem_t m(hashing_embedder(32), TestType::open(dir.sub("db")));
    FAIL("expected dimension_mismatch");
  } catch (const dimension_mismatch& e) {
    CHECK(e.expected() == 64);
    CHECK(e.actual() == 32);
  }
  mem_t m(hashing_embedder(64), TestType::open(dir.sub("db")));
  CHECK(m.get_all(user("a")).size() == 1);
}

namespace store_test {
/// The date the crash test gives add `i` of round `round`: its facts' valid_from.
inline timestamp crash_fact_date(int round, int i) {
  return timestamp{std::chrono::seconds{1600000000LL + round * 100000LL + i}};
}
}  // namespace store_test

TEMPLATE_LIST_TEST_CASE("store: SIGKILL at random moments loses no returned add and leaves no partial add",
                        "[store][crash]", durable_store_kinds) {
  using namespace store_test;
  using mem_t = memory_over<typename TestType::store_type>;
  temp_dir dir;
  const auto db = dir.sub("db");
  engram_test::kill_delays delays(Catch::rngSeed() + 17, std::chrono::microseconds(100), std::chrono::milliseconds(20));
  std::set<std::string> reported;
  int rounds_with_adds = 0;
  for (int round = 0; round < 50; ++round) {
    const auto child = engram_test::run_and_kill(
        [&](const engram_test::child_channel& parent) {
          mem_t m(hashing_embedder(32), TestType::open(db));
          parent.ready();  // open: now kill me while I add
          for (int i = 0;; ++i) {
            const std::string tag = std::to_string(round) + "-" + std::to_string(i);
            const message msgs[] = {{"user", "first half " + tag, ""}, {"user", "second half " + tag, ""}};
            // dated: the fact's valid_from must come back with the record
            m.add(std::span<const message>(msgs), user("crash"), {.infer = false, .timestamp = crash_fact_date(round, i)});
            parent.report(tag);
          }
        },
        delays.next());
    REQUIRE(child.ready);
    REQUIRE(child.killed);  // it was still adding (an exit would mean it failed)
    delays.observed(child);
    const auto added = static_cast<int>(child.reported.size());
    reported.insert(child.reported.begin(), child.reported.end());
    rounds_with_adds += added > 0;

    auto s = TestType::open(db);
    INFO("round " << round << ": " << added << " adds reported, " << reported.size() << " in all");
    std::vector<record> stored;
    s.for_each([&](const record& r) { stored.push_back(r); });
    std::map<std::string, int> halves;
    std::size_t records = 0;
    bool histories_ok = true;
    bool dates_ok = true;
    for (const auto& r : stored) {
      ++records;
      const auto sp = r.memory.rfind(' ');
      ++halves[r.memory.substr(sp + 1)];
      const auto h = s.history(r.id);
      histories_ok = histories_ok && h.size() == 1 && h[0].event == event_kind::add && h[0].new_memory == r.memory;
      const auto tag = r.memory.substr(sp + 1);
      const auto dash = tag.find('-');
      dates_ok = dates_ok && r.valid_from == crash_fact_date(std::stoi(tag.substr(0, dash)), std::stoi(tag.substr(dash + 1)));
    }
    INFO(records << " records stored");
    CHECK(histories_ok);
    CHECK(dates_ok);
    for (const auto& [tag, n] : halves) {
      INFO("round " << round << " add " << tag);
      CHECK(n == 2);  // both facts of one add, or neither
    }
    for (const auto& tag : reported) {
      INFO("round " << round << " reported add " << tag);
      CHECK(halves.count(tag) == 1);
    }
    CHECK(records == 2 * halves.size());
  }
  CHECK(rounds_with_adds >= 10);  // the kills did land in the middle of adding
  mem_t m(hashing_embedder(32), TestType::open(db));
  m.add("usable after all that", user("crash"), {.infer = false});
  CHECK(m.search("usable", user("crash"), {.limit = 1}).front().record.memory == "usable after all that");
}

// ---- the pending queue of add_async (stores modelling engram::pending_store) -----------------------------

namespace store_test {

inline pending_add sample_pending(int i) {
  pending_add p;
  p.id = "pending-" + std::to_string(i);
  p.owner = i % 2 ? user("alice") : scope{"bob", "planner", "run-" + std::to_string(i)};
  p.messages = {{"user", "message " + std::to_string(i) + " \xC3\xA9t\xC3\xA9 \"quoted\"\n", "al"},
                {"assistant", "noted", ""}};
  p.options = nlohmann::json{{"metadata", {{"n", i}, {"tags", {"x"}}}}, {"infer", i % 3 != 0}};
  p.created_at = "2026-11-24T13:00:0" + std::to_string(i % 10) + ".000000Z";
  p.attempts = static_cast<std::uint32_t>(i % 4);
  return p;
}

template <class Store>
std::vector<pending_add> queue_of(const Store& s) {
  std::vector<pending_add> out;
  s.for_each_pending([&](const pending_add& p) { out.push_back(p); });
  return out;
}

}  // namespace store_test

TEMPLATE_LIST_TEST_CASE("store: the pending queue keeps its order, replaces by id and changes with its batch",
                        "[store][pending]", store_kinds) {
  using namespace store_test;
  using S = typename TestType::store_type;
  if constexpr (!pending_store<S>) {
    WARN("this store has no pending queue (for_each_pending): add_async is not available over it");
  } else {
    temp_dir dir;
    auto s = TestType::open(dir.sub("db"));
    CHECK(queue_of(s).empty());
    const auto p1 = sample_pending(1), p2 = sample_pending(2), p3 = sample_pending(3);
    write_batch a;
    a.enqueued = {p1, p2};
    s.apply(a);
    const auto r = sample_record(7);
    write_batch b;  // a queue change with records: one atomic batch
    b.upserts = {r};
    b.events = {sample_event(r, event_kind::add, 0)};
    b.enqueued = {p3};
    s.apply(b);
    CHECK(queue_of(s) == std::vector<pending_add>{p1, p2, p3});
    CHECK(s.get(r.id) == r);

    auto p1b = p1;  // a new attempt count replaces the entry in place
    p1b.attempts = 4;
    p1b.options["last_error"] = "HTTP 503";
    write_batch c;
    c.enqueued = {p1b};
    s.apply(c);
    CHECK(queue_of(s) == std::vector<pending_add>{p1b, p2, p3});

    const auto r2 = sample_record(8);
    write_batch d;  // the add that processed p2: its memories and the dequeue together
    d.upserts = {r2};
    d.events = {sample_event(r2, event_kind::add, 0)};
    d.dequeued = {p2.id, "never-queued"};
    s.apply(d);
    CHECK(queue_of(s) == std::vector<pending_add>{p1b, p3});
    CHECK(s.get(r2.id) == r2);

    write_batch e;  // enqueued first, then dequeued
    e.enqueued = {sample_pending(4)};
    e.dequeued = {sample_pending(4).id};
    s.apply(e);
    CHECK(queue_of(s) == std::vector<pending_add>{p1b, p3});

    s.clear();  // memories and history go; accepted work stays
    CHECK(all_records(s).empty());
    CHECK(queue_of(s) == std::vector<pending_add>{p1b, p3});
  }
}

TEMPLATE_LIST_TEST_CASE("store: the pending queue survives reopening and compaction", "[store][pending]",
                        durable_store_kinds) {
  using namespace store_test;
  using S = typename TestType::store_type;
  if constexpr (!pending_store<S>) {
    WARN("this store has no pending queue (for_each_pending): add_async is not available over it");
  } else {
    temp_dir dir;
    const auto db = dir.sub("db");
    std::vector<pending_add> expect;
    {
      auto s = TestType::open(db);
      for (int i = 1; i <= 6; ++i) {
        write_batch w;
        w.enqueued = {sample_pending(i)};
        if (i % 2 == 0) w.upserts = {sample_record(i)};
        s.apply(w);
        expect.push_back(sample_pending(i));
      }
      write_batch w;
      w.dequeued = {sample_pending(2).id, sample_pending(5).id};
      s.apply(w);
      expect.erase(expect.begin() + 4);
      expect.erase(expect.begin() + 1);
      auto again = sample_pending(3);
      again.attempts = 9;
      w = {};
      w.enqueued = {again};
      s.apply(w);
      expect[1] = again;
      CHECK(queue_of(s) == expect);
    }
    {
      auto s = TestType::open(db);
      CHECK(queue_of(s) == expect);
      CHECK(all_records(s).size() == 3);
      if constexpr (requires { s.compact(); }) s.compact();
    }
    {
      auto s = TestType::open(db);
      CHECK(queue_of(s) == expect);
      write_batch w;
      for (const auto& p : expect) w.dequeued.push_back(p.id);
      s.apply(w);
    }
    auto s = TestType::open(db);
    CHECK(queue_of(s).empty());
    CHECK(all_records(s).size() == 3);
  }
}

namespace store_test {

template <class Store>
std::map<std::string, std::uint32_t> access_of(const Store& s, const scope& q = {}) {
  std::map<std::string, std::uint32_t> out;
  s.for_each_access_count(q, [&](const std::string& id, std::uint32_t n) {
    CHECK(n > 0);
    CHECK(out.emplace(id, n).second);  // each memory once
  });
  return out;
}

inline access_increment hits_of(const record& r, std::uint32_t n) { return {r.id, r.scope(), n}; }

}  // namespace store_test

TEMPLATE_LIST_TEST_CASE("store: access counts add up, stay through an update, go with erase and clear",
                        "[store][access]", store_kinds) {
  using namespace store_test;
  using S = typename TestType::store_type;
  static_assert(access_count_store<S>, "every store engram ships keeps access counts");
  {
    temp_dir dir;
    auto s = TestType::open(dir.sub("db"));
    const auto a = sample_record(1), b = sample_record(2), c = sample_record(3);  // alice, bob, alice
    write_batch w;
    w.upserts = {a, b, c};
    w.events = {sample_event(a, event_kind::add, 0)};
    s.apply(w);
    CHECK(access_of(s).empty());
    std::uint64_t version_before = 0;
    if constexpr (scope_loading_store<S>) version_before = s.scope_selection_version(scope{});

    const std::vector<access_increment> first{hits_of(a, 2), hits_of(b, 1), {"never-stored", scope{"alice", "", ""}, 5}};
    s.add_access(first);
    const std::vector<access_increment> second{hits_of(a, 3), hits_of(c, 0)};
    s.add_access(second);
    CHECK(access_of(s) == std::map<std::string, std::uint32_t>{{a.id, 5}, {b.id, 1}});
    CHECK(access_of(s, scope{"alice", "", ""}) == std::map<std::string, std::uint32_t>{{a.id, 5}});
    CHECK(access_of(s, scope{"bob", "", ""}) == std::map<std::string, std::uint32_t>{{b.id, 1}});
    CHECK(access_of(s, scope{"carol", "", ""}).empty());
    // the records themselves are untouched: same fields, no history event, no scope version change
    CHECK(s.get(a.id) == a);
    CHECK(s.history(a.id).size() == 1);
    if constexpr (scope_loading_store<S>) CHECK(s.scope_selection_version(scope{}) == version_before);

    const std::vector<access_increment> huge{hits_of(b, 0xFFFFFFF0u), hits_of(b, 0x100u)};
    s.add_access(huge);  // saturates
    CHECK(access_of(s)[b.id] == 0xFFFFFFFFu);

    auto a2 = a;  // an update replaces the record and keeps its count
    a2.memory = "updated text";
    a2.updated_at += std::chrono::seconds{1};
    w = {};
    w.upserts = {a2};
    w.erases = {b.id};
    s.apply(w);
    CHECK(access_of(s) == std::map<std::string, std::uint32_t>{{a.id, 5}});

    w = {};  // a record erased and then stored again under its id starts from zero
    w.upserts = {b};
    s.apply(w);
    CHECK(access_of(s) == std::map<std::string, std::uint32_t>{{a.id, 5}});

    s.clear();
    CHECK(access_of(s).empty());
    w = {};
    w.upserts = {a};
    s.apply(w);
    CHECK(access_of(s).empty());
  }
}

TEMPLATE_LIST_TEST_CASE("store: access counts survive reopening and compaction", "[store][access]",
                        durable_store_kinds) {
  using namespace store_test;
  using S = typename TestType::store_type;
  static_assert(access_count_store<S>, "every store engram ships keeps access counts");
  {
    temp_dir dir;
    const auto db = dir.sub("db");
    std::map<std::string, std::uint32_t> expect;
    {
      auto s = TestType::open(db);
      write_batch w;
      for (int i = 1; i <= 20; ++i) w.upserts.push_back(sample_record(i));
      s.apply(w);
      for (int round = 1; round <= 3; ++round) {
        std::vector<access_increment> inc;
        for (int i = round; i <= 20; i += 3) {
          inc.push_back(hits_of(sample_record(i), static_cast<std::uint32_t>(i * round)));
          expect[sample_record(i).id] += static_cast<std::uint32_t>(i * round);
        }
        s.add_access(inc);
      }
      w = {};
      w.erases = {sample_record(1).id};
      s.apply(w);
      expect.erase(sample_record(1).id);
      CHECK(access_of(s) == expect);
    }
    {
      auto s = TestType::open(db);
      CHECK(access_of(s) == expect);
      if constexpr (requires { s.compact(); }) s.compact();
      const std::vector<access_increment> more{hits_of(sample_record(2), 7)};
      s.add_access(more);
      expect[sample_record(2).id] += 7;
    }
    auto s = TestType::open(db);
    CHECK(access_of(s) == expect);
    CHECK(all_records(s).size() == 19);
  }
}
