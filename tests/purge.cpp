// Purge (basic_memory::purge): a scope's memories and their history are erased for good, in memory_store and
// file_store; the other scopes stay whole, and no file of a file_store's directory keeps the text.
#include <engram/engram.hpp>
#include <engram/store/file_store.hpp>

#include "support/purge_support.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace engram;
using engram_test::temp_dir;
using purge_test::check_purged;
using purge_test::files_holding;
using purge_test::plant;

namespace {
using file_memory = basic_memory<hashing_embedder, flat_index, file_store, verbatim_extractor>;
const std::string secret = "zq-unique-4711-purge";
}  // namespace

TEST_CASE("purge: memory_store erases the scope's memories and history", "[purge]") {
  memory m;
  const auto p = plant(m, secret);
  CHECK(m.purge(user("alice")) == 3);
  check_purged(m, p);
  CHECK(m.purge(user("alice")) == 0);
  CHECK(m.search("passport", user("alice")).empty());
  CHECK_THROWS_AS(m.purge(scope{}), validation_error);
}

TEST_CASE("purge: an agent scope takes only that agent's memories", "[purge]") {
  memory m;
  const auto p = plant(m, secret);
  CHECK(m.purge(scope{"", "planner", ""}) == 1);
  CHECK_FALSE(m.get(p.alice[1]));
  CHECK(m.get(p.alice[0]));
  CHECK(m.history(p.alice[1]).empty());
  CHECK(m.history(p.alice[0]).size() == 2);
}

TEST_CASE("purge: plain delete and delete_all keep history", "[purge]") {
  memory m;
  const auto p = plant(m, secret);
  m.delete_all(user("bob"));
  CHECK(m.history(p.bob.front()).size() == 3);
}

TEST_CASE("purge: file_store leaves no file holding the text, before and after reopening", "[purge]") {
  purge_test::planted p;
  for (const auto mode : {durability::fsync, durability::group_commit}) {
    temp_dir d;
    {
      file_memory m(hashing_embedder(), file_store(d.path, {.mode = mode}));
      p = plant(m, secret);
      REQUIRE_FALSE(files_holding(d.path, secret).empty());
      CHECK(m.purge(user("alice")) == 3);
      check_purged(m, p);
      CHECK(files_holding(d.path, secret).empty());
      m.add("carol was here", user("carol"));
    }
    CHECK(files_holding(d.path, secret).empty());
    file_memory m(hashing_embedder(), file_store(d.path));
    check_purged(m, p);
    CHECK(m.get_all(user("carol")).size() == 1);
  }
}

TEST_CASE("purge: file_store removes damaged log tails, which may hold the text", "[purge]") {
  temp_dir d;
  {
    file_memory m(hashing_embedder(), file_store(d.path));
    m.add("bob is fine", user("bob"));
  }
  {
    std::ofstream(d.sub("damaged.1.100"), std::ios::binary) << "torn bytes " << secret;
  }
  file_memory m(hashing_embedder(), file_store(d.path));
  CHECK(m.purge(user("alice")) == 0);
  CHECK(files_holding(d.path, secret).empty());
  CHECK(m.get_all(user("bob")).size() == 1);
}

TEST_CASE("purge: a store without the capability is refused at compile time", "[purge]") {
  STATIC_REQUIRE(purging_store<memory_store>);
  STATIC_REQUIRE(purging_store<file_store>);
}
