#pragma once
/// @file bench/data.hpp
/// Shared by engram's benchmarks: fixed-seed clustered, normalised vectors, and a measurement of the
/// machine's read bandwidth taken in the same process (the "floor" a memory-bound scan is compared with).

#include <engram/detail/aligned_allocator.hpp>
#include <engram/simd/kernels.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string_view>
#include <thread>
#include <vector>

namespace engram_bench {

/// CPU time of the calling thread, in ms: what a single-threaded search costs, whatever else the machine runs.
inline double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) / 1e6;
}

/// Reads `--name value` pairs: on(name, value) returns false for an unknown name. Prints why and returns
/// false for an unknown option or a missing value (the caller exits 2).
template <class On>
bool parse_options(int argc, char** argv, On&& on) {
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 == argc) {
      std::fprintf(stderr, "option %s needs a value\n", argv[i]);
      return false;
    }
    if (!on(std::string_view(argv[i]), argv[i + 1])) {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return false;
    }
  }
  return true;
}

/// splitmix64: fast, deterministic, good enough for synthetic data.
struct rng {
  std::uint64_t s;
  std::uint64_t next() noexcept {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  /// Uniform in [-1, 1).
  float uniform() noexcept { return float(next() >> 40) * (2.0f / 16777216.0f) - 1.0f; }
  /// In [0, n) (n > 0).
  std::size_t below(std::size_t n) noexcept { return static_cast<std::size_t>(next() % n); }
  template <class T>
  const T& pick(const std::vector<T>& v) noexcept { return v[below(v.size())]; }
};

/// Vectors around `clusters` random centres (centre + noise * uniform noise; centre components are uniform in
/// [-1, 1)), each L2-normalised. With noise 0.6 the clusters are well apart; from about 1.5 the noise
/// outweighs the centre, so neighbours cross cluster boundaries as in real embeddings.
/// Vector i depends only on (seed, i), so any prefix or subset is reproducible.
class clustered {
 public:
  clustered(std::size_t dim, std::size_t clusters, std::uint64_t seed, float noise = 0.6f)
      : dim_(dim), seed_(seed), noise_(noise), centres_(clusters * dim) {
    rng g{seed};
    for (auto& x : centres_) x = g.uniform();
  }
  void vector(std::size_t i, float* out) const {
    rng g{seed_ * 1000003u + i * 7919u + 1};
    const std::size_t c = g.next() % (centres_.size() / dim_);
    double n = 0;
    for (std::size_t j = 0; j < dim_; ++j) {
      out[j] = centres_[c * dim_ + j] + noise_ * g.uniform();
      n += double(out[j]) * out[j];
    }
    const float inv = float(1.0 / std::sqrt(n));
    for (std::size_t j = 0; j < dim_; ++j) out[j] *= inv;
  }
  /// Vectors [first, first + count) one after the other.
  std::vector<float> block(std::size_t first, std::size_t count) const {
    std::vector<float> v(count * dim_);
    for (std::size_t i = 0; i < count; ++i) vector(first + i, v.data() + i * dim_);
    return v;
  }
  std::size_t dim() const noexcept { return dim_; }

 private:
  std::size_t dim_;
  std::uint64_t seed_;
  float noise_;
  std::vector<float> centres_;
};

/// Best-of-`passes` read bandwidth in bytes/s over a `bytes` array (far larger than the caches), summed with
/// the same SIMD loads the index uses, split over `threads` threads.
inline double read_bandwidth(std::size_t bytes = std::size_t{1} << 30, int passes = 5, unsigned threads = 1) {
  using engram::simd::float_batch;
  constexpr std::size_t W = engram::simd::batch_width;
  const std::size_t n = bytes / sizeof(float) / (4 * W * threads) * (4 * W * threads);
  std::vector<float, engram::detail::aligned_allocator<float>> a(n, 1.0f);
  double best = 0;
  volatile float sink = 0;
  for (int p = 0; p < passes; ++p) {
    std::vector<float> sums(threads);
    const auto t0 = std::chrono::steady_clock::now();
    auto work = [&](unsigned t) {
      const float* x = a.data() + n / threads * t;
      float_batch s0(0.f), s1(0.f), s2(0.f), s3(0.f);
      for (std::size_t i = 0; i < n / threads; i += 4 * W) {
        s0 += float_batch::load_aligned(x + i);
        s1 += float_batch::load_aligned(x + i + W);
        s2 += float_batch::load_aligned(x + i + 2 * W);
        s3 += float_batch::load_aligned(x + i + 3 * W);
      }
      sums[t] = engram::detail::hsum((s0 + s1) + (s2 + s3));
    };
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work, t);
    work(0);
    for (auto& th : pool) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (float v : sums) sink = sink + v;
    best = std::max(best, double(n * sizeof(float)) / s);
  }
  return best;
}

}  // namespace engram_bench
