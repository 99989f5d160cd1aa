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

namespace {
/// The tables as an engram before scope key sets wrote them: no tenant or extra column, memories_scope.
const std::string before_scope_keys =
    "DROP INDEX memories_tenant_scope; CREATE INDEX memories_scope ON memories(user_id, agent_id, run_id);"
    " ALTER TABLE memories DROP COLUMN tenant; ALTER TABLE memories DROP COLUMN extra;"
    " ALTER TABLE history DROP COLUMN tenant; ALTER TABLE history DROP COLUMN extra;"
    " ALTER TABLE pending DROP COLUMN tenant; ALTER TABLE pending DROP COLUMN extra;";

std::set<std::string> indexes_of(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'memories'"
                             " AND sql IS NOT NULL", -1, &st, nullptr) == SQLITE_OK);
  std::set<std::string> out;
  while (sqlite3_step(st) == SQLITE_ROW) out.insert(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}
}  // namespace

TEST_CASE("store_sqlite: a database without the scope key columns opens read-only and gains them when writable",
          "[store][sqlite][scope_keys]") {
  temp_dir dir;
  auto a = sample_record(1);  // tenant and extra empty: as every record of such a database reads
  REQUIRE(a.tenant.empty());
  REQUIRE(a.extra.empty());
  auto b = sample_record(3);
  REQUIRE_FALSE(b.tenant.empty());
  b.extra = "app_id=mobile";
  check_columns_added(dir.sub("db"), a, before_scope_keys, b);
  CHECK(indexes_of(dir.sub("db")) == std::set<std::string>{"memories_tenant_scope"});

  // read-only: access counts and pending adds of such a database, and its identity (Mem0's keys)
  store_then_run_sql(dir.sub("db2"), a, 3, before_scope_keys);
  {
    sqlite_store s(dir.sub("db2"));
    s.bind(store_identity{"hashing-v1", 64});
  }
  {
    sqlite_store reader(dir.sub("db2"), {.read_only = true});
    CHECK(access_of(reader) == std::map<std::string, std::uint32_t>{{a.id, 3}});
    CHECK(access_of(reader, user(a.user_id)) == std::map<std::string, std::uint32_t>{{a.id, 3}});
    REQUIRE(reader.identity());
    CHECK(reader.identity()->scope_keys.empty());
    // a wider key set binds a read-only store for this object only
    reader.bind(store_identity{"hashing-v1", 64, "tenant=org_id;extra="});
    CHECK(reader.identity()->scope_keys == "tenant=org_id;extra=");
  }
  sqlite_store again(dir.sub("db2"), {.read_only = true});
  CHECK(again.identity()->scope_keys.empty());
}

TEST_CASE("store_sqlite: pending adds keep their tenant and extra; a database without the columns reads them empty",
          "[store][sqlite][scope_keys]") {
  temp_dir dir;
  pending_add p;
  p.id = "p-1";
  p.owner = scope{"alice", "", "", "org_id=acme\nproject_id=prod", "app_id=mobile"};
  p.messages = {message{"user", "fact", ""}};
  p.options = nlohmann::json::object();
  p.created_at = "2026-01-01T00:00:00Z";
  auto queue = [](const sqlite_store& s) {
    std::vector<pending_add> out;
    s.for_each_pending([&](const pending_add& q) { out.push_back(q); });
    return out;
  };
  {
    sqlite_store s(dir.sub("db"));
    write_batch w;
    w.enqueued = {p};
    s.apply(w);
  }
  CHECK(queue(sqlite_store(dir.sub("db"))) == std::vector<pending_add>{p});
  auto mem0 = p;
  mem0.owner = user("alice");
  store_then_run_sql(dir.sub("db"), sample_record(1), 0,
                     "UPDATE pending SET tenant = '', extra = ''; " + before_scope_keys);
  CHECK(queue(sqlite_store(dir.sub("db"), {.read_only = true})) == std::vector<pending_add>{mem0});
  CHECK(queue(sqlite_store(dir.sub("db"))) == std::vector<pending_add>{mem0});
}

TEST_CASE("store_sqlite: a scope key column that is not canonical is a storage_error naming the record",
          "[store][sqlite][scope_keys]") {
  temp_dir dir;
  const auto a = sample_record(1);
  store_then_run_sql(dir.sub("db"), a, 0, "UPDATE memories SET tenant = 'project_id=p\norg_id=acme'");
  sqlite_store s(dir.sub("db"), {.read_only = true});
  CHECK_THROWS_AS(s.get(a.id), storage_error);
  CHECK_THROWS_WITH(s.get(a.id), Catch::Contains("'rec-1'") && Catch::Contains("tenant"));
}

TEST_CASE("store_sqlite: purge and access counts select by tenant exactly and by extra key",
          "[store][sqlite][scope_keys]") {
  temp_dir dir;
  sqlite_store s(dir.sub("db"));
  auto in = [](std::string id, std::string tenant, std::string extra) {
    auto r = sample_record(1);
    r.id = std::move(id);
    r.user_id = "alice";
    r.tenant = std::move(tenant);
    r.extra = std::move(extra);
    return r;
  };
  const auto none = in("none", "", ""), prod = in("prod", "org_id=acme\nproject_id=prod", ""),
             prod_app = in("prod-app", "org_id=acme\nproject_id=prod", "app_id=mobile"),
             staging = in("staging", "org_id=acme\nproject_id=staging", "app_id=mobile");
  write_batch w;
  w.upserts = {none, prod, prod_app, staging};
  for (const auto& r : w.upserts) w.events.push_back(sample_event(r, event_kind::add, 0));
  s.apply(w);
  std::vector<access_increment> hits;
  for (const auto& r : w.upserts) hits.push_back(hits_of(r, 1));
  s.add_access(hits);
  auto q = [](std::string tenant, std::string extra) { return scope{"alice", "", "", std::move(tenant), std::move(extra)}; };
  CHECK(access_of(s, q("", "")) == std::map<std::string, std::uint32_t>{{"none", 1}});
  CHECK(access_of(s, q(prod.tenant, "")) == std::map<std::string, std::uint32_t>{{"prod", 1}, {"prod-app", 1}});
  CHECK(access_of(s, q(prod.tenant, "app_id=mobile")) == std::map<std::string, std::uint32_t>{{"prod-app", 1}});
  CHECK(access_of(s, q(prod.tenant, "app_id=web")).empty());
  CHECK(access_of(s).size() == 4);
  write_batch del;  // deleted before the purge: its history names its scope
  del.erases = {"prod-app"};
  del.events = {sample_event(prod_app, event_kind::del, 1)};
  s.apply(del);
  CHECK(s.purge(q(prod.tenant, "app_id=mobile")) == 0);
  CHECK(s.history("prod-app").empty());
  CHECK(s.purge(q(prod.tenant, "")) == 1);
  CHECK_FALSE(s.get("prod"));
  CHECK(s.get("none") == none);
  CHECK(s.get("staging") == staging);
  CHECK(s.history("staging").size() == 1);
  CHECK(s.history("none").size() == 1);
}
