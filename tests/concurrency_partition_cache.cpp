// The partition cache under concurrent use (run under TSan): readers of many scopes with a budget that holds
// few of them (so loads and evictions interleave with searches), a writer, and re-validation.
#include <engram/engram.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

using namespace engram;

TEST_CASE("concurrency_partition_cache: searches stay complete and in scope while scopes load and evict",
          "[concurrency][partition_cache]") {
  constexpr std::size_t dim = 32;
  constexpr int users = 8, per_user = 12;
  memory mem(hashing_embedder(dim), memory_store(), verbatim_extractor(),
             memory_config{.partition_cache_bytes = 2 * per_user * (dim * sizeof(float) + 150)});
  auto name = [](int u) { return "user" + std::to_string(u); };
  for (int u = 0; u < users; ++u)
    for (int i = 0; i < per_user; ++i)
      mem.add(name(u) + " remembers item " + std::to_string(i), user(name(u)), {.infer = false});

  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0}, incomplete{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&, t] {
      for (int n = 0; n < 150; ++n) {
        const int u = (n * 3 + t) % users;
        const auto hits = mem.search("remembers item", user(name(u)), {.limit = per_user});
        for (const auto& h : hits)
          if (h.record.user_id != name(u)) ++wrong;
        if (hits.size() < static_cast<std::size_t>(per_user)) ++incomplete;  // the seeded memories at least
        const auto all = mem.get_all(user(name(u)));
        if (all.size() < static_cast<std::size_t>(per_user)) ++incomplete;
      }
    });
  threads.emplace_back([&] {
    for (int n = 0; n < 40 && !stop; ++n)
      mem.add("extra note " + std::to_string(n), user(name(n % users)), {.infer = false});
  });
  threads.emplace_back([&] {
    for (int n = 0; n < 20; ++n) (void)mem.revalidate_partitions();
  });
  for (auto& th : threads) th.join();
  CHECK(wrong == 0);
  CHECK(incomplete == 0);
  std::size_t total = 0;
  for (int u = 0; u < users; ++u) total += mem.get_all(user(name(u)), {.limit = 0}).size();
  CHECK(total == users * per_user + 40);
  const auto st = mem.cache_stats();
  CHECK(st.evictions > 0);
  CHECK(st.bytes <= mem.config().partition_cache_bytes);
}
