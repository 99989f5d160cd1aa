// One query's scan split over an executor: the hits equal the serial scan's exactly (ties by slot included),
// on many sizes, partitions and candidate bitmaps; and the executors themselves.
#include <engram/index/executor.hpp>
#include <engram/index/flat.hpp>
#include <engram/index/ivf.hpp>
#include <engram/index/kmeans.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace engram;

namespace {

constexpr std::size_t dim = 24;

/// Vectors drawn from a few values so that many rows tie (equal vectors give equal scores).
std::vector<float> tie_prone(std::mt19937& g) {
  std::uniform_int_distribution<int> pick(0, 3);
  std::vector<float> v(dim);
  for (auto& x : v) x = float(pick(g)) - 1.5f;
  return v;
}

/// An index with `rows` vectors spread over `partitions` partitions (slots shuffled, so a partition's rows
/// are not in slot order), with some removed, and a copy that splits every scan into parts.
struct pair_of_indexes {
  flat_index serial;
  flat_index parallel;
  std::vector<partition_id> all;
  std::size_t slots;
};

pair_of_indexes build(std::size_t rows, std::size_t partitions, executor_ref ex, std::uint32_t seed) {
  std::mt19937 g(seed);
  pair_of_indexes out{flat_index(dim), flat_index(dim, {.executor = ex, .parallel_min_bytes = 1}), {}, rows};
  std::vector<slot_id> order(rows);
  for (std::size_t i = 0; i < rows; ++i) order[i] = static_cast<slot_id>(i);
  std::shuffle(order.begin(), order.end(), g);
  for (const slot_id s : order) {
    const auto v = tie_prone(g);
    const auto p = static_cast<partition_id>(g() % partitions);
    out.serial.add(s, p, v);
    out.parallel.add(s, p, v);
  }
  for (std::size_t i = 0; i < rows / 7; ++i) {  // removals move rows within partitions
    const auto s = static_cast<slot_id>(g() % rows);
    out.serial.remove(s);
    out.parallel.remove(s);
  }
  for (std::size_t p = 0; p < partitions; ++p) out.all.push_back(static_cast<partition_id>(p));
  return out;
}

void check_same(const std::vector<index_hit>& a, const std::vector<index_hit>& b) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].slot == b[i].slot);
    CHECK(a[i].score == b[i].score);
  }
}

}  // namespace

TEST_CASE("parallel_scan: split scans return the serial scan's hits exactly", "[parallel]") {
  thread_pool_executor pool(GENERATE(2, 3, 5));
  const std::size_t rows = GENERATE(1, 15, 16, 17, 100, 1000, 2053);
  const std::size_t partitions = GENERATE(1, 3, 8);
  auto ix = build(rows, partitions, pool, static_cast<std::uint32_t>(rows * 31 + partitions));
  std::mt19937 g(7);
  const auto q = tie_prone(g);
  for (const std::size_t k : {std::size_t{1}, std::size_t{10}, std::size_t{64}, rows + 5}) {
    check_same(ix.serial.search(q, k, ix.all), ix.parallel.search(q, k, ix.all));
    // some partitions only, in another order, with one that does not exist
    std::vector<partition_id> some{static_cast<partition_id>(partitions - 1), 0, 99};
    check_same(ix.serial.search(q, k, some), ix.parallel.search(q, k, some));
    // candidate bitmaps from sparse (slot by slot) to dense (a mask over the scan)
    for (const double density : {0.01, 0.2, 0.3, 0.5, 0.9}) {
      slot_bitmap c(rows);
      for (std::size_t s = 0; s < rows; ++s)
        if (std::uniform_real_distribution<double>()(g) < density) c.set(static_cast<slot_id>(s));
      check_same(ix.serial.search(q, k, ix.all, &c), ix.parallel.search(q, k, ix.all, &c));
    }
  }
}

TEST_CASE("parallel_scan: split batches return the serial batch's hits", "[parallel]") {
  thread_pool_executor pool(3);
  const std::size_t rows = GENERATE(40, 777);
  const std::size_t count = GENERATE(1, 5, 6, 7, 13, 250);
  auto ix = build(rows, 3, pool, static_cast<std::uint32_t>(rows + count));
  std::mt19937 g(11);
  std::vector<float> qs;
  for (std::size_t i = 0; i < count; ++i) {
    const auto q = tie_prone(g);
    qs.insert(qs.end(), q.begin(), q.end());
  }
  slot_bitmap dense(rows);
  for (std::size_t s = 0; s < rows; s += 2) dense.set(static_cast<slot_id>(s));
  for (const slot_bitmap* c : std::vector<const slot_bitmap*>{nullptr, &dense}) {
    const auto a = ix.serial.search_batch(qs, count, 7, ix.all, c), b = ix.parallel.search_batch(qs, count, 7, ix.all, c);
    REQUIRE(a.size() == count);
    REQUIRE(b.size() == count);
    for (std::size_t i = 0; i < count; ++i) check_same(a[i], b[i]);
  }
}

TEST_CASE("parallel_scan: ties are broken by the lower slot whichever part found them", "[parallel]") {
  thread_pool_executor pool(4);
  flat_index serial(dim), parallel(dim, {.executor = pool, .parallel_min_bytes = 1});
  const std::vector<float> same(dim, 1.0f);
  for (slot_id s = 0; s < 500; ++s) {  // every row scores 1: the answer is the k lowest slots
    const auto slot = static_cast<slot_id>(499 - s);
    serial.add(slot, 0, same);
    parallel.add(slot, 0, same);
  }
  const std::vector<partition_id> p0{0};
  const auto hits = parallel.search(same, 10, p0);
  check_same(serial.search(same, 10, p0), hits);
  for (std::size_t i = 0; i < hits.size(); ++i) CHECK(hits[i].slot == i);
}

TEST_CASE("parallel_scan: small scans stay on the calling thread", "[parallel]") {
  struct counting {
    std::atomic<int>* calls;
    std::size_t concurrency() const noexcept { return 4; }
    void bulk(std::size_t n, bulk_task t) {
      ++*calls;
      serial_executor::bulk(n, t);
    }
  };
  std::atomic<int> calls{0};
  counting ex{&calls};
  flat_index idx(dim, {.executor = ex});  // default parallel_min_bytes: 2 MiB per part
  std::mt19937 g(1);
  for (slot_id s = 0; s < 1000; ++s) idx.add(s, 0, tie_prone(g));
  const std::vector<partition_id> p0{0};
  (void)idx.search(tie_prone(g), 5, p0);
  CHECK(calls == 0);
  idx.set_executor(executor_ref{});
  flat_index big(dim, {.executor = ex, .parallel_min_bytes = 1024});
  for (slot_id s = 0; s < 1000; ++s) big.add(s, 0, tie_prone(g));
  (void)big.search(tie_prone(g), 5, p0);
  CHECK(calls == 1);
}

TEST_CASE("parallel_scan: executors run every task once and pass on a task's exception", "[parallel]") {
  STATIC_REQUIRE(executor<serial_executor>);
  STATIC_REQUIRE(executor<thread_pool_executor>);
  STATIC_REQUIRE(executor<executor_ref>);
  STATIC_REQUIRE_FALSE(executor<int>);
  thread_pool_executor pool(3);
  CHECK(pool.concurrency() == 3);
  CHECK(executor_ref{}.concurrency() == 1);
  for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{2}, std::size_t{50}}) {
    std::vector<std::atomic<int>> runs(n);
    auto task = [&](std::size_t i) { ++runs[i]; };
    pool.bulk(n, task);
    for (const auto& r : runs) CHECK(r == 1);
  }
  auto failing = [](std::size_t i) {
    if (i == 3) throw std::runtime_error("task 3");
  };
  CHECK_THROWS_WITH(pool.bulk(8, failing), "task 3");
  std::atomic<int> after{0};
  auto count = [&](std::size_t) { ++after; };
  pool.bulk(4, count);  // the pool still works after a failed call
  CHECK(after == 4);
}

// ---- ivf_index: trainings and list scans over an executor ---------------------------------------------------

namespace {

/// Unit-ish vectors around a few centres, with many exact ties among them (tie_prone), `rows` of them.
std::vector<std::vector<float>> ivf_rows(std::size_t rows, std::uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> n(0.0f, 0.3f);
  std::vector<std::vector<float>> out;
  for (std::size_t i = 0; i < rows; ++i) {
    auto v = tie_prone(g);
    if (i % 3 != 0)  // a third keep exact ties; the rest spread around them
      for (auto& x : v) x += n(g);
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace

TEST_CASE("parallel_scan: assign_nearest finds the first largest inner product, whatever the executor", "[parallel]") {
  thread_pool_executor pool(3);
  const std::size_t d = GENERATE(7, 24, 33);
  const std::size_t k = GENERATE(1, 15, 16, 17, 100);
  const std::size_t n = GENERATE(1, 6, 241, 700);
  std::mt19937 g(static_cast<std::uint32_t>(d * 1000 + k * 10 + n));
  std::uniform_int_distribution<int> small(-2, 2);  // small integers: exact sums, so ties are real ties
  std::vector<float> x(n * (d + 3)), c(k * (d + 1));
  for (auto& v : x) v = float(small(g));
  for (auto& v : c) v = float(small(g));
  if (k > 3) std::copy_n(c.begin(), d, c.begin() + std::ptrdiff_t(2 * (d + 1)));  // centroid 2 equals centroid 0
  std::vector<std::uint32_t> serial(n), parallel(n);
  detail::assign_nearest(x.data(), n, d + 3, c.data(), k, d + 1, d, serial.data());
  detail::assign_nearest(x.data(), n, d + 3, c.data(), k, d + 1, d, parallel.data(), pool);
  CHECK(serial == parallel);
  for (std::size_t r = 0; r < n; ++r) {
    std::size_t best = 0;
    float best_score = -std::numeric_limits<float>::infinity();
    for (std::size_t j = 0; j < k; ++j) {
      float s = 0;
      for (std::size_t i = 0; i < d; ++i) s += x[r * (d + 3) + i] * c[j * (d + 1) + i];
      if (s > best_score) best_score = s, best = j;
    }
    INFO("row " << r);
    CHECK(serial[r] == best);
  }
}

TEST_CASE("parallel_scan: spherical k-means gives the same centroids on any executor", "[parallel]") {
  thread_pool_executor pool(GENERATE(2, 3));
  const auto rows = ivf_rows(3000, 9);
  std::vector<float> x;
  for (const auto& v : rows) {
    double s = 0;
    for (const float f : v) s += double(f) * f;
    for (const float f : v) x.push_back(s > 0 ? float(f / std::sqrt(s)) : 0.0f);
  }
  for (const std::size_t k : {std::size_t{1}, std::size_t{17}, std::size_t{64}}) {
    const auto a = detail::spherical_kmeans(x.data(), rows.size(), dim, dim, k, 5, 42);
    const auto b = detail::spherical_kmeans(x.data(), rows.size(), dim, dim, k, 5, 42, nullptr, pool);
    REQUIRE(a.size() == k * dim);
    CHECK(a == b);
  }
}

TEST_CASE("parallel_scan: ivf_index trained and searched over an executor answers as the serial index", "[parallel]") {
  thread_pool_executor pool(GENERATE(2, 3));
  const std::size_t rows = GENERATE(40, 1500);
  const auto data = ivf_rows(rows, static_cast<std::uint32_t>(rows));
  const ivf_index_options base{.nlist = 24, .nprobe = 3, .train_threshold = 1u << 30, .min_per_list = 4, .background = false};
  auto with_pool = base;
  with_pool.executor = pool;
  with_pool.parallel_min_bytes = 1;
  ivf_index serial(dim, base), parallel(dim, with_pool);
  std::mt19937 g(3);
  for (std::size_t i = 0; i < rows; ++i) {
    const auto p = static_cast<partition_id>(g() % 3);
    serial.add(static_cast<slot_id>(i), p, data[i]);
    parallel.add(static_cast<slot_id>(i), p, data[i]);
  }
  const std::vector<partition_id> all{0, 1, 2, 7};
  std::mt19937 qg(5);
  const auto check_all = [&] {
    for (int rep = 0; rep < 4; ++rep) {
      const auto q = tie_prone(qg);
      for (const std::size_t nprobe : {std::size_t{1}, std::size_t{3}, std::size_t{24}})
        for (const std::size_t k : {std::size_t{1}, std::size_t{10}, rows + 1}) {
          check_same(serial.search(q, k, all, nullptr, nprobe), parallel.search(q, k, all, nullptr, nprobe));
          slot_bitmap c(rows);
          for (std::size_t s = 0; s < rows; s += 2 + std::size_t(rep)) c.set(static_cast<slot_id>(s));
          check_same(serial.search(q, k, all, &c, nprobe), parallel.search(q, k, all, &c, nprobe));
        }
    }
  };
  check_all();  // untrained: every partition one exact list
  for (partition_id p = 0; p < 3; ++p) {
    serial.train(p);
    parallel.train(p);
    CHECK(serial.trained(p) == parallel.trained(p));
  }
  check_all();  // trained on the pool: the same centroids, so the same probes
}

TEST_CASE("parallel_scan: int8 searches split over an executor return the serial hits", "[parallel]") {
  thread_pool_executor pool(GENERATE(2, 3));
  const std::size_t rows = GENERATE(17, 1000, 2053);
  flat_index serial(dim, {.int8_codes = true}), parallel(dim, {.int8_codes = true, .executor = pool, .parallel_min_bytes = 1});
  const auto data = ivf_rows(rows, static_cast<std::uint32_t>(rows + 1));
  std::mt19937 g(13);
  for (std::size_t i = 0; i < rows; ++i) {
    const auto p = static_cast<partition_id>(g() % 3);
    serial.add(static_cast<slot_id>(i), p, data[i]);
    parallel.add(static_cast<slot_id>(i), p, data[i]);
  }
  const std::vector<partition_id> all{2, 0, 1};
  slot_bitmap dense(rows);
  for (std::size_t s = 0; s < rows; s += 2) dense.set(static_cast<slot_id>(s));
  for (int rep = 0; rep < 4; ++rep) {
    const auto q = tie_prone(g);
    for (const std::size_t k : {std::size_t{1}, std::size_t{10}})
      for (const std::size_t shortlist : {std::size_t{0}, std::size_t{12}}) {
        check_same(serial.search_int8(q, k, all, nullptr, shortlist), parallel.search_int8(q, k, all, nullptr, shortlist));
        check_same(serial.search_int8(q, k, all, &dense, shortlist), parallel.search_int8(q, k, all, &dense, shortlist));
      }
  }
}
