// engram-server answers searches with service::search_text, which writes the memories straight from the hits;
// MCP and `fields` use service::search (JSON objects). Both must give the same bytes for every shape a search
// request can ask for: plain, explain, the bare v1.0 list, enable_graph's relations, filters, project keys.
#include "../../examples/common/service.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace {

using json = nlohmann::json;
using memory = engram::basic_memory<engram::hashing_embedder, engram::flat_index, engram::memory_store,
                                    engram::verbatim_extractor, engram::platform_scope_keys>;

memory make_memory() {
  engram::memory_config config;
  config.entities = true;  // enable_graph answers relations
  return memory(engram::hashing_embedder(64), engram::memory_store(), engram::verbatim_extractor(), config);
}

}  // namespace

TEST_CASE("service: search_text gives the bytes of answer_body(search) for every request shape", "[service]") {
  auto mem = make_memory();
  engram_app::service<memory> svc(mem);
  const engram_app::principal admin;
  svc.add(json{{"messages", "Alice works at Acme in Paris"}, {"user_id", "alice"}, {"metadata", {{"categories", {"work"}}}}}, admin);
  svc.add(json{{"messages", "Alice likes green tea with \"honey\"\n"}, {"user_id", "alice"}, {"app_id", "travel"}}, admin);
  svc.add(json{{"messages", "Bob sails on Sundays"}, {"user_id", "bob"}, {"expiration_date", "2099-01-01"}}, admin);
  svc.add(json{{"messages", "Carol plans a trip to Lyon"}, {"user_id", "carol"}, {"org_id", "acme"}, {"project_id", "prod"}}, admin);

  const std::vector<json> requests = {
      {{"query", "tea"}, {"user_id", "alice"}},
      {{"query", "tea"}, {"user_id", "alice"}, {"explain", true}, {"top_k", 1}},
      {{"query", "tea"}, {"user_id", "alice"}, {"output_format", "v1.0"}},
      {{"query", "tea"}, {"user_id", "alice"}, {"output_format", "v1.1"}},
      {{"query", "Acme"}, {"user_id", "alice"}, {"enable_graph", true}},
      {{"query", "Acme"}, {"user_id", "alice"}, {"enable_graph", true}, {"output_format", "v1.0"}},
      {{"query", "sails"}, {"filters", {{"OR", {{{"user_id", "alice"}}, {{"user_id", "bob"}}}}}}, {"mode", "hybrid"}},
      {{"query", "tea"}, {"user_id", "alice"}, {"app_id", "travel"}},
      {{"query", "trip"}, {"user_id", "carol"}, {"org_id", "acme"}, {"project_id", "prod"}},
      {{"query", "tea"}, {"user_id", "alice"}, {"fields", {"memory"}}},
      {{"query", "nothing like it"}, {"user_id", "nobody"}},
  };
  std::vector<std::string> texts;
  for (const auto& req : requests) {
    CAPTURE(req.dump());
    const auto expected = engram_app::answer_body(svc.search(req, admin));
    CHECK(svc.search_text(req, admin) == expected);
    CHECK(json::parse(expected).is_structured());
    texts.push_back(expected);
  }
  // the shapes the direct path writes itself are really there: relations, a project's and an app's keys, details
  CHECK(texts[1].find("\"score_details\":{") != std::string::npos);
  CHECK(texts[2].front() == '[');
  CHECK(texts[4].find("{\"relations\":[{") == 0);
  CHECK(texts[7].find("\"app_id\":\"travel\"") != std::string::npos);
  CHECK(texts[8].find("\"project_id\":\"prod\"") != std::string::npos);
  // errors are the same too: a bad output_format after a search ran, a missing query
  for (const json& bad : {json{{"query", "tea"}, {"user_id", "alice"}, {"output_format", "v9"}},
                          json{{"user_id", "alice"}}}) {
    CAPTURE(bad.dump());
    CHECK_THROWS_AS(svc.search(bad, admin), engram::validation_error);
    CHECK_THROWS_AS(svc.search_text(bad, admin), engram::validation_error);
  }
}
