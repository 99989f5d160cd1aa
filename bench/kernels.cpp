// Kernel throughput: GB/s of vectors read by dot / l2sq / cosine (SIMD and scalar reference), with the rows
// resident in L2 (256 KiB of rows), so the figure is the kernel's, not DRAM's.
#include <engram/simd/kernels.hpp>
#include <engram/simd/scalar.hpp>

#include "data.hpp"

#include <benchmark/benchmark.h>

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

}  // namespace

#define ENGRAM_KERNEL_BENCH(name, fn) \
  BENCHMARK_TEMPLATE(kernel_rows, fn)->Name(name)->Arg(128)->Arg(384)->Arg(768)->Arg(1536)->UseRealTime()

ENGRAM_KERNEL_BENCH("dot/simd", engram::simd::dot);
ENGRAM_KERNEL_BENCH("dot/scalar", engram::simd::dot_scalar);
ENGRAM_KERNEL_BENCH("l2sq/simd", engram::simd::l2sq);
ENGRAM_KERNEL_BENCH("l2sq/scalar", engram::simd::l2sq_scalar);
ENGRAM_KERNEL_BENCH("cosine/simd", engram::simd::cosine);
ENGRAM_KERNEL_BENCH("cosine/scalar", engram::simd::cosine_scalar);

BENCHMARK_MAIN();
