// Time-aware memory: supersession instead of erasure, as_of reads, include_invalid, closed versions across
// reopening, and scope walls for every view.
#include <engram/engram.hpp>

#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

using namespace engram;

namespace {

timestamp at(const char* iso) { return parse_iso8601(iso); }

/// What the next add decides, set by the test: UPDATE or DELETE of a target, optionally as a correction, and
/// the fact's own date.
struct script {
  event_kind event = event_kind::add;
  std::string target;
  bool correction = false;
  std::optional<timestamp> fact_date{};
};

/// Scripted reconciliation: each message is one fact; the action is the script's (an ADD when it has none).
struct scripted_extractor {
  std::shared_ptr<script> next = std::make_shared<script>();
  std::vector<fact> extract(std::span<const message> msgs, const extraction_context&) const {
    std::vector<fact> out;
    for (const auto& m : msgs) {
      fact f{m.content, m.role, m.name, nlohmann::json::object()};
      f.valid_from = next->fact_date;
      out.push_back(std::move(f));
    }
    return out;
  }
  std::vector<memory_action> decide(std::span<const fact> facts, std::span<const std::vector<existing_memory>>,
                                    const extraction_context&) const {
    memory_action a{next->event, facts[0].text, next->target, 0};
    a.correction = next->correction;
    std::vector<memory_action> out{a};
    if (next->event == event_kind::del) out.push_back(memory_action{event_kind::add, facts[0].text, "", 0});
    return out;
  }
};

template <class Store = memory_store>
using scripted_memory = basic_memory<hashing_embedder, flat_index, Store, scripted_extractor>;

memory_config supersede_config() {
  memory_config c;
  c.on_contradiction = contradiction_policy::supersede;
  return c;
}

std::vector<std::string> texts(const std::vector<record>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) out.push_back(r.memory);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> texts(const std::vector<search_hit>& hs) {
  std::vector<std::string> out;
  for (const auto& h : hs) out.push_back(h.record.memory);
  std::sort(out.begin(), out.end());
  return out;
}

/// A flat index that counts the rows its searches scan (the sizes of the partitions each search names).
class scan_counting_index {
 public:
  explicit scan_counting_index(std::size_t dimension) : inner_(dimension) {}
  std::size_t dimension() const { return inner_.dimension(); }
  std::size_t size() const { return inner_.size(); }
  void add(slot_id s, partition_id p, std::span<const float> v) {
    inner_.add(s, p, v);
    if (s >= part_of_.size()) part_of_.resize(std::size_t{s} + 1);
    part_of_[s] = p;
    ++rows_[p];
  }
  void update(slot_id s, std::span<const float> v) { inner_.update(s, v); }
  void remove(slot_id s) {
    if (!inner_.contains(s)) return;
    inner_.remove(s);
    --rows_[part_of_[s]];
  }
  void clear() {
    inner_.clear();
    rows_.clear();
  }
  std::vector<index_hit> search(std::span<const float> q, std::size_t k, std::span<const partition_id> ps,
                                const slot_bitmap* c) const {
    if (!c)
      for (const auto p : ps)
        if (auto it = rows_.find(p); it != rows_.end()) *scanned_ += it->second;
    return inner_.search(q, k, ps, c);
  }
  std::shared_ptr<std::size_t> scanned_ = std::make_shared<std::size_t>(0);  // shared with the test's copy

 private:
  flat_index inner_;
  std::vector<partition_id> part_of_;
  std::map<partition_id, std::size_t> rows_;
};

}  // namespace

TEST_CASE("temporal: an UPDATE under supersede keeps the id and keeps the old text as a closed version",
          "[temporal]") {
  scripted_extractor ex;
  scripted_memory<> mem(hashing_embedder{}, memory_store{}, ex, supersede_config());
  const auto lisbon =
      mem.add("Ana lives in Lisbon", user("ana"), {.timestamp = at("2024-01-10T09:00:00Z")}).results.at(0).id;
  CHECK(mem.get(lisbon)->valid_since() == at("2024-01-10T09:00:00Z"));

  *ex.next = {event_kind::update, lisbon};
  const auto r = mem.add("Ana lives in Porto", user("ana"), {.timestamp = at("2025-06-01T00:00:00Z")});
  REQUIRE(r.results.size() == 1);  // what a Mem0 client sees: the same UPDATE as with erasure
  CHECK(r.results[0].id == lisbon);
  CHECK(r.results[0].event == event_kind::update);
  CHECK(r.results[0].previous_memory == "Ana lives in Lisbon");

  const auto now = mem.get(lisbon);
  CHECK(now->memory == "Ana lives in Porto");
  CHECK(now->valid_since() == at("2025-06-01T00:00:00Z"));
  CHECK_FALSE(now->invalid_at);

  // the default views hide the closed version: the same answers as erasure
  CHECK(texts(mem.get_all(user("ana"))) == std::vector<std::string>{"Ana lives in Porto"});
  CHECK(texts(mem.search("where does Ana live", user("ana"))) == std::vector<std::string>{"Ana lives in Porto"});

  // every version, and the closed one's interval and link
  const auto all = mem.get_all(user("ana"), {.include_invalid = true});
  REQUIRE(all.size() == 2);
  const auto old = std::find_if(all.begin(), all.end(), [](const record& x) { return x.memory == "Ana lives in Lisbon"; });
  REQUIRE(old != all.end());
  CHECK(old->valid_since() == at("2024-01-10T09:00:00Z"));
  CHECK(old->invalid_at == at("2025-06-01T00:00:00Z"));
  CHECK(old->superseded_by == lisbon);
  CHECK(mem.history(old->id).size() == 1);

  // as_of: each version inside its interval, boundaries included at valid_from and excluded at invalid_at
  auto as_of = [&](const char* t) {
    return texts(mem.search("where does Ana live", user("ana"), {.as_of = at(t)}));
  };
  CHECK(as_of("2024-06-01T00:00:00Z") == std::vector<std::string>{"Ana lives in Lisbon"});
  CHECK(as_of("2024-01-10T09:00:00Z") == std::vector<std::string>{"Ana lives in Lisbon"});
  CHECK(as_of("2025-06-01T00:00:00Z") == std::vector<std::string>{"Ana lives in Porto"});
  CHECK(as_of("2025-05-31T23:59:59Z") == std::vector<std::string>{"Ana lives in Lisbon"});
  CHECK(as_of("2023-01-01T00:00:00Z").empty());
  CHECK(texts(mem.get_all(user("ana"), {.as_of = at("2024-06-01T00:00:00Z")})) ==
        std::vector<std::string>{"Ana lives in Lisbon"});
  // include_invalid wins over as_of
  CHECK(mem.search("where does Ana live", user("ana"), {.as_of = at("2024-06-01T00:00:00Z"), .include_invalid = true})
            .size() == 2);
}

TEST_CASE("temporal: a correction rewrites in place; erase keeps Mem0's behaviour", "[temporal]") {
  scripted_extractor ex;
  scripted_memory<> mem(hashing_embedder{}, memory_store{}, ex, supersede_config());
  const auto id = mem.add("Her name is spelled Anna", user("ana"), {.timestamp = at("2024-01-10T00:00:00Z")}).results.at(0).id;
  *ex.next = {event_kind::update, id, true};
  mem.add("Her name is spelled Ana", user("ana"), {.timestamp = at("2024-02-01T00:00:00Z")});
  CHECK(mem.get_all(user("ana"), {.include_invalid = true}).size() == 1);
  CHECK(mem.get(id)->memory == "Her name is spelled Ana");
  CHECK(mem.get(id)->valid_since() == at("2024-01-10T00:00:00Z"));  // it was always so

  scripted_extractor ex2;
  scripted_memory<> erasing(hashing_embedder{}, memory_store{}, ex2);
  const auto a = erasing.add("Bo lives in Oslo", user("bo"), {.timestamp = at("2024-01-01T00:00:00Z")}).results.at(0).id;
  *ex2.next = {event_kind::update, a};
  erasing.add("Bo lives in Bergen", user("bo"), {.timestamp = at("2024-03-01T00:00:00Z")});
  CHECK(erasing.get_all(user("bo"), {.include_invalid = true}).size() == 1);
  CHECK(erasing.get(a)->memory == "Bo lives in Bergen");
  CHECK(erasing.get(a)->valid_since() == at("2024-03-01T00:00:00Z"));
  *ex2.next = {event_kind::del, a};
  erasing.add("Bo moved abroad", user("bo"));
  CHECK_FALSE(erasing.get(a));  // erased, as Mem0 does
}

TEST_CASE("temporal: a DELETE under supersede closes the memory and links what replaced it", "[temporal]") {
  scripted_extractor ex;
  scripted_memory<> mem(hashing_embedder{}, memory_store{}, ex, supersede_config());
  const auto job = mem.add("Cy works at Acme", user("cy"), {.timestamp = at("2023-03-01T00:00:00Z")}).results.at(0).id;
  *ex.next = {event_kind::del, job, false, at("2024-09-15T00:00:00Z")};  // the fact's own date wins
  const auto r = mem.add("Cy left Acme and now freelances", user("cy"), {.timestamp = at("2024-10-01T00:00:00Z")});
  REQUIRE(r.results.size() == 2);
  CHECK(r.results[0].event == event_kind::del);
  CHECK(r.results[1].event == event_kind::add);
  const auto closed = mem.get(job);  // kept, closed
  REQUIRE(closed);
  CHECK(closed->invalid_at == at("2024-09-15T00:00:00Z"));
  CHECK(closed->superseded_by == r.results[1].id);
  CHECK(mem.get(r.results[1].id)->valid_since() == at("2024-09-15T00:00:00Z"));
  CHECK(texts(mem.get_all(user("cy"))) == std::vector<std::string>{"Cy left Acme and now freelances"});
  CHECK(texts(mem.get_all(user("cy"), {.as_of = at("2024-01-01T00:00:00Z")})) ==
        std::vector<std::string>{"Cy works at Acme"});
  // a fact said again after its memory was closed is stored again, not taken for a duplicate
  *ex.next = {};
  const auto again = mem.add("Cy works at Acme", user("cy"), {.timestamp = at("2025-01-01T00:00:00Z")});
  REQUIRE(again.results.size() == 1);
  CHECK(again.results[0].event == event_kind::add);
  CHECK(again.results[0].id != job);
}

TEST_CASE("temporal: an older statement arriving late is kept closed and the current memory stays", "[temporal]") {
  scripted_extractor ex;
  scripted_memory<> mem(hashing_embedder{}, memory_store{}, ex, supersede_config());
  const auto id = mem.add("Di lives in Rome", user("di"), {.timestamp = at("2025-01-01T00:00:00Z")}).results.at(0).id;
  *ex.next = {event_kind::update, id};
  const auto r = mem.add("Di lives in Milan", user("di"), {.timestamp = at("2023-01-01T00:00:00Z")});
  REQUIRE(r.results.size() == 1);
  CHECK(r.results[0].event == event_kind::none);
  CHECK(mem.get(id)->memory == "Di lives in Rome");
  CHECK(texts(mem.get_all(user("di"), {.as_of = at("2024-01-01T00:00:00Z")})) ==
        std::vector<std::string>{"Di lives in Milan"});
  CHECK(texts(mem.get_all(user("di"))) == std::vector<std::string>{"Di lives in Rome"});
}

TEST_CASE("temporal: as_of and include_invalid never cross a scope", "[temporal][isolation]") {
  scripted_extractor ex;
  scripted_memory<> mem(hashing_embedder{}, memory_store{}, ex, supersede_config());
  const auto a = mem.add("Lives in Lisbon", user("ana"), {.timestamp = at("2024-01-01T00:00:00Z")}).results.at(0).id;
  mem.add("Lives in Lisbon", user("bob"), {.timestamp = at("2024-01-01T00:00:00Z")});
  *ex.next = {event_kind::update, a};
  mem.add("Lives in Porto", user("ana"), {.timestamp = at("2024-06-01T00:00:00Z")});
  for (const auto& opts : {search_options{.include_invalid = true}, search_options{.as_of = at("2024-03-01T00:00:00Z")},
                           search_options{.as_of = at("2025-03-01T00:00:00Z")}}) {
    for (const auto& h : mem.search("lives in", user("bob"), opts)) CHECK(h.record.user_id == "bob");
    for (const auto& h : mem.search("lives in", user("ana"), opts)) CHECK(h.record.user_id == "ana");
  }
  CHECK(mem.get_all(user("bob"), {.include_invalid = true}).size() == 1);
  // delete_all removes closed versions too
  CHECK(mem.delete_all(user("ana")) == 2);
  CHECK(mem.get_all(user("ana"), {.include_invalid = true}).empty());
}

TEST_CASE("temporal: closed versions and their intervals survive reopening a file store", "[temporal][durability]") {
  engram_test::temp_dir dir;
  std::string id;
  {
    scripted_extractor ex;
    scripted_memory<file_store> mem(hashing_embedder{}, file_store(dir.path), ex, supersede_config());
    id = mem.add("Eve drives a Fiat", user("eve"), {.timestamp = at("2022-05-01T00:00:00Z")}).results.at(0).id;
    *ex.next = {event_kind::update, id};
    mem.add("Eve drives a Volvo", user("eve"), {.timestamp = at("2024-05-01T00:00:00Z")});
  }
  scripted_extractor ex;
  scripted_memory<file_store> mem(hashing_embedder{}, file_store(dir.path), ex, supersede_config());
  CHECK(texts(mem.get_all(user("eve"))) == std::vector<std::string>{"Eve drives a Volvo"});
  CHECK(texts(mem.search("car", user("eve"), {.as_of = at("2023-01-01T00:00:00Z")})) ==
        std::vector<std::string>{"Eve drives a Fiat"});
  CHECK(mem.get_all(user("eve"), {.include_invalid = true}).size() == 2);
}

TEST_CASE("temporal: policies parse and print", "[temporal]") {
  CHECK(parse_contradiction_policy("supersede") == contradiction_policy::supersede);
  CHECK(parse_contradiction_policy("erase") == contradiction_policy::erase);
  CHECK(to_string(contradiction_policy::supersede) == "supersede");
  CHECK_THROWS_AS(parse_contradiction_policy("keep"), validation_error);
}

TEST_CASE("temporal: newest_first ranks the latest statement about a subject first, in its group's places",
          "[temporal][rank]") {
  memory mem;
  mem.add("Ana's favourite colour is green", user("ana"), {.infer = false, .timestamp = at("2023-01-01T00:00:00Z")});
  mem.add("Ana's favourite colour is blue", user("ana"), {.infer = false, .timestamp = at("2025-01-01T00:00:00Z")});
  mem.add("Ana plays the cello on Sundays", user("ana"), {.infer = false, .timestamp = at("2025-02-01T00:00:00Z")});
  const std::string query = "is Ana's favourite colour green";
  search_options plain{.mode = search_mode::semantic};
  const auto before = mem.search(query, user("ana"), plain);
  REQUIRE(before.size() == 3);
  REQUIRE(before[0].record.memory == "Ana's favourite colour is green");  // the query names the old value

  search_options newest = plain;
  newest.weights.newest_first = 0.6f;
  newest.explain = true;
  const auto after = mem.search(query, user("ana"), newest);
  REQUIRE(after.size() == 3);
  CHECK(after[0].record.memory == "Ana's favourite colour is blue");
  CHECK(after[1].record.memory == "Ana's favourite colour is green");
  CHECK(after[2].record.memory == "Ana plays the cello on Sundays");  // another subject keeps its place
  for (std::size_t i = 0; i < 3; ++i) CHECK(after[i].score == Approx(before[i].score));  // places keep their scores
  CHECK(after[0].details->cosine < after[1].details->cosine);  // each hit's own terms

  search_options strict = newest;
  strict.weights.newest_first = 0.999f;  // not similar enough to be one subject: nothing moves
  CHECK(mem.search(query, user("ana"), strict)[0].record.memory == "Ana's favourite colour is green");
  search_options bad = plain;
  bad.weights.newest_first = 1.5f;
  CHECK_THROWS_AS(mem.search(query, user("ana"), bad), validation_error);
}

TEST_CASE("temporal: searches hiding closed versions return the best current memories, whatever the plan",
          "[temporal]") {
  // The closed versions are the nearest neighbours of a question about their subject: the unfiltered search
  // bounds how many the index may return hidden (post-filter when few, else the visible bitmap). Either way
  // the hits equal a pre-filtered search's, and none is closed.
  scripted_extractor ex;
  scripted_memory<> mem(hashing_embedder{}, memory_store{}, ex, supersede_config());
  const std::vector<std::string> cities = {"Lisbon", "Porto", "Madrid"};
  for (int person = 0; person < 40; ++person) {
    const auto who = "Person" + std::to_string(person);
    *ex.next = {};
    const auto id = mem.add(who + " lives in " + cities[0], user("u"), {.timestamp = at("2024-01-01T00:00:00Z")})
                        .results.at(0)
                        .id;
    for (std::size_t k = 1; k < cities.size(); ++k) {
      *ex.next = {event_kind::update, id};
      mem.add(who + " lives in " + cities[k], user("u"), {.timestamp = at("2024-01-01T00:00:00Z") + std::chrono::days(30 * k)});
    }
  }
  *ex.next = {};
  for (int i = 0; i < 30; ++i) mem.add("Filler note number " + std::to_string(i) + " about lunch", user("u"));
  REQUIRE(mem.get_all(user("u")).size() == 70);
  REQUIRE(mem.get_all(user("u"), {.limit = 0, .include_invalid = true}).size() == 150);  // 80 closed versions

  for (const std::size_t limit : {5u, 10u, 79u, 80u, 100u, 200u}) {
    for (const auto mode : {search_mode::semantic, search_mode::hybrid}) {
      CAPTURE(limit, static_cast<int>(mode));
      const auto plain = mem.search("who lives in Lisbon", user("u"), {.limit = limit, .mode = mode});
      search_options pre{.limit = limit, .mode = mode};
      pre.strategy = filter_strategy::pre_filter;
      const auto reference = mem.search("who lives in Lisbon", user("u"), pre);
      CHECK(plain.size() == std::min<std::size_t>(limit, 70));
      REQUIRE(plain.size() == reference.size());
      for (std::size_t i = 0; i < plain.size(); ++i) {
        CHECK(plain[i].record.id == reference[i].record.id);
        CHECK_FALSE(plain[i].record.invalid_at);
      }
    }
  }
}

TEST_CASE("temporal: a search of the current memories never scans the closed versions; as_of and include_invalid find them",
          "[temporal]") {
  // Closed versions sit in a partition of their own beside their scope's: the vector scan of a current search
  // reads the current rows only, so keeping every version costs the current view nothing.
  scripted_extractor ex;
  scan_counting_index index(hashing_embedder{}.dimension());
  const auto scanned = index.scanned_;
  basic_memory<hashing_embedder, scan_counting_index, memory_store, scripted_extractor> mem(
      hashing_embedder{}, std::move(index), memory_store{}, ex, supersede_config());
  for (int person = 0; person < 20; ++person) {
    const auto who = "Person" + std::to_string(person);
    *ex.next = {};
    const auto id =
        mem.add(who + " lives in Lisbon", user("u"), {.timestamp = at("2024-01-01T00:00:00Z")}).results.at(0).id;
    *ex.next = {event_kind::update, id};
    mem.add(who + " lives in Porto", user("u"), {.timestamp = at("2024-06-01T00:00:00Z")});
  }
  *ex.next = {};
  mem.add("Someone else entirely", user("v"));
  REQUIRE(mem.get_all(user("u"), {.limit = 0, .include_invalid = true}).size() == 40);

  *scanned = 0;
  const auto now = mem.search("who lives in Lisbon", user("u"), {.limit = 5, .mode = search_mode::semantic});
  CHECK(*scanned == 20);
  for (const auto& h : now) CHECK_FALSE(h.record.invalid_at);
  *scanned = 0;
  const auto then = mem.search("who lives in Lisbon", user("u"),
                               {.limit = 5, .mode = search_mode::semantic, .as_of = at("2024-03-01T00:00:00Z")});
  REQUIRE(then.size() == 5);  // as_of goes through the filter planner: the versions valid then, from both
  for (const auto& h : then) CHECK(h.record.memory.find("Lisbon") != std::string::npos);
  *scanned = 0;
  search_options every{.limit = 5, .mode = search_mode::semantic};
  every.include_invalid = true;
  CHECK(mem.search("who lives", user("u"), every).size() == 5);
  CHECK(*scanned == 40);

  // a DELETE under supersede closes the memory itself: it moves to the closed partition and stays findable as_of
  const auto gone = mem.get_all(user("u")).at(0);
  *ex.next = {event_kind::del, gone.id};
  mem.add("forget that", user("u"), {.timestamp = at("2024-09-01T00:00:00Z")});
  *scanned = 0;
  for (const auto& h : mem.search(gone.memory, user("u"), {.limit = 40, .mode = search_mode::semantic}))
    CHECK(h.record.id != gone.id);
  CHECK(*scanned == 20);  // 19 current + "forget that"
  const auto past = mem.search(gone.memory, user("u"),
                               {.limit = 1, .mode = search_mode::semantic, .as_of = at("2024-08-01T00:00:00Z")});
  REQUIRE(past.size() == 1);
  CHECK(past[0].record.id == gone.id);
}
