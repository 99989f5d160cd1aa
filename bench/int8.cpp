// flat_index::search_int8 (int8 scan + exact float rescoring of a shortlist; arg 0 = default max(8k, 64)) against search() (float32 scan),
// N = 1M, d = 384, k = 10, same index. x_float32 = time / float32 search time in this run; recall@10 is
// against search()'s results over 64 queries.
#include <engram/index/flat.hpp>

#include "data.hpp"

#include <benchmark/benchmark.h>

#include <chrono>

namespace {

constexpr std::size_t dim = 384, n = 1'000'000, k = 10;
const std::vector<engram::partition_id> part0{0};

struct data_set {
  engram_bench::clustered gen{dim, 1000, 42};
  engram::flat_index flat{dim, engram::flat_index_options{.int8_codes = true}};
  std::vector<float> queries = gen.block(100'000'000, 64);
  double float_seconds = 0;
  data_set() {
    std::vector<float> v(dim);
    for (std::size_t i = 0; i < n; ++i) {
      gen.vector(i, v.data());
      flat.add(engram::slot_id(i), 0, v);
    }
  }
  std::span<const float> query(std::size_t i) const { return std::span<const float>(queries).subspan((i % 64) * dim, dim); }
};
data_set& data() {
  static data_set d;
  return d;
}

void float32_scan(benchmark::State& state) {
  auto& d = data();
  std::size_t i = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) benchmark::DoNotOptimize(d.flat.search(d.query(i++), k, part0));
  d.float_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / double(state.iterations());
}

void int8_rescored(benchmark::State& state) {
  auto& d = data();
  const auto shortlist = static_cast<std::size_t>(state.range(0));
  std::size_t i = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) benchmark::DoNotOptimize(d.flat.search_int8(d.query(i++), k, part0, nullptr, shortlist));
  const double per = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / double(state.iterations());
  double recall = 0;
  for (std::size_t j = 0; j < 64; ++j) {
    const auto exact = d.flat.search(d.query(j), k, part0);
    const auto got = d.flat.search_int8(d.query(j), k, part0, nullptr, shortlist);
    std::size_t hit = 0;
    for (const auto& g : got)
      for (const auto& e : exact) hit += g == e;
    recall += double(hit) / double(k) / 64.0;
  }
  state.counters["recall@10"] = recall;
  if (d.float_seconds > 0) state.counters["x_float32"] = per / d.float_seconds;
}

}  // namespace

BENCHMARK(float32_scan)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(int8_rescored)->Arg(0)->Arg(200)->Arg(1000)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
