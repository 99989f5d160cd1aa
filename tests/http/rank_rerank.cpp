#include "support/fake_server.hpp"

#include <engram/engram.hpp>
#include <engram/http/rerank.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using engram_test::fake_server;
using engram_test::reply;

namespace {

// The fake server answers scripted replies on the chat path; the reranker is pointed at it.
const std::string path = "/v1/chat/completions";

engram::http_reranker_options opts(const fake_server& s, engram::rerank_protocol p) {
  engram::http_reranker_options o;
  o.http.base_url = s.base_url();
  o.http.api_key = "sk-test";
  o.http.connect_timeout = 500ms;
  o.http.read_timeout = 2000ms;
  o.http.max_retries = 1;
  o.http.initial_backoff = 5ms;
  o.http.max_backoff = 20ms;
  o.protocol = p;
  o.model = "rerank-test";
  o.path = "/chat/completions";
  return o;
}

std::vector<engram::search_hit> hits_of(std::vector<std::string> texts) {
  std::vector<engram::search_hit> out;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    engram::record r;
    r.id = "m" + std::to_string(i);
    r.memory = texts[i];
    out.push_back({r, 1.0f - 0.1f * float(i), std::nullopt});
  }
  return out;
}

}  // namespace

TEST_CASE("rank_rerank: TEI protocol sends query and texts and reorders by score", "[rank_rerank]") {
  fake_server server;
  server.push(path, [](const nlohmann::json& req) {
    // score = position of the text containing "plums" first, in reverse of the order sent
    nlohmann::json out = nlohmann::json::array();
    for (std::size_t i = 0; i < req["texts"].size(); ++i)
      out.push_back({{"index", i}, {"score", req["texts"][i].get<std::string>().find("plums") != std::string::npos ? 0.9 : 0.1 / double(i + 1)}});
    return reply{200, out.dump()};
  });
  const engram::http_reranker rr(opts(server, engram::rerank_protocol::tei));
  const auto out = rr.rerank("plums?", hits_of({"apples", "pears", "I like plums"}));
  REQUIRE(out.size() == 3);
  CHECK(out[0].record.memory == "I like plums");
  CHECK(out[0].score == Approx(0.9f));
  CHECK(out[1].record.memory == "apples");
  CHECK(out[2].record.memory == "pears");
  const auto reqs = server.requests(path);
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].body["query"] == "plums?");
  CHECK(reqs[0].body["texts"].size() == 3);
}

TEST_CASE("rank_rerank: Cohere protocol, inside a memory's search, and bad replies fail", "[rank_rerank]") {
  fake_server server;
  server.always(path, reply{200, R"({"results":[{"index":1,"relevance_score":0.8},{"index":0,"relevance_score":0.3}]})"});
  engram::memory mem(engram::hashing_embedder(), engram::memory_store(), engram::verbatim_extractor(),
                     engram::memory_config{.rerank = engram::make_rerank_function(
                                               engram::http_reranker(opts(server, engram::rerank_protocol::cohere)))});
  const auto u = engram::user("ann");
  mem.add("I grow tomatoes", u, {.infer = false});
  mem.add("I grow tomatoes and basil", u, {.infer = false});
  const auto hits = mem.search("tomatoes basil", u, {.limit = 1});
  REQUIRE(hits.size() == 1);
  CHECK(hits[0].score == Approx(0.8f));
  const auto reqs = server.requests(path);
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].body["model"] == "rerank-test");
  CHECK(reqs[0].body["documents"].size() == 2);  // the whole candidate pool, not just `limit`
  // the server's second choice is the memory sent first
  CHECK(hits[0].record.memory == reqs[0].body["documents"][1].get<std::string>());

  fake_server bad;
  bad.push(path, reply{200, R"({"results":[{"index":5,"relevance_score":0.8}]})"});
  bad.push(path, reply{200, R"([{"index":0}])"});
  const engram::http_reranker c(opts(bad, engram::rerank_protocol::cohere));
  CHECK_THROWS_AS(c.rerank("q", hits_of({"a", "b"})), engram::provider_error);
  const engram::http_reranker t(opts(bad, engram::rerank_protocol::tei));
  CHECK_THROWS_AS(t.rerank("q", hits_of({"a", "b"})), engram::provider_error);
  CHECK(t.rerank("q", {}).empty());  // nothing to rerank: no request
}
