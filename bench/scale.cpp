// How one query's scan scales with threads: flat_index::search over N x 384 rows split by a
// thread_pool_executor of 1, 2, 4, ... threads up to the machine's, beside a plain SIMD row loop split over the
// same threads and the read bandwidth of as many threads, all measured in turn within each round (so a noisy
// machine moves them together; the best round of each is printed). `x floor` = time / (bytes / bandwidth).
//
//   bench_scale [--rows N] [--quick] [--max-threads T] [--rounds R]
//
// --quick scans 100k rows. The same command sizes a bigger machine: the floor is measured, not assumed.
#include <engram/detail/aligned_allocator.hpp>
#include <engram/index/executor.hpp>
#include <engram/index/flat.hpp>

#include "data.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t dim = 384;
constexpr std::size_t k = 10;

struct options {
  std::size_t rows = 1'000'000;
  unsigned max_threads = std::max(1u, std::thread::hardware_concurrency());
  int rounds = 5;
};

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_scale: %s needs a value\n", argv[i]);
        std::exit(2);
      }
      return argv[++i];
    };
    if (!std::strcmp(argv[i], "--quick")) {
      o.rows = 100'000;
    } else if (!std::strcmp(argv[i], "--rows")) {
      o.rows = std::strtoull(next(), nullptr, 10);
    } else if (!std::strcmp(argv[i], "--max-threads")) {
      o.max_threads = static_cast<unsigned>(std::strtoul(next(), nullptr, 10));
    } else if (!std::strcmp(argv[i], "--rounds")) {
      o.rounds = std::atoi(next());
    } else {
      std::fprintf(stderr, "usage: bench_scale [--rows N] [--quick] [--max-threads T] [--rounds R]\n");
      std::exit(2);
    }
  }
  if (o.rows == 0 || o.max_threads == 0 || o.rounds <= 0) {
    std::fprintf(stderr, "bench_scale: --rows, --max-threads and --rounds must be positive\n");
    std::exit(2);
  }
  return o;
}

/// A plain SIMD row loop (simd::dot row after row, a running best) over rows split evenly over `ex`.
float plain_loop(const std::vector<float, engram::detail::aligned_allocator<float>>& rows, std::size_t n, const std::vector<float>& q, engram::executor_ref ex) {
  const std::size_t parts = ex.concurrency();
  std::vector<float> best(parts, -2.0f);
  auto task = [&](std::size_t t) {
    float m = -2.0f;
    for (std::size_t r = n * t / parts; r < n * (t + 1) / parts; ++r)
      m = std::max(m, engram::simd::dot(q.data(), rows.data() + r * dim, dim));
    best[t] = m;
  };
  ex.bulk(parts, task);
  return *std::max_element(best.begin(), best.end());
}

double seconds_of(const std::function<void()>& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  const engram_bench::clustered gen(dim, 1000, 42);
  std::printf("bench_scale: %zu x %zu rows, k = %zu, threads 1 .. %u, best of %d rounds\n", o.rows, dim, k,
              o.max_threads, o.rounds);
  // the plain loop's own copy: 64-byte aligned rows of exactly dim floats, as the index keeps them
  auto generated = gen.block(0, o.rows);
  const std::vector<float, engram::detail::aligned_allocator<float>> plain_rows(generated.begin(), generated.end());
  engram::flat_index index(dim);
  index.reserve(0, o.rows);
  for (std::size_t i = 0; i < o.rows; ++i)
    index.add(static_cast<engram::slot_id>(i), 0, std::span<const float>(generated).subspan(i * dim, dim));
  generated = {};
  const std::vector<engram::partition_id> scope{0};
  const auto query = gen.block(100'000'000, 1);
  engram::slot_bitmap half(o.rows), tenth(o.rows);
  engram_bench::rng g{9};
  for (std::size_t i = 0; i < o.rows; ++i) {
    const auto r = g.next() % 10;
    if (r < 5) half.set(static_cast<engram::slot_id>(i));
    if (r == 5) tenth.set(static_cast<engram::slot_id>(i));
  }
  const double bytes = double(o.rows) * double(index.stride()) * sizeof(float);

  std::vector<unsigned> counts;
  for (unsigned t = 1; t < o.max_threads; t *= 2) counts.push_back(t);
  counts.push_back(o.max_threads);

  std::printf("\n%7s %8s %9s | %9s %7s | %9s %7s %8s | %11s %11s\n", "threads", "bw GB/s", "floor ms", "plain ms",
              "x floor", "flat ms", "x floor", "x plain", "50% bitmap", "10% bitmap");
  const std::vector<engram::index_hit> serial = index.search(query, k, scope);
  bool identical = true;
  for (const unsigned t : counts) {
    engram::thread_pool_executor pool(t);
    index.set_executor(pool);
    double bw = 0, plain = 1e30, flat = 1e30, dense = 1e30, sparse = 1e30;
    float sink = 0;
    for (int r = 0; r < o.rounds; ++r) {
      bw = std::max(bw, engram_bench::read_bandwidth(std::size_t{1} << 30, 1, t));
      plain = std::min(plain, seconds_of([&] { sink += plain_loop(plain_rows, o.rows, query, pool); }));
      flat = std::min(flat, seconds_of([&] { identical = identical && index.search(query, k, scope) == serial; }));
      dense = std::min(dense, seconds_of([&] { sink += float(index.search(query, k, scope, &half).size()); }));
      sparse = std::min(sparse, seconds_of([&] { sink += float(index.search(query, k, scope, &tenth).size()); }));
    }
    const double floor = bytes / bw;
    std::printf("%7u %8.1f %9.2f | %9.2f %7.2f | %9.2f %7.2f %8.2f | %8.2f ms %8.2f ms%s\n", t, bw / 1e9, floor * 1e3,
                plain * 1e3, plain / floor, flat * 1e3, flat / floor, flat / plain, dense * 1e3, sparse * 1e3,
                sink == 12345.0f ? " " : "");
    index.set_executor({});  // before the pool goes
  }
  std::printf("\nsplit scans equal the serial scan: %s\n", identical ? "yes" : "NO");
  return identical ? 0 : 1;
}
