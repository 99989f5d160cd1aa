// The partition cache (memory_config::partition_cache_bytes) over memory_store: scopes load on first use, the
// budget evicts the least recently used, and every result equals the eager mode's.
#include <engram/engram.hpp>

#include <catch2/catch.hpp>

#include "support/temp_dir.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace engram;

namespace {

constexpr std::size_t dim = 64;

const std::vector<std::string> words = {"tea",    "coffee", "chess",  "piano", "lisbon", "oslo",  "cats",
                                        "dogs",   "nurse",  "doctor", "rain",  "sun",    "bread", "cheese",
                                        "guitar", "hiking", "sailing", "books", "jazz",   "rice"};

/// The text of memory i of a user: three words, so searches have graded answers.
std::string text_of(const std::string& who, std::size_t i) {
  return who + " likes " + words[i % words.size()] + " and " + words[(i * 7 + 3) % words.size()] + " number " +
         std::to_string(i);
}

/// `per_user` records for each user, applied straight to the store (as another process would have written them).
void seed(memory_store& store, const std::vector<std::string>& users, std::size_t per_user) {
  const hashing_embedder e(dim);
  write_batch b;
  const auto t0 = utc_now();
  for (const auto& u : users)
    for (std::size_t i = 0; i < per_user; ++i) {
      record r;
      r.id = u + "-" + std::to_string(1000 + i);
      r.memory = text_of(u, i);
      r.hash = detail::md5_hex(r.memory);
      r.user_id = u;
      r.agent_id = i % 3 == 0 ? "planner" : "";
      r.role = "user";
      r.created_at = r.updated_at = t0 + std::chrono::seconds(static_cast<long>(i));
      r.embedding = e.embed(r.memory);
      b.upserts.push_back(std::move(r));
    }
  store.apply(b);
}

memory open(memory_store store, std::size_t budget) {
  return memory(hashing_embedder(dim), std::move(store), verbatim_extractor(), memory_config{.partition_cache_bytes = budget});
}

memory seeded(const std::vector<std::string>& users, std::size_t per_user, std::size_t budget) {
  memory_store s;
  seed(s, users, per_user);
  return open(std::move(s), budget);
}

std::vector<std::pair<std::string, float>> ids_scores(const std::vector<search_hit>& hits) {
  std::vector<std::pair<std::string, float>> out;
  for (const auto& h : hits) out.emplace_back(h.record.id, h.score);
  return out;
}
std::vector<std::string> ids(const std::vector<record>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) out.push_back(r.id);
  return out;
}

const std::vector<std::string> three = {"alice", "bob", "carol"};

}  // namespace

TEST_CASE("partition_cache: nothing loads on open; a scope loads on first use, once", "[partition_cache]") {
  auto mem = seeded(three, 20, 1 << 20);
  CHECK(mem.cache_stats().loads == 0);
  CHECK(mem.cache_stats().bytes == 0);
  CHECK(mem.cache_stats().scopes == 0);
  CHECK(mem.size() == 60);  // counted by the store: nothing loaded
  CHECK(mem.cache_stats().loads == 0);

  const auto hits = mem.search("tea", user("alice"), {.limit = 5});
  REQUIRE(hits.size() == 5);
  for (const auto& h : hits) CHECK(h.record.user_id == "alice");
  auto st = mem.cache_stats();
  CHECK(st.loads == 1);
  CHECK(st.scopes == 1);
  CHECK(st.bytes >= 20 * dim * sizeof(float));  // alice's vectors at least, bob's and carol's not
  CHECK(st.bytes < 40 * dim * sizeof(float));

  (void)mem.search("coffee", user("alice"));
  CHECK(mem.get_all(user("alice")).size() == 20);
  CHECK(mem.get_all(scope{"alice", "planner", ""}).size() == 7);  // inside alice's loaded scope: no load
  CHECK(mem.cache_stats().loads == 1);

  CHECK(mem.get_all(user("bob")).size() == 20);
  CHECK(mem.cache_stats().loads == 2);
  CHECK(mem.cache_stats().scopes == 2);
  CHECK(mem.get_all(user("nobody")).empty());  // an empty scope loads too (and costs a little)
  CHECK(mem.cache_stats().loads == 3);

  // an agent scope spans users: loaded as its own scope; partitions already loaded are shared
  CHECK(mem.get_all(agent("planner")).size() == 21);
  CHECK(mem.cache_stats().loads == 4);
  CHECK(mem.get_all(all_scopes, {.limit = 0}).size() == 60);
  CHECK(mem.cache_stats().loads == 5);
  CHECK(mem.cache_stats().evictions == 0);
}

TEST_CASE("partition_cache: searches equal the eager mode's, before and after eviction", "[partition_cache]") {
  const std::vector<std::string> users = {"u0", "u1", "u2", "u3", "u4", "u5"};
  memory_store eager_store;
  seed(eager_store, users, 30);
  memory eager(hashing_embedder(dim), std::move(eager_store));
  // room for about two users: every user's second search is a reload
  const std::size_t one_user = 30 * (dim * sizeof(float) + 160);
  auto lazy = seeded(users, 30, one_user * 2);

  for (int round = 0; round < 2; ++round)
    for (const auto& u : users)
      for (const char* q : {"tea and chess", "piano", "lisbon rain", "number 7"}) {
        for (const auto mode : {search_mode::hybrid, search_mode::semantic, search_mode::keyword}) {
          INFO("user " << u << " query " << q << " round " << round);
          CHECK(ids_scores(lazy.search(q, user(u), {.limit = 10, .mode = mode})) ==
                ids_scores(eager.search(q, user(u), {.limit = 10, .mode = mode})));
        }
        CHECK(ids(lazy.get_all(user(u))) == ids(eager.get_all(user(u))));
        CHECK(ids_scores(lazy.search(q, scope{u, "planner", ""})) == ids_scores(eager.search(q, scope{u, "planner", ""})));
      }
  const auto st = lazy.cache_stats();
  CHECK(st.evictions >= 4);
  CHECK(st.loads >= 12);  // every user twice at least
  CHECK(st.bytes <= one_user * 2);
  // filters name the scopes: every scope is loaded (and evicted after, being over budget)
  const auto f = parse_filter(R"({"OR":[{"user_id":"u1"},{"user_id":"u4"}]})");
  CHECK(ids_scores(lazy.search("jazz", {.filter = f})) == ids_scores(eager.search("jazz", {.filter = f})));
  CHECK(lazy.cache_stats().bytes <= one_user * 2);
}

TEST_CASE("partition_cache: the budget evicts the least recently used scope", "[partition_cache]") {
  const std::size_t one_user = 10 * (dim * sizeof(float) + 160);
  auto mem = seeded({"a", "b", "c"}, 10, one_user * 5 / 2);  // two users fit, not three
  (void)mem.search("tea", user("a"));
  (void)mem.search("tea", user("b"));
  (void)mem.search("tea", user("a"));  // a is now more recent than b
  CHECK(mem.cache_stats().loads == 2);
  CHECK(mem.cache_stats().evictions == 0);

  (void)mem.search("tea", user("c"));  // evicts b
  CHECK(mem.cache_stats().loads == 3);
  CHECK(mem.cache_stats().evictions == 1);
  CHECK(mem.cache_stats().scopes == 2);
  (void)mem.search("tea", user("a"));  // still loaded
  CHECK(mem.cache_stats().loads == 3);
  (void)mem.search("tea", user("b"));  // reloaded; evicts c (a was used since)
  CHECK(mem.cache_stats().loads == 4);
  CHECK(mem.cache_stats().evictions == 2);
  (void)mem.search("tea", user("a"));
  CHECK(mem.cache_stats().loads == 4);
  CHECK(mem.cache_stats().bytes <= one_user * 5 / 2);
}

TEST_CASE("partition_cache: a scope larger than the budget is loaded, used, and evicted after", "[partition_cache]") {
  memory_store eager_store;
  seed(eager_store, {"big", "small"}, 200);
  memory eager(hashing_embedder(dim), std::move(eager_store));
  auto mem = seeded({"big", "small"}, 200, 4096);  // a few records' worth

  const auto hits = mem.search("guitar hiking", user("big"), {.limit = 20});
  CHECK(hits.size() == 20);
  CHECK(ids_scores(hits) == ids_scores(eager.search("guitar hiking", user("big"), {.limit = 20})));
  auto st = mem.cache_stats();
  CHECK(st.loads == 1);
  CHECK(st.evictions == 1);
  CHECK(st.bytes == 0);
  CHECK(st.scopes == 0);
  CHECK(mem.get_all(user("big"), {.limit = 0}).size() == 200);
  CHECK(mem.cache_stats().loads == 2);
  CHECK(mem.cache_stats().bytes == 0);
}

TEST_CASE("partition_cache: writes load their scope and keep loaded scopes current", "[partition_cache]") {
  auto mem = seeded({"alice", "bob"}, 5, 1 << 20);
  const auto added = mem.add("alice plays the cello on sundays", user("alice"), {.infer = false});
  REQUIRE(added.results.size() == 1);
  CHECK(mem.cache_stats().loads == 1);  // the add loaded alice (neighbours, duplicates)
  CHECK(mem.search("cello", user("alice"), {.limit = 1}).front().record.id == added.results[0].id);
  // the same text again is a duplicate, found in the loaded partition
  CHECK(mem.add("alice plays the cello on sundays", user("alice"), {.infer = false}).results.front().event ==
        event_kind::none);

  // update and delete of a memory whose scope is not loaded: the store is the truth
  CHECK(mem.get("bob-1001").has_value());
  mem.update("bob-1001", "bob collects stamps");
  CHECK(mem.cache_stats().loads == 1);
  CHECK(mem.get("bob-1001")->memory == "bob collects stamps");
  CHECK(mem.search("stamps", user("bob"), {.limit = 1}).front().record.id == "bob-1001");
  CHECK(mem.cache_stats().loads == 2);
  mem.delete_memory("bob-1002");
  CHECK(mem.get_all(user("bob")).size() == 4);
  CHECK_THROWS_AS(mem.update("nope", "x"), not_found);
  // update of a memory in a loaded scope is re-indexed in place
  mem.update("alice-1003", "alice repairs old bicycles");
  CHECK(mem.search("bicycles", user("alice"), {.limit = 1}).front().record.id == "alice-1003");
  CHECK(mem.delete_all(user("alice")) == 6);
  CHECK(mem.get_all(user("alice")).empty());
  CHECK(mem.size() == 4);
  mem.reset();
  CHECK(mem.get_all(user("bob")).empty());
  CHECK(mem.cache_stats().bytes == 2 * 256);  // two loaded (now empty) scopes
  mem.add("after the reset", user("bob"), {.infer = false});
  CHECK(mem.get_all(user("bob")).size() == 1);
}

TEST_CASE("partition_cache: re-validation reloads only the scopes whose version moved", "[partition_cache]") {
  auto mem = seeded({"alice", "bob"}, 5, 1 << 20);
  (void)mem.get_all(user("alice"));
  (void)mem.get_all(user("bob"));
  CHECK(mem.cache_stats().loads == 2);
  CHECK(mem.revalidate_partitions() == 0);
  mem.add("bob sails in summer", user("bob"), {.infer = false});  // our own write moves bob's version
  CHECK(mem.revalidate_partitions() == 1);
  CHECK(mem.cache_stats().loads == 3);
  CHECK(mem.get_all(user("bob")).size() == 6);
  CHECK(mem.revalidate_partitions() == 0);
  CHECK(memory(hashing_embedder(dim)).revalidate_partitions() == 0);  // cache off: nothing to do
}

TEST_CASE("partition_cache: a store that cannot load one scope is refused, naming the setting", "[partition_cache]") {
  engram_test::temp_dir dir;
  using file_memory = basic_memory<hashing_embedder, flat_index, file_store, verbatim_extractor>;
  try {
    file_memory m(hashing_embedder(dim), file_store(dir.path), verbatim_extractor(),
                  memory_config{.partition_cache_bytes = 1000});
    FAIL("no error");
  } catch (const validation_error& e) {
    CHECK(std::string(e.what()).find("partition_cache_bytes") != std::string::npos);
  }
  // the default (0) is the eager mode
  file_memory m(hashing_embedder(dim), file_store(dir.path));
  m.add("eager as ever", user("a"), {.infer = false});
  CHECK(m.cache_stats().loads == 0);
  CHECK(m.search("eager", user("a")).size() == 1);
}

namespace {
/// A shared store with a change feed that reports nothing (every write is "missed") and can be cut off: a
/// memory_store under a shared_ptr, so the test writes behind the memory's back.
class cut_off_store {
 public:
  explicit cut_off_store(std::shared_ptr<memory_store> s, std::shared_ptr<bool> down) : s_(std::move(s)), down_(std::move(down)) {}
  std::vector<duplicate_record> apply(const write_batch& b) {
    s_->apply(b);
    return {};
  }
  [[nodiscard]] std::optional<record> get(std::string_view id) const { return s_->get(id); }
  template <class F>
  void for_each(F&& f) const {
    s_->for_each(f);
  }
  [[nodiscard]] std::vector<history_event> history(std::string_view id) const { return s_->history(id); }
  void clear() { s_->clear(); }
  [[nodiscard]] std::size_t size() const { return s_->size(); }
  template <class F>
  void for_each_in_scope(const scope& q, F&& f) const {
    s_->for_each_in_scope(q, f);
  }
  [[nodiscard]] std::uint64_t scope_selection_version(const scope& q) const { return s_->scope_selection_version(q); }
  [[nodiscard]] std::uint64_t change_position() const { return 0; }
  [[nodiscard]] bool changes_pending() const noexcept { return true; }
  template <class F>
  std::uint64_t poll_changes(std::uint64_t since, F&&) const {
    if (*down_) throw storage_error("cut_off_store: the database is unreachable");
    return since;
  }

 private:
  std::shared_ptr<memory_store> s_;
  std::shared_ptr<bool> down_;
};
static_assert(change_feed_store<cut_off_store> && scope_loading_store<cut_off_store>);
}  // namespace

TEST_CASE("partition_cache: a node cut off from its store re-validates its scopes when it is back",
          "[partition_cache]") {
  auto shared = std::make_shared<memory_store>();
  auto down = std::make_shared<bool>(false);
  seed(*shared, {"alice", "bob"}, 4);
  using node = basic_memory<hashing_embedder, flat_index, cut_off_store, verbatim_extractor>;
  node mem(hashing_embedder(dim), cut_off_store(shared, down), verbatim_extractor(),
           memory_config{.partition_cache_bytes = 1 << 20});
  CHECK(mem.get_all(user("alice")).size() == 4);
  CHECK(mem.get_all(user("bob")).size() == 4);
  CHECK(mem.cache_stats().loads == 2);

  seed(*shared, {"alice"}, 6);  // two more for alice, written by "another node" while the feed says nothing
  CHECK(mem.get_all(user("alice")).size() == 4);
  *down = true;
  CHECK_THROWS_AS(mem.search("tea", user("alice")), storage_error);
  *down = false;
  CHECK(mem.get_all(user("alice")).size() == 6);  // the first poll after the outage re-validated
  CHECK(mem.cache_stats().loads == 3);             // alice reloaded, bob kept
  CHECK(mem.get_all(user("bob")).size() == 4);
  CHECK(mem.get_all(user("alice")).size() == 6);
  CHECK(mem.cache_stats().loads == 3);
}
