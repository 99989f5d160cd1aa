#include "support/async_test_support.hpp"
#include "support/fake_server.hpp"

#include <engram/embed/openai.hpp>
#include <engram/extract/llm.hpp>
#include <engram/index/flat.hpp>
#include <engram/memory.hpp>
#include <engram/store/file_store.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

using namespace std::chrono_literals;
using engram_test::fake_server;
using engram_test::reply;
using async_test::temp_dir;

namespace {

using llm_memory =
    engram::basic_memory<engram::openai_embedder, engram::flat_index, engram::file_store, engram::llm_extractor>;

/// No transport-level retries: every failure reaches add_async's own retry loop.
engram::http_options no_retries(const fake_server& s) {
  engram::http_options o;
  o.base_url = s.base_url();
  o.api_key = "sk-test";
  o.connect_timeout = 500ms;
  o.read_timeout = 2000ms;
  o.max_retries = 0;
  return o;
}

llm_memory open_memory(const fake_server& s, const std::string& dir, std::uint32_t attempts) {
  engram::memory_config cfg;
  cfg.async.workers = 1;
  cfg.async.max_attempts = attempts;
  cfg.async.initial_backoff = 5ms;
  cfg.async.max_backoff = 20ms;
  return llm_memory(engram::openai_embedder({.http = no_retries(s), .model = "embed-model", .dimension = 64}),
                    engram::file_store(dir), engram::llm_extractor({.http = no_retries(s), .model = "chat-model"}),
                    std::move(cfg));
}

std::size_t queued(const engram::file_store& s) {
  std::size_t n = 0;
  s.for_each_pending([&](const engram::pending_add&) { ++n; });
  return n;
}

}  // namespace

TEST_CASE("http_async: a provider failing twice is retried by the worker, then the add completes", "[http_async]") {
  fake_server server(64);
  temp_dir dir;
  server.push("/v1/chat/completions", reply{500, R"({"error":"overloaded"})"});
  server.push("/v1/chat/completions", reply{429, R"({"error":"slow down"})"});
  server.push_chat(R"({"facts": ["Speaks Portuguese"]})");
  auto mem = open_memory(server, dir.path, 4);
  const auto id = mem.add_async("Eu falo português", engram::user("rui"));
  CHECK_FALSE(id.empty());
  REQUIRE(mem.flush().ok());
  CHECK(server.count("/v1/chat/completions") == 3);
  const auto all = mem.get_all(engram::user("rui"));
  REQUIRE(all.size() == 1);
  CHECK(all[0].memory == "Speaks Portuguese");
  CHECK(queued(mem.store()) == 0);
}

TEST_CASE("http_async: a provider failing forever keeps the entry, reports the error, changes nothing else",
          "[http_async]") {
  fake_server server(64);
  temp_dir dir;
  server.always("/v1/chat/completions", reply{500, R"({"error":"model crashed"})"});
  {
    auto mem = open_memory(server, dir.path, 3);
    mem.add("an old memory", engram::user("rui"), {.infer = false});
    (void)mem.add_async("Eu moro no Porto", engram::user("rui"));
    const auto done = mem.flush();
    REQUIRE(done.failed.size() == 1);
    CHECK(done.failed[0].attempts == 3);
    CHECK(done.failed[0].error.find("HTTP 500") != std::string::npos);
    CHECK(done.failed[0].error.find("model crashed") != std::string::npos);
    CHECK(server.count("/v1/chat/completions") == 3);
  }
  engram::file_store reopened(dir.path);
  CHECK(queued(reopened) == 1);  // kept durably, with its attempts
  reopened.for_each_pending([](const engram::pending_add& p) {
    CHECK(p.attempts == 3);
    CHECK(p.messages.at(0).content == "Eu moro no Porto");
  });
  CHECK(reopened.size() == 1);  // only the old memory
}
