#include <engram/store/memory_store.hpp>
#include <engram/store/postgres_store.hpp>
#include <engram/tools/reembed.hpp>

#include <catch2/catch.hpp>

#include "support/pg_test_support.hpp"

#include <tuple>

namespace store_test {
struct postgres_kind {
  using store_type = engram::postgres_store;
  static constexpr bool durable = true;
  static store_type open(const std::string& dir) {
    return store_type(pg_test::conninfo(), {.schema = pg_test::schema_for(dir)});
  }
};
}  // namespace store_test

using store_kinds = std::tuple<store_test::postgres_kind>;
using durable_store_kinds = std::tuple<store_test::postgres_kind>;

#include "support/store_suite.hpp"

using namespace engram;
using namespace store_test;

namespace {
postgres_store open_store(const temp_dir& dir, postgres_store_options o = {}, const std::string& extra = "") {
  o.schema = pg_test::schema_for(dir.path);
  return postgres_store(pg_test::conninfo() + extra, o);
}
write_batch upsert(const record& r) {
  write_batch w;
  w.upserts = {r};
  w.events = {sample_event(r, event_kind::add, 0)};
  return w;
}
pending_add pending(int i, std::uint32_t attempts = 0) {
  pending_add p;
  p.id = "p-" + std::to_string(i);
  p.owner = scope{"alice", i % 2 ? "planner" : "", ""};
  p.messages = {message{"user", "fact " + std::to_string(i) + " \xC3\xA9", "al"}, message{"assistant", "ok", ""}};
  p.options = {{"metadata", {{"n", i}}}, {"infer", true}};
  p.created_at = "2026-01-0" + std::to_string(i) + "T00:00:00Z";
  p.attempts = attempts;
  return p;
}
std::vector<pending_add> queue_of(const postgres_store& s) {
  std::vector<pending_add> out;
  s.for_each_pending([&](const pending_add& p) { out.push_back(p); });
  return out;
}
}  // namespace

TEST_CASE("store_postgres: the history table has Mem0's columns", "[store][postgres]") {
  temp_dir dir;
  auto s = open_store(dir);
  const auto cols = pg_test::sql(
      "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns WHERE table_schema = '" +
      s.schema() + "' AND table_name = 'history'");
  for (const char* c : {"id", "memory_id", "old_memory", "new_memory", "event", "created_at", "updated_at",
                        "is_deleted", "actor_id", "role"})
    CHECK(("," + cols + ",").find(std::string(",") + c + ",") != std::string::npos);
}

TEST_CASE("store_postgres: errors carry SQLSTATE", "[store][postgres]") {
  try {
    postgres_store s("host=/nonexistent-engram-dir dbname=nope connect_timeout=2");
    FAIL("expected postgres_error");
  } catch (const postgres_error& e) {
    CHECK(e.sqlstate() == "08006");
    CHECK(std::string(e.what()).find("SQLSTATE 08006") != std::string::npos);
  }
  temp_dir dir;
  auto s = open_store(dir);
  s.apply(upsert(sample_record(1)));
  pg_test::sql("DROP TABLE history", s.schema());
  try {
    (void)s.history("rec-1");
    FAIL("expected postgres_error");
  } catch (const postgres_error& e) {
    CHECK(e.sqlstate() == "42P01");  // undefined_table
    CHECK(std::string(e.what()).find("SQLSTATE 42P01") != std::string::npos);
    CHECK_FALSE(e.transient());
  }
  CHECK_THROWS_AS(postgres_store(pg_test::conninfo(), {.schema = "Bad-Name"}), validation_error);
}

TEST_CASE("store_postgres: a terminated connection is replaced; no acknowledged write is lost",
          "[store][postgres]") {
  temp_dir dir;
  auto s = open_store(dir, {.pool_size = 2}, " application_name=engram_victim");
  s.apply(upsert(sample_record(1)));
  auto kill_all = [] {
    return pg_test::sql(
        "SELECT count(pg_terminate_backend(pid))::text FROM pg_stat_activity WHERE application_name = "
        "'engram_victim'");
  };
  CHECK(kill_all() != "0");
  CHECK(s.get("rec-1") == sample_record(1));  // a read on a dead connection: retried on a new one
  for (int i = 2; i < 12; ++i) {
    if (i % 3 == 0) kill_all();
    s.apply(upsert(sample_record(i)));  // a write on a dead connection: it cannot have committed, so retried
  }
  CHECK(s.size() == 11);
  for (int i = 1; i < 12; ++i) CHECK(s.history("rec-" + std::to_string(i)).size() == 1);  // each applied once
}

TEST_CASE("store_postgres: another embedder is refused across store objects; format version is checked",
          "[store][postgres]") {
  temp_dir dir;
  auto a = open_store(dir);
  a.bind(store_identity{"hashing-v1", 64});
  auto b = open_store(dir);  // another node over the same database
  CHECK(b.identity() == store_identity{"hashing-v1", 64});
  CHECK_THROWS_AS(b.bind(store_identity{"hashing-v1", 32}), dimension_mismatch);
  CHECK_THROWS_AS(b.bind(store_identity{"other", 64}), validation_error);
  pg_test::sql("UPDATE engram_meta SET value = '999' WHERE key = 'format_version'", a.schema());
  try {
    open_store(dir);
    FAIL("expected storage_error");
  } catch (const storage_error& e) {
    CHECK(std::string(e.what()).find("999") != std::string::npos);
  }
}

TEST_CASE("store_postgres: the pending queue keeps enqueue order through replace, dequeue and reopen",
          "[store][postgres]") {
  temp_dir dir;
  {
    auto s = open_store(dir);
    write_batch w;
    w.enqueued = {pending(1), pending(2), pending(3)};
    s.apply(w);
    CHECK(queue_of(s) == std::vector<pending_add>{pending(1), pending(2), pending(3)});
    write_batch again;  // a new attempt count replaces p-1 in place
    again.enqueued = {pending(1, 2)};
    again.dequeued = {"p-2", "never-queued"};
    again.upserts = {sample_record(5)};
    s.apply(again);
    CHECK(queue_of(s) == std::vector<pending_add>{pending(1, 2), pending(3)});
  }
  auto s = open_store(dir);
  CHECK(queue_of(s) == std::vector<pending_add>{pending(1, 2), pending(3)});
  CHECK(s.get("rec-5") == sample_record(5));
  write_batch bad;  // a NUL byte: a typed error, and nothing of the batch applied
  bad.enqueued = {pending(4)};
  auto r = sample_record(6);
  r.memory = std::string("nul\0inside", 10);
  bad.upserts = {r};
  CHECK_THROWS_AS(s.apply(bad), validation_error);
  CHECK(queue_of(s).size() == 2);
  CHECK_FALSE(s.get("rec-6").has_value());
}

TEST_CASE("store_postgres: a second record of the same text in one scope is dropped and reported; versions count",
          "[store][postgres]") {
  temp_dir dir;
  auto s = open_store(dir);
  auto a = sample_record(1);
  auto b = sample_record(1);
  b.id = "rec-other";
  CHECK(s.scope_version(a.scope()) == 0);
  CHECK(s.apply(upsert(a)).empty());
  CHECK(s.scope_version(a.scope()) == 1);
  const auto dups = s.apply(upsert(b));
  REQUIRE(dups.size() == 1);
  CHECK(dups[0] == duplicate_record{"rec-other", "rec-1"});
  CHECK_FALSE(s.get("rec-other").has_value());
  CHECK(s.history("rec-other").empty());
  CHECK(s.size() == 1);
  CHECK(s.apply(upsert(a)).empty());  // the same id again is an update, not a duplicate
  CHECK(s.scope_version(a.scope()) == 2);
  auto c = b;
  c.user_id = "carol";  // same text in another scope is fine
  CHECK(s.apply(upsert(c)).empty());
  CHECK(s.size() == 2);
}

TEST_CASE("store_postgres: reembed switches the store to another embedder in one transaction",
          "[store][postgres]") {
  temp_dir dir;
  using mem_t = memory_over<postgres_store>;
  {
    mem_t m(hashing_embedder(64), open_store(dir));
    m.add("green tea every morning", user("a"), {.infer = false});
  }
  CHECK_THROWS_AS(mem_t(hashing_embedder(32), open_store(dir)), dimension_mismatch);
  {
    auto s = open_store(dir);
    CHECK(reembed(s, hashing_embedder(32)) == 1);
  }
  mem_t m(hashing_embedder(32), open_store(dir));
  CHECK(m.get_all(user("a")).front().embedding == hashing_embedder(32).embed("green tea every morning"));
}

TEST_CASE("store_postgres: a postgres:// URL gives libpq its part and the store its options", "[store][postgres]") {
  const auto a = parse_postgres_url("postgres://u@db.example:5433/mem?schema=team_a&pool=8&sslmode=require"
                                    "&statement_timeout_ms=2500&connect_timeout=3");
  CHECK(a.conninfo == "postgres://u@db.example:5433/mem?sslmode=require&connect_timeout=3");
  CHECK(a.options.schema == "team_a");
  CHECK(a.options.pool_size == 8);
  CHECK(a.options.statement_timeout_ms == 2500);
  CHECK(a.shard.empty());
  const auto b = parse_postgres_url("postgres://h/db?reconnect_timeout_ms=700&shard=east&application_name=x");
  CHECK(b.conninfo == "postgres://h/db?application_name=x");
  CHECK(b.options.reconnect_timeout_ms == 700);
  CHECK(b.shard == "east");
  CHECK_THROWS_AS(parse_postgres_url("postgres://x/y?reconnect_timeout_ms=-1"), validation_error);
  CHECK(parse_postgres_url("postgresql:///engram").conninfo == "postgresql:///engram");
  CHECK(parse_postgres_url("postgresql:///engram").options.schema == "engram");
  CHECK_THROWS_AS(parse_postgres_url("mysql://x/y"), validation_error);
  CHECK_THROWS_AS(parse_postgres_url("postgres://x/y?pool=0"), validation_error);
  CHECK_THROWS_AS(parse_postgres_url("postgres://x/y?pool=many"), validation_error);
  // and it connects: the cluster's socket directory as a URL host
  const std::string dir = pg_test::conninfo().substr(5, pg_test::conninfo().find(' ') - 5);
  temp_dir t;
  const auto loc = parse_postgres_url("postgresql://engram@/engram?host=" + dir + "&schema=" + pg_test::schema_for(t.path));
  postgres_store s(loc.conninfo, loc.options);
  s.apply(upsert(sample_record(3)));
  CHECK(s.get("rec-3") == sample_record(3));
}

TEST_CASE("store_postgres: an update of a record another store object deleted is refused, not resurrected",
          "[store][postgres]") {
  temp_dir dir;
  auto a = open_store(dir);
  auto b = open_store(dir);
  const auto r = sample_record(7);
  a.apply(upsert(r));
  write_batch del;
  del.erases = {r.id};
  del.events = {sample_event(r, event_kind::del, 1)};
  b.apply(del);
  auto changed = r;
  changed.memory = "changed by a, which has not seen the delete";
  write_batch upd;
  upd.upserts = {changed};
  upd.events = {sample_event(changed, event_kind::update, 2)};
  CHECK_THROWS_AS(a.apply(upd), not_found);
  CHECK_FALSE(a.get(r.id).has_value());
  CHECK(a.history(r.id).size() == 2);  // ADD, DELETE: nothing of the refused batch
  write_batch imported;  // an import of a record with its UPDATE history into a fresh id is fine
  auto other = sample_record(8);
  imported.upserts = {other};
  imported.events = {sample_event(other, event_kind::add, 0), sample_event(other, event_kind::update, 1)};
  a.apply(imported);
  CHECK(a.get(other.id) == other);
}

static_assert(access_count_store<postgres_store>);

TEST_CASE("store_postgres: access counts write no change feed entry, keep the schema version, and a database "
          "without their table gains it; a delete behind the store's back drops the count",
          "[store][postgres][access]") {
  temp_dir dir;
  auto s = open_store(dir);
  auto other = open_store(dir);  // another node
  s.apply(upsert(sample_record(1)));
  s.apply(upsert(sample_record(2)));
  const auto pos = other.change_position();
  const std::vector<access_increment> hits{{"rec-1", sample_record(1).scope(), 4}, {"rec-2", sample_record(2).scope(), 1},
                                           {"rec-1", sample_record(1).scope(), 2}};
  s.add_access(hits);
  std::vector<std::string> changed;
  CHECK(other.poll_changes(pos, [&](const std::string& id) { changed.push_back(id); }) == pos);
  CHECK(changed.empty());
  CHECK(access_of(other) == std::map<std::string, std::uint32_t>{{"rec-1", 6}, {"rec-2", 1}});
  CHECK(pg_test::sql("SELECT value FROM engram_meta WHERE key = 'schema_version'", s.schema()) ==
        std::to_string(detail::pg_migrations().size()));  // the numbered steps only

  pg_test::sql("DELETE FROM memories WHERE id = 'rec-2'", s.schema());  // as an engram without access counts does
  CHECK(access_of(s) == std::map<std::string, std::uint32_t>{{"rec-1", 6}});
  CHECK(pg_test::sql("SELECT count(*) FROM access_counts", s.schema()) == "1");

  pg_test::sql("DROP TABLE access_counts", s.schema());  // a database written by an engram before them
  auto reopened = open_store(dir);
  CHECK(access_of(reopened).empty());
  reopened.add_access(hits);
  CHECK(access_of(reopened) == std::map<std::string, std::uint32_t>{{"rec-1", 6}});
}

TEST_CASE("store_postgres: a schema of version 2 gains the immutable column; an older engram refuses version 3",
          "[store][postgres][immutable]") {
  temp_dir dir;
  const auto a = sample_record(1);  // mutable
  auto b = sample_record(2);
  b.immutable = true;
  {
    auto s = open_store(dir);
    s.apply(upsert(a));
  }
  const auto schema = pg_test::schema_for(dir.path);
  pg_test::sql("ALTER TABLE memories DROP COLUMN immutable; UPDATE engram_meta SET value = '2' WHERE key = "
               "'schema_version'",
               schema);  // as the engram before immutable memories left it
  {
    auto s = open_store(dir);
    CHECK(pg_test::sql("SELECT value FROM engram_meta WHERE key = 'schema_version'", schema) ==
          std::to_string(detail::pg_migrations().size()));
    CHECK(s.get(a.id) == a);
    s.apply(upsert(b));
    CHECK(s.get(b.id) == b);
  }
  auto s = open_store(dir);
  CHECK(s.get(b.id)->immutable);
  pg_test::sql("UPDATE engram_meta SET value = '" + std::to_string(detail::pg_migrations().size() + 1) +
                   "' WHERE key = 'schema_version'",
               schema);  // a newer engram's
  CHECK_THROWS_WITH(open_store(dir), Catch::Contains("newer than this engram"));
}

TEST_CASE("store_postgres: a schema of version 3 gains the validity columns (NULL: valid since created_at)",
          "[store][postgres][validity]") {
  temp_dir dir;
  auto a = sample_record(1);  // no validity
  REQUIRE_FALSE(a.valid_from);
  auto b = sample_record(3);  // closed and superseded
  b.valid_from = b.created_at - std::chrono::hours{24};
  REQUIRE(b.invalid_at);
  {
    auto s = open_store(dir);
    s.apply(upsert(a));
  }
  const auto schema = pg_test::schema_for(dir.path);
  pg_test::sql("ALTER TABLE memories DROP COLUMN valid_from, DROP COLUMN invalid_at, DROP COLUMN superseded_by;"
               " UPDATE engram_meta SET value = '3' WHERE key = 'schema_version'",
               schema);  // as the engram before validity left it
  {
    auto s = open_store(dir);
    CHECK(pg_test::sql("SELECT value FROM engram_meta WHERE key = 'schema_version'", schema) ==
          std::to_string(detail::pg_migrations().size()));
    CHECK(s.get(a.id) == a);
    CHECK(s.get(a.id)->valid_since() == a.created_at);
    s.apply(upsert(b));
  }
  auto s = open_store(dir);
  CHECK(s.get(a.id) == a);
  CHECK(s.get(b.id) == b);
  CHECK(s.get(b.id)->superseded_by == "rec-4");
}

TEST_CASE("store_postgres: a schema of version 4 gains the entities column (NULL: recognised from the text)",
          "[store][postgres][entities]") {
  temp_dir dir;
  const auto a = sample_record(3);  // entities unset
  REQUIRE_FALSE(a.entities);
  const auto b = sample_record(1), c = sample_record(2);  // an extractor's entities; its empty answer
  REQUIRE(b.entities);
  REQUIRE(c.entities == recognized_entities{});
  {
    auto s = open_store(dir);
    s.apply(upsert(a));
  }
  const auto schema = pg_test::schema_for(dir.path);
  pg_test::sql("ALTER TABLE memories DROP COLUMN entities; UPDATE engram_meta SET value = '4' WHERE key = "
               "'schema_version'",
               schema);  // as the engram before record::entities left it
  {
    auto s = open_store(dir);
    CHECK(pg_test::sql("SELECT value FROM engram_meta WHERE key = 'schema_version'", schema) ==
          std::to_string(detail::pg_migrations().size()));
    CHECK(s.get(a.id) == a);
    s.apply(upsert(b));
    s.apply(upsert(c));
  }
  auto s = open_store(dir);
  CHECK(s.get(a.id) == a);
  CHECK(s.get(b.id) == b);
  CHECK(s.get(c.id) == c);
  // a column that does not read back is a typed error naming the record, never an unset field
  pg_test::sql("UPDATE memories SET entities = '{\"entities\":[{\"name\":false}]}' WHERE id = 'rec-1'", schema);
  CHECK_THROWS_AS(s.get(b.id), storage_error);
  CHECK_THROWS_WITH(s.get(b.id), Catch::Contains("'rec-1'") && Catch::Contains("entities.entities[0].name"));
}

TEST_CASE("store_postgres: a schema of version 5 gains the scope key columns; scope versions key the whole scope",
          "[store][postgres][scope_keys]") {
  temp_dir dir;
  const auto a = sample_record(1);  // tenant and extra empty: as every record of such a schema reads
  REQUIRE(a.tenant.empty());
  REQUIRE(a.extra.empty());
  auto b = a;  // the same ids and text in a project
  b.id = "rec-b";
  b.tenant = "org_id=acme\nproject_id=prod";
  b.extra = "app_id=mobile";
  auto queued = pending(1);
  {
    auto s = open_store(dir);
    s.bind(store_identity{"hashing-v1", 64});
    s.apply(upsert(a));
    write_batch w;
    w.enqueued = {queued};
    s.apply(w);
  }
  const auto schema = pg_test::schema_for(dir.path);
  // as the engram before scope key sets left it
  pg_test::sql("ALTER TABLE scope_versions DROP CONSTRAINT scope_versions_pkey;"
               " ALTER TABLE scope_versions DROP COLUMN tenant, DROP COLUMN extra, ADD PRIMARY KEY (user_id, agent_id,"
               " run_id);"
               " ALTER TABLE memories DROP COLUMN tenant, DROP COLUMN extra;"
               " CREATE INDEX memories_scope ON memories(user_id, agent_id, run_id, hash);"
               " ALTER TABLE history DROP COLUMN tenant, DROP COLUMN extra;"
               " ALTER TABLE pending DROP COLUMN tenant, DROP COLUMN extra;"
               " UPDATE engram_meta SET value = '5' WHERE key = 'schema_version'",
               schema);
  {
    auto s = open_store(dir);
    CHECK(pg_test::sql("SELECT value FROM engram_meta WHERE key = 'schema_version'", schema) ==
          std::to_string(detail::pg_migrations().size()));
    CHECK(pg_test::sql("SELECT indexdef FROM pg_indexes WHERE indexname = 'memories_scope' AND schemaname = '" +
                       schema + "'").find("(tenant, user_id, agent_id, run_id, hash)") != std::string::npos);
    CHECK(s.identity() == store_identity{"hashing-v1", 64});  // no scope_keys recorded: Mem0's
    CHECK(s.get(a.id) == a);
    CHECK(queue_of(s) == std::vector<pending_add>{queued});
    CHECK(s.scope_version(a.scope()) == 1);  // kept through the new key
    CHECK(s.apply(upsert(b)).empty());       // another exact scope: not a duplicate
    CHECK(s.scope_version(b.scope()) == 1);
    CHECK(s.scope_version(a.scope()) == 1);
    auto b2 = b;
    b2.id = "rec-b2";
    const auto dups = s.apply(upsert(b2));  // the same exact scope: a duplicate
    REQUIRE(dups.size() == 1);
    CHECK(dups[0] == duplicate_record{"rec-b2", "rec-b"});
    auto q = queued;
    q.id = "p-b";
    q.owner = b.scope();
    write_batch w;
    w.enqueued = {q};
    s.apply(w);
    s.bind(store_identity{"hashing-v1", 64, "tenant=org_id,project_id;extra=app_id"});  // wider: recorded
  }
  auto s = open_store(dir);
  CHECK(s.identity()->scope_keys == "tenant=org_id,project_id;extra=app_id");
  CHECK(s.get(a.id) == a);
  CHECK(s.get(b.id) == b);
  CHECK(queue_of(s).back().owner == b.scope());
  std::vector<scope> scopes = s.scopes();
  CHECK(scopes.size() == 3);  // a's, the first pending add's and b's
  CHECK(std::find(scopes.begin(), scopes.end(), b.scope()) != scopes.end());
  const auto rows = s.export_scope(b.scope());
  CHECK(rows.records == std::vector<record>{b});
  CHECK(rows.events.size() == 1);
  CHECK(rows.pending.size() == 1);
  CHECK(rows.version == 1);  // the record's batch (a pending add names no version)
  CHECK_THROWS_AS(s.bind(store_identity{"hashing-v1", 64}), validation_error);  // narrower: refused
  // a tenant that does not read back is a typed error naming the record
  pg_test::sql("UPDATE memories SET tenant = 'no key' WHERE id = 'rec-b'", schema);
  CHECK_THROWS_WITH(s.get(b.id), Catch::Contains("'rec-b'") && Catch::Contains("tenant"));
}

TEST_CASE("store_postgres: scope loading, access counts and purge select by tenant exactly and by extra key",
          "[store][postgres][scope_keys]") {
  temp_dir dir;
  auto s = open_store(dir);
  auto in = [](std::string id, std::string tenant, std::string extra) {
    auto r = sample_record(1);
    r.id = std::move(id);
    r.memory += " " + r.id;
    r.user_id = "alice";
    r.tenant = std::move(tenant);
    r.extra = std::move(extra);
    return r;
  };
  const std::string prod = "org_id=acme\nproject_id=prod";
  const auto r_none = in("none", "", ""), r_prod = in("prod", prod, ""), r_app = in("prod-app", prod, "app_id=mobile"),
             r_staging = in("staging", "org_id=acme\nproject_id=staging", "app_id=mobile");
  write_batch w;
  w.upserts = {r_none, r_prod, r_app, r_staging};
  for (const auto& r : w.upserts) w.events.push_back(sample_event(r, event_kind::add, 0));
  s.apply(w);
  std::vector<access_increment> hits;
  for (const auto& r : w.upserts) hits.push_back(hits_of(r, 1));
  s.add_access(hits);
  auto q = [](std::string tenant, std::string extra) { return scope{"alice", "", "", std::move(tenant), std::move(extra)}; };
  auto ids_in = [&](const scope& sq) {
    std::set<std::string> out;
    s.for_each_in_scope(sq, [&](const record& r) { out.insert(r.id); });
    return out;
  };
  CHECK(ids_in(q("", "")) == std::set<std::string>{"none"});
  CHECK(ids_in(q(prod, "")) == std::set<std::string>{"prod", "prod-app"});
  CHECK(ids_in(q(prod, "app_id=mobile")) == std::set<std::string>{"prod-app"});
  CHECK(ids_in(scope{"", "", "", prod, "app_id=mobile"}) == std::set<std::string>{"prod-app"});  // extra alone
  CHECK(ids_in(q(prod, "app_id=web")).empty());
  CHECK(ids_in(scope{}).size() == 4);
  CHECK(access_of(s, q(prod, "")) == std::map<std::string, std::uint32_t>{{"prod", 1}, {"prod-app", 1}});
  CHECK(access_of(s, q("", "")) == std::map<std::string, std::uint32_t>{{"none", 1}});
  const auto v_prod = s.scope_selection_version(q(prod, "")), v_none = s.scope_selection_version(q("", ""));
  CHECK(v_prod == 2);
  CHECK(v_none == 1);
  write_batch del;  // deleted before the purge: its history names its scope
  del.erases = {"prod-app"};
  del.events = {sample_event(r_app, event_kind::del, 1)};
  s.apply(del);
  CHECK(s.scope_selection_version(q(prod, "")) == v_prod + 1);
  CHECK(s.scope_selection_version(q("", "")) == v_none);
  CHECK(s.purge(q(prod, "app_id=mobile")) == 0);
  CHECK(s.history("prod-app").empty());
  CHECK(s.purge(q(prod, "")) == 1);
  CHECK_FALSE(s.get("prod"));
  CHECK(s.get("none") == r_none);
  CHECK(s.get("staging") == r_staging);
  CHECK(s.history("staging").size() == 1);
  CHECK(s.history("none").size() == 1);
  CHECK(s.scope_selection_version(q("", "")) == v_none);
}

namespace {
record numbered(int i, const std::string& user = "alice") {
  auto r = sample_record(i);
  r.id = "g-" + std::to_string(i);
  r.memory = "grouped fact " + std::to_string(i);
  r.hash = "gh" + std::to_string(i);
  r.user_id = user;
  return r;
}
}  // namespace

TEST_CASE("store_postgres: group commit: an appended batch is visible at once; one flush serves every batch before it",
          "[store][postgres]") {
  temp_dir dir;
  auto s = open_store(dir);
  auto other = open_store(dir);  // another node
  s.sync(0);                     // nothing to wait for
  const auto flushes = s.flushes();
  const auto t1 = s.append(upsert(numbered(1)));
  const auto t2 = s.append(upsert(numbered(2)));
  const auto t3 = s.append(upsert(numbered(3)));
  CHECK(t1 > 0);
  CHECK(t2 > t1);
  CHECK(t3 > t2);
  CHECK(s.appended() == t3);
  CHECK(other.get("g-2") == numbered(2));  // committed: other connections read it before the flush
  s.sync(t3);
  CHECK(s.flushes() == flushes + 1);
  s.sync(t1);  // covered by that flush
  s.sync(t2);
  CHECK(s.flushes() == flushes + 1);
  // the flush's own commit tokens are pruned with the others; no record or feed entry is written by a flush
  CHECK(s.size() == 3);

  SECTION("duplicates dropped by a grouped append are reported") {
    auto dup = numbered(1);
    dup.id = "g-1-again";
    std::vector<duplicate_record> dropped;
    s.sync(s.append(upsert(dup), &dropped));
    REQUIRE(dropped.size() == 1);
    CHECK(dropped[0].dropped_id == "g-1-again");
    CHECK(dropped[0].existing_id == "g-1");
    CHECK_FALSE(s.get("g-1-again"));
  }
  SECTION("a caller may ask for a synchronous COMMIT right before it (defer() false): no ticket, no flush") {
    int asked = 0;
    CHECK(s.append(upsert(numbered(5)), nullptr, [&] { return ++asked, false; }) == 0);
    CHECK(asked == 1);
    CHECK(s.appended() == t3);
    CHECK(s.append(upsert(numbered(6)), nullptr, [&] { return ++asked, true; }) == t3 + 1);
    s.sync(t3 + 1);
    CHECK(s.flushes() == flushes + 2);
    CHECK(other.get("g-5") == numbered(5));
    CHECK(other.get("g-6") == numbered(6));
  }
  SECTION("with group_commit off, append is durable on return: no ticket, no flush") {
    auto sync_store = open_store(dir, {.group_commit = false});
    CHECK(sync_store.append(upsert(numbered(4))) == 0);
    CHECK(sync_store.appended() == 0);
    CHECK(sync_store.flushes() == 0);
    CHECK(other.get("g-4") == numbered(4));
    CHECK(parse_postgres_url("postgres://h/db?group_commit=0").options.group_commit == false);
    CHECK(parse_postgres_url("postgres://h/db?group_commit=true").options.group_commit == true);
    CHECK(parse_postgres_url("postgres://h/db").options.group_commit == true);
    CHECK_THROWS_WITH(parse_postgres_url("postgres://h/db?group_commit=yes"),
                      Catch::Contains("group_commit='yes' is not 1, 0, true or false"));
  }
}

TEST_CASE("store_postgres: group commit: a batch a crash lost before its flush fails its sync with 08007, and the "
          "next poll reports its records",
          "[store][postgres]") {
  temp_dir dir;
  auto s = open_store(dir);
  const auto schema = pg_test::schema_for(dir.path);
  const auto position = s.change_position();
  const auto t1 = s.append(upsert(numbered(1)));
  s.sync(t1);
  pg_test::sql("DELETE FROM commits", schema);  // so that the next token is the only one
  const auto t2 = s.append(upsert(numbered(2)));
  // what a crash of the server before the WAL flush leaves: the transaction is gone, token and rows alike
  pg_test::sql("DELETE FROM commits; DELETE FROM history WHERE memory_id = 'g-2'; DELETE FROM memories WHERE id = "
               "'g-2'; DELETE FROM changes WHERE memory_id = 'g-2'",
               schema);
  auto sqlstate_of_sync = [&](std::uint64_t t) -> std::string {
    try {
      s.sync(t);
      return "";
    } catch (const postgres_error& e) {
      CHECK_THAT(e.what(), Catch::Contains("lost before its WAL was flushed"));
      return e.sqlstate();
    }
  };
  CHECK(sqlstate_of_sync(t2) == "08007");
  CHECK(sqlstate_of_sync(t2) == "08007");  // until the records are re-read
  CHECK(sqlstate_of_sync(t1).empty());     // flushed before: not concerned
  const auto t3 = s.append(upsert(numbered(3)));
  CHECK(sqlstate_of_sync(t3) == "08007");  // a state holding the lost batch is not reported durable either
  CHECK(s.changes_pending());
  std::vector<std::string> reported;
  s.poll_changes(position, [&](const std::string& id) { reported.push_back(id); });
  CHECK(std::find(reported.begin(), reported.end(), "g-2") != reported.end());
  CHECK(sqlstate_of_sync(t2).empty());  // handed over: the memory re-reads g-2 (absent now)
  CHECK(sqlstate_of_sync(t3).empty());
  CHECK_FALSE(s.get("g-2"));
  CHECK(s.get("g-1") == numbered(1));
  CHECK(s.get("g-3") == numbered(3));
}
