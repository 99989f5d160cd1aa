// ivf_index, d = 384, k = 10, N = 100k clustered vectors (bench/data.hpp, seed 42), nlist = 256: one query at
// a time for several nprobe, a 10% candidate bitmap, and single adds after training. `x_floor` = time /
// (bytes of the probed lists / read bandwidth measured in this process). For the comparison with FAISS's
// IndexIVFFlat see bench/compare/faiss_ivf.cpp.
#include <engram/index/ivf.hpp>

#include "data.hpp"

#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>
#include <optional>

namespace {

constexpr std::size_t dim = 384;
constexpr std::size_t k = 10;
constexpr std::size_t n = 100'000;
constexpr std::size_t nlist = 256;
const std::vector<engram::partition_id> part0{0};

const engram_bench::clustered& generator() {
  static const engram_bench::clustered g(dim, 1000, 42);
  return g;
}
engram::ivf_index& index() {
  static const auto idx = [] {
    auto p = std::make_unique<engram::ivf_index>(
        dim, engram::ivf_index_options{.nlist = nlist, .nprobe = 8, .train_threshold = n, .max_train = 32768,
                                       .min_per_list = 1, .iterations = 10, .seed = 1, .retrain_growth = 0.0,
                                       .max_imbalance = 4.0});
    std::vector<float> v(dim);
    for (std::size_t i = 0; i < n; ++i) {  // the n-th add trains the partition
      generator().vector(i, v.data());
      p->add(static_cast<engram::slot_id>(i), 0, v);
    }
    p->wait_idle();  // the training runs in the background
    return p;
  }();
  return *idx;
}
std::vector<float> queries(std::size_t count) { return generator().block(100'000'000, count); }

void search(benchmark::State& state) {
  const auto nprobe = static_cast<std::size_t>(state.range(0));
  const auto& idx = index();
  const auto qs = queries(64);
  static const double bw = engram_bench::read_bandwidth();
  std::size_t i = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    const auto q = std::span<const float>(qs).subspan((i++ % 64) * dim, dim);
    benchmark::DoNotOptimize(idx.search(q, k, part0, nullptr, nprobe));
  }
  const double per = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / double(i);
  const double bytes = double(nprobe) * double(n) / double(nlist) * double(idx.stride()) * sizeof(float);
  state.counters["x_floor"] = per / (bytes / bw);
}

void search_filtered(benchmark::State& state) {
  const auto nprobe = static_cast<std::size_t>(state.range(0));
  const auto& idx = index();
  const auto qs = queries(64);
  engram::slot_bitmap c(n);
  engram_bench::rng g{11};
  while (c.count() < n / 10) c.set(engram::slot_id(g.next() % n));
  std::size_t i = 0;
  for (auto _ : state) {
    const auto q = std::span<const float>(qs).subspan((i++ % 64) * dim, dim);
    benchmark::DoNotOptimize(idx.search(q, k, part0, &c, nprobe));
  }
}

void add_after_training(benchmark::State& state) {
  auto& idx = index();
  std::vector<float> v(dim);
  std::size_t i = n;
  for (auto _ : state) {
    state.PauseTiming();
    generator().vector(i, v.data());
    state.ResumeTiming();
    idx.add(static_cast<engram::slot_id>(i++), 0, v);
  }
  for (std::size_t s = n; s < i; ++s) idx.remove(static_cast<engram::slot_id>(s));  // after the timed loop
}

/// The add that brings a 30k-vector partition to train_threshold: with the training synchronous (Arg 0) it
/// waits for the whole training; with it in the background (Arg 1) only for the sample's copy.
/// `training_ms`: from that add until the new lists serve (wait_idle).
void training_add(benchmark::State& state) {
  constexpr std::size_t m = 30'000;
  const bool background = state.range(0) != 0;
  std::vector<float> v(dim);
  double total = 0;
  int runs = 0;
  std::optional<engram::ivf_index> idx;
  for (auto _ : state) {
    state.PauseTiming();
    idx.emplace(dim, engram::ivf_index_options{.nlist = 128, .nprobe = 8, .train_threshold = m, .max_train = 16384,
                                               .min_per_list = 1, .iterations = 10, .seed = 1, .retrain_growth = 0.0,
                                               .max_imbalance = 4.0, .background = background});
    for (std::size_t i = 0; i + 1 < m; ++i) {
      generator().vector(i, v.data());
      idx->add(static_cast<engram::slot_id>(i), 0, v);
    }
    generator().vector(m - 1, v.data());
    const auto t0 = std::chrono::steady_clock::now();
    state.ResumeTiming();
    idx->add(static_cast<engram::slot_id>(m - 1), 0, v);
    state.PauseTiming();
    idx->wait_idle();
    total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++runs;
    idx.reset();
    state.ResumeTiming();
  }
  state.counters["training_ms"] = total / runs * 1e3;
}

}  // namespace

BENCHMARK(training_add)->Arg(0)->Arg(1)->Iterations(2)->Unit(benchmark::kMillisecond);
BENCHMARK(search)->Arg(1)->Arg(4)->Arg(8)->Arg(16)->Arg(32)->Arg(64)->Unit(benchmark::kMicrosecond);
BENCHMARK(search_filtered)->Arg(8)->Arg(32)->Unit(benchmark::kMicrosecond);
BENCHMARK(add_after_training)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
