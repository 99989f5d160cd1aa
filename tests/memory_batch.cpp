// update_many and delete_many: several memories changed in one write batch, all of them or none.
#include <engram/engram.hpp>

#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

#include <memory>
#include <string>
#include <vector>

using namespace engram;

namespace {

/// A memory_store whose apply() fails while `down` is set (a store that went away at the commit point).
class failing_store : public memory_store {
 public:
  std::shared_ptr<bool> down = std::make_shared<bool>(false);
  void apply(const write_batch& b) {
    if (*down) throw storage_error("failing_store: the store is down");
    memory_store::apply(b);
  }
};

/// Text and updated_at of every memory of `s`, and the length of each one's history: what a failed batch must not move.
template <class Memory>
std::vector<std::string> state_of(const Memory& mem, const scope& s) {
  std::vector<std::string> out;
  for (const auto& r : mem.get_all(s, {.limit = 0}))
    out.push_back(r.id + "|" + r.memory + "|" + r.metadata.dump() + "|" + format_iso8601(r.updated_at) + "|" +
                  std::to_string(mem.history(r.id).size()));
  return out;
}

template <class Memory>
std::vector<std::string> add_three(Memory& mem) {
  std::vector<std::string> ids;
  for (const char* t : {"Ann keeps bees", "Ann lives in Porto", "Ann plays the cello"})
    ids.push_back(mem.add(t, user("ann"), {.infer = false}).results.at(0).id);
  return ids;
}

}  // namespace

TEST_CASE("memory_batch: update_many changes every item in one batch, searchable at once", "[memory][batch]") {
  memory mem;
  const auto ids = add_three(mem);
  const std::vector<memory_update> items{
      {ids[0], {.text = "Ann keeps bees and sells honey"}},
      {ids[2], {.metadata = nlohmann::json{{"instrument", "cello"}}}},
  };
  const auto after = mem.update_many(items);
  REQUIRE(after.size() == 2);
  CHECK(after[0].memory == "Ann keeps bees and sells honey");
  CHECK(mem.get(ids[0])->memory == "Ann keeps bees and sells honey");
  CHECK(mem.get(ids[2])->metadata["instrument"] == "cello");
  CHECK(mem.get(ids[2])->memory == "Ann plays the cello");
  CHECK(mem.get(ids[1])->memory == "Ann lives in Porto");
  CHECK(mem.history(ids[0]).back().event == event_kind::update);
  CHECK(mem.search("honey", user("ann"), {.limit = 1, .mode = search_mode::keyword}).front().record.id == ids[0]);
  CHECK(mem.update_many({}).empty());
}

TEST_CASE("memory_batch: one bad item in update_many leaves every memory unchanged", "[memory][batch]") {
  memory mem;
  const auto ids = add_three(mem);
  const auto frozen = mem.add("Ann's blood type is A", user("ann"), {.infer = false, .immutable = true}).results.at(0).id;
  const auto before = state_of(mem, user("ann"));
  auto fails = [&](std::vector<memory_update> items, const char* says) {
    INFO(says);
    try {
      (void)mem.update_many(items);
      FAIL("update_many accepted a bad batch");
    } catch (const error& e) {
      CHECK_THAT(e.what(), Catch::Matchers::Contains(says));
    }
    CHECK(state_of(mem, user("ann")) == before);
  };
  fails({{ids[0], {.text = "changed"}}, {"no-such-id", {.text = "x"}}}, "item 1");
  fails({{ids[0], {.text = "changed"}}, {"no-such-id", {.text = "x"}}}, "no memory with id 'no-such-id'");
  fails({{ids[0], {.text = "changed"}}, {ids[1], {.text = "   "}}}, "item 1: update: text is empty");
  fails({{ids[0], {.text = "changed"}}, {ids[0], {.text = "again"}}}, "already item 0");
  fails({{ids[1], {.text = "changed"}}, {frozen, {.text = "B"}}}, "immutable");
  fails({{ids[1], {.text = "changed"}}, {ids[2], {}}}, "nothing to change");
  fails({{ids[1], {.text = "changed"}}, {ids[2], {.metadata = nlohmann::json{{"user_id", "eve"}}}}}, "item 1");
  CHECK_THROWS_AS(mem.update("no-such-id", "x"), not_found);  // one update: no item index
}

TEST_CASE("memory_batch: delete_many deletes every id or none", "[memory][batch]") {
  memory mem;
  const auto ids = add_three(mem);
  const auto before = state_of(mem, user("ann"));
  CHECK_THROWS_AS(mem.delete_many(std::vector<std::string>{ids[0], "no-such-id"}), not_found);
  CHECK_THROWS_WITH(mem.delete_many(std::vector<std::string>{ids[0], ids[1], ids[0]}),
                    Catch::Matchers::Contains("item 2") && Catch::Matchers::Contains("already item 0"));
  CHECK_THROWS_AS(mem.delete_many(std::vector<std::string>{ids[0], ""}), validation_error);
  CHECK(state_of(mem, user("ann")) == before);

  mem.delete_many(std::vector<std::string>{ids[0], ids[2]});
  const auto left = mem.get_all(user("ann"));
  REQUIRE(left.size() == 1);
  CHECK(left[0].id == ids[1]);
  CHECK(mem.history(ids[0]).back().event == event_kind::del);
  CHECK(mem.search("bees cello", user("ann"), {.limit = 5, .mode = search_mode::keyword}).empty());
  CHECK(mem.search("Porto", user("ann"), {.limit = 5, .mode = search_mode::keyword}).size() == 1);
  mem.delete_many({});  // nothing: a no-op
  CHECK(mem.size() == 1);
}

TEST_CASE("memory_batch: a store failing at the commit point leaves memory and index unchanged", "[memory][batch]") {
  failing_store store;
  auto down = store.down;
  basic_memory<hashing_embedder, flat_index, failing_store, verbatim_extractor> mem(hashing_embedder(), std::move(store));
  const auto ids = add_three(mem);
  const auto before = state_of(mem, user("ann"));
  *down = true;
  CHECK_THROWS_AS(mem.update_many(std::vector<memory_update>{{ids[0], {.text = "Ann sells honey"}}, {ids[1], {.text = "Ann moved to Braga"}}}),
                  storage_error);
  CHECK_THROWS_AS(mem.delete_many(std::vector<std::string>{ids[0], ids[1]}), storage_error);
  *down = false;
  CHECK(state_of(mem, user("ann")) == before);
  CHECK(mem.search("honey Braga", user("ann"), {.limit = 5, .mode = search_mode::keyword}).empty());
  CHECK(mem.size() == 3);
}

TEST_CASE("memory_batch: a batch on a file_store is durable, and a refused one leaves nothing after reopening",
          "[memory][batch]") {
  engram_test::temp_dir dir;
  using file_memory = basic_memory<hashing_embedder, flat_index, file_store, verbatim_extractor>;
  std::vector<std::string> ids;
  {
    file_memory mem(hashing_embedder(), file_store(dir.sub("db")));
    ids = add_three(mem);
    (void)mem.update_many(std::vector<memory_update>{{ids[0], {.text = "Ann sells honey"}}, {ids[1], {.text = "Ann moved to Braga"}}});
    CHECK_THROWS(mem.update_many(std::vector<memory_update>{{ids[2], {.text = "Ann plays the viola"}}, {"nope", {.text = "x"}}}));
    mem.delete_many(std::vector<std::string>{ids[1]});
    CHECK_THROWS(mem.delete_many(std::vector<std::string>{ids[0], "nope"}));
  }
  file_memory mem(hashing_embedder(), file_store(dir.sub("db")));
  CHECK(mem.get(ids[0])->memory == "Ann sells honey");
  CHECK_FALSE(mem.get(ids[1]));
  CHECK(mem.get(ids[2])->memory == "Ann plays the cello");
  CHECK(mem.history(ids[1]).size() == 3);  // ADD, UPDATE, DELETE
}
