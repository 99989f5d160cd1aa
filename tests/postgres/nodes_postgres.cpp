// Several engram nodes over one PostgreSQL database: two basic_memory objects in one process, each with its
// own postgres_store (its own pool and LISTEN connection), stand for two engram-server processes.
#include <engram/engram.hpp>
#include <engram/store/postgres_store.hpp>

#include <catch2/catch.hpp>

#include "support/pg_test_support.hpp"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

using namespace engram;

namespace {
using node = basic_memory<hashing_embedder, flat_index, postgres_store, verbatim_extractor>;

std::string fresh_schema(const char* name) {
  return pg_test::schema_for(std::string(name) + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
}
node open_node(const std::string& schema, const std::string& app = "engram_node") {
  return node(hashing_embedder(64),
              postgres_store(pg_test::conninfo() + " application_name=" + app, {.schema = schema}));
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
}  // namespace

TEST_CASE("nodes_postgres: a write on one node is found by a search on the other", "[postgres][nodes]") {
  const auto schema = fresh_schema("visible");
  auto a = open_node(schema);
  auto b = open_node(schema);
  CHECK(b.get_all(user("alice")).empty());

  const auto added = a.add("alice drinks green tea every morning", user("alice"), {.infer = false});
  REQUIRE(added.results.size() == 1);
  const auto id = added.results[0].id;
  const auto seen = wait_for([&] {
    const auto hits = b.search("green tea", user("alice"), {.limit = 1});
    return !hits.empty() && hits[0].record.id == id;
  });
  INFO("visible on b after " << seen.count() << " us");
  CHECK(seen.count() >= 0);
  CHECK(b.get(id).has_value());
  CHECK(b.size() == 1);

  b.update(id, "alice drinks black coffee every morning");
  CHECK(wait_for([&] { return a.get_all(user("alice")).front().memory == "alice drinks black coffee every morning"; })
            .count() >= 0);
  CHECK(a.search("black coffee", user("alice"), {.limit = 1}).front().record.id == id);

  a.add("bob likes chess", user("bob"), {.infer = false});
  b.delete_memory(id);
  CHECK(wait_for([&] { return a.get_all(user("alice")).empty() && a.size() == 1; }).count() >= 0);
  CHECK(a.search("coffee", user("alice")).empty());

  b.reset();  // everything, seen by a as a '*' change
  CHECK(wait_for([&] { return a.size() == 0; }).count() >= 0);
  CHECK(a.get_all(all_scopes).empty());
  a.add("after the reset", user("bob"), {.infer = false});
  CHECK(wait_for([&] { return b.get_all(user("bob")).size() == 1; }).count() >= 0);
}

TEST_CASE("nodes_postgres: the same fact added on both nodes at once is stored once", "[postgres][nodes]") {
  const auto schema = fresh_schema("same");
  auto a = open_node(schema);
  auto b = open_node(schema);
  constexpr int facts = 40;
  int same_id = 0;
  for (int i = 0; i < facts; ++i) {
    const std::string text = "shared fact number " + std::to_string(i);
    std::atomic<int> ready{0};
    add_result ra, rb;
    std::thread ta([&] {
      ready.fetch_add(1);
      while (ready.load() < 2) {
      }
      ra = a.add(text, user("carol"), {.infer = false});
    });
    std::thread tb([&] {
      ready.fetch_add(1);
      while (ready.load() < 2) {
      }
      rb = b.add(text, user("carol"), {.infer = false});
    });
    ta.join();
    tb.join();
    REQUIRE(ra.results.size() == 1);
    REQUIRE(rb.results.size() == 1);
    CHECK(ra.results[0].id == rb.results[0].id);  // one added it, the other reports the stored record
    CHECK(int(ra.results[0].event == event_kind::add) + int(rb.results[0].event == event_kind::add) == 1);
    same_id += ra.results[0].id == rb.results[0].id;
  }
  CHECK(same_id == facts);
  CHECK(a.store().size() == facts);
  CHECK(wait_for([&] { return a.size() == facts && b.size() == facts; }).count() >= 0);
  CHECK(a.get_all(user("carol")) == b.get_all(user("carol")));
}

TEST_CASE("nodes_postgres: an update racing a delete on another node never brings the record back",
          "[postgres][nodes]") {
  const auto schema = fresh_schema("race");
  auto a = open_node(schema);
  auto b = open_node(schema);
  for (int i = 0; i < 20; ++i) {
    const auto id = a.add("racing fact " + std::to_string(i), user("eve"), {.infer = false}).results.at(0).id;
    REQUIRE(wait_for([&] { return b.get(id).has_value(); }).count() >= 0);
    b.delete_memory(id);
    CHECK_THROWS_AS(a.update(id, "changed after the delete " + std::to_string(i)), not_found);
    CHECK_FALSE(a.store().get(id).has_value());
    CHECK(a.history(id).back().event == event_kind::del);
  }
  CHECK(wait_for([&] { return a.get_all(user("eve")).empty() && b.get_all(user("eve")).empty(); }).count() >= 0);
}

TEST_CASE("nodes_postgres: a node whose LISTEN connection was dropped still converges", "[postgres][nodes]") {
  const auto schema = fresh_schema("relisten");
  auto a = open_node(schema);
  auto b = open_node(schema, "engram_node_b");
  CHECK(b.size() == 0);  // starts b's listener
  pg_test::sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'engram_node_b'");
  for (int i = 0; i < 5; ++i) a.add("fact " + std::to_string(i) + " written while b reconnects", user("dan"), {.infer = false});
  CHECK(wait_for([&] { return b.get_all(user("dan")).size() == 5; }).count() >= 0);
  b.add("and b writes again", user("dan"), {.infer = false});
  CHECK(wait_for([&] { return a.get_all(user("dan")).size() == 6; }).count() >= 0);
}

namespace {
/// A postgres_store that makes the batch holding the text `lose` disappear right after appending it, as a crash of
/// the server before the WAL flush would (commit token, rows and feed entry gone): the memory's sync finds it lost.
struct losing_store : postgres_store {
  using postgres_store::postgres_store;
  std::string lose;
  std::uint64_t append(const write_batch& b, std::vector<duplicate_record>* dropped = nullptr) {
    const auto t = postgres_store::append(b, dropped);
    for (const auto& r : b.upserts)
      if (!lose.empty() && r.memory == lose) {
        const std::string id = "'" + r.id + "'";
        pg_test::sql("DELETE FROM commits; DELETE FROM history WHERE memory_id = " + id +
                         "; DELETE FROM memories WHERE id = " + id + "; DELETE FROM changes WHERE memory_id = " + id,
                     schema());
        lose.clear();
      }
    return t;
  }
};
}  // namespace

TEST_CASE("nodes_postgres: a memory defers the flush only when someone waits for its lock", "[postgres][nodes]") {
  const auto schema = fresh_schema("defer");
  auto m = open_node(schema);
  for (int i = 0; i < 5; ++i) m.add("carol visited city number " + std::to_string(i), user("carol"), {.infer = false});
  CHECK(m.store().appended() == 0);  // alone: each COMMIT waited for its flush, no statement more
  CHECK(m.store().flushes() == 0);
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;  // now writers and searchers wait for the lock
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; !stop.load(); ++i) {
        if (t % 2)
          (void)m.search("city", user("carol"), {.limit = 3});
        else
          m.add("dave " + std::to_string(t) + " read book " + std::to_string(i), user("dave"), {.infer = false});
      }
    });
  for (int i = 0; i < 1000 && m.store().flushes() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  stop = true;
  for (auto& t : ts) t.join();
  CHECK(m.store().flushes() > 0);
  CHECK(m.store().appended() > 0);
}

TEST_CASE("nodes_postgres: an add whose grouped commit a crash lost before the flush fails, and the memory forgets it",
          "[postgres][nodes]") {
  const auto schema = fresh_schema("lost");
  losing_store st(pg_test::conninfo(), {.schema = schema});
  st.lose = "bob plays chess on sundays";
  basic_memory<hashing_embedder, flat_index, losing_store, verbatim_extractor> m(hashing_embedder(64), std::move(st));
  m.add("alice drinks green tea every morning", user("alice"), {.infer = false});
  std::string sqlstate;
  try {
    m.add("bob plays chess on sundays", user("bob"), {.infer = false});
  } catch (const postgres_error& e) {
    sqlstate = e.sqlstate();
  }
  CHECK(sqlstate == "08007");
  CHECK(m.get_all(user("bob")).empty());  // re-read through the feed: gone
  CHECK(m.search("chess on sundays", user("bob"), {.limit = 5}).empty());
  CHECK(m.get_all(user("alice")).size() == 1);
  const auto again = m.add("bob plays chess on sundays", user("bob"), {.infer = false});  // not a duplicate now
  REQUIRE(again.results.size() == 1);
  CHECK(again.results[0].event == event_kind::add);
  CHECK(m.get_all(user("bob")).size() == 1);
  auto other = open_node(schema);
  CHECK(other.get_all(user("bob")).size() == 1);
}
