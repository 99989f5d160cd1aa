// The per-node partition cache (memory_config::partition_cache_bytes) over PostgreSQL, in one run.
//
//   cmake --build --preset bench --target bench_postgres_cache
//   scripts/pg-cluster.sh start /tmp/pgc
//   ENGRAM_PG_CONNINFO="$(cat /tmp/pgc/conninfo)" ./build/bench/bench/bench_postgres_cache [--cold N] [--users N]
//     [--per-user N] [--cached-users N] [--dim N]
//
// Needs ENGRAM_PG_CONNINFO (says it skips otherwise). Records are written straight through postgres_store
// (1000 per batch), then read by basic_memory (hashing embedder, flat index). Reports, each on its own line:
//   cold scope: opening an eager node over a database holding one scope of --cold memories (the anchor: what
//   every node pays today), against opening a node with the cache on plus its first search (the partition
//   load), and a warm search afterwards;
//   many scopes: --users users of --per-user memories: open + first search in one user, eager (the anchor)
//   against cache on; then with a budget of about --cached-users users: search p50/p95
//   over users in random order, with the loads and evictions it took;
//   cross-node visibility with the cache on: add on an eager node A, search on a cache node B until found.

#include <engram/engram.hpp>
#include <engram/store/postgres_store.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

using namespace engram;
using clk = std::chrono::steady_clock;

namespace {

using node = basic_memory<hashing_embedder, flat_index, postgres_store, verbatim_extractor>;

const char* words[] = {"tea",   "coffee", "Lisbon", "Berlin", "cats",  "dogs",   "chess",  "running",
                       "piano", "nurse",  "pilot",  "sushi",  "pasta", "winter", "summer", "mountains"};

double ms(clk::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, std::size_t(p * double(v.size() - 1) + 0.5))];
}

std::string user_name(std::size_t n) {
  std::string s = "u";
  s += std::to_string(n);
  return s;
}

/// Writes `per_user` records for each of `users` users straight into the store, 1000 per batch.
void seed(const std::string& conninfo, const std::string& schema, const hashing_embedder& emb, std::size_t users,
          std::size_t per_user) {
  postgres_store st(conninfo, {.schema = schema});
  st.bind(store_identity{emb.name(), emb.dimension()});
  write_batch b;
  const auto now = utc_now();
  auto flush = [&] {
    st.apply(b);
    b = write_batch{};
  };
  for (std::size_t u = 0; u < users; ++u)
    for (std::size_t i = 0; i < per_user; ++i) {
      record r;
      r.id = make_uuid_v4();
      r.memory = "fact " + std::to_string(i) + ": " + words[i % 16] + " and " + words[(i * 7 + u) % 16];
      r.hash = detail::md5_hex(r.memory);
      r.user_id = user_name(u);
      r.role = "user";
      r.created_at = r.updated_at = now;
      r.embedding = emb.embed(r.memory);
      b.upserts.push_back(std::move(r));
      if (b.upserts.size() == 1000) flush();
    }
  if (!b.empty()) flush();
}

node open_node(const std::string& conninfo, const std::string& schema, const hashing_embedder& emb,
               std::size_t budget) {
  return node(emb, postgres_store(conninfo, {.schema = schema}), verbatim_extractor(),
              memory_config{.partition_cache_bytes = budget});
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t cold = 10000, users = 200, per_user = 50, cached_users = 60, dim = 128;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const auto v = static_cast<std::size_t>(std::stoull(argv[i + 1]));
    if (k == "--cold") cold = v;
    else if (k == "--users") users = v;
    else if (k == "--per-user") per_user = v;
    else if (k == "--cached-users") cached_users = v;
    else if (k == "--dim") dim = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  const char* env = std::getenv("ENGRAM_PG_CONNINFO");
  if (!env || !*env) {
    std::printf("postgres: skipped: set ENGRAM_PG_CONNINFO (scripts/pg-cluster.sh start DIR prints it to DIR/conninfo)\n");
    return 0;
  }
  const std::string conninfo = env;
  const hashing_embedder emb(dim);
  const auto tag = std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 1000000000);
  try {
    {  // one scope of `cold` memories
      const std::string schema = "bench_cache_cold_" + tag;
      seed(conninfo, schema, emb, 1, cold);
      auto t0 = clk::now();
      node eager = open_node(conninfo, schema, emb, 0);
      const double eager_ms = ms(clk::now() - t0);
      t0 = clk::now();
      node lazy = open_node(conninfo, schema, emb, std::size_t{1} << 30);
      const double open_ms = ms(clk::now() - t0);
      t0 = clk::now();
      const auto first = lazy.search("tea and chess", user(user_name(0)), {.limit = 10});
      const double load_ms = ms(clk::now() - t0);
      std::vector<double> warm;
      for (int q = 0; q < 50; ++q) {
        t0 = clk::now();
        (void)lazy.search(words[q % 16], user(user_name(0)), {.limit = 10});
        warm.push_back(ms(clk::now() - t0));
      }
      std::printf("cold scope of %zu memories (dim %zu): eager open %.1f ms (anchor) | cache on: open %.2f ms, first search "
                  "(partition load) %.1f ms, warm search p50 %.3f ms; %zu hits, %.1f MB estimated\n",
                  cold, dim, eager_ms, open_ms, load_ms, pct(warm, 0.5), first.size(),
                  double(lazy.cache_stats().bytes) / 1e6);
    }
    {  // many scopes, a budget for some
      const std::string schema = "bench_cache_many_" + tag;
      seed(conninfo, schema, emb, users, per_user);
      const std::size_t one_user = per_user * (dim * sizeof(float) + 150);
      auto t0 = clk::now();
      {
        node eager = open_node(conninfo, schema, emb, 0);
        (void)eager.search("tea", user(user_name(1)), {.limit = 10});
      }
      const double eager_ms = ms(clk::now() - t0);
      t0 = clk::now();
      node lazy = open_node(conninfo, schema, emb, one_user * cached_users);
      (void)lazy.search("tea", user(user_name(1)), {.limit = 10});
      std::printf("%zu users x %zu memories: open + first search in one user: eager %.1f ms (anchor), cache on %.1f ms\n",
                  users, per_user, eager_ms, ms(clk::now() - t0));
      std::mt19937 rng(7);
      std::vector<double> lat;
      for (std::size_t q = 0; q < 2000; ++q) {
        // 80% of the searches go to a hot fifth of the users
        const std::size_t u = rng() % 5 ? rng() % std::max<std::size_t>(1, users / 5) : rng() % users;
        t0 = clk::now();
        (void)lazy.search(words[q % 16], user(user_name(u)), {.limit = 10});
        lat.push_back(ms(clk::now() - t0));
      }
      const auto st = lazy.cache_stats();
      std::printf("%zu users x %zu memories, budget ~%zu users (%.1f MB): search p50 %.3f ms p95 %.3f ms max %.1f ms; "
                  "%llu loads, %llu evictions in 2000 searches, %.1f MB held\n",
                  users, per_user, cached_users, double(one_user * cached_users) / 1e6, pct(lat, 0.5), pct(lat, 0.95),
                  pct(lat, 1.0), static_cast<unsigned long long>(st.loads),
                  static_cast<unsigned long long>(st.evictions), double(st.bytes) / 1e6);

      node a = open_node(conninfo, schema, emb, 0);
      (void)lazy.get_all(user("probe"));  // loaded (empty) before the probes
      std::vector<double> delay;
      for (int i = 0; i < 100; ++i) {
        const auto id = a.add("visibility probe " + std::to_string(i), user("probe"), {.infer = false}).results.at(0).id;
        const auto t0 = clk::now();
        for (;;) {
          const auto hits = lazy.search("visibility probe " + std::to_string(i), user("probe"), {.limit = 1});
          if (!hits.empty() && hits[0].record.id == id) break;
          if (clk::now() - t0 > std::chrono::seconds(10)) throw std::runtime_error("not visible after 10 s");
        }
        delay.push_back(ms(clk::now() - t0));
      }
      std::printf("cross-node visibility with the cache on (add on A returned -> search on B finds it): p50 %.3f ms "
                  "p95 %.3f ms max %.3f ms\n",
                  pct(delay, 0.5), pct(delay, 0.95), pct(delay, 1.0));
    }
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
  return 0;
}
