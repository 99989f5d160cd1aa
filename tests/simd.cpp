#include <engram/detail/aligned_allocator.hpp>
#include <engram/simd/int8.hpp>
#include <engram/simd/kernels.hpp>
#include <engram/simd/rows.hpp>
#include <engram/simd/scalar.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

using namespace engram;

namespace {
// Relative closeness against the larger of |expected| and the sum of |terms| (the scale of the rounding error).
bool close(float got, double expected, double scale) {
  return std::abs(double(got) - expected) <= 1e-5 * std::max({std::abs(expected), scale, 1e-30});
}
std::vector<float> randoms(std::mt19937& g, std::size_t n) {
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}
}  // namespace

TEST_CASE("simd: dot, l2sq and cosine equal the scalar reference on awkward sizes and unaligned starts", "[simd]") {
  const std::size_t n = GENERATE(1, 7, 15, 16, 17, 31, 33, 383, 384, 1536);
  const std::size_t off_a = GENERATE(0, 1, 3);
  const std::size_t off_b = GENERATE(0, 2);
  std::mt19937 g(static_cast<unsigned>(n * 31 + off_a * 7 + off_b));
  const auto abuf = randoms(g, n + 4), bbuf = randoms(g, n + 4);
  const float* a = abuf.data() + off_a;
  const float* b = bbuf.data() + off_b;
  double dot = 0, dabs = 0, l2 = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < n; ++i) {
    dot += double(a[i]) * b[i];
    dabs += std::abs(double(a[i]) * b[i]);
    l2 += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  INFO("n=" << n << " offsets " << off_a << "," << off_b);
  CHECK(close(simd::dot(a, b, n), dot, dabs));
  CHECK(close(simd::dot_scalar(a, b, n), dot, dabs));
  CHECK(close(simd::l2sq(a, b, n), l2, l2));
  CHECK(close(simd::l2sq_scalar(a, b, n), l2, l2));
  const double cos = dot / std::sqrt(aa * bb);
  CHECK(close(simd::cosine(a, b, n), cos, dabs / std::sqrt(aa * bb)));
  CHECK(close(simd::cosine_scalar(a, b, n), cos, dabs / std::sqrt(aa * bb)));
  // SIMD against the scalar reference directly
  CHECK(simd::dot(a, b, n) == Approx(simd::dot_scalar(a, b, n)).epsilon(1e-5).margin(1e-5 * dabs));
  CHECK(simd::l2sq(a, b, n) == Approx(simd::l2sq_scalar(a, b, n)).epsilon(1e-5));
}

TEST_CASE("simd: cosine of a zero vector is 0, and of a vector with itself is 1", "[simd]") {
  const std::size_t n = GENERATE(1, 17, 384);
  std::mt19937 g(static_cast<unsigned>(n));
  const auto a = randoms(g, n);
  const std::vector<float> z(n, 0.0f);
  CHECK(simd::cosine(a.data(), z.data(), n) == 0.0f);
  CHECK(simd::cosine(a.data(), a.data(), n) == Approx(1.0f).epsilon(1e-6));
  CHECK(simd::l2sq(a.data(), a.data(), n) == 0.0f);
}

TEST_CASE("simd: the row-group kernels agree bit for bit and match the scalar dot", "[simd]") {
  constexpr std::size_t W = simd::batch_width;
  const std::size_t stride = GENERATE(16, 32, 384);
  std::mt19937 g(static_cast<unsigned>(stride));
  std::vector<float, detail::aligned_allocator<float>> rows(W * stride), qs(5 * stride);
  for (auto& x : rows) x = std::normal_distribution<float>()(g);
  for (auto& x : qs) x = std::normal_distribution<float>()(g);
  std::array<const float*, 5> qp;
  for (std::size_t i = 0; i < 5; ++i) qp[i] = qs.data() + i * stride;
  std::array<simd::float_batch, 5> multi;
  simd::dot_group_multi<5>(qp.data(), rows.data(), stride, multi.data());
  for (std::size_t i = 0; i < 5; ++i) {
    alignas(64) std::array<float, W> full, many;
    simd::dot_group(qp[i], rows.data(), W, stride).store_aligned(full.data());
    multi[i].store_aligned(many.data());
    for (std::size_t cnt : {std::size_t{1}, W / 2 + 1, W - 1}) {
      alignas(64) std::array<float, W> part;
      simd::dot_group(qp[i], rows.data(), cnt, stride).store_aligned(part.data());
      for (std::size_t r = 0; r < W; ++r) CHECK(part[r] == (r < cnt ? full[r] : 0.0f));
    }
    // the same rows by address, in reversed and rotated lanes, alone or as a partial group
    std::array<const float*, W> rev, rot;
    for (std::size_t r = 0; r < W; ++r) {
      rev[r] = rows.data() + (W - 1 - r) * stride;
      rot[r] = rows.data() + ((r + 3) % W) * stride;
    }
    alignas(64) std::array<float, W> g_rev, g_rot, g_part;
    simd::dot_gathered(qp[i], rev.data(), W, stride).store_aligned(g_rev.data());
    simd::dot_gathered(qp[i], rot.data(), W, stride).store_aligned(g_rot.data());
    simd::dot_gathered(qp[i], rot.data(), W / 2 + 1, stride).store_aligned(g_part.data());
    for (std::size_t r = 0; r < W; ++r) {
      CHECK(g_rev[r] == full[W - 1 - r]);
      CHECK(g_rot[r] == full[(r + 3) % W]);
      CHECK(g_part[r] == (r < W / 2 + 1 ? full[(r + 3) % W] : 0.0f));
    }
    // both orders of reading a full group, and a mask that reads only some rows
    alignas(64) std::array<float, W> inter, masked;
    simd::dot_group_interleaved(qp[i], rows.data(), stride).store_aligned(inter.data());
    const std::uint32_t mask = 0b1011'0000'0010'0101u & ((W >= 32 ? 0u : (1u << W)) - 1u);
    simd::dot_group_masked(qp[i], rows.data(), mask, stride).store_aligned(masked.data());
    for (std::size_t r = 0; r < W; ++r) {
      CHECK(inter[r] == full[r]);
      CHECK(masked[r] == (((mask >> r) & 1u) ? full[r] : 0.0f));
    }
    for (std::size_t r = 0; r < W; ++r) {
      CHECK(many[r] == full[r]);
      CHECK(full[r] == Approx(simd::dot_scalar(qp[i], rows.data() + r * stride, stride)).epsilon(1e-5).margin(1e-4));
    }
  }
}

TEST_CASE("simd: int8 quantisation round-trips within half a step and dot_u8s8 is exact", "[simd]") {
  const std::size_t n = GENERATE(64, 128, 384, 1536);
  std::mt19937 g(static_cast<unsigned>(n) + 3);
  const auto v = randoms(g, n);
  std::vector<std::int8_t, detail::aligned_allocator<std::int8_t>> c(n);
  const auto q = simd::quantize_int8(v.data(), n, c.data());
  std::int32_t sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    CHECK(std::abs(v[i] - q.scale * float(c[i])) <= q.scale * 0.5f + 1e-6f);
    sum += c[i];
  }
  CHECK(sum == q.code_sum);
  std::vector<std::uint8_t, detail::aligned_allocator<std::uint8_t>> a(n);
  std::uniform_int_distribution<int> byte(0, 255);
  std::int64_t want = 0;
  for (std::size_t i = 0; i < n; ++i) {
    a[i] = static_cast<std::uint8_t>(byte(g));
    want += std::int64_t{a[i]} * c[i];
  }
  CHECK(simd::dot_u8s8(a.data(), c.data(), n) == want);
  const std::vector<float> zero(n, 0.0f);
  CHECK(simd::quantize_int8(zero.data(), n, c.data()).scale == 0.0f);
}
