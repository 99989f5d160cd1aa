// Durable write throughput and open/recovery time of the durable stores.
//
//   cmake --preset bench && cmake --build --preset bench --target bench_store
//   ./build/bench/bench/bench_store --benchmark_filter='apply|add'      (writes, ~1 min)
//   ./build/bench/bench/bench_store --benchmark_filter=group_vs          (the 3x target: interleaved rounds)
//   ./build/bench/bench/bench_store --benchmark_filter=open              (recovery; builds 1M records)
//
// Writes: every op is what one `add` of one fact commits (a record with a 384-float vector plus its ADD
// history event), durable on return: file_store fsync / group_commit, sqlite_store (WAL, synchronous=FULL)
// and, as the anchor, plain SQLite inserts of the same rows at the same durability through one connection.
// `store_apply` calls apply() from N threads directly; `memory_add` goes through basic_memory::add, which
// appends under its write lock and waits for durability after releasing it (file_store's append + sync), so
// concurrent writers share fsyncs in both file_store modes.

#include <engram/engram.hpp>
#include <engram/store/file_store.hpp>
#ifdef ENGRAM_BENCH_HAS_SQLITE
#include <engram/store/sqlite_store.hpp>
#include <sqlite3.h>
#endif

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <unistd.h>

using namespace engram;

namespace {

constexpr std::size_t dim = 384;

struct scratch {
  std::string path;
  scratch() {
    char tmpl[] = "/tmp/engram-bench-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~scratch() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

std::vector<float> pseudo_vector(std::uint64_t seed) {
  std::vector<float> v(dim);
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& f : v) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    f = static_cast<float>(static_cast<std::int64_t>(x >> 11) % 20001 - 10000) / 10000.0f;
  }
  return v;
}

write_batch add_batch(std::uint64_t n) {
  record r;
  r.id = "00000000-0000-4000-8000-" + std::to_string(100000000000ull + n);
  r.memory = "the user mentioned fact number " + std::to_string(n) + " while talking about their plans";
  r.hash = "d41d8cd98f00b204e9800998ecf8427e";
  r.metadata = nlohmann::json{{"source", "bench"}, {"n", n}};
  r.user_id = "user-" + std::to_string(n % 100);
  r.created_at = r.updated_at = utc_now();
  r.embedding = pseudo_vector(n);
  write_batch b;
  b.events.push_back(history_event{"ev-" + r.id, r.id, std::nullopt, r.memory, event_kind::add, r.created_at,
                                   std::nullopt, false, "", "user"});
  b.upserts.push_back(std::move(r));
  return b;
}

/// Runs op(i) for i in [0, threads * per_thread) from `threads` threads; @returns wall seconds.
template <class Op>
double run_threads(int threads, int per_thread, Op op) {
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < per_thread; ++i) op(static_cast<std::uint64_t>(t) * per_thread + i);
    });
  const auto start = std::chrono::steady_clock::now();
  go = true;
  for (auto& th : ts) th.join();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// file_two_phase: file_store (group_commit) append() under a caller's mutex, then sync() outside it: the
// pattern basic_memory would use to let concurrent adds share fsyncs.
enum kind : int { file_fsync, file_group, sqlite_engram, sqlite_plain, file_two_phase };

#ifdef ENGRAM_BENCH_HAS_SQLITE
/// The anchor: the same rows inserted with the sqlite3 API directly, one transaction per add, WAL,
/// synchronous=FULL, one connection shared under a mutex (SQLite commits one transaction at a time).
class plain_sqlite {
 public:
  explicit plain_sqlite(const std::string& file) {
    sqlite3_open_v2(file.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");
    exec("CREATE TABLE memories(id TEXT PRIMARY KEY, memory TEXT, hash TEXT, metadata TEXT, user_id TEXT,"
         " created_at TEXT, updated_at TEXT, embedding BLOB)");
    exec("CREATE TABLE history(seq INTEGER PRIMARY KEY, id TEXT, memory_id TEXT, old_memory TEXT, new_memory TEXT,"
         " event TEXT, created_at TEXT, updated_at TEXT, is_deleted INTEGER, actor_id TEXT, role TEXT)");
    sqlite3_prepare_v2(db_, "INSERT INTO memories VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", -1, &ins_, nullptr);
    sqlite3_prepare_v2(db_, "INSERT INTO history(id, memory_id, new_memory, event, created_at, is_deleted, role)"
                            " VALUES (?1, ?2, ?3, 'ADD', ?4, 0, 'user')", -1, &hist_, nullptr);
  }
  ~plain_sqlite() {
    sqlite3_finalize(ins_);
    sqlite3_finalize(hist_);
    sqlite3_close_v2(db_);
  }
  void insert(const write_batch& b) {
    const auto& r = b.upserts.front();
    const auto meta = r.metadata.dump();
    const auto t = format_iso8601(r.created_at);
    std::lock_guard lock(mtx_);
    exec("BEGIN IMMEDIATE");
    sqlite3_reset(ins_);
    sqlite3_bind_text(ins_, 1, r.id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins_, 2, r.memory.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins_, 3, r.hash.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins_, 4, meta.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins_, 5, r.user_id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins_, 6, t.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins_, 7, t.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(ins_, 8, r.embedding.data(), static_cast<int>(r.embedding.size() * 4), SQLITE_TRANSIENT);
    if (sqlite3_step(ins_) != SQLITE_DONE) std::abort();
    const auto& e = b.events.front();
    sqlite3_reset(hist_);
    sqlite3_bind_text(hist_, 1, e.id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(hist_, 2, e.memory_id.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(hist_, 3, e.new_memory->c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(hist_, 4, t.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(hist_) != SQLITE_DONE) std::abort();
    exec("COMMIT");
  }

 private:
  void exec(const char* sql) {
    if (sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) std::abort();
  }
  sqlite3* db_ = nullptr;
  sqlite3_stmt* ins_ = nullptr;
  sqlite3_stmt* hist_ = nullptr;
  std::mutex mtx_;
};
#endif

constexpr int ops_total = 4000;

void report(benchmark::State& state, double seconds, int ops) {
  state.SetIterationTime(seconds);
  state.counters["adds_per_s"] = ops / seconds;
}

void BM_store_apply(benchmark::State& state) {
  const auto k = static_cast<kind>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  const int per_thread = ops_total / threads / (k == file_group || k == file_two_phase ? 1 : 2);
  std::vector<write_batch> batches;
  for (int i = 0; i < threads * per_thread; ++i) batches.push_back(add_batch(static_cast<std::uint64_t>(i)));
  for (auto _ : state) {
    scratch dir;
    double secs = 0;
    if (k == file_fsync || k == file_group) {
      file_store s(dir.path + "/db", {.mode = k == file_group ? durability::group_commit : durability::fsync});
      secs = run_threads(threads, per_thread, [&](std::uint64_t i) { s.apply(batches[i]); });
      const auto st = s.stats();
      state.counters["commits_per_sync"] = double(st.commits) / double(st.syncs ? st.syncs : 1);
    } else if (k == file_two_phase) {
      file_store s(dir.path + "/db", {.mode = durability::group_commit});
      std::mutex caller_lock;
      secs = run_threads(threads, per_thread, [&](std::uint64_t i) {
        std::uint64_t ticket = 0;
        {
          std::lock_guard lock(caller_lock);
          ticket = s.append(batches[i]);
        }
        s.sync(ticket);
      });
      const auto st = s.stats();
      state.counters["commits_per_sync"] = double(st.commits) / double(st.syncs ? st.syncs : 1);
#ifdef ENGRAM_BENCH_HAS_SQLITE
    } else if (k == sqlite_engram) {
      sqlite_store s(dir.path + "/db.sqlite");
      secs = run_threads(threads, per_thread, [&](std::uint64_t i) { s.apply(batches[i]); });
    } else {
      plain_sqlite s(dir.path + "/plain.sqlite");
      secs = run_threads(threads, per_thread, [&](std::uint64_t i) { s.insert(batches[i]); });
#endif
    }
    report(state, secs, threads * per_thread);
  }
}

template <class Store>
using mem_over = basic_memory<hashing_embedder, flat_index, Store, verbatim_extractor>;

template <class Store, class Make>
double time_memory_adds(Make make, int threads, int per_thread) {
  mem_over<Store> m(hashing_embedder(dim), make());
  return run_threads(threads, per_thread, [&](std::uint64_t i) {
    m.add("the user mentioned fact number " + std::to_string(i) + " while talking about their plans",
          user("user-" + std::to_string(i % 100)), {.infer = false});
  });
}

void BM_memory_add(benchmark::State& state) {
  const auto k = static_cast<kind>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  const int per_thread = ops_total / threads / 2;
  for (auto _ : state) {
    scratch dir;
    double secs = 0;
    if (k == file_fsync || k == file_group) {
      const auto mode = k == file_group ? durability::group_commit : durability::fsync;
      secs = time_memory_adds<file_store>([&] { return file_store(dir.path + "/db", {.mode = mode}); }, threads,
                                          per_thread);
#ifdef ENGRAM_BENCH_HAS_SQLITE
    } else if (k == sqlite_engram) {
      secs = time_memory_adds<sqlite_store>([&] { return sqlite_store(dir.path + "/db.sqlite"); }, threads,
                                            per_thread);
#endif
    }
    report(state, secs, threads * per_thread);
  }
}

void write_args(benchmark::internal::Benchmark* b, bool with_plain) {
  b->ArgNames({"store", "threads"});
  for (int k : {file_fsync, file_group, sqlite_engram, sqlite_plain, file_two_phase}) {
    if ((k == sqlite_plain || k == file_two_phase) && !with_plain) continue;
#ifndef ENGRAM_BENCH_HAS_SQLITE
    if (k == sqlite_engram || k == sqlite_plain) continue;
#endif
    for (int t : {1, 2, 8}) b->Args({k, t});
  }
  b->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);
}

BENCHMARK(BM_store_apply)->Apply([](auto* b) { write_args(b, true); });
BENCHMARK(BM_memory_add)->Apply([](auto* b) { write_args(b, false); });

#ifdef ENGRAM_BENCH_HAS_SQLITE
// The target ratio, measured so that it means something on a shared disk whose fsync latency drifts by 10x
// within a minute: file_store group commit (apply from N threads, and basic_memory::add from N threads over a
// group-commit file_store) and the plain SQLite anchor take turns in short rounds, and each side's rate is
// the sum of its ops over the sum of its time. ratio_* = file_store adds/s / plain SQLite adds/s.
void BM_group_vs_sqlite(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  constexpr int rounds = 8, per_round = 400;
  const int per_thread = per_round / threads;
  const int ops = per_thread * threads;
  std::vector<write_batch> batches;
  for (int i = 0; i < rounds * ops; ++i) batches.push_back(add_batch(static_cast<std::uint64_t>(i)));
  for (auto _ : state) {
    scratch dir;
    file_store fs(dir.path + "/group", {.mode = durability::group_commit});
    plain_sqlite sq(dir.path + "/plain.sqlite");
    mem_over<file_store> mem(hashing_embedder(dim), file_store(dir.path + "/mem", {.mode = durability::group_commit}));
    double t_file = 0, t_sqlite = 0, t_mem = 0;
    for (int r = 0; r < rounds; ++r) {
      const auto base = static_cast<std::uint64_t>(r) * ops;
      t_file += run_threads(threads, per_thread, [&](std::uint64_t i) { fs.apply(batches[base + i]); });
      t_sqlite += run_threads(threads, per_thread, [&](std::uint64_t i) { sq.insert(batches[base + i]); });
      t_mem += run_threads(threads, per_thread, [&](std::uint64_t i) {
        mem.add("the user mentioned fact number " + std::to_string(base + i) + " while talking about their plans",
                user("user-" + std::to_string((base + i) % 100)), {.infer = false});
      });
    }
    const double total = double(rounds) * ops;
    state.SetIterationTime(t_file + t_sqlite + t_mem);
    state.counters["file_group_per_s"] = total / t_file;
    state.counters["memory_add_per_s"] = total / t_mem;
    state.counters["sqlite_per_s"] = total / t_sqlite;
    state.counters["ratio_store"] = t_sqlite / t_file;
    state.counters["ratio_memory"] = t_sqlite / t_mem;
    const auto st = fs.stats();
    state.counters["commits_per_sync"] = double(st.commits) / double(st.syncs ? st.syncs : 1);
    const auto ms = mem.store().stats();
    state.counters["mem_commits_per_sync"] = double(ms.commits) / double(ms.syncs ? ms.syncs : 1);
  }
}
BENCHMARK(BM_group_vs_sqlite)
    ->ArgNames({"threads"})
    ->Arg(1)
    ->Arg(2)
    ->Arg(8)
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
#endif

// ---- open / recovery --------------------------------------------------------------------------------------

/// A file_store of `n` records (d=384, one ADD event each), bound to hashing-v1: either compacted into a
/// snapshot or left as one long log. Built once per process run (shared by the cases that open it), not timed;
/// removed at exit.
struct built_stores {
  std::map<std::pair<std::int64_t, bool>, std::string> dirs;
  ~built_stores() {
    std::error_code ec;
    for (const auto& [key, dir] : dirs) std::filesystem::remove_all(dir, ec);
  }
};

std::string build_store(std::int64_t n, bool as_log) {
  static built_stores built;
  if (auto it = built.dirs.find({n, as_log}); it != built.dirs.end()) return it->second;
  const std::string dir = "/tmp/engram-bench-open-" + std::to_string(::getpid()) + "-" + std::to_string(n) +
                          (as_log ? "-log" : "-snap");
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  {
    file_store s(dir, {.mode = durability::buffered,
                       .compact_log_bytes = as_log ? ~std::uint64_t{0} : (64ull << 20)});
    s.bind(store_identity{"hashing-v1", dim});
    for (std::int64_t from = 0; from < n; from += 1000) {
      write_batch b;
      for (std::int64_t i = from; i < std::min(n, from + 1000); ++i) {
        auto one = add_batch(static_cast<std::uint64_t>(i));
        b.upserts.push_back(std::move(one.upserts.front()));
        b.events.push_back(std::move(one.events.front()));
      }
      s.apply(b);
    }
    if (!as_log) s.compact();
  }
  built.dirs.emplace(std::pair{n, as_log}, dir);
  return dir;
}

// Opening a memory: the store replays its files (store_s), then basic_memory rebuilds its index, catalog,
// filter columns and keyword index from the records (index_s); the time reported is their sum. The snapshot is
// in the current format: record vectors are read in place from the mapped file (for_each_vector), the log's
// are decoded into the records. Run it on a quiet machine: the CPU column is the main thread's CPU time.
void BM_open_file_store(benchmark::State& state) {
  const auto n = state.range(0);
  const bool as_log = state.range(1) != 0;
  const bool with_index = state.range(2) != 0;
  const auto dir = build_store(n, as_log);
  using clock = std::chrono::steady_clock;
  auto seconds = [](clock::time_point a, clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
  for (auto _ : state) {
    const auto start = clock::now();
    std::size_t size = 0;
    file_store s(dir);
    const auto replayed = clock::now();
    state.counters["store_s"] = seconds(start, replayed);
    if (with_index) {
      mem_over<file_store> m{hashing_embedder(dim), std::move(s)};
      size = m.size();
      const auto indexed = clock::now();
      state.counters["index_s"] = seconds(replayed, indexed);
      state.SetIterationTime(seconds(start, indexed));
    } else {
      size = s.size();
      state.SetIterationTime(seconds(start, replayed));
    }
    if (size != static_cast<std::size_t>(n)) state.SkipWithError("wrong record count after open");
  }
  state.counters["records"] = static_cast<double>(n);
}

BENCHMARK(BM_open_file_store)
    ->ArgNames({"records", "from_log", "index"})
    ->Args({100000, 0, 0})
    ->Args({100000, 0, 1})
    ->Args({100000, 1, 1})
    ->Args({1000000, 0, 0})
    ->Args({1000000, 0, 1})
    ->Args({1000000, 1, 1})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

/// A line of /proc/self/status ("VmRSS:", "VmHWM:") in MiB; 0 where there is none.
double resident_mb(const std::string& key) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key, 0) == 0) return std::stod(line.substr(key.size())) / 1024.0;  // kB
  return 0;
}

// Writes while the store compacts n records: 4 threads apply one-record batches (group commit) to a copy of a
// store whose log holds n records and which has no snapshot, so the first write finds the log too large. In
// the write path (background 0) that write holds the write lock while the whole snapshot is written, and the
// other writers wait behind it; in the background (1) writers wait only for the switch to the new files. The
// case runs until the compaction is over and 200 ms more. Reported: the longest write, the 99th percentile and
// the median (ms), the compaction's duration (s), the writes done meanwhile, and how much the peak resident
// size grew (MiB: a background compaction builds the new state beside the store's). Compare the two rows.
void BM_write_during_compaction(benchmark::State& state) {
  const auto n = state.range(0);
  const bool background = state.range(1) != 0;
  const auto src = build_store(n, true);
  const auto dir = src + "-writing";
  using clock = std::chrono::steady_clock;
  for (auto _ : state) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    std::filesystem::copy(src, dir, std::filesystem::copy_options::recursive);
    ::sync();  // the copy's dirty pages would otherwise go with the first write's fdatasync
    std::vector<std::vector<double>> took(4);
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> next{static_cast<std::uint64_t>(n)};
    double compaction_s = 0, rss_before = 0, peak_growth = 0;
    {
      file_store s(dir, {.mode = durability::group_commit, .compact_log_bytes = 1,
                         .background_compaction = background});
      rss_before = resident_mb("VmRSS:");
      std::ofstream("/proc/self/clear_refs") << "5";  // peak resident size := current (Linux)
      const auto start = clock::now();
      std::vector<std::thread> writers;
      for (auto& t : took)
        writers.emplace_back([&, &t = t] {
          while (!stop.load()) {
            const auto b = add_batch(next.fetch_add(1));
            const auto a = clock::now();
            s.apply(b);
            t.push_back(std::chrono::duration<double, std::milli>(clock::now() - a).count());
          }
        });
      while (true) {
        const auto st = s.stats();
        if (st.compactions > 0 && !st.compacting) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      compaction_s = std::chrono::duration<double>(clock::now() - start).count();
      peak_growth = resident_mb("VmHWM:") - rss_before;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      stop = true;
      for (auto& w : writers) w.join();
    }
    std::vector<double> all;
    for (const auto& t : took) all.insert(all.end(), t.begin(), t.end());
    std::sort(all.begin(), all.end());
    auto at = [&](double q) { return all.empty() ? 0.0 : all[static_cast<std::size_t>(q * double(all.size() - 1))]; };
    state.SetIterationTime(compaction_s);
    state.counters["max_ms"] = all.empty() ? 0.0 : all.back();
    state.counters["p99_ms"] = at(0.99);
    state.counters["p50_ms"] = at(0.5);
    state.counters["compaction_s"] = compaction_s;
    state.counters["writes"] = static_cast<double>(all.size());
    state.counters["peak_rss_growth_mb"] = peak_growth;
    std::filesystem::remove_all(dir, ec);
  }
}

BENCHMARK(BM_write_during_compaction)
    ->ArgNames({"records", "background"})
    ->Args({100000, 0})
    ->Args({100000, 1})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
