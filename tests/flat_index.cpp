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

namespace {
std::vector<index_hit> brute_force(const flat_index& idx, const std::vector<std::vector<float>>& vs,
                                   const std::vector<partition_id>& part_of, const std::vector<float>& q,
                                   const std::vector<partition_id>& parts, const slot_bitmap* c, std::size_t k) {
  std::vector<index_hit> all;
  for (slot_id s = 0; s < vs.size(); ++s) {
    if (!idx.contains(s)) continue;
    if (std::find(parts.begin(), parts.end(), part_of[s]) == parts.end()) continue;
    if (c && !c->test(s)) continue;
    all.push_back({s, naive_cosine(q, vs[s])});
  }
  std::sort(all.begin(), all.end(), better_hit);
  if (all.size() > k) all.resize(k);
  return all;
}
// Same slots in the same order, scores within float rounding (ranks may swap only between near-equal scores).
void same_as_brute(const std::vector<index_hit>& got, const std::vector<index_hit>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    CHECK(got[i].score == Approx(want[i].score).margin(1e-5));
    if (got[i].slot != want[i].slot) CHECK(std::abs(got[i].score - want[i].score) < 1e-5f);
  }
  CHECK(std::is_sorted(got.begin(), got.end(), better_hit));
}
}  // namespace

TEST_CASE("flat_index: sparse and dense candidate paths equal brute force and each other", "[index]") {
  const std::size_t d = GENERATE(7, 16, 40);
  std::mt19937 g(static_cast<unsigned>(d) + 11);
  flat_index idx(d);
  const std::size_t n = 2000;
  std::vector<std::vector<float>> vs(n);
  std::vector<partition_id> part_of(n);
  for (slot_id s = 0; s < n; ++s) {
    vs[s] = random_vector(g, d);
    part_of[s] = s % 5 == 0 ? 1 : 0;
    idx.add(s, part_of[s], vs[s]);
  }
  for (slot_id s = 0; s < n; s += 9) idx.remove(s);  // holes, and rows moved by swap-with-last
  const auto q = random_vector(g, d);
  const std::vector<partition_id> parts{0, 1};
  // 1% (sparse path), 30% (dense path), and a set including absent slots and slots past the index
  for (const unsigned every : {100u, 3u}) {
    slot_bitmap c;
    for (slot_id s = 0; s < n + 100; s += every) c.set(s);
    INFO("every " << every << " sparse " << (c.count() * flat_index::sparse_divisor <= idx.size()));
    const auto got = idx.search(q, 10, parts, &c);
    same_as_brute(got, brute_force(idx, vs, part_of, q, parts, &c, 10));
    for (const auto& h : got) CHECK(c.test(h.slot));
    // each candidate's score equals its score in an unfiltered search, bit for bit
    const auto all = idx.search(q, n, parts);
    for (const auto& h : got) {
      const auto it = std::find_if(all.begin(), all.end(), [&](const index_hit& a) { return a.slot == h.slot; });
      REQUIRE(it != all.end());
      CHECK(it->score == h.score);
    }
    // only partition 1
    same_as_brute(idx.search(q, 10, std::vector<partition_id>{1}, &c),
                  brute_force(idx, vs, part_of, q, {1}, &c, 10));
  }
  slot_bitmap none;
  CHECK(idx.search(q, 10, parts, &none).empty());
}

TEST_CASE("flat_index: search_batch returns exactly what one-by-one search returns", "[index]") {
  const std::size_t d = GENERATE(5, 16, 100);
  std::mt19937 g(static_cast<unsigned>(d) + 5);
  flat_index idx(d);
  const std::size_t n = 700;
  for (slot_id s = 0; s < n; ++s) idx.add(s, s % 3, random_vector(g, d));
  for (slot_id s = 0; s < n; s += 13) idx.remove(s);
  // duplicates make exact ties
  const auto dup = random_vector(g, d);
  for (slot_id s = 1000; s < 1010; ++s) idx.add(s, s % 3, dup);
  const std::size_t nq = 11;  // not a multiple of the register tile
  std::vector<float> qs;
  for (std::size_t i = 0; i < nq; ++i) {
    const auto v = i == 3 ? dup : random_vector(g, d);
    qs.insert(qs.end(), v.begin(), v.end());
  }
  const std::vector<partition_id> parts{0, 2};
  slot_bitmap dense, sparse;
  for (slot_id s = 0; s < 1010; ++s) {
    if (s % 2) dense.set(s);
    if (s % 97 == 0) sparse.set(s);
  }
  for (const slot_bitmap* c : std::vector<const slot_bitmap*>{nullptr, &dense, &sparse}) {
    for (const std::size_t k : {1u, 10u, 1000u}) {
      const auto batch = idx.search_batch(qs, nq, k, parts, c);
      REQUIRE(batch.size() == nq);
      for (std::size_t i = 0; i < nq; ++i) {
        const auto one = idx.search(std::span<const float>(qs).subspan(i * d, d), k, parts, c);
        CHECK(batch[i] == one);
      }
    }
  }
  CHECK(idx.search_batch(qs, nq, 0, parts).size() == nq);
  CHECK(idx.search_batch({}, 0, 5, parts).empty());
  try {
    (void)idx.search_batch(std::span<const float>(qs).first(qs.size() - 1), nq, 5, parts);
    FAIL("expected dimension_mismatch");
  } catch (const dimension_mismatch& e) {
    CHECK(e.expected() == nq * d);
    CHECK(e.actual() == nq * d - 1);
  }
}

TEST_CASE("flat_index: top-k of a large partition equals a sort of all scores", "[index]") {
  std::mt19937 g(21);
  const std::size_t d = 33, n = 5000;
  flat_index idx(d);
  for (slot_id s = 0; s < n; ++s) idx.add(s, 0, random_vector(g, d));
  const auto q = random_vector(g, d);
  const std::vector<partition_id> parts{0};
  auto all = idx.search(q, n, parts);
  REQUIRE(all.size() == n);
  auto sorted = all;
  std::sort(sorted.begin(), sorted.end(), better_hit);
  CHECK(all == sorted);
  for (const std::size_t k : {1u, 10u, 100u, 1000u}) {
    const auto top = idx.search(q, k, parts);
    CHECK(top == std::vector<index_hit>(sorted.begin(), sorted.begin() + std::ptrdiff_t(k)));
  }
}

TEST_CASE("flat_index: search_int8 rescoring gives exact scores and, with a full shortlist, search()'s hits", "[index]") {
  const std::size_t d = GENERATE(7, 64, 100);
  std::mt19937 g(static_cast<unsigned>(d) + 99);
  flat_index idx(d, flat_index_options{.int8_codes = true});
  CHECK(idx.has_int8_codes());
  const std::size_t n = 1500;
  std::vector<std::vector<float>> vs(n);
  for (slot_id s = 0; s < n; ++s) {
    vs[s] = random_vector(g, d);
    idx.add(s, s % 2, vs[s]);
  }
  // removals move the last row (and its code) into the hole; updates rewrite codes
  for (slot_id s = 0; s < n; s += 7) idx.remove(s);
  for (slot_id s = 3; s < n; s += 11) {
    if (!idx.contains(s)) continue;
    vs[s] = random_vector(g, d);
    idx.update(s, vs[s]);
  }
  for (slot_id s = 0; s < n; s += 14) idx.add(s, s % 2, vs[s]);
  const std::vector<partition_id> parts{0, 1};
  slot_bitmap dense;
  for (slot_id s = 0; s < n; s += 2) dense.set(s);
  std::size_t found = 0, wanted = 0;
  for (int t = 0; t < 5; ++t) {
    const auto q = random_vector(g, d);
    CHECK(idx.search_int8(q, 10, parts, nullptr, n) == idx.search(q, 10, parts));
    CHECK(idx.search_int8(q, 10, parts, &dense, n) == idx.search(q, 10, parts, &dense));
    const auto exact = idx.search(q, 10, parts);
    const auto approx = idx.search_int8(q, 10, parts);  // default shortlist
    REQUIRE(approx.size() == 10);
    for (const auto& h : approx) {
      const auto it = std::find_if(exact.begin(), exact.end(), [&](const index_hit& e) { return e.slot == h.slot; });
      if (it != exact.end()) CHECK(it->score == h.score);  // rescored exactly
      found += it != exact.end();
      CHECK(h.score == Approx(naive_cosine(q, vs[h.slot])).margin(1e-5));
    }
    wanted += 10;
  }
  CHECK(double(found) / double(wanted) >= 0.9);
  CHECK_THROWS_AS(idx.search_int8(std::vector<float>(d + 1, 1.0f), 10, parts), dimension_mismatch);
  flat_index plain(d);
  CHECK_THROWS_AS(plain.search_int8(vs[1], 10, parts), validation_error);
}
