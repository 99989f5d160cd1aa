// A search answer's JSON text, three ways, on ten hits as engram-server returns them (text of a typical memory,
// metadata with categories, the structured attributes): nlohmann's own dump of the JSON objects (the anchor),
// engram::dump_json of the same objects, and append_json_list straight from the hits. Every variant's output is
// checked equal to the anchor's before timing.
//   bench_json [--benchmark_filter=...]
#include <engram/json.hpp>
#include <engram/json_dump.hpp>
#include <engram/json_records.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

namespace {

std::vector<engram::search_hit> ten_hits() {
  std::vector<engram::search_hit> hits;
  for (int i = 0; i < 10; ++i) {
    engram::record r;
    r.id = "3f2c1a9e-7d4b-4c2a-9e1f-0a5b6c7d8e" + std::to_string(10 + i);
    r.memory = "Prefers window seats on long flights and books them a month ahead, number " + std::to_string(i);
    r.hash = "9e107d9d372bb6826bd81d3542a419d6";
    r.metadata = {{"categories", {"travel", "preferences"}}, {"source", "chat"}};
    r.user_id = "user" + std::to_string(i);
    r.role = "user";
    r.created_at = engram::timestamp{std::chrono::seconds{1'714'564'800 + i * 3600}};
    r.updated_at = r.created_at;
    hits.push_back({std::move(r), 0.8f - 0.01f * static_cast<float>(i), std::nullopt});
  }
  return hits;
}

std::string nlohmann_text(const std::vector<engram::search_hit>& hits) {
  return engram::results(hits).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string direct_text(const std::vector<engram::search_hit>& hits) {
  std::string out = "{\"results\":";
  engram::append_json_list(out, hits);
  out += '}';
  return out;
}

void check_equal(const std::string& what, const std::string& got, const std::string& expected) {
  if (got == expected) return;
  std::cerr << "bench_json: " << what << " differs from nlohmann's dump\n";
  std::exit(1);
}

void BM_search_answer_nlohmann(benchmark::State& state) {
  const auto hits = ten_hits();
  for (auto _ : state) benchmark::DoNotOptimize(nlohmann_text(hits));
}
BENCHMARK(BM_search_answer_nlohmann);

void BM_search_answer_dump_json(benchmark::State& state) {
  const auto hits = ten_hits();
  check_equal("dump_json", engram::dump_json(engram::results(hits)), nlohmann_text(hits));
  for (auto _ : state) benchmark::DoNotOptimize(engram::dump_json(engram::results(hits)));
}
BENCHMARK(BM_search_answer_dump_json);

void BM_search_answer_direct(benchmark::State& state) {
  const auto hits = ten_hits();
  check_equal("append_json_list", direct_text(hits), nlohmann_text(hits));
  for (auto _ : state) benchmark::DoNotOptimize(direct_text(hits));
}
BENCHMARK(BM_search_answer_direct);

// The text alone, from objects already built: what dump_json replaces in nlohmann's dump.
void BM_dump_only_nlohmann(benchmark::State& state) {
  const auto j = engram::results(ten_hits());
  for (auto _ : state) benchmark::DoNotOptimize(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}
BENCHMARK(BM_dump_only_nlohmann);

void BM_dump_only_dump_json(benchmark::State& state) {
  const auto j = engram::results(ten_hits());
  for (auto _ : state) benchmark::DoNotOptimize(engram::dump_json(j));
}
BENCHMARK(BM_dump_only_dump_json);

}  // namespace

BENCHMARK_MAIN();
