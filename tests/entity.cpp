// Entity memory without a graph database: the offline recogniser, resolution inside a scope and its undo,
// relations removed with their last memory, entity-aware search, and scope walls.
#include <engram/engram.hpp>
#include <engram/entity/entity_index.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

using namespace engram;

namespace {

std::vector<std::string> names(const recognized_entities& r) {
  std::vector<std::string> out;
  for (const auto& e : r.entities) out.push_back(e.name + "/" + std::string(to_string(e.type)));
  return out;
}

const entity_info* find_entity(const entity_graph& g, const std::string& name) {
  auto it = std::find_if(g.entities.begin(), g.entities.end(), [&](const entity_info& e) { return e.name == name; });
  return it == g.entities.end() ? nullptr : &*it;
}

}  // namespace

TEST_CASE("entity: the offline recogniser finds names, organisations, places, dates, handles and titles",
          "[entity]") {
  const offline_recognizer rec;
  auto r = rec.recognize("Maria works at Acme.");
  CHECK(rec.recognize("Work from home on Fridays. Call me later").entities.empty());
  CHECK(names(r) == std::vector<std::string>{"Maria/name", "Acme/organization"});
  REQUIRE(r.relations.size() == 1);
  CHECK(r.relations[0] == entity_relation{"Maria", "works at", "Acme"});

  r = rec.recognize("Acme's office is in Porto");
  CHECK(names(r) == std::vector<std::string>{"Acme/name", "Porto/place"});
  CHECK(r.relations.at(0) == entity_relation{"Acme", "office is in", "Porto"});

  r = rec.recognize("My manager Tom Baker joined Globex Corp on 12 March 2024.");
  CHECK(names(r) ==
        std::vector<std::string>{"Tom Baker/person", "Globex Corp/organization", "12 March 2024/date"});

  r = rec.recognize("The Bank of Portugal is in Lisbon. We met on 2024-05-01");
  CHECK(names(r) == std::vector<std::string>{"Bank of Portugal/organization", "Lisbon/place", "2024-05-01/date"});
  CHECK(r.relations.size() == 1);  // no relation across sentences

  r = rec.recognize("she writes to @maria_l or maria@example.com about \"The Lord of the Rings\" with Dr Smith");
  CHECK(names(r) == std::vector<std::string>{"@maria_l/handle", "maria@example.com/handle", "Smith/person",
                                             "The Lord of the Rings/title"});

  // function words at the start of a sentence, the pronoun I and lowercase text name nothing
  CHECK(rec.recognize("I think the weather is nice. When it rains we stay in").entities.empty());
  CHECK(rec.recognize("maria works at acme").entities.empty());
  CHECK(rec.recognize("").entities.empty());
}

TEST_CASE("entity: names resolve inside a scope, merges follow the evidence and are undone with their memory",
          "[entity]") {
  detail::entity_index idx;
  idx.assign(1, 0, "Maria called yesterday");
  idx.assign(2, 0, "Maria Lopez works at Acme");
  auto g = idx.graph({0});
  const auto* maria = find_entity(g, "Maria Lopez");
  REQUIRE(maria);
  CHECK(maria->memories == 2);  // "Maria" joined "Maria Lopez"
  CHECK(std::find(maria->aliases.begin(), maria->aliases.end(), "Maria") != maria->aliases.end());
  CHECK_FALSE(find_entity(g, "Maria"));
  // a lowercase query names the known entity
  const auto named = idx.named_in(0, "where does maria work?");
  REQUIRE(named.size() == 1);

  idx.erase(2);  // the memory that caused the merge goes: "Maria" is an entity of its own again
  g = idx.graph({0});
  CHECK(find_entity(g, "Maria"));
  CHECK_FALSE(find_entity(g, "Maria Lopez"));
  CHECK(g.relations.empty());  // the relation went with its last memory

  // two people sharing a first name: "Maria" alone stays apart
  detail::entity_index two;
  two.assign(1, 0, "Maria Lopez works at Acme");
  two.assign(2, 0, "Maria Silva works at Globex Corp");
  two.assign(3, 0, "Maria called");
  g = two.graph({0});
  CHECK(find_entity(g, "Maria"));
  CHECK(find_entity(g, "Maria Lopez")->memories == 1);

  // partitions never share entities
  two.assign(4, 1, "Maria Lopez lives in Porto");
  CHECK(two.graph({1}).entities.size() == 2);
  CHECK(find_entity(two.graph({0}), "Porto") == nullptr);
}

TEST_CASE("entity: search boosts memories about the entities a query names and follows one hop", "[entity]") {
  memory_config config;
  config.entities = true;
  basic_memory<hashing_embedder, flat_index, memory_store, verbatim_extractor> mem(
      hashing_embedder{}, memory_store{}, verbatim_extractor{}, config);
  mem.add("Maria works at Acme", user("ana"), {.infer = false});
  mem.add("Acme's office is in Porto", user("ana"), {.infer = false});
  for (const char* filler : {"The office plants need water on Fridays", "Where does the train to the coast leave from",
                             "The bakery works from six in the morning", "My office chair is broken",
                             "Work from home days are Mondays", "The library is where I read on weekends"})
    mem.add(filler, user("ana"), {.infer = false});
  mem.add("Maria works at Initech", user("bob"), {.infer = false});  // another user's Maria

  const std::string q = "where does maria work from";
  search_options plain{.limit = 3};
  search_options graph = plain;
  graph.weights.entity = 1.0f;
  graph.explain = true;
  auto rank_of = [](const std::vector<search_hit>& hits, const std::string& text) {
    for (std::size_t i = 0; i < hits.size(); ++i)
      if (hits[i].record.memory == text) return i + 1;
    return std::size_t{0};
  };
  const auto before = mem.search(q, user("ana"), plain);
  const auto after = mem.search(q, user("ana"), graph);
  CHECK(rank_of(after, "Maria works at Acme") == 1);
  CHECK(rank_of(after, "Acme's office is in Porto") == 2);  // one hop: Maria -works at-> Acme
  CHECK(rank_of(before, "Acme's office is in Porto") == 0);  // the plain search misses it
  CHECK(after[0].details->entity == Approx(1.0f));
  CHECK(after[1].details->entity == Approx(0.5f));
  for (const auto& h : after) CHECK(h.record.user_id == "ana");

  search_options direct = graph;
  direct.weights.entity_hops = 0;
  CHECK(rank_of(mem.search(q, user("ana"), direct), "Acme's office is in Porto") == 0);

  // the scope walls hold for the graph too
  const auto bob = mem.entity_graph_of(user("bob"));
  CHECK(find_entity(bob, "Initech"));
  CHECK_FALSE(find_entity(bob, "Acme"));
  const auto ana = mem.entity_graph_of(user("ana"));
  REQUIRE(find_entity(ana, "Acme"));
  CHECK(find_entity(ana, "Acme")->memories == 2);
  CHECK(std::any_of(ana.relations.begin(), ana.relations.end(),
                    [](const relation_info& r) { return r.source == "Maria" && r.target == "Acme"; }));

  // off by default: no graph, and the entity weight changes nothing
  memory plain_mem;
  plain_mem.add("Maria works at Acme", user("ana"), {.infer = false});
  CHECK(plain_mem.entity_graph_of(user("ana")).entities.empty());
  CHECK_THROWS_AS(mem.entity_graph_of(scope{}), validation_error);
  search_options bad = graph;
  bad.weights.entity_hops = 2;
  CHECK_THROWS_AS(mem.search(q, user("ana"), bad), validation_error);
}
