// The two-phase add: what add_async saves a caller, and what merging saves the model.
//
//   cmake --preset bench && cmake --build --preset bench --target bench_async
//   ./build/bench/bench/bench_async [--adds 200] [--users 10] [--callers 1,4] [--extract-ms 20] [--decide-ms 20]
//
// The extractor stands in for an LLM: verbatim facts and decisions, after sleeping as long as a model call
// takes (--extract-ms for the facts call, --decide-ms for the ADD/UPDATE/DELETE call; real models take 10 to
// 100 times longer, so every ratio below only grows with them). The store is file_store in group_commit mode
// (durable on return). For each number of concurrent callers, the same adds (one message each, spread over
// --users scopes) go once through add() and once through add_async() + flush(); reported: the latency a caller
// sees per call (p50 / p95 / max), the time until every add is stored, and how many model calls were made
// (add_async merges the waiting adds of one scope into one extraction, async_options::max_batch).

#include <engram/engram.hpp>
#include <engram/store/file_store.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

using namespace engram;
using clock_type = std::chrono::steady_clock;

namespace {

struct model_clock {
  std::chrono::microseconds extract{20'000};
  std::chrono::microseconds decide{20'000};
  std::atomic<std::size_t> extract_calls{0};
  std::atomic<std::size_t> decide_calls{0};
};

/// verbatim_extractor's answers after a model call's latency. Thread-safe, as basic_memory requires.
struct slow_extractor {
  model_clock* clock = nullptr;
  [[nodiscard]] std::vector<fact> extract(std::span<const message> messages, const extraction_context& ctx) const {
    clock->extract_calls.fetch_add(1);
    std::this_thread::sleep_for(clock->extract);
    return verbatim_extractor{}.extract(messages, ctx);
  }
  [[nodiscard]] std::vector<memory_action> decide(std::span<const fact> facts,
                                                  std::span<const std::vector<existing_memory>> near,
                                                  const extraction_context& ctx) const {
    clock->decide_calls.fetch_add(1);
    std::this_thread::sleep_for(clock->decide);
    return verbatim_extractor{}.decide(facts, near, ctx);
  }
};

using slow_memory = basic_memory<hashing_embedder, flat_index, file_store, slow_extractor>;

struct scratch {
  std::string path;
  scratch() {
    char tmpl[] = "/tmp/engram-bench-async-XXXXXX";
    if (!mkdtemp(tmpl)) std::abort();
    path = tmpl;
  }
  ~scratch() { std::filesystem::remove_all(path); }
};

struct run_result {
  std::vector<double> call_ms;  // per call, as the caller saw it
  double total_ms = 0;          // first call to every add stored
  std::size_t extract_calls = 0, decide_calls = 0, stored = 0;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

run_result run(bool async, std::size_t adds, std::size_t users, std::size_t callers, model_clock& clock) {
  scratch dir;
  clock.extract_calls = 0;
  clock.decide_calls = 0;
  run_result out;
  std::vector<std::vector<double>> per_caller(callers);
  {
    slow_memory mem(hashing_embedder(), flat_index(hashing_embedder().dimension()),
                    file_store(dir.path + "/db", {.mode = durability::group_commit}), slow_extractor{&clock});
    const auto start = clock_type::now();
    std::vector<std::thread> threads;
    for (std::size_t c = 0; c < callers; ++c)
      threads.emplace_back([&, c] {
        for (std::size_t i = c; i < adds; i += callers) {
          const std::string text = "fact number " + std::to_string(i) + " about the user's plans for the week";
          const scope s = user("user-" + std::to_string(i % users));
          const auto t0 = clock_type::now();
          if (async)
            (void)mem.add_async(text, s);
          else
            (void)mem.add(text, s);
          per_caller[c].push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
        }
      });
    for (auto& t : threads) t.join();
    if (async && !mem.flush().ok()) {
      std::fprintf(stderr, "bench_async: some adds failed\n");
      std::exit(1);
    }
    out.total_ms = std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
    out.stored = mem.size();
  }
  for (auto& v : per_caller) out.call_ms.insert(out.call_ms.end(), v.begin(), v.end());
  out.extract_calls = clock.extract_calls;
  out.decide_calls = clock.decide_calls;
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t adds = 200, users = 10;
  std::vector<std::size_t> callers = {1, 4};
  model_clock clock;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--adds") adds = std::stoul(v);
    else if (a == "--users") users = std::stoul(v);
    else if (a == "--extract-ms") clock.extract = std::chrono::microseconds(std::stol(v) * 1000);
    else if (a == "--decide-ms") clock.decide = std::chrono::microseconds(std::stol(v) * 1000);
    else if (a == "--callers") {
      callers.clear();
      for (std::size_t p = 0; p < v.size();) {
        const auto q = v.find(',', p);
        callers.push_back(std::stoul(v.substr(p, q - p)));
        p = q == std::string::npos ? v.size() : q + 1;
      }
    } else {
      std::fprintf(stderr, "bench_async: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (adds == 0 || users == 0) return 2;
  std::printf("adds %zu over %zu users, model call %.0f ms (facts) + %.0f ms (decisions), file_store group_commit\n",
              adds, users, clock.extract.count() / 1000.0, clock.decide.count() / 1000.0);
  std::printf("%-8s %-10s %9s %9s %9s %11s %9s %12s %8s\n", "callers", "path", "p50 ms", "p95 ms", "max ms",
              "all in ms", "adds/s", "model calls", "stored");
  for (const auto n : callers) {
    for (const bool async : {false, true}) {
      const auto r = run(async, adds, users, n, clock);
      std::printf("%-8zu %-10s %9.3f %9.3f %9.3f %11.1f %9.1f %12zu %8zu\n", n, async ? "add_async" : "add",
                  percentile(r.call_ms, 0.5), percentile(r.call_ms, 0.95), percentile(r.call_ms, 1.0), r.total_ms,
                  1000.0 * static_cast<double>(adds) / r.total_ms, r.extract_calls + r.decide_calls, r.stored);
      if (r.stored != adds) {
        std::fprintf(stderr, "bench_async: %zu of %zu adds stored\n", r.stored, adds);
        return 1;
      }
    }
  }
  return 0;
}
