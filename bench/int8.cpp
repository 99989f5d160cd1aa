// Experiment (not in the library): an int8 scalar-quantised scan with a float rerank, against the float32
// flat scan, N = 1M, d = 384, k = 10, on the same data. Codes: per-vector symmetric scale (c = round(v / s),
// s = max|v| / 127); the query is quantised the same way and offset to u8 for AVX-512 VNNI (vpdpbusd), with
// the offset removed through each row's code sum. The best `shortlist` approximate hits are rescored in float.
// Reports time, x_float32 (time / float32 scan time in this run) and recall@10 against the float32 results.
#include <engram/index/flat.hpp>

#include "data.hpp"

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <memory>

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
#include <immintrin.h>

namespace {

constexpr std::size_t dim = 384, n = 1'000'000, k = 10;
const std::vector<engram::partition_id> part0{0};

struct data_set {
  engram_bench::clustered gen{dim, 1000, 42};
  engram::flat_index flat{dim};
  std::vector<float, engram::detail::aligned_allocator<float>> rows;  // normalised floats for the rerank
  std::vector<std::int8_t, engram::detail::aligned_allocator<std::int8_t>> codes;
  std::vector<float> scale;
  std::vector<std::int32_t> code_sum;
  std::vector<float> queries = gen.block(100'000'000, 64);
  double float_seconds = 0;
  data_set() : rows(n * dim), codes(n * dim), scale(n), code_sum(n) {
    for (std::size_t i = 0; i < n; ++i) {
      float* v = rows.data() + i * dim;
      gen.vector(i, v);
      flat.add(engram::slot_id(i), 0, std::span<const float>(v, dim));
      float m = 0;
      for (std::size_t j = 0; j < dim; ++j) m = std::max(m, std::abs(v[j]));
      scale[i] = m / 127.0f;
      std::int32_t s = 0;
      for (std::size_t j = 0; j < dim; ++j) {
        const auto c = static_cast<std::int8_t>(std::lrint(v[j] / scale[i]));
        codes[i * dim + j] = c;
        s += c;
      }
      code_sum[i] = s;
    }
  }
};
data_set& data() {
  static data_set d;
  return d;
}

std::vector<engram::index_hit> int8_search(const data_set& d, const float* q, std::size_t shortlist) {
  float m = 0;
  for (std::size_t j = 0; j < dim; ++j) m = std::max(m, std::abs(q[j]));
  const float sq = m / 127.0f;
  alignas(64) std::uint8_t qc[dim];
  for (std::size_t j = 0; j < dim; ++j) qc[j] = static_cast<std::uint8_t>(std::lrint(q[j] / sq) + 128);
  __m512i qv[dim / 64];
  for (std::size_t j = 0; j < dim / 64; ++j) qv[j] = _mm512_load_si512(qc + j * 64);
  engram::topk approx(shortlist);
  const std::int8_t* c = d.codes.data();
  for (std::size_t i = 0; i < n; i += 16) {
    alignas(64) std::int32_t dots[16];
    for (std::size_t r = 0; r < 16; ++r) {
      __m512i acc = _mm512_setzero_si512();
      for (std::size_t j = 0; j < dim / 64; ++j)
        acc = _mm512_dpbusd_epi32(acc, qv[j], _mm512_load_si512(c + (i + r) * dim + j * 64));
      dots[r] = _mm512_reduce_add_epi32(acc);
    }
    const float thr = approx.threshold();
    for (std::size_t r = 0; r < 16; ++r) {
      const float s = d.scale[i + r] * float(dots[r] - 128 * d.code_sum[i + r]);
      if (s >= thr) approx.push(engram::slot_id(i + r), s);
    }
  }
  // float rerank of the shortlist (query normalised like the index does)
  double nq = 0;
  for (std::size_t j = 0; j < dim; ++j) nq += double(q[j]) * q[j];
  std::vector<float> qn(q, q + dim);
  for (auto& x : qn) x = float(x / std::sqrt(nq));
  engram::topk best(k);
  for (const auto& h : approx.take_sorted())
    best.push(h.slot, engram::simd::dot(qn.data(), d.rows.data() + std::size_t{h.slot} * dim, dim));
  return best.take_sorted();
}

void float32_scan(benchmark::State& state) {
  auto& d = data();
  std::size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(d.flat.search(std::span<const float>(d.queries).subspan((i++ % 64) * dim, dim), k, part0));
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t j = 0; j < 8; ++j) benchmark::DoNotOptimize(d.flat.search(std::span<const float>(d.queries).subspan(j * dim, dim), k, part0));
  d.float_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 8;
}

void int8_scan_rerank(benchmark::State& state) {
  auto& d = data();
  const auto shortlist = static_cast<std::size_t>(state.range(0));
  std::size_t i = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) benchmark::DoNotOptimize(int8_search(d, d.queries.data() + (i++ % 64) * dim, shortlist));
  const double per = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / double(state.iterations());
  double recall = 0;
  for (std::size_t j = 0; j < 64; ++j) {
    const auto exact = d.flat.search(std::span<const float>(d.queries).subspan(j * dim, dim), k, part0);
    const auto got = int8_search(d, d.queries.data() + j * dim, shortlist);
    std::size_t hit = 0;
    for (const auto& g : got)
      for (const auto& e : exact) hit += g.slot == e.slot;
    recall += double(hit) / double(k) / 64.0;
  }
  state.counters["recall@10"] = recall;
  if (d.float_seconds > 0) state.counters["x_float32"] = per / d.float_seconds;
}

}  // namespace

BENCHMARK(float32_scan)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(int8_scan_rerank)->Arg(10)->Arg(50)->Arg(100)->Arg(200)->Unit(benchmark::kMillisecond)->UseRealTime();
#else
static void int8_needs_avx512_vnni(benchmark::State& state) {
  for (auto _ : state) {
  }
  state.SkipWithError("built without AVX-512 VNNI: the int8 experiment needs -march with avx512vnni");
}
BENCHMARK(int8_needs_avx512_vnni);
#endif

BENCHMARK_MAIN();
