#include "support/fake_server.hpp"

#include <engram/embed/openai.hpp>
#include <engram/extract/llm.hpp>
#include <engram/index/flat.hpp>
#include <engram/memory.hpp>
#include <engram/store/memory_store.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using engram_test::fake_server;
using engram_test::fast;
using json = nlohmann::json;

namespace {

/// A scripted model that returns the user's line as the one fact.
std::string echo_fact(const json& req) {
  const auto conv = req.at("messages").at(1).at("content").get<std::string>();
  const auto at = conv.find("user: ");
  auto line = conv.substr(at + 6);
  line.erase(line.find('\n'));
  return json{{"facts", {"Said: " + line}}}.dump();
}

}  // namespace

TEST_CASE("concurrency_http: one embedder and one extractor serve many threads", "[concurrency_http]") {
  constexpr int threads = 4, per_thread = 6;
  fake_server server(32);
  for (int i = 0; i < threads * per_thread; ++i) server.push_chat(echo_fact);

  using llm_memory =
      engram::basic_memory<engram::openai_embedder, engram::flat_index, engram::memory_store, engram::llm_extractor>;
  const auto http = fast(server, {}, 1, 5000ms);  // many threads at once: a longer read timeout
  llm_memory mem(engram::openai_embedder({.http = http, .model = "e", .batch_size = 2}), engram::memory_store{},
                 engram::llm_extractor({.http = http, .model = "c", .mode = engram::extraction_mode::additive}));
  std::atomic<int> failures{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      try {
        const auto who = engram::user("user" + std::to_string(t));
        for (int i = 0; i < per_thread; ++i) {
          const auto r = mem.add("fact " + std::to_string(i) + " of thread " + std::to_string(t), who);
          if (r.results.size() != 1 || r.results[0].event != engram::event_kind::add) ++failures;
          std::vector<std::string> batch = {"alpha " + std::to_string(t), "beta", "gamma " + std::to_string(i)};
          const auto v = mem.embedder().embed_batch(batch);
          if (v.size() != 3 || v[1] != server.expected_embedding("beta")) ++failures;
          if (mem.search("fact", who).empty()) ++failures;
        }
      } catch (const std::exception&) {
        ++failures;
      }
    });
  for (auto& th : pool) th.join();
  CHECK(failures == 0);
  CHECK(mem.size() == threads * per_thread);
  for (int t = 0; t < threads; ++t)
    CHECK(mem.get_all(engram::user("user" + std::to_string(t))).size() == std::size_t(per_thread));
  CHECK(mem.embedder().transport().stats().failures == 0);
}
