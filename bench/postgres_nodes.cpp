// engram nodes over one PostgreSQL database, against file_store on one node, in one run.
//
//   cmake --build --preset bench --target bench_postgres_nodes
//   ./build/bench/bench/bench_postgres_nodes [--memories N] [--users N] [--threads N] [--cold N] [--dim N]
//                                             [--searches N] [--shards N] [--mixed N] [--mixed-searcher 0|1]
// Defaults: the size, 100000 memories over 1000 users, 4 client threads, a 10000-memory cold scope,
// 2 shards. (A quick look: --memories 5000 --users 100 --cold 2000.)
//
// Starts its own throwaway cluster (scripts/pg-cluster.sh, fsync on: a returned add is durable, as with
// file_store's default fsync mode) unless ENGRAM_PG_CONNINFO names one. Every add is one fact through
// basic_memory::add (hashing_embedder, flat index, verbatim extraction), from --threads client threads.
// Reports, each on its own line:
//   adds/s and search p50/p95 (limit 10, in one user's scope): file_store on one node (the anchor), postgres on
//   one node, postgres on two nodes sharing the database (threads split between them);
//   adds (--mixed of them, from --threads threads) while one more thread searches (none with --mixed-searcher 0),
//   postgres on one node with
//   group_commit off (each COMMIT waits for its WAL flush under the memory's write lock) and on (the default:
//   the flush after the lock, shared by concurrent adds), two interleaved rounds: adds/s, add and search p50/p99;
//   cross-node visibility delay: add on node A, then search on node B until the new id comes back (p50/p95/max);
//   postgres sharded over --shards databases of the same cluster, two nodes (sharded_postgres_store): writes
//   to different databases are not serialised by one advisory lock;
//   cold load: opening a node over a database holding one scope of --cold memories (file_store likewise).
// ENGRAM_PG_CONNINFO, when given, must be in key=value form (the shards append dbname=...); the benchmark's
// schemas (bench_*) are dropped first.

#include <engram/engram.hpp>
#include <engram/store/file_store.hpp>
#include <engram/store/postgres_store.hpp>
#include <engram/store/sharded_postgres_store.hpp>

#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

using namespace engram;
using clk = std::chrono::steady_clock;

namespace {

struct settings {
  std::size_t memories = 100000, users = 1000, threads = 4, cold = 10000, dim = 128, searches = 1000, shards = 2,
              mixed = 20000, searchers = 1;
};

template <class Store>
using node = basic_memory<hashing_embedder, flat_index, Store, verbatim_extractor>;

const char* words[] = {"tea",   "coffee", "Lisbon", "Berlin", "cats",   "dogs",    "chess",   "running",
                       "piano", "nurse",  "pilot",  "sushi",  "pasta",  "winter",  "summer",  "mountains",
                       "beach", "novels", "jazz",   "python", "garden", "cycling", "peanuts", "birthday"};

std::string fact_text(std::size_t i) {
  std::uint64_t x = i * 0x9E3779B97F4A7C15ull + 7;
  std::string s = "fact " + std::to_string(i) + ":";
  for (int k = 0; k < 6; ++k) {
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    s += " ";
    s += words[x % (sizeof words / sizeof *words)];
  }
  return s;
}

/// "u<n>" (appended, not operator+: GCC 12 warns falsely about that at -O3, -Wrestrict).
std::string user_name(std::size_t n) {
  std::string s = "u";
  s += std::to_string(n);
  return s;
}

double ms(clk::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, std::size_t(p * double(v.size() - 1) + 0.5))];
}

/// Adds `n` facts spread over `users` users from `threads` threads, round-robin over `nodes`. @returns adds/s.
template <class Node>
double load(std::vector<Node*> nodes, const settings& cfg, std::size_t n) {
  std::atomic<std::size_t> next{0};
  const auto t0 = clk::now();
  std::vector<std::thread> ts;
  for (std::size_t t = 0; t < cfg.threads; ++t)
    ts.emplace_back([&, t] {
      auto& m = *nodes[t % nodes.size()];
      for (std::size_t i; (i = next.fetch_add(1)) < n;)
        m.add(fact_text(i), user(user_name(i % cfg.users)), {.infer = false});
    });
  for (auto& t : ts) t.join();
  return double(n) / std::chrono::duration<double>(clk::now() - t0).count();
}

/// Search latencies (ms) of `cfg.searches` queries in random users' scopes, round-robin over `nodes`.
template <class Node>
std::vector<double> searches(std::vector<Node*> nodes, const settings& cfg) {
  std::vector<double> out;
  for (std::size_t q = 0; q < cfg.searches; ++q) {
    auto& m = *nodes[q % nodes.size()];
    const auto t0 = clk::now();
    std::string query = words[q % 24];
    query += " and ";
    query += words[(q * 7) % 24];
    auto hits = m.search(query,
                         user(user_name((q * 31) % cfg.users)), {.limit = 10});
    out.push_back(ms(clk::now() - t0));
    if (hits.empty()) std::printf("warning: empty search result\n");
  }
  return out;
}

/// Adds `n` facts from `cfg.threads` threads while one more thread searches: the durability wait of an add is
/// either under the memory's write lock (group_commit off: COMMIT waits for the WAL flush) or after it (on).
template <class Node>
void mixed(Node& m, const settings& cfg, std::size_t n, const char* what) {
  std::atomic<std::size_t> next{0};
  std::atomic<bool> done{false};
  std::vector<std::vector<double>> add_ms(cfg.threads);
  std::vector<double> search_ms;
  const auto t0 = clk::now();
  std::thread searcher([&] {
    for (std::size_t q = 0; cfg.searchers && !done.load(); ++q) {
      const auto s0 = clk::now();
      (void)m.search(words[q % 24], user(user_name((q * 31) % cfg.users)), {.limit = 10});
      search_ms.push_back(ms(clk::now() - s0));
    }
  });
  std::vector<std::thread> ts;
  for (std::size_t t = 0; t < cfg.threads; ++t)
    ts.emplace_back([&, t] {
      for (std::size_t i; (i = next.fetch_add(1)) < n;) {
        const auto a0 = clk::now();
        m.add(fact_text(i), user(user_name(i % cfg.users)), {.infer = false});
        add_ms[t].push_back(ms(clk::now() - a0));
      }
    });
  for (auto& t : ts) t.join();
  const double secs = std::chrono::duration<double>(clk::now() - t0).count();
  done = true;
  searcher.join();
  std::vector<double> adds;
  for (const auto& a : add_ms) adds.insert(adds.end(), a.begin(), a.end());
  std::printf("%-34s adds/s %8.0f   add p50 %6.3f p99 %7.3f ms   search during adds p50 %6.3f p99 %7.3f ms"
              "  (%zu searches)\n",
              what, double(n) / secs, pct(adds, 0.5), pct(adds, 0.99), pct(search_ms, 0.5), pct(search_ms, 0.99),
              search_ms.size());
}

void report(const char* what, double adds, const std::vector<double>& lat) {
  std::printf("%-34s adds/s %8.0f   search p50 %7.3f ms  p95 %7.3f ms\n", what, adds, pct(lat, 0.5), pct(lat, 0.95));
}

/// Runs `sql` on database `conninfo`; an error is ignored when its message contains `unless` (e.g. "exists").
void run_sql(const std::string& conninfo, const std::string& sql, const char* unless = nullptr) {
  PGconn* c = PQconnectdb(conninfo.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string m = PQerrorMessage(c);
    PQfinish(c);
    throw std::runtime_error("cannot connect to " + conninfo + ": " + m);
  }
  PGresult* r = PQexec(c, sql.c_str());
  const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
  std::string m = PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(c);
  if (!ok && !(unless && m.find(unless) != std::string::npos)) throw std::runtime_error(sql + ": " + m);
}

std::string scratch_dir(const char* tag) {
  std::string t = std::string("/tmp/engram-bench-") + tag + "-XXXXXX";
  std::vector<char> buf(t.begin(), t.end());
  buf.push_back('\0');
  return ::mkdtemp(buf.data());
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each line as it is measured, also into a file
  settings cfg;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const auto v = static_cast<std::size_t>(std::stoull(argv[i + 1]));
    if (k == "--memories") cfg.memories = v;
    else if (k == "--users") cfg.users = v;
    else if (k == "--threads") cfg.threads = v;
    else if (k == "--cold") cfg.cold = v;
    else if (k == "--dim") cfg.dim = v;
    else if (k == "--searches") cfg.searches = v;
    else if (k == "--shards") cfg.shards = std::max<std::size_t>(v, 1);
    else if (k == "--mixed") cfg.mixed = std::max<std::size_t>(v, 1);
    else if (k == "--mixed-searcher") cfg.searchers = v ? 1 : 0;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  std::string conninfo = std::getenv("ENGRAM_PG_CONNINFO") ? std::getenv("ENGRAM_PG_CONNINFO") : "";
  std::string cluster;
  if (conninfo.empty()) {
    cluster = "/tmp/engram-pg-bench-" + std::to_string(::getpid());
    const std::string cmd = std::string(ENGRAM_SOURCE_DIR) + "/scripts/pg-cluster.sh start " + cluster + " >/dev/null";
    if (std::system(cmd.c_str()) != 0 || !std::filesystem::exists(cluster + "/conninfo")) {
      std::printf("postgres: skipped: no cluster could be started (PostgreSQL server binaries missing?)\n");
      return 0;
    }
    std::ifstream f(cluster + "/conninfo");
    std::getline(f, conninfo);
  }
  std::printf("%zu memories over %zu users, %zu client threads, dim %zu, hashing embedder, flat index\n",
              cfg.memories, cfg.users, cfg.threads, cfg.dim);
  const hashing_embedder emb(cfg.dim);
  int rc = 0;
  const auto started = clk::now();
  try {
    sharded_postgres_options sharded{.shards = {}, .store = {.schema = "bench_sharded", .pool_size = cfg.threads}};
    for (std::size_t i = 0; i < cfg.shards; ++i) {
      const auto db = "bench_s" + std::to_string(i + 1);
      run_sql(conninfo, "CREATE DATABASE " + db, "already exists");
      sharded.shards.push_back({db, conninfo + " dbname=" + db});  // the last dbname wins
      run_sql(sharded.shards.back().conninfo, "DROP SCHEMA IF EXISTS bench_sharded CASCADE");
    }
    for (const char* schema : {"bench_one", "bench_two", "bench_cold"})
      run_sql(conninfo, std::string("DROP SCHEMA IF EXISTS ") + schema + " CASCADE");
    {  // the anchor: file_store, one node
      const auto dir = scratch_dir("file");
      node<file_store> m(emb, file_store(dir));
      const double adds = load<node<file_store>>({&m}, cfg, cfg.memories);
      report("file_store, one node", adds, searches<node<file_store>>({&m}, cfg));
      std::filesystem::remove_all(dir);
    }
    {  // postgres, one node
      node<postgres_store> m(emb, postgres_store(conninfo, {.schema = "bench_one", .pool_size = cfg.threads}));
      const double adds = load<node<postgres_store>>({&m}, cfg, cfg.memories);
      report("postgres, one node", adds, searches<node<postgres_store>>({&m}, cfg));
    }
    // postgres, one node, adds and searches at once: the COMMIT's flush under the write lock (group_commit off)
    // against after it (on, the default), rounds interleaved, each on an empty schema
    for (int round = 0; round < 2; ++round)
      for (const bool grouped : {false, true}) {
        run_sql(conninfo, "DROP SCHEMA IF EXISTS bench_mixed CASCADE");
        node<postgres_store> m(emb, postgres_store(conninfo, {.schema = "bench_mixed", .pool_size = cfg.threads + 2,
                                                              .group_commit = grouped}));
        mixed(m, cfg, cfg.mixed, grouped ? "postgres, group_commit on" : "postgres, group_commit off");
        if (grouped)
          std::printf("  flushes per add: %.2f\n", double(m.store().flushes()) / double(cfg.mixed));
      }
    {  // postgres, two nodes over one database
      node<postgres_store> a(emb, postgres_store(conninfo, {.schema = "bench_two", .pool_size = cfg.threads}));
      node<postgres_store> b(emb, postgres_store(conninfo, {.schema = "bench_two", .pool_size = cfg.threads}));
      const double adds = load<node<postgres_store>>({&a, &b}, cfg, cfg.memories);
      (void)b.size();  // let both catch up before timing searches
      (void)a.size();
      report("postgres, two nodes", adds, searches<node<postgres_store>>({&a, &b}, cfg));

      std::vector<double> delay;
      for (int i = 0; i < 200; ++i) {
        const auto id = a.add("visibility probe " + std::to_string(i), user("probe"), {.infer = false}).results.at(0).id;
        const auto t0 = clk::now();
        while (!b.get(id)) {
          if (clk::now() - t0 > std::chrono::seconds(10)) throw std::runtime_error("not visible after 10 s");
        }
        delay.push_back(ms(clk::now() - t0));
      }
      std::printf("cross-node visibility (add on A returned -> get on B finds it): p50 %.3f ms  p95 %.3f ms  max %.3f ms\n",
                  pct(delay, 0.5), pct(delay, 0.95), pct(delay, 1.0));
    }
    {  // postgres sharded over cfg.shards databases, two nodes
      using sharded_node = node<sharded_postgres_store>;
      sharded_node a(emb, sharded_postgres_store(sharded)), b(emb, sharded_postgres_store(sharded));
      const double adds = load<sharded_node>({&a, &b}, cfg, cfg.memories);
      (void)b.size();
      (void)a.size();
      std::string what = "postgres, " + std::to_string(cfg.shards) + " shards, two nodes";
      report(what.c_str(), adds, searches<sharded_node>({&a, &b}, cfg));
      std::string spread;
      for (std::size_t i = 0; i < cfg.shards; ++i) spread += " " + std::to_string(a.store().shard(i).size());
      std::printf("  records per shard:%s\n", spread.c_str());
    }
    {  // cold load of one scope of cfg.cold memories
      settings one = cfg;
      one.users = 1;
      {
        node<postgres_store> w(emb, postgres_store(conninfo, {.schema = "bench_cold", .pool_size = cfg.threads}));
        load<node<postgres_store>>({&w}, one, cfg.cold);
      }
      const auto t0 = clk::now();
      node<postgres_store> cold(emb, postgres_store(conninfo, {.schema = "bench_cold"}));
      const double pg_ms = ms(clk::now() - t0);
      const auto dir = scratch_dir("cold");
      {
        node<file_store> w(emb, file_store(dir));
        load<node<file_store>>({&w}, one, cfg.cold);
      }
      const auto t1 = clk::now();
      node<file_store> fcold(emb, file_store(dir));
      const double file_ms = ms(clk::now() - t1);
      std::printf("cold load of a %zu-memory scope (open a node): postgres %.1f ms, file_store %.1f ms (%zu / %zu)\n",
                  cfg.cold, pg_ms, file_ms, cold.size(), fcold.size());
      std::filesystem::remove_all(dir);
    }
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    rc = 1;
  }
  std::printf("total %.0f s\n", std::chrono::duration<double>(clk::now() - started).count());
  if (!cluster.empty()) {
    const std::string cmd = std::string(ENGRAM_SOURCE_DIR) + "/scripts/pg-cluster.sh stop " + cluster + " >/dev/null";
    (void)std::system(cmd.c_str());
  }
  return rc;
}
