// The keyword index built on a second thread while a store is read (opening a large memory).
#include <engram/engram.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

using namespace engram;

namespace {

std::vector<index_hit> sorted(std::vector<index_hit> v) {
  std::sort(v.begin(), v.end(), [](const index_hit& a, const index_hit& b) { return a.slot < b.slot; });
  return v;
}

}  // namespace

TEST_CASE("concurrency: keyword bulk loading on a second thread builds the same index as add", "[concurrency]") {
  constexpr slot_id n = 20000;
  auto text = [](slot_id i) {
    return "memory " + std::to_string(i) + " mentions hiking" + std::to_string(i % 13) + " and city" +
           std::to_string(i % 101) + (i % 7 == 0 ? " Lisbon Lisbon" : "");
  };
  keyword_index direct, loaded;
  for (slot_id i = 0; i < n; ++i) direct.add(i, i % 5, text(i));
  {
    keyword_index::bulk_loader loader(loaded, true);
    for (slot_id i = 0; i < n; ++i) loader.add(i, i % 5, text(i));
    loader.finish();
  }
  REQUIRE(loaded.size() == direct.size());
  const std::vector<partition_id> all = {0, 1, 2, 3, 4}, some = {1, 3};
  for (const auto* q : {"lisbon", "hiking3 city42", "memory 17", "nothing here"})
    for (const auto* parts : {&all, &some}) {
      const auto a = sorted(direct.score_all(q, *parts, [](slot_id) { return true; }));
      const auto b = sorted(loaded.score_all(q, *parts, [](slot_id) { return true; }));
      REQUIRE(a.size() == b.size());
      for (std::size_t i = 0; i < a.size(); ++i) {
        CHECK(a[i].slot == b[i].slot);
        CHECK(a[i].score == b[i].score);
      }
    }
  // the loaded index is an ordinary one afterwards
  loaded.remove(7);
  direct.remove(7);
  CHECK(loaded.search("lisbon", 5, all) == direct.search("lisbon", 5, all));
}

TEST_CASE("concurrency: a keyword bulk loader dropped before finish stops its thread", "[concurrency]") {
  keyword_index idx;
  {
    keyword_index::bulk_loader loader(idx, true);
    for (slot_id i = 0; i < 10000; ++i) loader.add(i, 0, "some words " + std::to_string(i));
  }  // e.g. the store read threw: nothing must hang or race
  CHECK(idx.size() <= 10000);
}
