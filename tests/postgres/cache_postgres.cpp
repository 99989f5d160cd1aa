// The per-node partition cache (memory_config::partition_cache_bytes) over postgres_store: several nodes over
// one database, each loading the scopes it serves on first use, kept current by the change feed and
// re-validated by scope version when the feed has a gap.
#include <engram/engram.hpp>
#include <engram/store/postgres_store.hpp>

#include <catch2/catch.hpp>

#include "support/pg_test_support.hpp"

#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace engram;

namespace {
using node = basic_memory<hashing_embedder, flat_index, postgres_store, verbatim_extractor>;

std::string fresh_schema(const char* name) {
  return pg_test::schema_for(std::string(name) +
                             std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
}
/// A node; with `budget` > 0 its partition cache is on.
node open_node(const std::string& schema, std::size_t budget, const std::string& app = "engram_cache") {
  return node(hashing_embedder(64),
              postgres_store(pg_test::conninfo() + " application_name=" + app, {.schema = schema}),
              verbatim_extractor(), memory_config{.partition_cache_bytes = budget});
}

/// Waits (at most 5 s) until pred() holds; @returns how long that took, or a negative duration.
template <class P>
std::chrono::microseconds wait_for(P pred) {
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)) {
    if (pred()) return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return std::chrono::microseconds(-1);
}

std::vector<std::pair<std::string, float>> ids_scores(const std::vector<search_hit>& hits) {
  std::vector<std::pair<std::string, float>> out;
  for (const auto& h : hits) out.emplace_back(h.record.id, h.score);
  return out;
}

const std::vector<std::string> words = {"tea",  "coffee", "chess", "piano", "lisbon", "oslo",  "cats",
                                        "dogs", "nurse",  "rain",  "bread", "guitar", "books", "jazz"};

/// Adds `n` memories for `who` through `m` (one write batch per add).
template <class M>
void fill(M& m, const std::string& who, int n) {
  for (int i = 0; i < n; ++i)
    m.add(who + " likes " + words[std::size_t(i) % words.size()] + " and " + words[std::size_t(i * 5 + 1) % words.size()] +
              " #" + std::to_string(i),
          user(who), {.infer = false});
}
}  // namespace

TEST_CASE("cache_postgres: a write on one node is found by a search on another with the cache on",
          "[postgres][cache]") {
  const auto schema = fresh_schema("cache_visible");
  auto a = open_node(schema, 1 << 20);
  auto b = open_node(schema, 1 << 20);
  CHECK(b.get_all(user("alice")).empty());  // b loads alice (empty)
  CHECK(b.cache_stats().loads == 1);

  const auto added = a.add("alice drinks green tea every morning", user("alice"), {.infer = false});
  REQUIRE(added.results.size() == 1);
  const auto id = added.results[0].id;
  const auto seen = wait_for([&] {
    const auto hits = b.search("green tea", user("alice"), {.limit = 1});
    return !hits.empty() && hits[0].record.id == id;
  });
  INFO("visible on b after " << seen.count() << " us");
  CHECK(seen.count() >= 0);
  CHECK(b.cache_stats().loads == 1);  // refreshed by the feed, not reloaded

  // a scope b never used: its first use loads what a wrote
  a.add("bob plays chess on tuesdays", user("bob"), {.infer = false});
  CHECK(b.search("chess", user("bob"), {.limit = 1}).front().record.memory == "bob plays chess on tuesdays");
  CHECK(b.cache_stats().loads == 2);

  b.update(id, "alice drinks black coffee every morning");
  CHECK(wait_for([&] {
          const auto hits = a.search("black coffee", user("alice"), {.limit = 1});
          return !hits.empty() && hits[0].record.memory == "alice drinks black coffee every morning";
        }).count() >= 0);
  b.delete_memory(id);
  CHECK(wait_for([&] { return a.get_all(user("alice")).empty(); }).count() >= 0);
  CHECK(a.search("coffee", user("alice")).empty());
  CHECK(a.size() == 1);
  CHECK(b.size() == 1);

  // the same fact from both nodes at once is stored once, as without the cache
  const auto r1 = a.add("carol sings in a choir", user("carol"), {.infer = false});
  const auto r2 = b.add("carol sings in a choir", user("carol"), {.infer = false});
  CHECK(r1.results.front().id == r2.results.front().id);
  CHECK(a.get_all(user("carol")).size() == 1);
}

TEST_CASE("cache_postgres: scopes load on first use, evict by budget and reload with identical results",
          "[postgres][cache]") {
  const auto schema = fresh_schema("cache_lru");
  const std::vector<std::string> users = {"u0", "u1", "u2", "u3"};
  {
    auto writer = open_node(schema, 0);
    for (const auto& u : users) fill(writer, u, 25);
  }
  auto eager = open_node(schema, 0);
  const std::size_t one_user = 25 * (64 * sizeof(float) + 200);
  auto lazy = open_node(schema, one_user * 2);  // about two users fit
  CHECK(lazy.cache_stats().loads == 0);
  CHECK(lazy.size() == 100);

  for (int round = 0; round < 2; ++round)
    for (const auto& u : users)
      for (const char* q : {"tea", "chess and piano", "#7", "jazz books"}) {
        INFO("user " << u << " query " << q << " round " << round);
        CHECK(ids_scores(lazy.search(q, user(u), {.limit = 8})) == ids_scores(eager.search(q, user(u), {.limit = 8})));
      }
  auto st = lazy.cache_stats();
  CHECK(st.loads >= 8);  // every user loaded in both rounds: the budget holds two
  CHECK(st.evictions >= 6);
  CHECK(st.bytes <= one_user * 2);

  // a scope larger than the whole budget still works, and is evicted after
  auto tiny = open_node(schema, 2048);
  CHECK(ids_scores(tiny.search("guitar", user("u2"), {.limit = 10})) ==
        ids_scores(eager.search("guitar", user("u2"), {.limit = 10})));
  st = tiny.cache_stats();
  CHECK(st.loads == 1);
  CHECK(st.evictions == 1);
  CHECK(st.bytes == 0);
}

TEST_CASE("cache_postgres: missed changes are found by re-validating scope versions", "[postgres][cache]") {
  const auto schema = fresh_schema("cache_revalidate");
  auto a = open_node(schema, 0, "engram_cache_a");
  fill(a, "alice", 3);
  fill(a, "bob", 3);
  auto b = open_node(schema, 1 << 20, "engram_cache_b");
  CHECK(b.get_all(user("alice")).size() == 3);
  CHECK(b.get_all(user("bob")).size() == 3);
  CHECK(b.cache_stats().loads == 2);
  const auto alice0 = b.get_all(user("alice")).front().id;

  // a write behind the change feed's back (no feed entry): bumps alice's version only
  auto hidden_write = [&](const std::string& id, const std::string& text) {
    pg_test::sql("INSERT INTO memories SELECT '" + id + "', '" + text + "', md5('" + text +
                     "'), metadata, user_id, agent_id, run_id, actor_id, role, created_at, updated_at, embedding,"
                     " expiration_date FROM memories WHERE id = '" + alice0 + "';"
                     "UPDATE scope_versions SET version = version + 1 WHERE user_id = 'alice' AND agent_id = ''"
                     " AND run_id = ''",
                 schema);
  };

  SECTION("re-validation on demand") {
    hidden_write("hidden-1", "alice keeps a hidden note");
    CHECK(b.get_all(user("alice")).size() == 3);  // the feed knows nothing of it
    CHECK(b.revalidate_partitions() == 1);        // alice moved, bob did not
    CHECK(b.cache_stats().loads == 3);
    CHECK(b.get_all(user("alice")).size() == 4);
    CHECK(b.search("hidden note", user("alice"), {.limit = 1}).front().record.id == "hidden-1");
    CHECK(b.revalidate_partitions() == 0);
  }

  SECTION("a gap in the change feed (entries pruned before this node polled) re-validates by itself") {
    hidden_write("hidden-2", "alice keeps another hidden note");
    a.add("carol is new here", user("carol"), {.infer = false});
    // prune the feed as postgres_store's retention does: the entry b has not read is gone
    pg_test::sql("INSERT INTO engram_meta VALUES ('changes_pruned_through', (SELECT max(seq) FROM changes)::text)"
                 " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value; DELETE FROM changes",
                 schema);
    a.add("carol is still here", user("carol"), {.infer = false});  // a later entry moves b's position past the gap
    CHECK(wait_for([&] { return b.get_all(user("alice")).size() == 4; }).count() >= 0);
    CHECK(b.cache_stats().loads == 3);  // alice reloaded; bob kept; carol never used
    CHECK(b.get_all(user("bob")).size() == 3);
    CHECK(b.get_all(user("carol")).size() == 2);
    CHECK(b.cache_stats().loads == 4);
  }
}
