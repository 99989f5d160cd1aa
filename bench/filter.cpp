// Filter evaluation and filtered search over 1M records with 5 metadata fields.
//
//   cmake --preset bench && cmake --build --preset bench --target bench_filter
//   build/bench/bench/bench_filter [--benchmark_filter=...]
//   ENGRAM_BENCH_RECORDS=100000 ENGRAM_BENCH_DIM=384 ...   (defaults: 1,000,000 records, dimension 128)
//
// Metadata per record: priority (int 0..99, uniform: `priority < p` selects p%), score (float in [0,1)),
// category (one of 20 strings), tag (one of 1000 strings), active (bool).
// Filters: 1 leaf, 3 leaves, 8 leaves (see make_filters). Evaluation is reported as records/s (items/s);
// filtered top-10 search runs through basic_memory::search with each strategy, next to the unfiltered search
// over the same 1M vectors (the anchor: a full flat scan).
#include <engram/engram.hpp>
#include <engram/filter/eval.hpp>
#include <engram/filter/parse.hpp>

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

using namespace engram;

namespace {

std::size_t env_size(const char* name, std::size_t fallback) {
  if (const char* v = std::getenv(name)) return std::strtoull(v, nullptr, 10);
  return fallback;
}

const std::size_t n_records = env_size("ENGRAM_BENCH_RECORDS", 1'000'000);
const std::size_t dim = env_size("ENGRAM_BENCH_DIM", 128);
constexpr std::size_t per_record_sample = 100'000;

nlohmann::json metadata_for(std::mt19937& rng) {
  std::uniform_int_distribution<int> pri(0, 99), cat(0, 19), tag(0, 999), coin(0, 1);
  std::uniform_real_distribution<double> score(0.0, 1.0);
  return {{"priority", pri(rng)},
          {"score", score(rng)},
          {"category", "c" + std::to_string(cat(rng))},
          {"tag", "t" + std::to_string(tag(rng))},
          {"active", coin(rng) == 1}};
}

using bench_memory = basic_memory<hashing_embedder, flat_index, memory_store, verbatim_extractor>;

struct world {
  filter_columns columns;
  std::vector<slot_id> slots;
  std::vector<record> sample;  // records without vectors, for per-record evaluation
  std::unique_ptr<bench_memory> mem;

  world() {
    std::mt19937 rng(7);
    std::normal_distribution<float> g;
    memory_store store;
    write_batch batch;
    const auto t0 = parse_iso8601("2024-01-01T00:00:00Z");
    for (std::size_t i = 0; i < n_records; ++i) {
      record r;
      r.id = "m" + std::to_string(i);
      r.memory = "memory " + std::to_string(i);
      r.hash = r.id;
      r.user_id = "bench";
      r.role = "user";
      r.created_at = r.updated_at = t0 + std::chrono::seconds(i);
      r.metadata = metadata_for(rng);
      r.embedding.resize(dim);
      for (auto& x : r.embedding) x = g(rng);
      columns.assign(static_cast<slot_id>(i), r);
      slots.push_back(static_cast<slot_id>(i));
      if (sample.size() < per_record_sample) {
        sample.push_back(r);
        sample.back().embedding.clear();
      }
      batch.upserts.push_back(std::move(r));
      if (batch.upserts.size() == 50'000) {
        store.apply(batch);
        batch = write_batch{};
      }
    }
    store.apply(batch);
    mem = std::make_unique<bench_memory>(hashing_embedder(dim), std::move(store));
  }
};

world& the_world() {
  static world w;
  return w;
}

const filter_expr& filter_with_leaves(int leaves) {
  static const filter_expr one = parse_filter(R"({"priority": {"gte": 50}})");
  static const filter_expr three =
      parse_filter(R"({"priority": {"gte": 50}, "category": {"in": ["c1", "c2", "c3"]}, "score": {"lt": 0.5}})");
  static const filter_expr eight = parse_filter(R"({"AND": [
      {"priority": {"gte": 10}},
      {"OR": [{"category": "c1"}, {"category": "c2"}, {"tag": {"contains": "7"}}]},
      {"score": {"lt": 0.9}}, {"active": true}, {"NOT": {"tag": "t1"}}, {"priority": {"lt": 95}}]})");
  return leaves == 1 ? one : leaves == 3 ? three : eight;
}

void BM_columns_select(benchmark::State& state) {
  auto& w = the_world();
  const auto& f = filter_with_leaves(static_cast<int>(state.range(0)));
  std::size_t matched = 0;
  for (auto _ : state) {
    auto bm = w.columns.select(f, w.slots);
    matched = bm.count();
    benchmark::DoNotOptimize(bm);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * w.slots.size()));
  state.counters["selectivity"] = double(matched) / double(w.slots.size());
}
BENCHMARK(BM_columns_select)->Arg(1)->Arg(3)->Arg(8)->Unit(benchmark::kMillisecond);

void BM_columns_per_slot(benchmark::State& state) {
  auto& w = the_world();
  const auto& f = filter_with_leaves(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    std::size_t n = 0;
    for (const auto s : w.slots) n += w.columns.matches(f, s) ? 1 : 0;
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * w.slots.size()));
}
BENCHMARK(BM_columns_per_slot)->Arg(1)->Arg(3)->Arg(8)->Unit(benchmark::kMillisecond);

void BM_per_record(benchmark::State& state) {
  auto& w = the_world();
  const auto& f = filter_with_leaves(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    std::size_t n = 0;
    for (const auto& r : w.sample) n += filter_matches(f, r) ? 1 : 0;
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * w.sample.size()));
}
BENCHMARK(BM_per_record)->Arg(1)->Arg(3)->Arg(8)->Unit(benchmark::kMillisecond);

void BM_search_unfiltered(benchmark::State& state) {
  auto& w = the_world();
  for (auto _ : state) benchmark::DoNotOptimize(w.mem->search("quiet morning tea", user("bench"), {.limit = 10}));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * w.slots.size()));
}
BENCHMARK(BM_search_unfiltered)->Unit(benchmark::kMillisecond);

/// Args: selectivity percent, strategy (0 automatic, 1 pre-filter, 2 post-filter).
void BM_search_filtered(benchmark::State& state) {
  auto& w = the_world();
  const auto pct = state.range(0);
  const auto strategy = static_cast<filter_strategy>(state.range(1));
  const auto f = parse_filter(nlohmann::json{{"priority", {{"lt", pct}}}});
  std::size_t hits = 0;
  for (auto _ : state) {
    auto r = w.mem->search("quiet morning tea", user("bench"), {.limit = 10, .filter = f, .strategy = strategy});
    hits = r.size();
    benchmark::DoNotOptimize(r);
  }
  state.counters["hits"] = double(hits);
  state.SetLabel(std::to_string(pct) + "% " +
                 (strategy == filter_strategy::automatic ? "auto" : strategy == filter_strategy::pre_filter ? "pre" : "post"));
}
BENCHMARK(BM_search_filtered)
    ->ArgsProduct({{1, 10, 50}, {0, 1, 2}})
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
