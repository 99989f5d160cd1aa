// Purge over sqlite_store: the rows are gone, and no file beside the database (WAL included) keeps the text.
#include <engram/engram.hpp>
#include <engram/store/sqlite_store.hpp>

#include "support/purge_support.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>
#include <sqlite3.h>

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

namespace {
using sqlite_memory = basic_memory<hashing_embedder, flat_index, sqlite_store, verbatim_extractor>;

/// Runs `statements` on the database file `file` through its own connection.
void run_sql(const std::string& file, const char* statements) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(file.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, statements, nullptr, nullptr, &err);
  const std::string message = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  INFO(message);
  REQUIRE(rc == SQLITE_OK);
}
}  // namespace

TEST_CASE("purge_sqlite: the history of memories deleted before the purge goes too", "[purge][sqlite]") {
  const std::string secret = "zq-unique-4713-sqlite";
  engram_test::temp_dir d;
  purge_test::planted p;
  purge_test::deleted gone;
  {
    sqlite_memory m(hashing_embedder(), sqlite_store(d.sub("memory.db")));
    p = purge_test::plant(m, secret);
    gone = purge_test::plant_deleted(m, secret);
  }
  sqlite_memory m(hashing_embedder(), sqlite_store(d.sub("memory.db")));
  m.delete_memory(p.bob[1]);
  CHECK(m.purge(scope{"", "planner", ""}) == 1);  // an agent scope: that agent's only
  CHECK(m.history(p.alice[0]).size() == 2);
  CHECK(m.history(gone.alice[1]).size() == 2);  // alice's under agent scratch
  CHECK(m.purge(user("alice")) == 2);
  for (const auto& id : p.alice) CHECK(m.history(id).empty());
  purge_test::check_deleted_purged(m, gone);
  CHECK(m.history(p.bob[0]).size() == 2);
  CHECK(m.history(p.bob[1]).size() == 2);  // bob's, deleted before: kept
  CHECK(purge_test::files_holding(d.path, secret).empty());
}

TEST_CASE("purge_sqlite: a database whose history has no scope columns opens and purges what it can",
          "[purge][sqlite]") {
  if (sqlite3_libversion_number() < 3035000) return;  // ALTER TABLE DROP COLUMN, to write the old table
  const std::string secret = "zq-unique-4714-sqlite";
  engram_test::temp_dir d;
  const auto file = d.sub("memory.db");
  purge_test::planted p;
  std::string early;  // deleted before the upgrade: its history names no scope
  {
    sqlite_memory m(hashing_embedder(), sqlite_store{file});
    p = purge_test::plant(m, secret);
    early = m.add("an early note about " + secret, user("alice")).results.at(0).id;
    m.delete_memory(early);
  }
  // the history table as engram wrote it before its rows named their memory's scope
  run_sql(file,
          "ALTER TABLE history DROP COLUMN user_id; ALTER TABLE history DROP COLUMN agent_id;"
          " ALTER TABLE history DROP COLUMN run_id;");
  {
    sqlite_memory m(hashing_embedder(), sqlite_store{file});
    CHECK(m.get_all(user("alice")).size() == 2);
    m.delete_memory(p.alice[0]);  // its rows written before the upgrade learn the scope now
    CHECK(m.purge(user("alice")) == 2);
    for (const auto& id : p.alice) CHECK(m.history(id).empty());
    CHECK(m.history(early).size() == 2);  // the limit: no owner is known
    CHECK(m.history(p.bob[0]).size() == 2);
  }
  CHECK(purge_test::files_holding(d.path, "my passport number").empty());
  CHECK(purge_test::files_holding(d.path, "the planner knows").empty());
  CHECK_FALSE(purge_test::files_holding(d.path, "an early note about").empty());
  sqlite_memory m(hashing_embedder(), sqlite_store{file});
  CHECK(m.get_all(user("bob")).size() == 2);
}
