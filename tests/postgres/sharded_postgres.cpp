// sharded_postgres_store: the store behaviour suite over two databases, scopes really spread, operations
// without a scope across shards, adding a shard and rebalancing.
#include <engram/store/sharded_postgres_store.hpp>

#include <catch2/catch.hpp>

#include "support/pg_test_support.hpp"

#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace store_test {
inline engram::sharded_postgres_options shard_options(const std::string& key, int shards) {
  engram::sharded_postgres_options o;
  o.shards.push_back({"s1", pg_test::conninfo()});
  for (int i = 2; i <= shards; ++i)
    o.shards.push_back({"s" + std::to_string(i), pg_test::database("engram_s" + std::to_string(i))});
  o.store.schema = pg_test::schema_for(key);
  return o;
}
struct sharded_kind {
  using store_type = engram::sharded_postgres_store;
  static constexpr bool durable = true;
  static store_type open(const std::string& dir) { return store_type(shard_options(dir, 2)); }
};
}  // namespace store_test

using store_kinds = std::tuple<store_test::sharded_kind>;
using durable_store_kinds = std::tuple<store_test::sharded_kind>;

#include "support/store_suite.hpp"

using namespace engram;
using namespace store_test;

static_assert(change_feed_store<sharded_postgres_store> && pending_store<sharded_postgres_store> &&
                  scope_loading_store<sharded_postgres_store> && access_count_store<sharded_postgres_store>,
              "a sharded store is used like postgres_store: change feed, pending queue and partition cache");

namespace {
using node = memory_over<sharded_postgres_store>;

/// Rows of `table` in the schema in each shard's database.
std::vector<long> rows_per_shard(const sharded_postgres_options& o, const std::string& table) {
  std::vector<long> out;
  for (const auto& s : o.shards) out.push_back(std::stol(pg_test::sql_on(s.conninfo, "SELECT count(*) FROM " + table, o.store.schema)));
  return out;
}

std::string user_of(int u) { return "user-" + std::to_string(u); }

/// Every record, every record's history and the pending queue, seen through the store.
struct snapshot {
  std::map<std::string, record> records;
  std::map<std::string, std::vector<history_event>> histories;
  std::set<std::string> pending;
};
snapshot take(const sharded_postgres_store& s, const std::vector<std::string>& ids) {
  snapshot out;
  out.records = all_records(s);
  for (const auto& id : ids) out.histories[id] = s.history(id);
  s.for_each_pending([&](const pending_add& p) { out.pending.insert(p.id); });
  return out;
}
}  // namespace

TEST_CASE("sharded_postgres: the ring spreads scopes evenly and adding a shard moves only its share",
          "[postgres][sharded]") {
  const detail::hash_ring two({"s1", "s2"}, 128), three({"s1", "s2", "s3"}, 128), reordered({"s3", "s1", "s2"}, 128);
  std::vector<int> counts(3, 0);
  int moved = 0, moved_elsewhere = 0;
  for (int u = 0; u < 3000; ++u) {
    const auto key = shard_key(scope{user_of(u), "", ""});
    const auto a = two.owner(key), b = three.owner(key);
    ++counts[b];
    if (a != b) ++moved;
    if (a != b && b != 2) ++moved_elsewhere;  // a key may only move to the new shard
    CHECK(std::string(1, "123"[b]) == std::string(1, "312"[reordered.owner(key)]));  // names, not order, decide
  }
  for (const int c : counts) CHECK((c > 700 && c < 1300));  // 1000 each when perfectly even
  CHECK(moved_elsewhere == 0);
  CHECK((moved > 700 && moved < 1300));  // about a third moves to the new shard
  CHECK_THROWS_AS(detail::hash_ring({"a", "a"}, 8), validation_error);
  CHECK_THROWS_AS(sharded_postgres_store(sharded_postgres_options{}), validation_error);
}

TEST_CASE("sharded_postgres: every row of a scope lives in its shard; both shards hold scopes",
          "[postgres][sharded]") {
  temp_dir dir;
  const auto o = shard_options(dir.path, 2);
  node m(hashing_embedder(64), sharded_postgres_store(o));
  for (int u = 0; u < 40; ++u) {
    m.add("fact one of " + user_of(u), user(user_of(u)), {.infer = false});
    m.add("fact two of " + user_of(u), scope{user_of(u), "planner", ""}, {.infer = false});
  }
  const auto records = rows_per_shard(o, "memories"), events = rows_per_shard(o, "history");
  INFO("records per shard: " << records[0] << ", " << records[1]);
  CHECK(records[0] + records[1] == 80);
  CHECK(records[0] > 10);
  CHECK(records[1] > 10);
  CHECK(events[0] == records[0]);  // each add's event went with its record
  CHECK(events[1] == records[1]);
  const auto& s = m.store();
  for (std::size_t i = 0; i < 2; ++i)
    for (const auto& sc : s.shard(i).scopes()) CHECK(s.shard_of(sc) == i);
  // each record's row is in the database the ring names for its scope
  for (const auto& r : m.get_all(all_scopes)) {
    const auto owner = s.shard_of(scope{r.user_id, r.agent_id, r.run_id});
    CHECK(pg_test::sql_on(o.shards[owner].conninfo, "SELECT count(*) FROM memories WHERE id = '" + r.id + "'",
                          o.store.schema) == "1");
  }
}

TEST_CASE("sharded_postgres: get, history, delete_all, reset and export work across shards",
          "[postgres][sharded]") {
  temp_dir dir;
  const auto o = shard_options(dir.path, 2);
  node m(hashing_embedder(64), sharded_postgres_store(o));
  // one user's agents spread over both shards: delete_all(user) is a batch spanning them
  std::vector<std::string> ids;
  std::set<std::size_t> used;
  for (int a = 0; a < 12; ++a) {
    const scope sc{"alice", "agent-" + std::to_string(a), ""};
    used.insert(m.store().shard_of(sc));
    ids.push_back(m.add("alice fact " + std::to_string(a), sc, {.infer = false}).results.at(0).id);
  }
  REQUIRE(used.size() == 2);
  m.add("bob fact", user("bob"), {.infer = false});
  m.update(ids[0], "alice fact zero, updated");
  node other(hashing_embedder(64), sharded_postgres_store(o));  // a second node: reads by id, search via the feed
  for (const auto& id : ids) {
    REQUIRE(other.get(id).has_value());
    CHECK(other.history(id).size() == (id == ids[0] ? 2u : 1u));
  }
  CHECK(other.get("no-such-id") == std::nullopt);
  CHECK(m.get_all(user("alice")).size() == 12);

  std::ostringstream exported;
  export_jsonl(m.store(), exported);
  CHECK(m.delete_all(user("alice")) == 12);
  for (const auto& id : ids) {
    CHECK_FALSE(m.get(id).has_value());
    CHECK(m.history(id).back().event == event_kind::del);
  }
  CHECK(m.get_all(all_scopes).size() == 1);
  CHECK(rows_per_shard(o, "memories")[0] + rows_per_shard(o, "memories")[1] == 1);

  m.reset();
  CHECK(rows_per_shard(o, "memories") == std::vector<long>{0, 0});
  CHECK(rows_per_shard(o, "history") == std::vector<long>{0, 0});
  std::istringstream in(exported.str());
  sharded_postgres_store importer(o);
  import_jsonl(importer, in);
  CHECK(m.get_all(user("alice")).size() == 12);
  CHECK(m.get_all(user("bob")).size() == 1);
  const auto after = rows_per_shard(o, "memories");
  CHECK(after[0] > 0);
  CHECK(after[1] > 0);
}

TEST_CASE("sharded_postgres: a write on one node is found on a node over the same shards", "[postgres][sharded]") {
  temp_dir dir;
  const auto o = shard_options(dir.path, 2);
  node a(hashing_embedder(64), sharded_postgres_store(o)), b(hashing_embedder(64), sharded_postgres_store(o));
  for (int u = 0; u < 10; ++u) a.add("bees of " + user_of(u), user(user_of(u)), {.infer = false});
  for (int u = 0; u < 10; ++u) {
    bool found = false;
    for (int t = 0; t < 250 && !found; ++t) {
      found = !b.search("bees", user(user_of(u))).empty();
      if (!found) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(found);
  }
}

TEST_CASE("sharded_postgres: a node with the partition cache loads scopes from every shard and sees other nodes' writes",
          "[postgres][sharded][cache]") {
  temp_dir dir;
  const auto o = shard_options(dir.path, 2);
  node a(hashing_embedder(64), sharded_postgres_store(o));
  for (int u = 0; u < 12; ++u) a.add("owls of " + user_of(u), user(user_of(u)), {.infer = false});
  basic_memory<hashing_embedder, flat_index, sharded_postgres_store, verbatim_extractor> lazy(
      hashing_embedder(64), sharded_postgres_store(o), verbatim_extractor(),
      memory_config{.partition_cache_bytes = std::size_t{1} << 20});
  CHECK(lazy.cache_stats().loads == 0);
  const auto spread = rows_per_shard(o, "memories");
  CHECK(spread[0] > 0);
  CHECK(spread[1] > 0);
  for (int u = 0; u < 12; ++u) {
    const auto hits = lazy.search("owls", user(user_of(u)));
    REQUIRE(hits.size() == 1);
    CHECK(hits[0].record.memory == "owls of " + user_of(u));
  }
  CHECK(lazy.cache_stats().loads == 12);
  a.add("hawks of " + user_of(3), user(user_of(3)), {.infer = false});  // a loaded scope, written on another node
  bool found = false;
  for (int t = 0; t < 250 && !found; ++t) {
    found = lazy.search("hawks", user(user_of(3))).size() == 2;
    if (!found) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(found);
}

TEST_CASE("sharded_postgres: a scope written during its move is not dropped from its old shard",
          "[postgres][sharded]") {
  temp_dir dir;
  postgres_store src(pg_test::conninfo(), {.schema = pg_test::schema_for(dir.path)});
  write_batch w;
  w.upserts = {sample_record(1)};
  w.events = {sample_event(sample_record(1), event_kind::add, 0)};
  src.apply(w);
  const auto rows = src.export_scope(sample_record(1).scope());
  REQUIRE(rows.records.size() == 1);
  REQUIRE(rows.events.size() == 1);
  write_batch later;  // a write to the same scope between the copy and the delete
  later.upserts = {sample_record(3)};
  later.upserts[0].user_id = sample_record(1).user_id;
  later.upserts[0].agent_id = sample_record(1).agent_id;
  later.upserts[0].run_id = sample_record(1).run_id;
  later.upserts[0].tenant = sample_record(1).tenant;
  later.upserts[0].extra = sample_record(1).extra;
  src.apply(later);
  CHECK_FALSE(src.drop_scope(rows));
  CHECK(src.size() == 2);
  const auto again = src.export_scope(sample_record(1).scope());
  CHECK(again.records.size() == 2);
  CHECK(src.drop_scope(again));
  CHECK(src.size() == 0);
  CHECK(src.history(sample_record(1).id).empty());
}

TEST_CASE("sharded_postgres: after adding a shard, rebalance moves the scopes it owns and keeps everything reachable",
          "[postgres][sharded]") {
  temp_dir dir;
  auto two = shard_options(dir.path, 2);
  std::vector<std::string> ids, deleted;
  {
    node m(hashing_embedder(64), sharded_postgres_store(two));
    for (int u = 0; u < 60; ++u) {
      for (int k = 0; k < 3; ++k)
        ids.push_back(m.add("fact " + std::to_string(k) + " of " + user_of(u), scope{user_of(u), "", k == 2 ? "r" : ""},
                            {.infer = false})
                          .results.at(0)
                          .id);
      m.update(ids[ids.size() - 3], "fact zero of " + user_of(u) + ", updated");
      if (u % 5 == 0) {  // a deleted record: its history must move with its scope too
        m.delete_memory(ids[ids.size() - 2]);
        deleted.push_back(ids[ids.size() - 2]);
      }
    }
    write_batch queue;  // pending adds of some scopes
    for (int u = 0; u < 60; u += 7) {
      pending_add p;
      p.id = "pending-" + std::to_string(u);
      p.owner = user(user_of(u));
      p.messages = {message{"user", "later " + std::to_string(u), ""}};
      p.created_at = "2026-01-01T00:00:" + std::string(u < 10 ? "0" : "") + std::to_string(u) + "Z";
      queue.enqueued.push_back(p);
    }
    sharded_postgres_store(two).apply(queue);
  }
  sharded_postgres_store before(two);
  const auto expected = take(before, ids);
  REQUIRE(expected.records.size() == ids.size() - deleted.size());
  REQUIRE(expected.pending.size() == 9);
  std::map<std::string, std::uint32_t> expected_access;  // access counts move with their records
  {
    std::vector<access_increment> hits;
    std::uint32_t n = 0;
    for (const auto& [id, r] : expected.records) {
      hits.push_back({id, r.scope(), ++n});
      expected_access[id] = n;
    }
    before.add_access(hits);
    REQUIRE(access_of(before) == expected_access);
  }

  auto three = shard_options(dir.path, 3);
  sharded_postgres_store s(three);
  std::size_t misplaced = 0;
  for (std::size_t i = 0; i < 3; ++i)
    for (const auto& sc : s.shard(i).scopes()) misplaced += s.shard_of(sc) != i;
  REQUIRE(misplaced > 0);
  CHECK(take(s, ids).records == expected.records);  // reachable before the rebalance already (asks every shard)

  // a node on the new list updates a record of a scope not moved yet: the update lands in the new owner,
  // and the rebalance keeps it rather than the older copy it moves
  auto expected_records = expected.records;
  std::string changed;
  for (auto& [id, r] : expected_records) {
    const auto sc = scope{r.user_id, r.agent_id, r.run_id};
    if (!s.shard(s.shard_of(sc)).get(id)) {
      r.memory += " (updated on the new list)";
      r.updated_at += std::chrono::seconds(1);
      write_batch w;
      w.upserts = {r};
      s.apply(w);
      changed = id;
      break;
    }
  }
  REQUIRE_FALSE(changed.empty());

  const auto report = s.rebalance();
  CHECK(report.scopes_moved == misplaced);
  CHECK(report.records_moved > 0);
  for (std::size_t i = 0; i < 3; ++i)
    for (const auto& sc : s.shard(i).scopes()) CHECK(s.shard_of(sc) == i);
  CHECK(rows_per_shard(three, "memories")[2] > 0);  // the new shard took its share
  const auto now = take(s, ids);
  CHECK(now.records == expected_records);
  CHECK(s.get(changed)->memory.ends_with("(updated on the new list)"));
  CHECK(now.histories == expected.histories);  // deleted records' histories too
  CHECK(now.pending == expected.pending);
  long events = 0;
  for (const long n : rows_per_shard(three, "history")) events += n;
  long expected_events = 0;
  for (const auto& [id, h] : expected.histories) expected_events += static_cast<long>(h.size());
  CHECK(events == expected_events);  // moved, not copied
  CHECK(access_of(s) == expected_access);  // each id once: moved, not copied
  long counts = 0;
  for (const long c : rows_per_shard(three, "access_counts")) counts += c;
  CHECK(counts == static_cast<long>(expected_access.size()));
  CHECK(s.rebalance() == rebalance_report{});  // nothing left to move

  node m(hashing_embedder(64), std::move(s));  // a node on the new list finds everything (it also resumes
  for (int u = 0; u < 60; ++u) {               // the pending adds: only the facts are counted)
    std::size_t facts = 0;
    for (const auto& r : m.get_all(user(user_of(u)))) facts += r.memory.starts_with("fact");
    CHECK(facts == (u % 5 == 0 ? 2u : 3u));
  }
  CHECK_FALSE(m.search("fact zero updated", user(user_of(7))).empty());
}

TEST_CASE("sharded_postgres: a schema of version 1 gains the history scope columns; its rows still move",
          "[postgres][sharded]") {
  temp_dir dir;
  const auto schema = pg_test::schema_for(dir.path);
  const auto r = sample_record(2);
  {
    postgres_store s(pg_test::conninfo(), {.schema = schema});
    write_batch w;
    w.upserts = {r};
    w.events = {sample_event(r, event_kind::add, 0)};
    s.apply(w);
  }
  pg_test::sql("DROP INDEX history_scope; ALTER TABLE history DROP COLUMN user_id, DROP COLUMN agent_id, DROP COLUMN "
               "run_id; UPDATE engram_meta SET value = '1' WHERE key = 'schema_version'",
               schema);
  postgres_store s(pg_test::conninfo(), {.schema = schema});
  CHECK(pg_test::sql("SELECT value FROM engram_meta WHERE key = 'schema_version'", schema) ==
        std::to_string(detail::pg_migrations().size()));
  CHECK(pg_test::sql("SELECT count(*) FROM history WHERE user_id IS NULL", schema) == "1");
  CHECK(s.history(r.id).size() == 1);
  const auto rows = s.export_scope(r.scope());  // the old event goes with its record
  CHECK(rows.records.size() == 1);
  CHECK(rows.events == s.history(r.id));
}

TEST_CASE("sharded_postgres: reembed switches every shard to another embedder", "[postgres][sharded]") {
  temp_dir dir;
  const auto o = shard_options(dir.path, 2);
  std::set<std::size_t> used;
  {
    node m(hashing_embedder(64), sharded_postgres_store(o));
    for (int u = 0; u < 8; ++u) m.add("green tea for " + user_of(u), user(user_of(u)), {.infer = false});
    for (int u = 0; u < 8; ++u) used.insert(m.store().shard_of(user(user_of(u))));
  }
  REQUIRE(used.size() == 2);
  CHECK_THROWS_AS(node(hashing_embedder(32), sharded_postgres_store(o)), dimension_mismatch);
  {
    sharded_postgres_store s(o);
    CHECK(reembed(s, hashing_embedder(32)) == 8);
    CHECK(s.shard(0).identity()->dimension == 32);
    CHECK(s.shard(1).identity()->dimension == 32);
  }
  node m(hashing_embedder(32), sharded_postgres_store(o));
  for (int u = 0; u < 8; ++u)
    CHECK(m.get_all(user(user_of(u))).front().embedding == hashing_embedder(32).embed("green tea for " + user_of(u)));
}

TEST_CASE("sharded_postgres: two tenants with the same user ids keep apart, on their shards and through a rebalance",
          "[postgres][sharded][scope_keys]") {
  // a scope of Mem0's keys keeps the ring key it had before key sets, so existing data stays on its shard
  CHECK(shard_key(scope{"u", "a", "r"}) == "u\x1f" "a\x1f" "r");
  CHECK(shard_key(in_project(user("u"), "acme", "prod")) != shard_key(in_project(user("u"), "acme", "staging")));
  temp_dir dir;
  using platform_node = platform_memory_over<sharded_postgres_store>;
  auto tenant_of = [](int t) { return in_project(scope{}, "org-" + std::to_string(t), "main"); };
  auto scope_of = [&](int t, int u) {
    auto s = tenant_of(t);
    s.user_id = user_of(u);
    return s;
  };
  const auto two = shard_options(dir.path, 2);
  {
    platform_node m(hashing_embedder(64), sharded_postgres_store(two));
    for (int u = 0; u < 20; ++u)
      for (int t = 0; t < 2; ++t) m.add("likes tea", scope_of(t, u), {.infer = false});  // the same text in both
    for (int u = 0; u < 20; ++u)
      for (int t = 0; t < 2; ++t) {
        const auto got = m.get_all(scope_of(t, u));
        REQUIRE(got.size() == 1);
        CHECK(got[0].tenant == tenant_of(t).tenant);
        CHECK(m.store().shard_of(got[0].scope()) == m.store().shard_of(scope_of(t, u)));
        CHECK(m.store().shard(m.store().shard_of(got[0].scope())).get(got[0].id) == got[0]);
      }
    CHECK(m.get_all(user(user_of(0))).empty());  // no tenant: neither
    CHECK(m.delete_all(scope_of(0, 0)) == 1);
    CHECK(m.get_all(scope_of(1, 0)).size() == 1);
  }
  const auto three = shard_options(dir.path, 3);
  {
    sharded_postgres_store s(three);
    CHECK(s.rebalance().scopes_moved > 0);
    for (std::size_t i = 0; i < 3; ++i)
      for (const auto& sc : s.shard(i).scopes()) CHECK(s.shard_of(sc) == i);
  }
  platform_node m(hashing_embedder(64), sharded_postgres_store(three));
  CHECK(m.get_all(scope_of(0, 0)).empty());
  for (int u = 0; u < 20; ++u)
    for (int t = 0; t < 2; ++t) {
      if (t == 0 && u == 0) continue;
      const auto got = m.get_all(scope_of(t, u));
      REQUIRE(got.size() == 1);
      CHECK(got[0].tenant == tenant_of(t).tenant);
    }
  auto app = scope_of(1, 3);  // a further key selects within the tenant
  set_scope_key<platform_scope_keys>(app, "app_id", "mobile");
  m.add("likes coffee", app, {.infer = false});
  CHECK(m.get_all(scope_of(1, 3)).size() == 2);
  CHECK(m.get_all(app).size() == 1);
  CHECK(m.purge(app) == 1);
  CHECK(m.get_all(scope_of(1, 3)).size() == 1);
}

TEST_CASE("sharded_postgres: grouped commits: one ticket waits for every shard a batch touched; a shard's lost batch "
          "fails it",
          "[postgres][sharded]") {
  temp_dir dir;
  const auto o = shard_options(dir.path, 2);
  sharded_postgres_store s(o);
  const auto position = s.change_position();
  std::string users[2];  // a user whose scope lives in each shard
  for (int u = 0; users[0].empty() || users[1].empty(); ++u) users[s.shard_of(scope{user_of(u), "", ""})] = user_of(u);
  auto rec = [&](int i, int shard) {
    auto r = sample_record(i);
    r.id = "sg-" + std::to_string(i);
    r.memory = "sharded grouped fact " + std::to_string(i);
    r.hash = "sgh" + std::to_string(i);
    r.user_id = users[shard];
    r.agent_id = r.run_id = "";
    return r;
  };
  write_batch both;
  both.upserts = {rec(1, 0), rec(2, 1)};
  const auto before0 = s.shard(0).flushes(), before1 = s.shard(1).flushes();
  const auto t1 = s.append(both);
  CHECK(t1 > 0);
  CHECK(s.shard(0).appended() > 0);
  CHECK(s.shard(1).appended() > 0);
  s.sync(t1);
  CHECK(s.shard(0).flushes() == before0 + 1);
  CHECK(s.shard(1).flushes() == before1 + 1);
  s.sync(t1);  // done: no other flush
  CHECK(s.shard(0).flushes() == before0 + 1);
  CHECK(s.get("sg-1") == rec(1, 0));
  CHECK(s.get("sg-2") == rec(2, 1));

  // shard 1 loses the next batch as a crash of its server before the flush would
  pg_test::sql_on(o.shards[1].conninfo, "DELETE FROM commits", o.store.schema);
  write_batch one;
  one.upserts = {rec(3, 1)};
  const auto t2 = s.append(one);
  pg_test::sql_on(o.shards[1].conninfo,
                  "DELETE FROM commits; DELETE FROM memories WHERE id = 'sg-3'; DELETE FROM changes WHERE memory_id = "
                  "'sg-3'",
                  o.store.schema);
  std::string sqlstate;
  try {
    s.sync(t2);
  } catch (const postgres_error& e) {
    sqlstate = e.sqlstate();
  }
  CHECK(sqlstate == "08007");
  std::vector<std::string> reported;
  s.poll_changes(position, [&](const std::string& id) { reported.push_back(id); });
  CHECK(std::find(reported.begin(), reported.end(), "sg-3") != reported.end());
  s.sync(t2);  // handed over to the poll: no longer failing
  CHECK_FALSE(s.get("sg-3"));
}
