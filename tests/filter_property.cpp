// Random filters over random data: per-record evaluation, column evaluation, compiled bitmaps, and
// basic_memory's pre-filter, post-filter and automatic strategies all agree with a brute-force reference.
#include "support/filter_gen.hpp"

#include <engram/engram.hpp>
#include <engram/filter/dsl.hpp>
#include <engram/filter/eval.hpp>
#include <engram/filter/parse.hpp>

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace engram;
using nlohmann::json;

using engram_test::gen;

namespace {

std::vector<std::string> ids_of(const std::vector<search_hit>& hits) {
  std::vector<std::string> out;
  for (const auto& h : hits) out.push_back(h.record.id);
  return out;
}

}  // namespace

TEST_CASE("filter_property: per record, per slot and compiled bitmaps agree on random filters", "[filter]") {
  for (unsigned seed = 1; seed <= 4; ++seed) {
    gen g(seed);
    std::vector<record> recs;
    std::vector<slot_id> slots;
    filter_columns cols;
    for (int i = 0; i < 300; ++i) {
      recs.push_back(g.rec(i));
      const auto slot = static_cast<slot_id>(i * 3 + g.pick(3));  // sparse, increasing
      slots.push_back(slot);
      cols.assign(slot, recs.back());
    }
    std::vector<slot_id> half;
    for (std::size_t i = 0; i < slots.size(); i += 2) half.push_back(slots[i]);
    for (int t = 0; t < 300; ++t) {
      const auto f = g.tree(4);
      const json j = f;
      INFO(j.dump());
      REQUIRE(parse_filter(j) == f);  // the canonical JSON reads back as the same tree
      const auto all = cols.select(f, slots);
      const auto some = cols.select(f, half);
      const auto every = cols.select(f);  // over every held slot, without a list
      std::size_t expected = 0, by_slot = 0, by_all = 0, by_some = 0;
      for (std::size_t i = 0; i < recs.size(); ++i) {
        const bool ref = filter_matches(f, recs[i]);
        expected += ref ? 1 : 0;
        by_slot += cols.matches(f, slots[i]) != ref ? 1 : 0;
        by_all += all.test(slots[i]) != ref ? 1 : 0;
        by_all += every.test(slots[i]) != ref ? 1 : 0;
        by_some += some.test(slots[i]) != (ref && i % 2 == 0) ? 1 : 0;
      }
      CHECK(by_slot == 0);  // disagreements
      CHECK(by_all == 0);
      CHECK(by_some == 0);
      CHECK(all.count() == expected);
      CHECK(every.count() == expected);  // and no slot that is not held
      CHECK(cols.count(f, slots) == expected);
    }
  }
}

TEST_CASE("filter_property: memory search with pre-filter, post-filter and automatic equals brute force", "[filter]") {
  memory_config config;
  config.limits.max_limit = 5000;
  memory mem(hashing_embedder(64), memory_store(), verbatim_extractor(), config);
  gen g(42);
  static const char* words[] = {"tea", "coffee", "lisbon", "oslo", "cats", "dogs", "jazz", "rock", "nurse", "pilot"};
  auto sentence = [&](int i) {
    std::string s;
    for (int w = 0; w < 4; ++w) s += std::string(words[g.pick(10)]) + " ";
    return s + std::to_string(i);
  };
  // u0 is large enough (> 1024) for the automatic strategy to sample; u1/u2 are small.
  int n = 0;
  for (const auto& [who, count] : {std::pair{"u0", 1300}, std::pair{"u1", 150}, std::pair{"u2", 120}}) {
    for (int i = 0; i < count; ++i, ++n) {
      const scope s{who, g.coin() ? "g0" : "", ""};
      mem.add(sentence(n), s, {.metadata = g.metadata(), .infer = false});
    }
  }
  REQUIRE(mem.size() == 1570);

  for (int t = 0; t < 60; ++t) {
    const auto f = g.tree(3);
    const std::string q = sentence(t);
    INFO(json(f).dump() << " / " << q);
    for (const char* who : {"u0", "u1"}) {
      // Semantic mode: hybrid fusion normalises keyword scores over the candidate pool, which a filter changes.
      const auto full = mem.search(q, user(who), {.limit = 5000, .mode = search_mode::semantic});
      std::vector<std::string> ref;
      for (const auto& h : full)
        if (filter_matches(f, h.record) && ref.size() < 10) ref.push_back(h.record.id);
      const auto pre = mem.search(q, user(who), {.limit = 10, .filter = f, .strategy = filter_strategy::pre_filter, .mode = search_mode::semantic});
      const auto post = mem.search(q, user(who), {.limit = 10, .filter = f, .strategy = filter_strategy::post_filter, .mode = search_mode::semantic});
      const auto automatic = mem.search(q, user(who), {.limit = 10, .filter = f, .mode = search_mode::semantic});
      CHECK(ids_of(pre) == ref);
      CHECK(ids_of(post) == ref);
      CHECK(ids_of(automatic) == ref);

      std::vector<std::string> listed, listed_ref;
      for (const auto& r : mem.get_all(user(who), {.limit = 0, .filter = f})) listed.push_back(r.id);
      for (const auto& r : mem.get_all(user(who), {.limit = 0}))
        if (filter_matches(f, r)) listed_ref.push_back(r.id);
      CHECK(listed == listed_ref);
    }

    // A filter that names two users searches exactly those two.
    const auto two = (field("user_id") == "u1" || field("user_id") == "u2") && f;
    const auto hits = mem.search(q, {.limit = 10, .filter = two, .mode = search_mode::semantic});
    std::vector<search_hit> merged;
    for (const char* who : {"u1", "u2"})
      for (auto& h : mem.search(q, user(who), {.limit = 5000, .filter = f, .mode = search_mode::semantic})) merged.push_back(std::move(h));
    std::stable_sort(merged.begin(), merged.end(), [](const auto& a, const auto& b) { return a.score > b.score; });
    REQUIRE(hits.size() == std::min<std::size_t>(10, merged.size()));
    std::set<std::string> allowed;
    for (const auto& h : merged) allowed.insert(h.record.id);
    for (std::size_t i = 0; i < hits.size(); ++i) {
      CHECK(hits[i].score == merged[i].score);
      CHECK(allowed.count(hits[i].record.id) == 1);
    }
    const auto post_two = mem.search(q, {.limit = 10, .filter = two, .strategy = filter_strategy::post_filter, .mode = search_mode::semantic});
    CHECK(ids_of(post_two) == ids_of(hits));

    std::set<std::string> all_two, all_ref;
    for (const auto& r : mem.get_all({.limit = 0, .filter = two})) all_two.insert(r.id);
    for (const auto& r : mem.get_all(all_scopes, {.limit = 0}))
      if (filter_matches(two, r)) all_ref.insert(r.id);
    CHECK(all_two == all_ref);
  }
}

TEST_CASE("filter_property: the scope stays a wall and a filter alone must name a scope", "[filter]") {
  memory mem;
  mem.add("green tea in lisbon", user("alice"), {.metadata = {{"topic", "drinks"}, {"priority", 3}}, .infer = false});
  mem.add("black coffee in oslo", user("bob"), {.metadata = {{"topic", "drinks"}, {"priority", 7}}, .infer = false});
  mem.add("jazz on sundays", user("carol"), {.metadata = {{"topic", "music"}}, .infer = false});

  // A filter narrows within the scope, never widens it.
  CHECK(mem.search("tea", user("alice"), {.filter = parse_filter(R"({"user_id": "bob"})")}).empty());
  CHECK(mem.get_all(user("alice"), {.filter = parse_filter(R"({"OR": [{"user_id": "bob"}, {"topic": "drinks"}]})")})
            .size() == 1);

  const auto either = parse_filter(R"({"OR": [{"user_id": "alice"}, {"user_id": "bob"}]})");
  std::set<std::string> who;
  for (const auto& h : mem.search("drinks tea coffee", {.filter = either})) who.insert(h.record.user_id);
  CHECK(who == std::set<std::string>{"alice", "bob"});
  CHECK(mem.get_all({.filter = parse_filter(R"({"user_id": {"in": ["bob", "carol"]}})")}).size() == 2);
  CHECK(mem.get_all({.filter = parse_filter(R"({"user_id": ["alice", "carol"], "topic": "music"})")}).size() == 1);
  CHECK(mem.get_all({.filter = parse_filter(R"({"user_id": "nobody"})")}).empty());

  CHECK_THROWS_AS(mem.search("tea", search_options{}), validation_error);
  CHECK_THROWS_AS(mem.search("tea", {.filter = parse_filter(R"({"topic": "drinks"})")}), validation_error);
  CHECK_THROWS_AS(mem.search("tea", {.filter = parse_filter(R"({"user_id": {"ne": "x"}})")}), validation_error);
  CHECK_THROWS_AS(mem.get_all({.filter = parse_filter(R"({"OR": [{"user_id": "a"}, {"topic": "x"}]})")}),
                  validation_error);
  CHECK_THROWS_AS(mem.get_all(get_all_options{}), validation_error);

  // Updates and deletes keep the filter's view current.
  const auto alice = mem.get_all(user("alice")).at(0);
  CHECK(mem.get_all(user("alice"), {.filter = field("priority") > 5}).empty());
  mem.update(alice.id, "green tea in porto", {.metadata = json{{"topic", "drinks"}, {"priority", 9}}});
  CHECK(mem.get_all(user("alice"), {.filter = field("priority") > 5}).size() == 1);
  CHECK(mem.search("tea", user("alice"), {.filter = field("priority") > 5}).size() == 1);

  mem.add("more jazz", user("carol"), {.metadata = {{"topic", "music"}, {"keep", true}}, .infer = false});
  CHECK(mem.delete_all(user("carol"), field("keep") != true) == 1);
  CHECK(mem.get_all(user("carol")).size() == 1);
  CHECK(mem.get_all(user("carol"), {.filter = field("keep") == true}).size() == 1);
  CHECK(mem.get_all(user("bob")).size() == 1);
  mem.delete_memory(mem.get_all(user("bob")).at(0).id);
  CHECK(mem.get_all({.filter = either}).size() == 1);
  mem.reset();
  CHECK(mem.get_all({.filter = either}).empty());
}

TEST_CASE("filter_property: filtered reads run while writers change metadata", "[filter]") {
  memory mem(hashing_embedder(32));
  for (int i = 0; i < 200; ++i)
    mem.add("seed note " + std::to_string(i), user(i % 2 ? "a" : "b"),
            {.metadata = {{"n", i % 10}, {"tag", i % 3 ? "x" : "y"}}, .infer = false});
  const auto f = field("n") >= 5 && field("tag") == "x";
  const auto both = parse_filter(R"({"user_id": {"in": ["a", "b"]}, "n": {"lt": 3}})");
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t)
    readers.emplace_back([&, t] {
      while (!stop) {
        for (const auto& h : mem.search("note", user(t % 2 ? "a" : "b"),
                                        {.limit = 10, .filter = f, .strategy = static_cast<filter_strategy>(t)}))
          if (!filter_matches(f, h.record)) ++bad;
        for (const auto& r : mem.get_all({.limit = 0, .filter = both}))
          if (!filter_matches(both, r)) ++bad;
      }
    });
  for (int i = 0; i < 150; ++i) {
    const auto id = mem.add("writer note " + std::to_string(i), user(i % 2 ? "a" : "b"),
                            {.metadata = {{"n", i % 10}, {"tag", "x"}}, .infer = false})
                        .results.at(0)
                        .id;
    if (i % 3 == 0) mem.update(id, "rewritten note " + std::to_string(i), {.metadata = json{{"n", 9}, {"tag", "y"}}});
    if (i % 5 == 0) mem.delete_memory(id);
  }
  stop = true;
  for (auto& r : readers) r.join();
  CHECK(bad == 0);
  std::size_t ref = 0;
  for (const auto& r : mem.get_all(user("a"), {.limit = 0}))
    if (filter_matches(f, r)) ++ref;
  CHECK(mem.get_all(user("a"), {.limit = 0, .filter = f}).size() == ref);
}
