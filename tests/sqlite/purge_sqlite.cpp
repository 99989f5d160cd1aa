// Purge over sqlite_store: the rows are gone, and no file beside the database (WAL included) keeps the text.
#include <engram/engram.hpp>
#include <engram/store/sqlite_store.hpp>

#include "support/purge_support.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace engram;

TEST_CASE("purge_sqlite: no file of the directory holds the purged text", "[purge][sqlite]") {
  using sqlite_memory = basic_memory<hashing_embedder, flat_index, sqlite_store, verbatim_extractor>;
  const std::string secret = "zq-unique-4712-sqlite";
  engram_test::temp_dir d;
  purge_test::planted p;
  {
    sqlite_memory m(hashing_embedder(), sqlite_store(d.sub("memory.db")));
    p = purge_test::plant(m, secret);
    REQUIRE_FALSE(purge_test::files_holding(d.path, secret).empty());
    CHECK(m.purge(user("alice")) == 3);
    purge_test::check_purged(m, p);
    CHECK(purge_test::files_holding(d.path, secret).empty());
    m.add("carol was here", user("carol"));
  }
  CHECK(purge_test::files_holding(d.path, secret).empty());
  sqlite_memory m(hashing_embedder(), sqlite_store(d.sub("memory.db")));
  purge_test::check_purged(m, p);
  CHECK(m.get_all(user("carol")).size() == 1);
  STATIC_REQUIRE(purging_store<sqlite_store>);
}
