// Purge over postgres_store and sharded_postgres_store: afterwards no row of any table of the schema holds the
// purged text, the other scopes are whole, and another node no longer finds the purged memories.
#include <engram/engram.hpp>
#include <engram/store/postgres_store.hpp>
#include <engram/store/sharded_postgres_store.hpp>

#include "support/pg_test_support.hpp"
#include "support/purge_support.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <sstream>
#include <string>

using namespace engram;

namespace {
/// How many rows of the schema's tables in `database` hold `needle` (each row compared as text).
long rows_holding(const std::string& database, const std::string& schema, const std::string& needle) {
  const auto tables = pg_test::sql_on(
      database, "SELECT string_agg(table_name, ',') FROM information_schema.tables WHERE table_schema = '" + schema + "'");
  REQUIRE_FALSE(tables.empty());
  long n = 0;
  std::stringstream in(tables);
  for (std::string t; std::getline(in, t, ',');)
    n += std::stol(pg_test::sql_on(database, "SELECT count(*) FROM \"" + t + "\" x WHERE x::text LIKE '%" + needle + "%'",
                                   schema));
  return n;
}
}  // namespace

TEST_CASE("purge_postgres: no row holds the purged text; another node drops the memories", "[purge][postgres]") {
  using node = basic_memory<hashing_embedder, flat_index, postgres_store, verbatim_extractor>;
  const std::string secret = "zq-unique-4713-postgres";
  engram_test::temp_dir d;
  const auto schema = pg_test::schema_for(d.path);
  node a(hashing_embedder(), postgres_store(pg_test::conninfo(), {.schema = schema}));
  node b(hashing_embedder(), postgres_store(pg_test::conninfo(), {.schema = schema}));
  const auto p = purge_test::plant(a, secret);
  a.delete_memory(p.alice[2]);  // erased before: its history rows name the scope, so the purge takes them too
  REQUIRE(b.get_all(user("alice")).size() == 2);
  REQUIRE(rows_holding(pg_test::conninfo(), schema, secret) > 0);
  CHECK(a.purge(user("alice")) == 2);
  purge_test::check_purged(a, p);
  purge_test::check_purged(b, p);
  CHECK(b.search("passport", user("alice")).empty());
  CHECK(rows_holding(pg_test::conninfo(), schema, secret) == 0);
  STATIC_REQUIRE(purging_store<postgres_store>);
}

TEST_CASE("purge_postgres: sharded, the scope's rows go from every shard", "[purge][postgres]") {
  using node = basic_memory<hashing_embedder, flat_index, sharded_postgres_store, verbatim_extractor>;
  const std::string secret = "zq-unique-4714-sharded";
  engram_test::temp_dir d;
  sharded_postgres_options o;
  o.shards.push_back({"s1", pg_test::conninfo()});
  o.shards.push_back({"s2", pg_test::database("engram_s2")});
  o.store.schema = pg_test::schema_for(d.path);
  node m(hashing_embedder{}, sharded_postgres_store(o));
  const auto p = purge_test::plant(m, secret);
  for (int i = 0; i < 8; ++i) m.add(secret + " in run " + std::to_string(i), scope{"alice", "", "r" + std::to_string(i)});
  CHECK(m.purge(user("alice")) == 11);
  purge_test::check_purged(m, p);
  for (const auto& s : o.shards) CHECK(rows_holding(s.conninfo, o.store.schema, secret) == 0);
  STATIC_REQUIRE(purging_store<sharded_postgres_store>);
}
