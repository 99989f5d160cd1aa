#pragma once
/// @file index/kmeans.hpp
/// Spherical k-means for the coarse quantiser of ivf_index: assignment by largest inner product (Eigen matrix
/// products, in row chunks), centroids re-normalised to unit length, deterministic for a given seed.

#include <engram/detail/fnv.hpp>  // detail::mix64
#include <engram/error.hpp>
#include <engram/simd/kernels.hpp>

// <resolv.h> (pulled in by cpp-httplib) defines `_res` as a macro, which breaks Eigen's headers when they come
// after it: hide it while Eigen is read.
#pragma push_macro("_res")
#undef _res
#include <Eigen/Core>
#pragma pop_macro("_res")

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

namespace engram::inline v0::detail {

/// A deterministic stream of 64-bit values (splitmix64).
struct kmeans_rng {
  std::uint64_t state;
  std::uint64_t next() noexcept { return mix64(state += 0x9e3779b97f4a7c15ULL); }
  /// Uniform in [0, n), n > 0.
  std::size_t below(std::size_t n) noexcept { return static_cast<std::size_t>(next() % n); }
};

/// For each of the n rows of `x` (row r at x + r * ldx, d floats), the index of the row of `c` (k rows of d
/// floats at c + j * ldc) with the largest inner product, lowest index on ties; written to out[r].
/// Complexity O(n * k * d) flops as blocked matrix products over chunks of 1024 rows (4 MB of scores at k = 1024).
inline void assign_nearest(const float* x, std::size_t n, std::size_t ldx, const float* c, std::size_t k,
                           std::size_t ldc, std::size_t d, std::uint32_t* out) {
  using row_major = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using view = Eigen::Map<const row_major, Eigen::Unaligned, Eigen::OuterStride<>>;
  const view cm(c, Eigen::Index(k), Eigen::Index(d), Eigen::OuterStride<>(Eigen::Index(ldc)));
  constexpr std::size_t chunk = 1024;
  row_major scores;
  for (std::size_t r0 = 0; r0 < n; r0 += chunk) {
    const std::size_t m = std::min(chunk, n - r0);
    const view xm(x + r0 * ldx, Eigen::Index(m), Eigen::Index(d), Eigen::OuterStride<>(Eigen::Index(ldx)));
    scores.resize(Eigen::Index(m), Eigen::Index(k));
    scores.noalias() = xm * cm.transpose();
    for (std::size_t i = 0; i < m; ++i) {
      const float* s = scores.data() + i * k;
      out[r0 + i] = static_cast<std::uint32_t>(std::max_element(s, s + k) - s);  // first maximum: lowest index
    }
  }
}

/// Spherical k-means of the n unit rows of `x` (row r at x + r * ldx, d floats) into k <= n clusters:
/// initialised by k-means++ (rows drawn with `seed`, O(k x n x d)), then `iterations` rounds of assignment and
/// re-normalised means. An emptied cluster takes half of the largest one (its centroid, perturbed by ±1e-3 in
/// opposite directions), as FAISS does. Returns k x d floats, each row of unit length.
/// When `cancel` is given and becomes true, it stops early and returns an empty vector (checked once per
/// initialisation step and per round).
/// @throws validation_error when k is 0 or exceeds n.
/// Complexity O(iterations * n * k * d).
inline std::vector<float> spherical_kmeans(const float* x, std::size_t n, std::size_t ldx, std::size_t d,
                                           std::size_t k, std::size_t iterations, std::uint64_t seed,
                                           const std::atomic<bool>* cancel = nullptr) {
  if (k == 0 || k > n)
    throw validation_error("spherical_kmeans: " + std::to_string(k) + " clusters for " + std::to_string(n) +
                           " points (need 1 <= clusters <= points)");
  kmeans_rng g{seed};
  std::vector<float> cent(k * d);
  // k-means++: each next centre is a row drawn with probability proportional to its squared distance
  // (2 - 2 cos for unit rows) to the nearest centre so far
  std::vector<double> dist(n, 4.0);
  std::size_t next = g.below(n);
  const auto cancelled = [cancel] { return cancel && cancel->load(std::memory_order_relaxed); };
  for (std::size_t j = 0; j < k; ++j) {
    if (cancelled()) return {};
    std::copy_n(x + next * ldx, d, cent.begin() + std::ptrdiff_t(j * d));
    double total = 0;
    for (std::size_t r = 0; r < n; ++r) {
      const double e = std::max(0.0, 2.0 - 2.0 * double(simd::dot(x + r * ldx, cent.data() + j * d, d)));
      dist[r] = std::min(dist[r], e);
      total += dist[r];
    }
    if (j + 1 == k) break;
    double target = total * double(g.next() >> 11) * 0x1.0p-53;
    next = n - 1;
    for (std::size_t r = 0; r < n; ++r) {
      target -= dist[r];
      if (target < 0 && dist[r] > 0) {
        next = r;
        break;
      }
    }
  }

  std::vector<std::uint32_t> assign(n);
  std::vector<double> sum(k * d);
  std::vector<std::size_t> count(k);
  const auto normalise = [d](float* v) {
    double s = 0;
    for (std::size_t i = 0; i < d; ++i) s += double(v[i]) * v[i];
    if (s <= 0) return;
    const float inv = static_cast<float>(1.0 / std::sqrt(s));
    for (std::size_t i = 0; i < d; ++i) v[i] *= inv;
  };
  for (std::size_t it = 0; it < iterations; ++it) {
    if (cancelled()) return {};
    assign_nearest(x, n, ldx, cent.data(), k, d, d, assign.data());
    std::fill(sum.begin(), sum.end(), 0.0);
    std::fill(count.begin(), count.end(), 0);
    for (std::size_t r = 0; r < n; ++r) {
      double* s = sum.data() + std::size_t{assign[r]} * d;
      const float* v = x + r * ldx;
      for (std::size_t i = 0; i < d; ++i) s[i] += v[i];
      ++count[assign[r]];
    }
    for (std::size_t j = 0; j < k; ++j) {
      if (count[j] == 0) continue;
      for (std::size_t i = 0; i < d; ++i) cent[j * d + i] = static_cast<float>(sum[j * d + i]);
      normalise(cent.data() + j * d);
    }
    for (std::size_t j = 0; j < k; ++j) {
      if (count[j] != 0) continue;
      const std::size_t big = static_cast<std::size_t>(std::max_element(count.begin(), count.end()) - count.begin());
      if (count[big] < 2) break;
      for (std::size_t i = 0; i < d; ++i) {
        const float v = cent[big * d + i];
        const float e = (i % 2 ? 1e-3f : -1e-3f) * std::abs(v);
        cent[j * d + i] = v + e;
        cent[big * d + i] = v - e;
      }
      normalise(cent.data() + j * d);
      normalise(cent.data() + big * d);
      count[j] = count[big] / 2;
      count[big] -= count[j];
    }
  }
  return cent;
}

}  // namespace engram::inline v0::detail
