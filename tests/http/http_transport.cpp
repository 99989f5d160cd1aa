#include "support/fake_server.hpp"

#include <engram/embed/ollama.hpp>
#include <engram/embed/openai.hpp>
#include <engram/http/transport.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>   // std::snprintf
#include <cstdlib>  // std::getenv, ::setenv
#include <map>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using engram_test::fake_server;
using engram_test::fast;
using engram_test::reply;

namespace {

}  // namespace

TEST_CASE("http_transport: 429 then success is retried, honouring retry-after-ms", "[http_transport]") {
  fake_server server(16);
  engram::openai_embedder e({.http = fast(server), .model = "m", .dimension = 16});
  server.push("/v1/embeddings", reply{429, R"({"error":"slow down"})", {{"retry-after-ms", "150"}}});
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(e.embed("hello").size() == 16);
  CHECK(std::chrono::steady_clock::now() - t0 >= 150ms);
  CHECK(e.transport().stats().retries == 1);
  CHECK(e.transport().stats().requests == 2);
  CHECK(e.transport().stats().failures == 0);
}

TEST_CASE("http_transport: 500 forever ends in a provider_error with status and body", "[http_transport]") {
  fake_server server(16);
  server.always("/v1/embeddings", reply{500, R"({"error":"the model exploded"})"});
  engram::openai_embedder e({.http = fast(server), .model = "m", .dimension = 16});
  try {
    (void)e.embed("hello");
    FAIL("no exception");
  } catch (const engram::provider_error& ex) {
    CHECK(ex.status() == 500);
    CHECK(ex.body_excerpt().find("the model exploded") != std::string::npos);
    CHECK(std::string(ex.what()).find("500") != std::string::npos);
  }
  CHECK(server.count("/v1/embeddings") == 3);  // first attempt + max_retries (2)
  CHECK(e.transport().stats().retries == 2);
  CHECK(e.transport().stats().failures == 1);
}

TEST_CASE("http_transport: a client error is not retried", "[http_transport]") {
  fake_server server(16);
  server.push("/v1/embeddings", reply{401, R"({"error":"bad key"})"});
  engram::openai_embedder e({.http = fast(server), .model = "m", .dimension = 16});
  try {
    (void)e.embed("hello");
    FAIL("no exception");
  } catch (const engram::provider_error& ex) {
    CHECK(ex.status() == 401);
  }
  CHECK(server.count("/v1/embeddings") == 1);
  // consecutive_failures counts failed calls until one is answered (how a watcher tells failing from recovered)
  CHECK(e.transport().stats().consecutive_failures == 1);
  server.push("/v1/embeddings", reply{400, R"({"error":"bad input"})"});
  CHECK_THROWS_AS(e.embed("hello"), engram::provider_error);
  CHECK(e.transport().stats().consecutive_failures == 2);
  CHECK(e.embed("hello").size() == 16);
  CHECK(e.transport().stats().consecutive_failures == 0);
  CHECK(e.transport().stats().failures == 2);
}

TEST_CASE("http_transport: a slow server times out into a provider_error", "[http_transport]") {
  fake_server server(16);
  server.always("/v1/embeddings", reply{200, {}, {}, 3000ms});
  auto o = fast(server);
  o.read_timeout = 100ms;
  o.max_retries = 1;
  engram::openai_embedder e({.http = o, .model = "m", .dimension = 16});
  const auto t0 = std::chrono::steady_clock::now();
  try {
    (void)e.embed("hello");
    FAIL("no exception");
  } catch (const engram::provider_error& ex) {
    CHECK(ex.status() == 0);
  }
  CHECK(std::chrono::steady_clock::now() - t0 < 2000ms);
  CHECK(e.transport().stats().requests == 2);
}

TEST_CASE("http_transport: no server answering is a provider_error", "[http_transport]") {
  int port = 0;
  {
    fake_server gone;
    port = gone.port();
  }
  engram::http_options o;
  o.base_url = "http://127.0.0.1:" + std::to_string(port) + "/v1";
  o.max_retries = 1;
  o.initial_backoff = 1ms;
  o.connect_timeout = 200ms;
  engram::http_transport t(o);
  try {
    (void)t.post_json("/embeddings", {{"input", "x"}});
    FAIL("no exception");
  } catch (const engram::provider_error& ex) {
    CHECK(ex.status() == 0);
    CHECK(std::string(ex.what()).find("127.0.0.1") != std::string::npos);
  }
  CHECK(t.stats().requests == 2);
}

TEST_CASE("http_transport: base_url is validated and split", "[http_transport]") {
  CHECK_THROWS_AS(engram::http_transport({.base_url = "localhost:8080"}), engram::validation_error);
  CHECK_THROWS_AS(engram::http_transport({.base_url = "ftp://x"}), engram::validation_error);
  CHECK_THROWS_AS(engram::http_transport({.base_url = "http:///v1"}), engram::validation_error);
  CHECK(engram::http_transport({.base_url = "https://api.example.com/v1/"}).origin() == "https://api.example.com");
  const auto [origin, prefix] = engram::detail::split_base_url("http://h:1/a/b/");
  CHECK(origin == "http://h:1");
  CHECK(prefix == "/a/b");
}

TEST_CASE("http_transport: a Retry-After beyond max_retry_after falls back to the backoff", "[http_transport]") {
  fake_server server(16);
  server.push("/v1/embeddings", reply{503, "busy", {{"Retry-After", "3600"}}});
  auto o = fast(server);
  o.max_retry_after = 100ms;
  engram::openai_embedder e({.http = o, .model = "m", .dimension = 16});
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(e.embed("hello").size() == 16);
  CHECK(std::chrono::steady_clock::now() - t0 < 1000ms);
  CHECK(e.transport().stats().retries == 1);
}

TEST_CASE("http_transport: the API key comes from the options, else OPENAI_API_KEY", "[http_transport]") {
  fake_server server(16);
  const char* saved = std::getenv("OPENAI_API_KEY");
  const std::string restore = saved ? saved : "";
  ::setenv("OPENAI_API_KEY", "sk-from-env", 1);
  auto o = fast(server);
  o.api_key.clear();
  (void)engram::http_transport(o).post_json("/embeddings", {{"input", {"a"}}});
  o.use_env_api_key = false;
  (void)engram::http_transport(o).post_json("/embeddings", {{"input", {"b"}}});
  o.api_key = "sk-explicit";
  (void)engram::http_transport(o).post_json("/embeddings", {{"input", {"c"}}});
  if (saved)
    ::setenv("OPENAI_API_KEY", restore.c_str(), 1);
  else
    ::unsetenv("OPENAI_API_KEY");
  const auto reqs = server.requests("/v1/embeddings");
  REQUIRE(reqs.size() == 3);
  CHECK(reqs[0].authorization == "Bearer sk-from-env");
  CHECK(reqs[1].authorization.empty());
  CHECK(reqs[2].authorization == "Bearer sk-explicit");
}

TEST_CASE("http_transport: HTTP-dates are read in all three RFC 7231 forms", "[http_transport]") {
  using namespace std::chrono;
  const sys_seconds expect = sys_days{year{1994} / November / 6} + hours{8} + minutes{49} + seconds{37};
  CHECK(engram::detail::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == expect);
  CHECK(engram::detail::parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == expect);
  CHECK(engram::detail::parse_http_date("Sun Nov  6 08:49:37 1994") == expect);
  CHECK(engram::detail::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT") ==
        sys_days{year{2015} / October / 21} + hours{7} + minutes{28});
  for (const char* bad : {"", "120", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 31 Feb 1994 08:49:37 GMT",
                          "Sun, 06 Nox 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT", "Sun, 06 Nov 1994 08-49-37 GMT",
                          "Sunday, 06-Nov-94 08:49:37", "tomorrow at noon"}) {
    INFO(bad);
    CHECK_FALSE(engram::detail::parse_http_date(bad).has_value());
  }
  httplib::Response r;
  r.set_header("Retry-After", "Sun, 06 Nov 1994 08:49:37 GMT");
  CHECK(engram::detail::retry_after(r, expect - seconds{3}) == milliseconds{3000});
  CHECK(engram::detail::retry_after(r, expect + seconds{3}) == milliseconds{0});  // in the past: no wait
}

TEST_CASE("http_transport: a Retry-After HTTP-date is honoured", "[http_transport]") {
  fake_server server(16);
  // The date is computed when the server answers: one whole second after the next full second.
  server.push("/v1/embeddings", [](const nlohmann::json&) {
    using namespace std::chrono;
    const auto when = floor<seconds>(system_clock::now()) + seconds{2};
    const auto day = floor<days>(when);
    const year_month_day ymd{day};
    const hh_mm_ss hms{when - day};
    static constexpr const char* wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s, %02u %s %04d %02ld:%02ld:%02lld GMT", wd[weekday{day}.c_encoding()],
                  unsigned(ymd.day()), mo[unsigned(ymd.month()) - 1], int(ymd.year()), long(hms.hours().count()),
                  long(hms.minutes().count()), static_cast<long long>(hms.seconds().count()));
    return reply{503, "busy", {{"Retry-After", buf}}};
  });
  engram::openai_embedder e({.http = fast(server), .model = "m", .dimension = 16});
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(e.embed("hello").size() == 16);
  // at least a second (the computed backoff alone would be 5 ms), at most max_retry_after
  CHECK(std::chrono::steady_clock::now() - t0 >= 1000ms);
  CHECK(e.transport().stats().retries == 1);
}

TEST_CASE("http_transport: Azure OpenAI: api-version query parameter and api-key header", "[http_transport]") {
  fake_server server(16);
  auto o = fast(server);
  o.api_key = "azure-secret";
  o.api_key_header = true;
  o.api_version = "2024-10-21";
  engram::openai_embedder e({.http = o, .model = "m", .dimension = 16});
  CHECK(e.embed("hello") == server.expected_embedding("hello"));
  (void)engram::http_transport(o).post_json("/embeddings?x=1", {{"input", {"b"}}});
  o.api_version = "preview&more";  // encoded, never a second parameter
  (void)engram::http_transport(o).post_json("/embeddings", {{"input", {"c"}}});
  const auto reqs = server.requests("/v1/embeddings");
  REQUIRE(reqs.size() == 3);
  CHECK(reqs[0].api_key == "azure-secret");
  CHECK(reqs[0].authorization.empty());
  CHECK(reqs[0].params == std::map<std::string, std::string>{{"api-version", "2024-10-21"}});
  CHECK(reqs[1].params == std::map<std::string, std::string>{{"api-version", "2024-10-21"}, {"x", "1"}});
  CHECK(reqs[2].params == std::map<std::string, std::string>{{"api-version", "preview&more"}});
  // without the options nothing Azure-specific is sent
  auto plain = fast(server);
  (void)engram::http_transport(plain).post_json("/embeddings", {{"input", {"d"}}});
  const auto last = server.requests("/v1/embeddings").back();
  CHECK(last.params.empty());
  CHECK(last.api_key.empty());
  CHECK(last.authorization == "Bearer sk-test");
}
