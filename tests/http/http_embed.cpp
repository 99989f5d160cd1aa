#include "support/fake_server.hpp"

#include <engram/embed/ollama.hpp>
#include <engram/embed/openai.hpp>
#include <engram/http/transport.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using engram_test::fake_server;
using engram_test::fast;
using engram_test::reply;

namespace {

std::vector<std::string> numbered(std::size_t n) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i)
    out.push_back("text number " + std::to_string(i) + " about topic " + std::to_string(i * 7));
  return out;
}

}  // namespace

TEST_CASE("http_embed: batches requests and returns vectors in input order", "[http_embed]") {
  fake_server server(32);
  engram::openai_embedder e({.http = fast(server), .model = "m1", .dimension = 32, .batch_size = 3});
  const auto texts = numbered(7);
  const auto vectors = e.embed_batch(texts);

  REQUIRE(vectors.size() == 7);
  for (std::size_t i = 0; i < texts.size(); ++i) CHECK(vectors[i] == server.expected_embedding(texts[i]));
  const auto reqs = server.requests("/v1/embeddings");
  REQUIRE(reqs.size() == 3);
  CHECK(reqs[0].body["input"].size() == 3);
  CHECK(reqs[1].body["input"].size() == 3);
  CHECK(reqs[2].body["input"].size() == 1);
  CHECK(reqs[2].body["input"][0] == texts[6]);
  CHECK(reqs[0].body["model"] == "m1");
  CHECK_FALSE(reqs[0].body.contains("dimensions"));
  CHECK(reqs[0].authorization == "Bearer sk-test");
  CHECK(e.name() == "openai:m1");
  CHECK(e.dimension() == 32);
  CHECK(e.embed(texts[4]) == server.expected_embedding(texts[4]));
}

TEST_CASE("http_embed: the dimension is discovered by one call when not configured", "[http_embed]") {
  fake_server server(24);
  engram::openai_embedder e({.http = fast(server), .model = "m"});
  CHECK(server.count("/v1/embeddings") == 0);
  CHECK(e.dimension() == 24);
  CHECK(e.dimension() == 24);
  CHECK(server.count("/v1/embeddings") == 1);
}

TEST_CASE("http_embed: request_dimensions sends the dimensions field", "[http_embed]") {
  fake_server server(16);
  engram::openai_embedder e({.http = fast(server), .model = "m", .dimension = 16, .request_dimensions = true});
  (void)e.embed("hello");
  CHECK(server.requests("/v1/embeddings").at(0).body["dimensions"] == 16);
  CHECK_THROWS_AS(engram::openai_embedder({.http = fast(server), .request_dimensions = true}),
                  engram::validation_error);
}

TEST_CASE("http_embed: a vector of the wrong dimension is a dimension_mismatch", "[http_embed]") {
  fake_server server(16);
  SECTION("configured") {
    engram::openai_embedder e({.http = fast(server), .model = "m", .dimension = 32});
    try {
      (void)e.embed("hello");
      FAIL("no exception");
    } catch (const engram::dimension_mismatch& ex) {
      CHECK(ex.expected() == 32);
      CHECK(ex.actual() == 16);
    }
  }
  SECTION("discovered, then the server changes model") {
    engram::openai_embedder e({.http = fast(server), .model = "m"});
    CHECK(e.dimension() == 16);
    server.set_dimension(20);
    CHECK_THROWS_AS(e.embed("hello"), engram::dimension_mismatch);
    CHECK(e.dimension() == 16);
  }
}

TEST_CASE("http_embed: malformed replies are provider errors", "[http_embed]") {
  fake_server server(16);
  engram::openai_embedder e({.http = fast(server), .model = "m", .dimension = 16});
  const std::vector<std::string> two = {"a b", "c d"};
  server.push("/v1/embeddings", reply{200, R"({"data":[{"index":0,"embedding":[1,2,3,4,5,6,7,8]}]})"});
  CHECK_THROWS_AS(e.embed_batch(two), engram::provider_error);
  server.push(
      "/v1/embeddings",
      reply{200, R"({"data":[{"index":0,"embedding":[1,2,3,4,5,6,7,8]},{"index":0,"embedding":[1,2,3,4,5,6,7,8]}]})"});
  CHECK_THROWS_AS(e.embed_batch(two), engram::provider_error);
  server.push("/v1/embeddings", reply{200, R"({"data":[{"index":0,"embedding":"AAAA"}]})"});
  CHECK_THROWS_AS(e.embed("x"), engram::provider_error);
  server.push("/v1/embeddings", reply{200, "not json"});
  CHECK_THROWS_AS(e.embed("x"), engram::provider_error);
  CHECK(e.embed("x").size() == 16);  // and it still works afterwards
}

TEST_CASE("http_embed: ollama's native /api/embed", "[http_embed]") {
  fake_server server(20);
  engram::ollama_embedder e(
      {.http = fast(server, server.root_url()), .model = "nomic", .batch_size = 2, .keep_alive = "5m"});
  const auto texts = numbered(3);
  const auto v = e.embed_batch(texts);
  REQUIRE(v.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) CHECK(v[i] == server.expected_embedding(texts[i]));
  CHECK(server.count("/api/embed") == 2);
  CHECK(server.requests("/api/embed")[0].body["keep_alive"] == "5m");
  CHECK(e.name() == "ollama:nomic");
  CHECK(e.dimension() == 20);
}

TEST_CASE("http_embed: embedders are movable and keep working", "[http_embed]") {
  fake_server server(16);
  engram::openai_embedder a({.http = fast(server), .model = "m"});
  CHECK(a.dimension() == 16);
  engram::openai_embedder b = std::move(a);
  CHECK(b.dimension() == 16);
  CHECK(b.embed("moved").size() == 16);
}

TEST_CASE("http_embed: an empty batch makes no request", "[http_embed]") {
  fake_server server(16);
  engram::openai_embedder e({.http = fast(server), .model = "m", .dimension = 16});
  CHECK(e.embed_batch(std::vector<std::string>{}).empty());
  CHECK(server.count("/v1/embeddings") == 0);
  CHECK_THROWS_AS(engram::openai_embedder({.http = fast(server), .model = ""}), engram::validation_error);
  CHECK_THROWS_AS(engram::openai_embedder({.http = fast(server), .batch_size = 0}), engram::validation_error);
}
