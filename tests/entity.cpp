// Entity memory without a graph database: the offline recogniser, resolution inside a scope and its undo,
// relations removed with their last memory, entity-aware search, and scope walls; a record's own entities
// (record::entities) instead of the recogniser's; resolution by the similarity of names' vectors.
#include <engram/engram.hpp>
#include <engram/entity/entity_index.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <functional>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <span>
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

bool has_alias(const entity_info* e, const std::string& alias) {
  return e && std::find(e->aliases.begin(), e->aliases.end(), alias) != e->aliases.end();
}

constexpr std::size_t test_dimension = 64;

/// A unit vector at `cosine` from axis 0, the rest on axis `other`.
std::vector<float> at_cosine(float cosine, std::size_t other) {
  std::vector<float> v(test_dimension, 0.0f);
  v[0] = cosine;
  v[other] = std::sqrt(1.0f - cosine * cosine);
  return v;
}

std::vector<float> axis(std::size_t i) {
  std::vector<float> v(test_dimension, 0.0f);
  v[i] = 1.0f;
  return v;
}

/// Chosen vectors for chosen (normalised) names, the hashing embedder for everything else; counts how often
/// each chosen name is embedded.
struct names_embedder {
  std::map<std::string, std::vector<float>> names{
      {"maria lopez", axis(0)},           {"mary lopez", at_cosine(0.95f, 1)},  // close to Maria Lopez
      {"marta lopes", at_cosine(0.5f, 2)},  // far from it
      {"acme", axis(3)},                  {"porto", axis(4)},
      {"acme labs", at_cosine(0.99f, 5)},  // an organisation close to Maria Lopez: types keep them apart
      {"marie lopez", at_cosine(0.97f, 6)},
  };
  std::shared_ptr<std::map<std::string, int>> calls = std::make_shared<std::map<std::string, int>>();
  std::shared_ptr<std::function<void()>> on_name = std::make_shared<std::function<void()>>();  // called when set
  hashing_embedder inner{test_dimension};

  [[nodiscard]] std::size_t dimension() const noexcept { return test_dimension; }
  [[nodiscard]] std::vector<float> embed(std::string_view text) const {
    if (auto it = names.find(std::string(text)); it != names.end()) {
      ++(*calls)[it->first];
      if (*on_name) (*on_name)();
      return it->second;
    }
    return inner.embed(text);
  }
};

/// The vectors `e` gives `keys`.
std::vector<std::vector<float>> vectors_of(const names_embedder& e, const std::vector<std::string>& keys) {
  std::vector<std::vector<float>> out;
  for (const auto& k : keys) out.push_back(e.embed(k));
  return out;
}

/// A stored record of `user` with text `text`, its vector from `e`.
record stored_record(const std::string& id, const std::string& user, const std::string& text, const names_embedder& e,
              std::optional<recognized_entities> entities = std::nullopt) {
  record r;
  r.id = id;
  r.memory = text;
  r.hash = detail::md5_hex(text);
  r.user_id = user;
  r.created_at = r.updated_at = utc_now();
  r.embedding = e.embed(text);
  r.entities = std::move(entities);
  return r;
}

/// A store holding `records`, written as another process would have; `e`'s counts start from there.
memory_store stored(const names_embedder& e, std::vector<record> records) {
  memory_store store;
  write_batch batch;
  batch.upserts = std::move(records);
  store.apply(batch);
  e.calls->clear();
  return store;
}

using names_memory = basic_memory<names_embedder, flat_index, memory_store, verbatim_extractor>;

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
  // the merge is recorded with the memory whose name joined them (slot 2 brought "Maria Lopez")
  CHECK(maria->merges == std::vector<entity_merge>{{"Maria", "2", merge_reason::word}});
  CHECK_FALSE(find_entity(g, "Maria"));
  idx.assign(5, 0, "", recognized_entities{{{"maria  LOPEZ", entity_type::person}}, {}});
  g = idx.graph({0});
  CHECK(find_entity(g, "Maria Lopez")->merges ==
        std::vector<entity_merge>{{"Maria", "2", merge_reason::word}, {"maria  LOPEZ", "5", merge_reason::spelling}});
  idx.erase(5);
  CHECK(find_entity(idx.graph({0}), "Maria Lopez")->merges.size() == 1);
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

TEST_CASE("entity: a record's own entities stand instead of the recogniser's", "[entity]") {
  const recognized_entities given{{{"Maria Lopez", entity_type::person}, {"Acme Labs", entity_type::organization}},
                                  {{"Maria Lopez", "runs", "Acme Labs"}, {"acme labs", "is in", "Porto"}}};
  detail::entity_index idx;
  idx.assign(1, 0, "she runs the lab", given);
  idx.assign(2, 0, "Tom Baker works at Globex Corp", recognized_entities{});  // given as none: nothing
  auto g = idx.graph({0});
  CHECK(g.entities.size() == 3);
  REQUIRE(find_entity(g, "Maria Lopez"));
  CHECK(find_entity(g, "Maria Lopez")->type == entity_type::person);
  CHECK(find_entity(g, "Acme Labs")->type == entity_type::organization);
  REQUIRE(find_entity(g, "Porto"));  // named only by a relation: a plain name
  CHECK(find_entity(g, "Porto")->type == entity_type::name);
  CHECK_FALSE(find_entity(g, "Tom Baker"));
  REQUIRE(g.relations.size() == 2);
  CHECK(g.relations[0] == relation_info{"Maria Lopez", "runs", "Acme Labs", 1});
  CHECK(g.relations[1] == relation_info{"Acme Labs", "is in", "Porto", 1});
  // the query side is the recogniser and the known names
  CHECK(idx.named_in(0, "who runs acme labs?").size() == 1);
  idx.assign(1, 0, "she runs the lab", recognized_entities{});  // replaced by none
  CHECK(idx.graph({0}).entities.empty());

  memory_config config;
  config.entities = true;
  const names_embedder e;
  memory_store store;
  write_batch batch;
  batch.upserts.push_back(stored_record("m1", "ana", "she runs the lab", e, given));
  batch.upserts.push_back(stored_record("m2", "ana", "Tom Baker works at Globex Corp", e, recognized_entities{}));
  batch.upserts.push_back(stored_record("m3", "ana", "Ines Costa works at Initech", e));  // recognised
  for (const char* filler : {"The office plants need water on Fridays", "My office chair is broken",
                             "The library is where I read on weekends", "The bakery opens at six"})
    batch.upserts.push_back(stored_record(std::string("f") + filler, "ana", filler, e));
  store.apply(batch);
  names_memory mem(e, std::move(store), verbatim_extractor{}, config);
  const auto ana = mem.entity_graph_of(user("ana"));
  CHECK(find_entity(ana, "Maria Lopez"));
  CHECK(find_entity(ana, "Acme Labs"));
  CHECK(find_entity(ana, "Ines Costa"));
  CHECK_FALSE(find_entity(ana, "Tom Baker"));
  CHECK_FALSE(find_entity(ana, "Globex Corp"));
  CHECK(std::any_of(ana.relations.begin(), ana.relations.end(), [](const relation_info& r) {
    return r.source == "Maria Lopez" && r.relationship == "runs" && r.target == "Acme Labs";
  }));

  search_options o{.limit = 3};
  o.weights.entity = 1.0f;
  o.explain = true;
  const auto hits = mem.search("who is behind Acme Labs", user("ana"), o);
  const auto it = std::find_if(hits.begin(), hits.end(), [](const search_hit& h) { return h.record.id == "m1"; });
  REQUIRE(it != hits.end());
  CHECK(it->details->entity == Approx(1.0f));
  CHECK(hits.front().record.id == "m1");
}

TEST_CASE("entity: names resolve by the similarity of their vectors, within a scope, above the threshold",
          "[entity]") {
  const names_embedder e;
  const std::vector<std::string> texts{"Maria Lopez works at Acme", "Mary Lopez called on 12 March 2024",
                                       "Marta Lopes lives in Porto"};

  detail::entity_index idx(0.9f);
  auto missing = idx.names_missing(texts);  // normalised, each once, no dates
  CHECK(missing == std::vector<std::string>{"maria lopez", "acme", "mary lopez", "marta lopes", "porto"});
  idx.remember_name_vectors(missing, vectors_of(e, missing));
  CHECK(idx.names_missing(texts).empty());
  for (std::size_t i = 0; i < texts.size(); ++i) idx.assign(static_cast<slot_id>(i + 1), 0, texts[i]);
  idx.assign(4, 1, "Mary Lopez called");  // another scope
  auto g = idx.graph({0});
  const auto* maria = find_entity(g, "Maria Lopez");
  REQUIRE(maria);
  CHECK(maria->memories == 2);  // cosine 0.95 >= 0.9
  CHECK(has_alias(maria, "Mary Lopez"));
  CHECK_FALSE(find_entity(g, "Mary Lopez"));
  CHECK(find_entity(g, "Marta Lopes"));  // cosine 0.5
  CHECK(idx.named_in(0, "what did mary lopez say").size() == 1);
  // the other scope's Mary Lopez stays its own
  const auto other = idx.graph({1});
  REQUIRE(other.entities.size() == 1);
  CHECK(other.entities[0].name == "Mary Lopez");
  CHECK(other.entities[0].aliases.empty());

  // the merge is undone with the memory that caused it
  idx.erase(1);
  g = idx.graph({0});
  REQUIRE(find_entity(g, "Mary Lopez"));
  CHECK_FALSE(has_alias(find_entity(g, "Mary Lopez"), "Maria Lopez"));
  CHECK_FALSE(find_entity(g, "Maria Lopez"));
  idx.assign(1, 0, texts[0]);  // back again, after Mary Lopez now: it joins her
  g = idx.graph({0});
  REQUIRE(find_entity(g, "Mary Lopez"));
  CHECK(find_entity(g, "Mary Lopez")->memories == 2);
  CHECK(has_alias(find_entity(g, "Mary Lopez"), "Maria Lopez"));
  idx.erase(2);
  CHECK(find_entity(idx.graph({0}), "Maria Lopez"));

  // above the cosine: apart; types must agree; off: apart
  detail::entity_index strict(0.96f);
  strict.remember_name_vectors(missing, vectors_of(e, missing));
  for (std::size_t i = 0; i < texts.size(); ++i) strict.assign(static_cast<slot_id>(i + 1), 0, texts[i]);
  CHECK(find_entity(strict.graph({0}), "Mary Lopez"));
  CHECK(find_entity(strict.graph({0}), "Maria Lopez")->memories == 1);
  detail::entity_index typed(0.9f);
  const std::vector<std::string> org{"acme labs", "maria lopez"};
  typed.remember_name_vectors(org, vectors_of(e, org));
  typed.assign(1, 0, "Maria Lopez called");
  typed.assign(2, 0, "x", recognized_entities{{{"Acme Labs", entity_type::organization}}, {}});
  CHECK(typed.graph({0}).entities.size() == 2);  // cosine 0.99, but a person and an organisation
  detail::entity_index off;
  off.remember_name_vectors(missing, vectors_of(e, missing));
  CHECK(off.names_missing(texts).empty());
  for (std::size_t i = 0; i < texts.size(); ++i) off.assign(static_cast<slot_id>(i + 1), 0, texts[i]);
  CHECK(find_entity(off.graph({0}), "Mary Lopez"));
  // a name without a vector does not merge by similarity
  detail::entity_index unknown(0.5f);
  unknown.assign(1, 0, texts[0]);
  unknown.assign(2, 0, texts[1]);
  CHECK(find_entity(unknown.graph({0}), "Mary Lopez"));

  // before a write takes its lock: the names of the texts (and given entities) about to be indexed are embedded,
  // once each; indexing then only reads them
  detail::derived_state<flat_index> d(flat_index(test_dimension), bm25_params{}, true, 0.9f);
  const std::vector<std::string> first{texts[0]}, second{"Mary Lopez called today"};
  e.calls->clear();
  detail::embed_entity_names(e, d, {first, second});
  CHECK(*e.calls == std::map<std::string, int>{{"acme", 1}, {"maria lopez", 1}, {"mary lopez", 1}});
  detail::embed_entity_names(e, d, {first, second});
  const recognized_entities marta{{{"Marta Lopes", entity_type::person}}, {}};
  detail::embed_entity_names(e, d, {}, std::span(&marta, 1));
  CHECK(*e.calls == std::map<std::string, int>{{"acme", 1}, {"maria lopez", 1}, {"mary lopez", 1}, {"marta lopes", 1}});
  d.add(stored_record("x1", "ana", first[0], e));
  d.add(stored_record("x2", "ana", second[0], e));
  d.add(stored_record("x3", "ana", "she called", e, marta));
  g = d.entities().graph(d.catalog().select(user("ana")));
  REQUIRE(find_entity(g, "Maria Lopez"));
  CHECK(find_entity(g, "Maria Lopez")->memories == 2);
  CHECK(find_entity(g, "Marta Lopes"));
  // an add's actions: the extractor's entities of a text stand for it; an update's texts likewise
  const std::vector<memory_action> actions{{event_kind::add, "Porto is lovely", {}}, {event_kind::add, "I met Acme Labs", {}}};
  detail::action_inputs in(actions, {}, {}, [&](std::span<const std::string> t) { return vectors_of(e, {t.begin(), t.end()}); });
  in.name_entities(actions, [](std::span<const std::string> t) {
    return std::optional<std::vector<recognized_entities>>(
        std::vector<recognized_entities>(t.size(), recognized_entities{{{"Acme Labs", entity_type::organization}}, {}}));
  });
  e.calls->clear();
  detail::embed_entity_names(e, d, actions, in);
  CHECK(*e.calls == std::map<std::string, int>{{"acme labs", 1}});  // not "porto": the given entities stand
  const std::vector<std::string> updated{"Marie Lopez called"};
  detail::embed_entity_names(e, d, updated, std::optional<std::vector<recognized_entities>>{});
  CHECK(*e.calls == std::map<std::string, int>{{"acme labs", 1}, {"marie lopez", 1}});
  detail::embed_entity_names(e, d, updated, std::optional<std::vector<recognized_entities>>({marta}));
  CHECK(*e.calls == std::map<std::string, int>{{"acme labs", 1}, {"marie lopez", 1}});  // known already

  detail::derived_state<flat_index> plain(flat_index(test_dimension), bm25_params{}, true);  // similarity off
  e.calls->clear();
  detail::embed_entity_names(e, plain, {first, second});
  CHECK(e.calls->empty());

  CHECK_THROWS_AS(detail::entity_index(1.5f), validation_error);
  CHECK_THROWS_AS(detail::entity_index(-0.1f), validation_error);
  CHECK_THROWS_AS(detail::entity_index(std::numeric_limits<float>::quiet_NaN()), validation_error);
}

TEST_CASE("entity: a memory with entity_similarity embeds each name once and resolves by it", "[entity]") {
  const names_embedder e;
  auto store = stored(e, {stored_record("a1", "ana", "Maria Lopez works at Acme", e),
                          stored_record("a2", "ana", "Mary Lopez called today", e),
                          stored_record("a3", "ana", "Marta Lopes lives in Porto", e),
                          stored_record("b1", "bob", "Mary Lopez called today", e),
                          stored_record("b2", "bob", "Maria Lopez works at Acme", e, recognized_entities{})});

  memory_config config;
  config.entities = true;
  config.entity_similarity = 0.9f;
  names_memory mem(e, std::move(store), verbatim_extractor{}, config);
  for (const auto& [name, n] : *e.calls) CHECK(n == 1);  // on open: every name in one call, once
  CHECK(e.calls->count("mary lopez"));
  auto ana = mem.entity_graph_of(user("ana"));
  REQUIRE(find_entity(ana, "Maria Lopez"));
  CHECK(find_entity(ana, "Maria Lopez")->memories == 2);
  CHECK(has_alias(find_entity(ana, "Maria Lopez"), "Mary Lopez"));
  CHECK(find_entity(ana, "Maria Lopez")->merges ==
        std::vector<entity_merge>{{"Mary Lopez", "a2", merge_reason::similarity}});  // the memory that caused it
  CHECK(find_entity(ana, "Marta Lopes"));
  const auto bob = mem.entity_graph_of(user("bob"));  // bob's Mary Lopez never meets ana's Maria Lopez
  REQUIRE(bob.entities.size() == 1);
  CHECK(bob.entities[0].name == "Mary Lopez");
  CHECK(bob.entities[0].aliases.empty());

  // a later add naming a known name resolves with its cached vector (no embedding under the lock)
  const auto before = *e.calls;
  mem.add("Mary Lopez moved to Porto", user("ana"), {.infer = false});
  CHECK(*e.calls == before);
  CHECK(find_entity(mem.entity_graph_of(user("ana")), "Maria Lopez")->memories == 3);

  // the merge is undone when the memory that caused it goes
  mem.delete_memory("a1");
  ana = mem.entity_graph_of(user("ana"));
  CHECK_FALSE(find_entity(ana, "Maria Lopez"));
  REQUIRE(find_entity(ana, "Mary Lopez"));
  CHECK(find_entity(ana, "Mary Lopez")->memories == 2);
  CHECK(find_entity(ana, "Mary Lopez")->aliases.empty());
  CHECK(*e.calls == before);

  for (const float bad : {1.5f, -0.5f, std::numeric_limits<float>::quiet_NaN()}) {
    memory_config c = config;
    c.entity_similarity = bad;
    CHECK_THROWS_AS(names_memory(e, memory_store{}, verbatim_extractor{}, c), validation_error);
  }
}

TEST_CASE("entity: an add or update bringing a new name embeds it once, before the write lock, and merges by it",
          "[entity]") {
  const names_embedder e;
  memory_config config;
  config.entities = true;
  config.entity_similarity = 0.9f;
  names_memory mem(e, memory_store{}, verbatim_extractor{}, config);
  mem.add("Maria Lopez works at Acme", user("ana"), {.infer = false});
  CHECK((*e.calls)["maria lopez"] == 1);

  // while the new name is embedded, another thread reads the memory: it never waits for this add
  bool reader_waited = false;
  *e.on_name = [&] {
    auto reader = std::async(std::launch::async, [&] { return mem.size(); });
    reader_waited = reader.wait_for(std::chrono::seconds(5)) != std::future_status::ready;
  };
  mem.add("Marie Lopez called today", user("ana"), {.infer = false});
  *e.on_name = nullptr;
  CHECK_FALSE(reader_waited);
  CHECK((*e.calls)["marie lopez"] == 1);
  auto ana = mem.entity_graph_of(user("ana"));
  REQUIRE(find_entity(ana, "Maria Lopez"));
  CHECK(has_alias(find_entity(ana, "Maria Lopez"), "Marie Lopez"));
  CHECK(find_entity(ana, "Maria Lopez")->memories == 2);

  // update(): the new text's names are learnt the same way
  const auto id = mem.add("Porto is lovely", user("ana"), {.infer = false}).results.at(0).id;
  mem.update(id, "Mary Lopez lives in Porto");
  CHECK((*e.calls)["mary lopez"] == 1);
  ana = mem.entity_graph_of(user("ana"));
  CHECK(has_alias(find_entity(ana, "Maria Lopez"), "Mary Lopez"));
  CHECK(find_entity(ana, "Maria Lopez")->memories == 3);
}

TEST_CASE("entity: with the partition cache, a scope's load learns its names' vectors and resolves by them",
          "[entity][partition_cache]") {
  const names_embedder e;
  auto store = stored(e, {stored_record("a1", "ana", "Maria Lopez works at Acme", e),
                          stored_record("a2", "ana", "Mary Lopez called today", e),
                          stored_record("b1", "bob", "Marta Lopes lives in Porto", e)});

  memory_config config;
  config.entities = true;
  config.entity_similarity = 0.9f;
  config.partition_cache_bytes = 1 << 20;
  names_memory mem(e, std::move(store), verbatim_extractor{}, config);
  CHECK(e.calls->empty());  // nothing loads on open
  const auto ana = mem.entity_graph_of(user("ana"));  // loads ana's scope
  REQUIRE(find_entity(ana, "Maria Lopez"));
  CHECK(has_alias(find_entity(ana, "Maria Lopez"), "Mary Lopez"));
  CHECK((*e.calls)["maria lopez"] == 1);
  CHECK((*e.calls)["mary lopez"] == 1);
  CHECK_FALSE(e.calls->count("marta lopes"));  // bob's scope is not loaded yet
}
