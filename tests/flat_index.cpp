#include <engram/index/flat.hpp>
#include <engram/simd/scalar.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>

using namespace engram;

namespace {
std::vector<float> random_vector(std::mt19937& g, std::size_t d) {
  std::normal_distribution<float> n;
  std::vector<float> v(d);
  for (auto& x : v) x = n(g);
  return v;
}
float naive_cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  return float(ab / std::sqrt(aa * bb));
}
}  // namespace

TEST_CASE("flat_index: a dimension of 0 is rejected", "[index]") {
  CHECK_THROWS_AS(flat_index(0), validation_error);
}

TEST_CASE("flat_index: scores equal a naive cosine on awkward dimensions", "[index]") {
  const std::size_t d = GENERATE(1, 7, 8, 9, 383, 384, 1536);
  std::mt19937 g(static_cast<unsigned>(d));
  flat_index idx(d);
  std::vector<std::vector<float>> vs;
  for (slot_id s = 0; s < 50; ++s) {
    vs.push_back(random_vector(g, d));
    idx.add(s, s % 3, vs.back());
  }
  const auto q = random_vector(g, d);
  const std::vector<partition_id> all{0, 1, 2};
  const auto hits = idx.search(q, 50, all);
  REQUIRE(hits.size() == 50);
  for (const auto& h : hits) CHECK(h.score == Approx(naive_cosine(q, vs[h.slot])).margin(1e-5));
  CHECK(std::is_sorted(hits.begin(), hits.end(), better_hit));
}

TEST_CASE("flat_index: top-k equals a sort of all scores, ties by slot", "[index]") {
  std::mt19937 g(7);
  const std::size_t d = 16;
  flat_index idx(d);
  std::vector<std::vector<float>> vs;
  for (slot_id s = 0; s < 300; ++s) {
    vs.push_back(random_vector(g, d));
    idx.add(s, 0, s % 10 == 0 ? vs[0] : vs.back());  // duplicates of vector 0 make ties
    if (s % 10 == 0) vs.back() = vs[0];
  }
  const auto q = vs[0];
  std::vector<index_hit> all;
  for (slot_id s = 0; s < 300; ++s) all.push_back({s, idx.search(q, 300, std::vector<partition_id>{0})[0].score});
  const auto full = idx.search(q, 300, std::vector<partition_id>{0});
  for (const std::size_t k : {1u, 5u, 30u, 299u}) {
    const auto top = idx.search(q, k, std::vector<partition_id>{0});
    REQUIRE(top.size() == k);
    for (std::size_t i = 0; i < k; ++i) CHECK(top[i] == full[i]);
  }
  // the 30 copies of vector 0 tie at the top, in slot order
  for (std::size_t i = 0; i + 1 < 30; ++i) CHECK(full[i].slot < full[i + 1].slot);
}

TEST_CASE("flat_index: partitions, candidates, remove/update/re-add stay exact", "[index]") {
  std::mt19937 g(3);
  const std::size_t d = 24;
  flat_index idx(d);
  std::vector<std::vector<float>> vs(100);
  for (slot_id s = 0; s < 100; ++s) {
    vs[s] = random_vector(g, d);
    idx.add(s, s % 4, vs[s]);
  }
  auto brute = [&](const std::vector<float>& q, const std::vector<partition_id>& parts, const slot_bitmap* c,
                   std::size_t k) {
    std::vector<index_hit> all;
    for (slot_id s = 0; s < 100; ++s) {
      if (!idx.contains(s)) continue;
      if (std::find(parts.begin(), parts.end(), s % 4) == parts.end()) continue;
      if (c && !c->test(s)) continue;
      all.push_back({s, naive_cosine(q, vs[s])});
    }
    std::sort(all.begin(), all.end(), better_hit);
    if (all.size() > k) all.resize(k);
    return all;
  };
  auto same = [](const std::vector<index_hit>& a, const std::vector<index_hit>& b) {
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i].slot == b[i].slot);
      CHECK(a[i].score == Approx(b[i].score).margin(1e-5));
    }
  };
  const auto q = random_vector(g, d);
  same(idx.search(q, 10, std::vector<partition_id>{1, 3}), brute(q, {1, 3}, nullptr, 10));

  slot_bitmap cand;
  for (slot_id s = 0; s < 100; s += 7) cand.set(s);
  same(idx.search(q, 10, std::vector<partition_id>{0, 1, 2, 3}, &cand), brute(q, {0, 1, 2, 3}, &cand, 10));

  for (slot_id s = 0; s < 100; s += 3) idx.remove(s);
  CHECK(idx.size() == 100 - 34);
  for (slot_id s = 1; s < 100; s += 5) {
    if (!idx.contains(s)) continue;
    vs[s] = random_vector(g, d);
    idx.update(s, vs[s]);
  }
  for (slot_id s = 0; s < 100; s += 6) {
    vs[s] = random_vector(g, d);
    idx.add(s, s % 4, vs[s]);
  }
  same(idx.search(q, 20, std::vector<partition_id>{0, 1, 2, 3}), brute(q, {0, 1, 2, 3}, nullptr, 20));
  idx.remove(12345);  // absent: no-op
  CHECK_THROWS_AS(idx.add(1, 0, vs[1]), validation_error);
  CHECK_THROWS_AS(idx.update(3, vs[1]), validation_error);
}

TEST_CASE("flat_index: a wrong dimension names both sizes", "[index]") {
  flat_index idx(8);
  const std::vector<float> v(7, 1.0f);
  CHECK_THROWS_AS(idx.add(0, 0, v), dimension_mismatch);
  try {
    (void)idx.search(v, 1, std::vector<partition_id>{0});
    FAIL("expected dimension_mismatch");
  } catch (const dimension_mismatch& e) {
    CHECK(e.expected() == 8);
    CHECK(e.actual() == 7);
    CHECK_THAT(e.what(), Catch::Contains("8") && Catch::Contains("7"));
  }
}
