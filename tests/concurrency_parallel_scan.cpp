// Several threads search one index whose scans are split over one shared thread pool (run under TSan).
#include <engram/index/executor.hpp>
#include <engram/index/flat.hpp>

#include <catch2/catch.hpp>

#include <random>
#include <thread>
#include <vector>

using namespace engram;

TEST_CASE("concurrency: concurrent searches share one pool and get the serial hits", "[concurrency]") {
  constexpr std::size_t dim = 32, rows = 3000;
  thread_pool_executor pool(3);
  flat_index serial(dim), parallel(dim, {.executor = pool, .parallel_min_bytes = 4096});
  std::mt19937 g(5);
  std::normal_distribution<float> n;
  std::vector<float> v(dim);
  for (slot_id s = 0; s < rows; ++s) {
    for (auto& x : v) x = n(g);
    serial.add(s, s % 4, v);
    parallel.add(s, s % 4, v);
  }
  const std::vector<partition_id> all{0, 1, 2, 3};
  std::vector<std::vector<float>> queries(4, std::vector<float>(dim));
  for (auto& q : queries)
    for (auto& x : q) x = n(g);
  slot_bitmap sparse(rows);
  for (slot_id s = 0; s < rows; s += 9) sparse.set(s);
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 20; ++rep) {
        const auto& q = queries[(t + std::size_t(rep)) % 4];
        const slot_bitmap* c = rep % 2 ? &sparse : nullptr;
        const auto a = parallel.search(q, 10, all, c), b = serial.search(q, 10, all, c);
        if (a.size() != b.size()) ++mismatches[t];
        for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i)
          if (a[i].slot != b[i].slot || a[i].score != b[i].score) ++mismatches[t];
      }
    });
  for (auto& th : threads) th.join();
  for (const int m : mismatches) CHECK(m == 0);
}
