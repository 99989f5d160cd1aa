// flat_index search, d = 384, k = 10: one query at a time (split over 1, 2, 4, ... threads up to the machine's
// by a thread_pool_executor; x_floor against the bandwidth of as many threads) and batches of 1000, for N =
// 100k and 1M; a 1%
// (and denser) candidate bitmap against the full scan. The read bandwidth is measured in the same process:
// `x_floor` = time / (bytes scanned / bandwidth), the distance from the memory-bandwidth floor.
#include <engram/index/executor.hpp>
#include <engram/index/flat.hpp>

#include "data.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <thread>

namespace {

constexpr std::size_t dim = 384;
constexpr std::size_t k = 10;
const std::vector<engram::partition_id> part0{0};

/// Read bandwidth with `threads` threads, measured once per count in this process.
double bandwidth(unsigned threads = 1) {
  static std::map<unsigned, double> bw;
  auto& b = bw[threads];
  if (b == 0) b = engram_bench::read_bandwidth(std::size_t{1} << 30, 5, threads);
  return b;
}
const engram_bench::clustered& generator() {
  static const engram_bench::clustered g(dim, 1000, 42);
  return g;
}
engram::flat_index& index_of(std::size_t n) {
  static std::map<std::size_t, std::unique_ptr<engram::flat_index>> cache;
  auto& p = cache[n];
  if (!p) {
    p = std::make_unique<engram::flat_index>(dim);
    std::vector<float> v(dim);
    for (std::size_t i = 0; i < n; ++i) {
      generator().vector(i, v.data());
      p->add(static_cast<engram::slot_id>(i), 0, v);
    }
  }
  return *p;
}
std::vector<float> queries(std::size_t count) { return generator().block(100'000'000, count); }
double scan_bytes(std::size_t n) { return double(n) * double(index_of(n).stride()) * sizeof(float); }

std::map<std::size_t, double> full_scan_seconds;  // per N, for the bitmap speed-up

void read_bandwidth(benchmark::State& state) {
  const auto threads = static_cast<unsigned>(state.range(0));
  double bw = 0;
  for (auto _ : state) bw = engram_bench::read_bandwidth(std::size_t{1} << 30, 3, threads);
  state.counters["GB/s"] = bw / 1e9;
}

void single_query(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto threads = static_cast<unsigned>(state.range(1));
  auto& idx = index_of(n);
  engram::thread_pool_executor pool(threads);
  idx.set_executor(pool);
  const auto qs = queries(64);
  std::size_t i = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    auto hits = idx.search(std::span<const float>(qs).subspan((i++ % 64) * dim, dim), k, part0);
    benchmark::DoNotOptimize(hits);
  }
  const double per = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / double(state.iterations());
  idx.set_executor({});
  if (threads == 1) full_scan_seconds[n] = per;
  state.counters["x_floor"] = per / (scan_bytes(n) / bandwidth(threads));
  state.counters["GB/s"] = scan_bytes(n) / per / 1e9;
  state.counters["bw_GB/s"] = bandwidth(threads) / 1e9;
}

void batch_queries(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto nq = static_cast<std::size_t>(state.range(1));
  const auto threads = static_cast<std::size_t>(state.range(2));
  const auto& idx = index_of(n);
  const auto qs = queries(nq);
  for (auto _ : state) {
    std::vector<std::thread> pool;
    std::vector<std::vector<std::vector<engram::index_hit>>> out(threads);
    const std::size_t per = (nq + threads - 1) / threads;
    auto work = [&](std::size_t t) {
      const std::size_t b = std::min(nq, t * per), e = std::min(nq, b + per);
      out[t] = idx.search_batch(std::span<const float>(qs).subspan(b * dim, (e - b) * dim), e - b, k, part0);
    };
    for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(work, t);
    work(0);
    for (auto& th : pool) th.join();
    benchmark::DoNotOptimize(out);
  }
  state.counters["QPS"] = benchmark::Counter(double(nq) * double(state.iterations()), benchmark::Counter::kIsRate);
}

void bitmap(benchmark::State& state) {
  const std::size_t n = 1'000'000;
  const auto per_mille = static_cast<std::size_t>(state.range(0));
  const auto& idx = index_of(n);
  engram::slot_bitmap c(n);
  engram_bench::rng g{7};
  while (c.count() < n * per_mille / 1000) c.set(static_cast<engram::slot_id>(g.next() % n));
  const auto qs = queries(64);
  std::size_t i = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    auto hits = idx.search(std::span<const float>(qs).subspan((i++ % 64) * dim, dim), k, part0, &c);
    benchmark::DoNotOptimize(hits);
  }
  const double per = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / double(state.iterations());
  if (full_scan_seconds.count(n)) state.counters["x_faster_than_full"] = full_scan_seconds[n] / per;
  state.counters["sparse_path"] = c.count() * engram::flat_index::sparse_divisor <= n ? 1 : 0;
}

}  // namespace

BENCHMARK(read_bandwidth)->Arg(1)->Arg(2)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();
/// Thread counts 1, 2, 4, ... up to the machine's.
void thread_counts(benchmark::internal::Benchmark* b, std::int64_t n) {
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned t = 1; t < hw; t *= 2) b->Args({n, t});
  b->Args({n, hw});
}
BENCHMARK(single_query)
    ->Apply([](auto* b) { thread_counts(b, 100'000); })
    ->Apply([](auto* b) { thread_counts(b, 1'000'000); })
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(bitmap)->Arg(10)->Arg(50)->Arg(100)->Arg(250)->Arg(300)->Arg(500)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(batch_queries)
    ->Args({100'000, 1000, 1})
    ->Args({100'000, 1000, 2})
    ->Args({1'000'000, 1000, 1})
    ->Args({1'000'000, 1000, 2})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK_MAIN();
