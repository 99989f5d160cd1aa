#pragma once
// The index behaviour suite: cases every vector index must pass, written once. Before including it, define
//   using index_kinds = std::tuple<...>;
// where a kind has `using index_type` and `static index_type make(std::size_t dim)`, an index that answers
// exactly (flat_index; ivf_index probing every list), so every case compares it with a brute-force cosine.

#include <engram/engram.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <random>
#include <span>
#include <stdexcept>
#include <vector>

namespace index_test {

using namespace engram;

inline std::vector<float> random_vector(std::size_t dim, std::mt19937& g) {
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<float> v(dim);
  for (auto& x : v) x = n(g);
  return v;
}

inline float cosine(std::span<const float> a, std::span<const float> b) {
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) ab += double(a[i]) * b[i], aa += double(a[i]) * a[i], bb += double(b[i]) * b[i];
  return aa > 0 && bb > 0 ? float(ab / std::sqrt(aa * bb)) : 0.0f;
}

/// The brute-force answer over `rows` (slot -> vector, empty: absent) restricted to `parts` and `cand`.
inline std::vector<index_hit> expected(const std::vector<std::vector<float>>& rows, const std::vector<partition_id>& part_of,
                                     std::span<const float> q, std::size_t k, const std::vector<partition_id>& parts,
                                     const slot_bitmap* cand = nullptr) {
  std::vector<index_hit> all;
  for (std::size_t s = 0; s < rows.size(); ++s) {
    if (rows[s].empty() || std::find(parts.begin(), parts.end(), part_of[s]) == parts.end()) continue;
    if (cand && !cand->test(static_cast<slot_id>(s))) continue;
    all.push_back({static_cast<slot_id>(s), cosine(q, rows[s])});
  }
  std::sort(all.begin(), all.end(), [](const index_hit& a, const index_hit& b) {
    return a.score != b.score ? a.score > b.score : a.slot < b.slot;
  });
  all.resize(std::min(k, all.size()));
  return all;
}

/// Whether `got` ranks as `want` does: the same scores (to float rounding), the same slots wherever the
/// reference's score is not within rounding of a neighbour's (there the reference's double arithmetic may
/// order near-ties differently). Exact ties are checked apart, by the order of equal scores.
inline bool same_ranking(const std::vector<index_hit>& got, const std::vector<index_hit>& want) {
  if (got.size() != want.size()) return false;
  constexpr float eps = 1e-5f;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (std::abs(got[i].score - want[i].score) > eps) return false;
    const bool near_tie = (i > 0 && want[i - 1].score - want[i].score <= eps) ||
                          (i + 1 < want.size() && want[i].score - want[i + 1].score <= eps);
    if (!near_tie && got[i].slot != want[i].slot) return false;
  }
  return true;
}

}  // namespace index_test

TEMPLATE_LIST_TEST_CASE("index suite: an empty index and k = 0 return nothing", "[index_suite]", index_kinds) {
  auto idx = TestType::make(8);
  const std::vector<float> q(8, 1.0f);
  const std::vector<engram::partition_id> parts{0, 1};
  CHECK(idx.size() == 0);
  CHECK(idx.search(q, 5, parts).empty());
  idx.add(0, 0, q);
  CHECK(idx.search(q, 0, parts).empty());
  CHECK(idx.search(q, 5, std::vector<engram::partition_id>{}).empty());
  CHECK(idx.search(q, 5, std::vector<engram::partition_id>{7}).empty());
}

TEMPLATE_LIST_TEST_CASE("index suite: dimension checks", "[index_suite]", index_kinds) {
  CHECK_THROWS_AS(TestType::make(0), engram::validation_error);
  auto idx = TestType::make(4);
  CHECK(idx.dimension() == 4);
  const std::vector<float> bad(5, 1.0f), good(4, 1.0f);
  CHECK_THROWS_AS(idx.add(0, 0, bad), engram::dimension_mismatch);
  idx.add(0, 0, good);
  CHECK_THROWS_AS(idx.update(0, bad), engram::dimension_mismatch);
  CHECK_THROWS_AS(idx.search(bad, 1, std::vector<engram::partition_id>{0}), engram::dimension_mismatch);
  CHECK_THROWS_AS(idx.add(0, 0, good), engram::validation_error);  // slot taken
  CHECK_THROWS_AS(idx.update(9, good), engram::validation_error);  // no such slot
  CHECK(idx.size() == 1);
}

TEMPLATE_LIST_TEST_CASE("index suite: top-k order, ties by slot, k larger than size", "[index_suite]", index_kinds) {
  using namespace index_test;
  std::mt19937 g(7);
  const std::size_t dim = GENERATE(1, 3, 17, 64);
  auto idx = TestType::make(dim);
  std::vector<std::vector<float>> rows(60);
  std::vector<partition_id> part_of(60, 0);
  for (std::size_t s = 0; s < rows.size(); ++s) {
    rows[s] = random_vector(dim, g);
    if (s % 10 == 9) rows[s] = rows[s - 1];  // exact ties: the lower slot first
    idx.add(static_cast<slot_id>(s), 0, rows[s]);
  }
  const std::vector<partition_id> parts{0};
  for (int t = 0; t < 5; ++t) {
    const auto q = random_vector(dim, g);
    for (const std::size_t k : {std::size_t{1}, std::size_t{10}, std::size_t{60}, std::size_t{100}}) {
      const auto hits = idx.search(q, k, parts);
      CHECK(hits.size() == std::min<std::size_t>(k, 60));
      CHECK(same_ranking(hits, expected(rows, part_of, q, k, parts)));
      for (std::size_t i = 1; i < hits.size(); ++i)
        CHECK((hits[i - 1].score > hits[i].score || (hits[i - 1].score == hits[i].score && hits[i - 1].slot < hits[i].slot)));
    }
  }
}

TEMPLATE_LIST_TEST_CASE("index suite: partitions and candidate bitmaps restrict the hits", "[index_suite]", index_kinds) {
  using namespace index_test;
  std::mt19937 g(11);
  const std::size_t dim = 12;
  auto idx = TestType::make(dim);
  std::vector<std::vector<float>> rows(90);
  std::vector<partition_id> part_of(90);
  for (std::size_t s = 0; s < rows.size(); ++s) {
    rows[s] = random_vector(dim, g);
    part_of[s] = static_cast<partition_id>(s % 3);
    idx.add(static_cast<slot_id>(s), part_of[s], rows[s]);
  }
  slot_bitmap sparse, dense;
  for (slot_id s = 0; s < 90; ++s) {
    if (s % 17 == 0) sparse.set(s);
    if (s % 4 != 0) dense.set(s);
  }
  for (const auto& parts : {std::vector<partition_id>{0}, std::vector<partition_id>{1, 2}, std::vector<partition_id>{2, 0, 1}}) {
    const auto q = random_vector(dim, g);
    for (const slot_bitmap* cand : std::array<const slot_bitmap*, 3>{nullptr, &sparse, &dense}) {
      const auto hits = idx.search(q, 7, parts, cand);
      CHECK(same_ranking(hits, expected(rows, part_of, q, 7, parts, cand)));
      for (const auto& h : hits) {
        CHECK(std::find(parts.begin(), parts.end(), part_of[h.slot]) != parts.end());
        if (cand) CHECK(cand->test(h.slot));
      }
    }
  }
}

TEMPLATE_LIST_TEST_CASE("index suite: add, update, remove, re-add and clear stay exact", "[index_suite]", index_kinds) {
  using namespace index_test;
  std::mt19937 g(3);
  const std::size_t dim = 20;
  auto idx = TestType::make(dim);
  std::vector<std::vector<float>> rows(80);
  std::vector<partition_id> part_of(80);
  for (std::size_t s = 0; s < rows.size(); ++s) {
    rows[s] = random_vector(dim, g);
    part_of[s] = static_cast<partition_id>(s % 2);
    idx.add(static_cast<slot_id>(s), part_of[s], rows[s]);
  }
  const std::vector<partition_id> parts{0, 1};
  for (slot_id s = 0; s < 80; s += 3) {
    idx.remove(s);
    rows[s].clear();
  }
  idx.remove(1000);  // absent: a no-op
  for (slot_id s = 1; s < 80; s += 5) {
    if (rows[s].empty()) continue;
    rows[s] = random_vector(dim, g);
    idx.update(s, rows[s]);
  }
  for (slot_id s = 0; s < 80; s += 6) {  // re-add some removed slots, in the other partition
    rows[s] = random_vector(dim, g);
    part_of[s] = 1 - part_of[s];
    idx.add(s, part_of[s], rows[s]);
  }
  std::size_t held = 0;
  for (std::size_t s = 0; s < rows.size(); ++s) {
    held += rows[s].empty() ? 0 : 1;
    CHECK(idx.contains(static_cast<slot_id>(s)) == !rows[s].empty());
  }
  CHECK(idx.size() == held);
  for (int t = 0; t < 5; ++t) {
    const auto q = random_vector(dim, g);
    CHECK(same_ranking(idx.search(q, 10, parts), expected(rows, part_of, q, 10, parts)));
    CHECK(same_ranking(idx.search(q, 10, std::vector<partition_id>{1}), expected(rows, part_of, q, 10, {1})));
  }
  idx.clear();
  CHECK(idx.size() == 0);
  CHECK_FALSE(idx.contains(1));
  CHECK(idx.search(rows[1], 5, parts).empty());
  idx.add(1, 0, rows[1]);
  const auto hits = idx.search(rows[1], 5, parts);
  REQUIRE(hits.size() == 1);
  CHECK(hits[0].slot == 1);
  CHECK(hits[0].score == Approx(1.0f));
}
