// Entity memory keeps the scope wall: searches with the entity term and one hop, under random filters, return
// only memories the scope and the filter admit, and no scope's graph holds an entity or relation of another's.
// Entities come from the offline recogniser and from an extractor that names them (record::entities).
#include "support/filter_gen.hpp"

#include <engram/engram.hpp>
#include <engram/filter/eval.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

using namespace engram;
using engram_test::gen;
using nlohmann::json;

namespace {

/// verbatim_extractor, naming the entities of the texts it has in its table as an LLM would (kept with the memory).
struct table_extractor {
  std::map<std::string, recognized_entities> table;

  std::vector<fact> extract(std::span<const message> msgs, const extraction_context& ctx) const {
    return verbatim_extractor{}.extract(msgs, ctx);
  }
  std::vector<memory_action> decide(std::span<const fact> facts, std::span<const std::vector<existing_memory>> near,
                                    const extraction_context& ctx) const {
    return verbatim_extractor{}.decide(facts, near, ctx);
  }
  std::optional<std::vector<recognized_entities>> entities_of(std::span<const std::string> texts,
                                                              const extraction_context&) const {
    std::vector<recognized_entities> out;
    for (const auto& t : texts) {
      const auto it = table.find(t);
      if (it == table.end()) return std::nullopt;
      out.push_back(it->second);
    }
    return out;
  }
};
static_assert(entity_extractor<table_extractor>);

using entity_memory = basic_memory<hashing_embedder, flat_index, memory_store, table_extractor>;

/// The names (lowercased) a record's entities and relations use: its own, else the recogniser's.
std::set<std::string> names_of(const record& r) {
  const auto found = r.entities ? *r.entities : offline_recognizer{}.recognize(r.memory);
  std::set<std::string> out;
  for (const auto& e : found.entities) out.insert(detail::entity_key(e.name));
  for (const auto& rel : found.relations) {
    out.insert(detail::entity_key(rel.source));
    out.insert(detail::entity_key(rel.target));
  }
  return out;
}

/// True when `name` is one of `names` or a word of one of them (a one-word alias of a full name).
bool covered(const std::set<std::string>& names, const std::string& name) {
  const auto key = detail::entity_key(name);
  for (const auto& n : names)
    if (n == key || (" " + n + " ").find(" " + key + " ") != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("entity_isolation: entity-boosted searches under random filters stay inside scope and filter",
          "[entity][filter]") {
  static const char* people[] = {"Maria Lopez", "John Park", "Ana Silva", "Wei Chen", "Omar Haddad", "Lena Vogel"};
  static const char* orgs[] = {"Acme Corp", "Initech Labs", "Globex Bank", "Umbrella University"};
  static const char* places[] = {"Porto", "Lisbon", "Berlin", "Osaka", "Nairobi"};
  static const char* users[] = {"u0", "u1", "u2", "u3"};
  gen g(20261207);

  table_extractor x;
  std::vector<std::pair<std::string, scope>> adds;
  int n = 0;
  for (const char* u : users)
    for (int i = 0; i < 40; ++i, ++n) {
      const scope s{u, g.coin(0.3) ? "g0" : "", ""};
      const std::string person = people[g.pick(6)], org = orgs[g.pick(4)], place = places[g.pick(5)];
      std::string text;
      switch (g.pick(4)) {
        case 0: text = person + " works at " + org + " (" + std::to_string(n) + ")"; break;
        case 1: text = org + "'s office is in " + place + " (" + std::to_string(n) + ")"; break;
        case 2: {  // named by the extractor only: the text has no capitalised name
          text = "my colleague leads the team there, note " + std::to_string(n);
          x.table[text] = {{{person, entity_type::person}, {org, entity_type::organization}},
                           {{person, "leads a team at", org}}};
          break;
        }
        default: text = "the weather was mild, note " + std::to_string(n);
      }
      adds.emplace_back(text, s);
    }
  memory_config config;
  config.entities = true;
  config.limits.max_limit = 5000;
  entity_memory mem(hashing_embedder(64), memory_store(), std::move(x), config);
  for (const auto& [text, s] : adds) mem.add(text, s, {.metadata = g.metadata(), .infer = false});
  REQUIRE(mem.size() == adds.size());

  auto check_graphs = [&] {
    for (const char* u : users) {
      std::set<std::string> names;
      for (const auto& r : mem.get_all(user(u), {.limit = 0})) {
        const auto more = names_of(r);
        names.insert(more.begin(), more.end());
      }
      const auto graph = mem.entity_graph_of(user(u));
      for (const auto& e : graph.entities) {
        INFO(u << ": entity " << e.name);
        CHECK(covered(names, e.name));
      }
      for (const auto& r : graph.relations) {
        INFO(u << ": relation " << r.source << " -> " << r.target);
        CHECK(covered(names, r.source));
        CHECK(covered(names, r.target));
      }
    }
  };
  check_graphs();

  for (int t = 0; t < 150; ++t) {
    const auto f = g.tree(2);
    const std::string q = std::string("what about ") + people[g.pick(6)] + " and " + orgs[g.pick(4)] + " in " +
                          places[g.pick(5)];
    INFO(json(f).dump() << " / " << q);
    search_options o{.limit = 20, .filter = f};
    o.weights.entity = 1.0f;
    o.weights.entity_hops = 1;
    for (const char* u : users) {
      for (const auto& h : mem.search(q, user(u), o)) {
        CHECK(h.record.user_id == u);
        CHECK(filter_matches(f, h.record));
      }
    }
    // a filter naming the scope: only its users, only what it admits
    const auto two = (field("user_id") == "u1" || field("user_id") == "u3") && f;
    for (const auto& h : mem.search(q, {.limit = 20, .filter = two, .weights = o.weights})) {
      CHECK((h.record.user_id == "u1" || h.record.user_id == "u3"));
      CHECK(filter_matches(f, h.record));
    }
    // an agent scope reads only that agent's memories of every user
    for (const auto& h : mem.search(q, agent("g0"), o)) CHECK(h.record.agent_id == "g0");
  }

  // removing memories takes their entities out of their scope's graph only
  for (const char* u : {"u0", "u2"}) {
    const auto all = mem.get_all(user(u), {.limit = 0});
    for (std::size_t i = 0; i < all.size(); i += 2) mem.delete_memory(all[i].id);
  }
  check_graphs();
  (void)mem.purge(user("u1"));
  CHECK(mem.entity_graph_of(user("u1")).entities.empty());
  CHECK(mem.entity_graph_of(user("u1")).relations.empty());
  check_graphs();
}
