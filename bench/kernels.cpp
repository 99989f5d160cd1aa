// Kernel throughput: GB/s of vectors read by dot / l2sq / cosine (SIMD and scalar reference), with the rows
// resident in L2 (256 KiB of rows), so the figure is the kernel's, not DRAM's.
//
// scan/*: one query against 1M x 384 rows (1.5 GB, far out of cache), the kernels of flat_index beside a plain
// row loop (simd::dot row after row) and the floor (the same bytes only loaded), measured in turn within each
// round (A/B alternating, so a noisy machine moves them together); the best round of each is reported as
// x_floor. scan/mask50: a 50% candidate set as a group mask (flat_index's dense path) against a plain loop
// over the id list, both as x the id-list loop.
#include <engram/detail/aligned_allocator.hpp>
#include <engram/simd/kernels.hpp>
#include <engram/simd/rows.hpp>
#include <engram/simd/scalar.hpp>

#include "data.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

namespace {

template <float (*Kernel)(const float*, const float*, std::size_t)>
void kernel_rows(benchmark::State& state) {
  const auto d = static_cast<std::size_t>(state.range(0));
  const std::size_t rows = (256 * 1024) / (d * sizeof(float));
  const engram_bench::clustered gen(d, 16, 1);
  const auto data = gen.block(0, rows);
  const auto q = gen.block(rows, 1);
  for (auto _ : state) {
    float s = 0;
    for (std::size_t r = 0; r < rows; ++r) s += Kernel(q.data(), data.data() + r * d, d);
    benchmark::DoNotOptimize(s);
  }
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(rows * d * sizeof(float)));
}

using engram::simd::float_batch;
constexpr std::size_t W = engram::simd::batch_width;
constexpr std::size_t scan_dim = 384;  // a multiple of 16: rows are their own stride

struct scan_data {
  std::size_t n;
  std::vector<float, engram::detail::aligned_allocator<float>> rows, q;
  std::vector<std::uint32_t> ids;          // the 50% candidates, in row order
  std::vector<std::uint32_t> group_masks;  // the same candidates, one mask per group of W rows
};

const scan_data& data_of(std::size_t n) {
  static scan_data d = [n] {
    scan_data s{n, {}, {}, {}, {}};
    const engram_bench::clustered gen(scan_dim, 1000, 42);
    s.rows.resize(n * scan_dim);
    for (std::size_t i = 0; i < n; ++i) gen.vector(i, s.rows.data() + i * scan_dim);
    s.q.resize(scan_dim);
    gen.vector(n + 11, s.q.data());
    s.group_masks.assign((n + W - 1) / W, 0);
    engram_bench::rng g{3};
    for (std::size_t i = 0; i < n; ++i)
      if (g.next() % 2) {
        s.ids.push_back(static_cast<std::uint32_t>(i));
        s.group_masks[i / W] |= std::uint32_t{1} << (i % W);
      }
    return s;
  }();
  return d;
}

float best_lane(const float_batch& b) {
  alignas(64) float t[W];
  b.store_aligned(t);
  return *std::max_element(t, t + W);
}

// Each variant returns the best score so the work cannot be dropped.
float load_only(const scan_data& d) {
  float_batch s0(0.f), s1(0.f), s2(0.f), s3(0.f);
  const float* x = d.rows.data();
  for (std::size_t i = 0; i < d.rows.size(); i += 4 * W) {
    s0 += float_batch::load_aligned(x + i);
    s1 += float_batch::load_aligned(x + i + W);
    s2 += float_batch::load_aligned(x + i + 2 * W);
    s3 += float_batch::load_aligned(x + i + 3 * W);
  }
  return engram::detail::hsum((s0 + s1) + (s2 + s3));
}
float plain_loop(const scan_data& d) {
  float m = -2.f;
  for (std::size_t r = 0; r < d.n; ++r) m = std::max(m, engram::simd::dot(d.q.data(), d.rows.data() + r * scan_dim, scan_dim));
  return m;
}
template <class Group>
float by_groups(const scan_data& d, Group group) {
  float_batch m(-2.f);
  for (std::size_t g = 0; g < d.n; g += W) m = xsimd::max(m, group(g));
  return best_lane(m);
}
float interleaved(const scan_data& d) {
  return by_groups(d, [&](std::size_t g) {
    return engram::simd::dot_group_interleaved(d.q.data(), d.rows.data() + g * scan_dim, scan_dim);
  });
}
float row_after_row(const scan_data& d) {
  return by_groups(d, [&](std::size_t g) {
    return engram::simd::dot_group_masked(d.q.data(), d.rows.data() + g * scan_dim, ~std::uint32_t{0} >> (32 - W), scan_dim);
  });
}
float id_list_loop(const scan_data& d) {
  float m = -2.f;
  for (const auto id : d.ids) m = std::max(m, engram::simd::dot(d.q.data(), d.rows.data() + std::size_t{id} * scan_dim, scan_dim));
  return m;
}
float mask_interleaved(const scan_data& d) {  // before: a group with any candidate was read whole
  return by_groups(d, [&](std::size_t g) {
    return d.group_masks[g / W] ? engram::simd::dot_group_interleaved(d.q.data(), d.rows.data() + g * scan_dim, scan_dim)
                                : float_batch(-2.f);
  });
}
float mask_row_after_row(const scan_data& d) {
  return by_groups(d, [&](std::size_t g) {
    return engram::simd::dot_group_masked(d.q.data(), d.rows.data() + g * scan_dim, d.group_masks[g / W], scan_dim);
  });
}

/// Runs the variants in turn for `rounds` rounds; the best time of each.
std::vector<double> alternate(const scan_data& d, const std::vector<float (*)(const scan_data&)>& variants, int rounds) {
  std::vector<double> best(variants.size(), 1e30);
  float sink = 0;
  for (int r = 0; r < rounds; ++r)
    for (std::size_t v = 0; v < variants.size(); ++v) {
      const auto t0 = std::chrono::steady_clock::now();
      sink += variants[v](d);
      best[v] = std::min(best[v], std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  benchmark::DoNotOptimize(sink);
  return best;
}

void scan_full(benchmark::State& state) {
  const auto& d = data_of(static_cast<std::size_t>(state.range(0)));
  std::vector<double> t;
  for (auto _ : state) t = alternate(d, {load_only, plain_loop, interleaved, row_after_row}, 7);
  state.counters["floor_ms"] = t[0] * 1e3;
  state.counters["floor_GB/s"] = double(d.rows.size() * sizeof(float)) / t[0] / 1e9;
  state.counters["plain_x_floor"] = t[1] / t[0];
  state.counters["interleaved_x_floor"] = t[2] / t[0];
  state.counters["row_after_row_x_floor"] = t[3] / t[0];
  state.counters["default_is_interleaved"] = engram::simd::interleaved_groups ? 1 : 0;
}

void scan_mask50(benchmark::State& state) {
  const auto& d = data_of(static_cast<std::size_t>(state.range(0)));
  std::vector<double> t;
  for (auto _ : state) t = alternate(d, {id_list_loop, mask_interleaved, mask_row_after_row}, 7);
  state.counters["id_list_ms"] = t[0] * 1e3;
  state.counters["interleaved_x_id_list"] = t[1] / t[0];
  state.counters["row_after_row_x_id_list"] = t[2] / t[0];
}

}  // namespace

#define ENGRAM_KERNEL_BENCH(name, fn) \
  BENCHMARK_TEMPLATE(kernel_rows, fn)->Name(name)->Arg(128)->Arg(384)->Arg(768)->Arg(1536)->UseRealTime()

ENGRAM_KERNEL_BENCH("dot/simd", engram::simd::dot);
ENGRAM_KERNEL_BENCH("dot/scalar", engram::simd::dot_scalar);
ENGRAM_KERNEL_BENCH("l2sq/simd", engram::simd::l2sq);
ENGRAM_KERNEL_BENCH("l2sq/scalar", engram::simd::l2sq_scalar);
ENGRAM_KERNEL_BENCH("cosine/simd", engram::simd::cosine);
ENGRAM_KERNEL_BENCH("cosine/scalar", engram::simd::cosine_scalar);

BENCHMARK(scan_full)->Name("scan/1M")->Arg(1'000'000)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(scan_mask50)->Name("scan/mask50")->Arg(1'000'000)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
