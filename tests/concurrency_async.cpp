#include "support/async_test_support.hpp"

#include <engram/engram.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <latch>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace engram;
using namespace async_test;

TEST_CASE("concurrency_async: threads adding the same fact at once store it once", "[concurrency]") {
  const bool infer = GENERATE(true, false);
  for (int round = 0; round < 20; ++round) {
    memory mem(hashing_embedder(64));
    constexpr int threads = 4;
    std::latch start(threads);
    std::vector<add_result> results(threads);
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
      ts.emplace_back([&, t] {
        start.arrive_and_wait();
        results[t] = mem.add("I am allergic to shellfish", user("ann"), {.infer = infer});
      });
    for (auto& t : ts) t.join();
    INFO("round " << round << ", infer " << infer);
    REQUIRE(mem.get_all(user("ann")).size() == 1);
    int added = 0;
    for (const auto& r : results) {
      REQUIRE(r.results.size() == 1);
      added += r.results[0].event == event_kind::add;
      CHECK(r.results[0].id == mem.get_all(user("ann")).front().id);  // the others name the one stored
    }
    CHECK(added == 1);
  }
}

TEST_CASE("concurrency_async: add and add_async of the same fact at once store it once", "[concurrency]") {
  for (int round = 0; round < 20; ++round) {
    async_memory<memory_store> mem(hashing_embedder(64), memory_store{}, test_extractor{}, fast_retries());
    std::latch start(2);
    std::thread a([&] {
      start.arrive_and_wait();
      (void)mem.add_async("I play the cello", user("bea"));
    });
    std::thread b([&] {
      start.arrive_and_wait();
      (void)mem.add("I play the cello", user("bea"));
    });
    a.join();
    b.join();
    REQUIRE(mem.flush().ok());
    CHECK(mem.get_all(user("bea")).size() == 1);
  }
}

TEST_CASE("concurrency_async: many producers, flushes and readers while workers apply", "[concurrency]") {
  auto cfg = fast_retries(5, 3);
  cfg.async.queue_capacity = 8;  // small: producers meet backpressure
  cfg.async.max_batch = 3;
  test_extractor x;
  x.control->fail_next = 5;  // some attempts fail and are retried
  async_memory<memory_store> mem(hashing_embedder(64), memory_store{}, x, cfg);
  constexpr int producers = 4, per = 30;
  std::atomic<bool> done{false};
  std::vector<std::thread> ts;
  for (int p = 0; p < producers; ++p)
    ts.emplace_back([&, p] {
      for (int i = 0; i < per; ++i) {
        const auto who = "user" + std::to_string((p + i) % 3);
        (void)mem.add_async("producer " + std::to_string(p) + " says " + std::to_string(i), user(who));
        if (i % 10 == 9) (void)mem.flush();
      }
    });
  std::thread reader([&] {
    while (!done.load()) {
      (void)mem.search("producer says", user("user1"), {.limit = 5});
      (void)mem.pending_adds();
      (void)mem.failed_adds();
    }
  });
  for (auto& t : ts) t.join();
  const auto result = mem.flush();
  done = true;
  reader.join();
  CHECK(result.ok());
  std::set<std::string> stored;
  for (const auto& r : mem.get_all(all_scopes, {.limit = 0})) stored.insert(r.memory);
  CHECK(stored.size() == producers * per);
  CHECK(pending_of(mem.store()).empty());
  CHECK(mem.pending_adds() == 0);
}
