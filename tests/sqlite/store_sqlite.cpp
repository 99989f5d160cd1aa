#include <engram/store/memory_store.hpp>
#include <engram/tools/reembed.hpp>
#include <engram/store/sqlite_store.hpp>

#include <catch2/catch.hpp>

#include <tuple>

namespace store_test {
struct sqlite_kind {
  using store_type = engram::sqlite_store;
  static constexpr bool durable = true;
  static store_type open(const std::string& file) { return store_type(file); }
};
}  // namespace store_test

using store_kinds = std::tuple<store_test::sqlite_kind>;
using durable_store_kinds = std::tuple<store_test::sqlite_kind>;

#include "support/store_suite.hpp"

using namespace engram;
using namespace store_test;

TEST_CASE("store_sqlite: the history table has Mem0's columns", "[store][sqlite]") {
  temp_dir dir;
  { sqlite_store s(dir.sub("db")); }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(dir.sub("db").c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info('history')", -1, &st, nullptr) == SQLITE_OK);
  std::set<std::string> cols;
  while (sqlite3_step(st) == SQLITE_ROW) cols.insert(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
  sqlite3_finalize(st);
  sqlite3_close(db);
  for (const char* c : {"id", "memory_id", "old_memory", "new_memory", "event", "created_at", "updated_at",
                        "is_deleted", "actor_id", "role"})
    CHECK(cols.count(c) == 1);
}

TEST_CASE("store_sqlite: read-only opening reads and refuses writes; two writers share the file",
          "[store][sqlite]") {
  temp_dir dir;
  sqlite_store a(dir.sub("db"));
  sqlite_store b(dir.sub("db"));  // SQLite serialises the two connections' transactions
  write_batch w1, w2;
  w1.upserts = {sample_record(1)};
  w2.upserts = {sample_record(2)};
  a.apply(w1);
  b.apply(w2);
  sqlite_store reader(dir.sub("db"), {.read_only = true});
  CHECK(reader.get("rec-1") == sample_record(1));
  CHECK(reader.get("rec-2") == sample_record(2));
  CHECK_THROWS_AS(reader.apply(w1), storage_error);
  CHECK_THROWS_AS(sqlite_store(dir.sub("missing/db")), storage_error);
  CHECK_THROWS_AS(sqlite_store(dir.sub("db2"), {.synchronous = "SOMETIMES"}), validation_error);
}

TEST_CASE("store_sqlite: reembed switches the store to another embedder in one transaction", "[store][sqlite]") {
  temp_dir dir;
  using mem_t = memory_over<sqlite_store>;
  {
    mem_t m(hashing_embedder(64), sqlite_store(dir.sub("db")));
    m.add("green tea every morning", user("a"), {.infer = false});
  }
  CHECK_THROWS_AS(mem_t(hashing_embedder(32), sqlite_store(dir.sub("db"))), dimension_mismatch);
  {
    sqlite_store s(dir.sub("db"));
    CHECK(reembed(s, hashing_embedder(32)) == 1);
  }
  mem_t m(hashing_embedder(32), sqlite_store(dir.sub("db")));
  CHECK(m.get_all(user("a")).front().embedding == hashing_embedder(32).embed("green tea every morning"));
}

namespace {
/// Stores `r` with `hits` search hits in a new database at `path`, closes it, then runs `sql` on it directly.
void store_then_run_sql(const std::string& path, const record& r, std::uint32_t hits, const std::string& sql) {
  {
    sqlite_store s(path);
    write_batch w;
    w.upserts = {r};
    s.apply(w);
    const std::vector<access_increment> inc{store_test::hits_of(r, hits)};
    s.add_access(inc);
  }
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
}
}  // namespace

TEST_CASE("store_sqlite: a database without the access_counts table opens and keeps access counts",
          "[store][sqlite][access]") {
  temp_dir dir;
  const auto a = sample_record(1);
  store_then_run_sql(dir.sub("db"), a, 0, "DROP TABLE access_counts");  // as an engram before access counts
  {
    sqlite_store reader(dir.sub("db"), {.read_only = true});  // read-only: nothing to create, no counts
    CHECK(access_of(reader).empty());
    const std::vector<access_increment> one{hits_of(a, 1)};
    CHECK_THROWS_AS(reader.add_access(one), storage_error);
  }
  {
    sqlite_store s(dir.sub("db"));
    CHECK(s.get(a.id) == a);
    CHECK(access_of(s).empty());
    const std::vector<access_increment> hits{hits_of(a, 4)};
    s.add_access(hits);
  }
  sqlite_store s(dir.sub("db"));
  CHECK(access_of(s) == std::map<std::string, std::uint32_t>{{a.id, 4}});
}

namespace {
/// `a` stored, then `drop` run (as an engram before some columns left the database): a read-only open reads `a`
/// as it was stored, a writable open adds the columns and stores `b` with them, and both read back unchanged.
void check_columns_added(const std::string& path, const record& a, const std::string& drop, const record& b) {
  store_then_run_sql(path, a, 0, drop);
  {
    sqlite_store reader(path, {.read_only = true});  // nothing to add: the missing columns read as absent
    CHECK(reader.get(a.id) == a);
  }
  {
    sqlite_store s(path);
    CHECK(s.get(a.id) == a);
    write_batch w;
    w.upserts = {b};
    s.apply(w);
  }
  sqlite_store s(path);
  CHECK(s.get(a.id) == a);
  CHECK(s.get(b.id) == b);
}
}  // namespace

TEST_CASE("store_sqlite: a database without the immutable column opens read-only and gains it when writable",
          "[store][sqlite][immutable]") {
  temp_dir dir;
  auto a = sample_record(1);  // mutable: as every record of such a database reads
  REQUIRE_FALSE(a.immutable);
  auto b = sample_record(2);
  b.immutable = true;
  check_columns_added(dir.sub("db"), a, "ALTER TABLE memories DROP COLUMN immutable", b);
}

TEST_CASE("store_sqlite: a database without the validity columns opens read-only and gains them when writable",
          "[store][sqlite][validity]") {
  temp_dir dir;
  auto a = sample_record(1);  // valid since created_at, never closed: as every record of such a database reads
  REQUIRE_FALSE(a.valid_from);
  REQUIRE_FALSE(a.invalid_at);
  auto b = sample_record(3);
  b.valid_from = b.created_at - std::chrono::hours{24};
  REQUIRE(b.invalid_at);
  REQUIRE(b.superseded_by);
  check_columns_added(dir.sub("db"), a,
                      "ALTER TABLE memories DROP COLUMN valid_from; ALTER TABLE memories DROP COLUMN invalid_at;"
                      " ALTER TABLE memories DROP COLUMN superseded_by",
                      b);
}

TEST_CASE("store_sqlite: a database without the entities column opens read-only and gains it when writable",
          "[store][sqlite][entities]") {
  temp_dir dir;
  auto a = sample_record(3);  // entities unset (recognised from the text): as every record of such a database
  REQUIRE_FALSE(a.entities);
  auto b = sample_record(1);  // an extractor's entities and relations
  REQUIRE(b.entities);
  REQUIRE_FALSE(b.entities->relations.empty());
  check_columns_added(dir.sub("db"), a, "ALTER TABLE memories DROP COLUMN entities", b);
}

TEST_CASE("store_sqlite: an entities column that does not read back is a storage_error naming the record",
          "[store][sqlite][entities]") {
  temp_dir dir;
  const auto a = sample_record(1);
  store_then_run_sql(dir.sub("db"), a, 0, "UPDATE memories SET entities = '{\"relations\":[{\"source\":1}]}'");
  {
    sqlite_store s(dir.sub("db"), {.read_only = true});
    CHECK_THROWS_AS(s.get(a.id), storage_error);
    CHECK_THROWS_WITH(s.get(a.id), Catch::Contains("'rec-1'") && Catch::Contains("entities.relations[0].source"));
  }
  store_then_run_sql(dir.sub("db2"), a, 0, "UPDATE memories SET entities = 'not json'");
  sqlite_store s(dir.sub("db2"), {.read_only = true});
  CHECK_THROWS_WITH(s.get(a.id), Catch::Contains("entities of 'rec-1' are not JSON"));
}

TEST_CASE("store_sqlite: a count left by an erase that did not know the table is dropped on open",
          "[store][sqlite][access]") {
  temp_dir dir;
  const auto a = sample_record(1);
  // an older engram erases the memory and leaves its count
  store_then_run_sql(dir.sub("db"), a, 3, "DELETE FROM memories WHERE id = '" + a.id + "'");
  sqlite_store s(dir.sub("db"));
  write_batch w;  // the id stored again (an import, say) starts from zero
  w.upserts = {a};
  s.apply(w);
  CHECK(access_of(s).empty());
}
