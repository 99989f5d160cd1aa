// Opening a memory over a store that already holds records: the bookkeeping rebuilt in bulk must be the
// same as the one built one add at a time.
#include <engram/engram.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

using namespace engram;

namespace {

/// A plain model of scope_catalog: id -> (partition, content hash).
struct catalog_model {
  std::map<std::string, std::pair<partition_id, std::string>> by_id;
};

void check_same(const detail::scope_catalog& c, const catalog_model& m, const std::vector<std::string>& hashes,
                partition_id partitions) {
  REQUIRE(c.size() == m.by_id.size());
  for (const auto& [id, where] : m.by_id) {
    const auto slot = c.slot_of(id);
    REQUIRE(slot);
    CHECK(c.id_of(*slot) == id);
    CHECK(c.partition_of(*slot) == where.first);
  }
  for (partition_id p = 0; p < partitions; ++p) {
    std::multiset<std::string> listed, expected;
    c.for_each_slot(p, [&](slot_id s) { listed.insert(c.id_of(s)); });
    for (const auto& [id, where] : m.by_id)
      if (where.first == p) expected.insert(id);
    CHECK(listed == expected);
    CHECK(c.partition_size(p) == expected.size());
    for (const auto& h : hashes) {
      std::set<std::string> got, want;
      const auto slots = c.with_hash(p, h);
      CHECK(std::is_sorted(slots.begin(), slots.end()));
      for (const auto s : slots) got.insert(c.id_of(s));
      for (const auto& [id, where] : m.by_id)
        if (where.first == p && where.second == h) want.insert(id);
      CHECK(got == want);
    }
  }
}

}  // namespace

TEST_CASE("reopen: scope_catalog keeps ids, partitions and content hashes through churn", "[reopen]") {
  detail::scope_catalog c;
  catalog_model m;
  std::mt19937 rng(7);
  const std::vector<scope> scopes = {user("a"), user("b"), scope{"a", "agent", ""}, scope{"", "", "run-1"}};
  std::vector<partition_id> parts;
  for (const auto& s : scopes) parts.push_back(c.partition_for(s));
  CHECK(c.partition_for(scopes[2]) == parts[2]);
  CHECK(c.partition_for("a", "agent", "") == parts[2]);
  CHECK(c.partition_count() == scopes.size());
  // few distinct hashes, so that many slots share one (long lists, heads removed and replaced)
  const std::vector<std::string> hashes = {"h0", "h1", "h2", std::string(40, 'x')};
  std::vector<std::string> live;
  int next_id = 0;
  for (int step = 0; step < 6000; ++step) {
    const auto op = rng() % 10;
    if (op < 5 || live.empty()) {
      const auto id = "id-" + std::to_string(next_id++) + std::string(rng() % 30, 'z');
      const auto p = parts[rng() % parts.size()];
      const auto& h = hashes[rng() % hashes.size()];
      c.attach(id, p, h);
      m.by_id[id] = {p, h};
      live.push_back(id);
    } else if (op < 8) {
      const auto i = rng() % live.size();
      c.detach(*c.slot_of(live[i]));
      m.by_id.erase(live[i]);
      live[i] = live.back();
      live.pop_back();
    } else {
      const auto& id = live[rng() % live.size()];
      const auto& h = hashes[rng() % hashes.size()];
      c.rehash(*c.slot_of(id), h);
      m.by_id[id].second = h;
    }
    if (step % 1500 == 0) check_same(c, m, hashes, static_cast<partition_id>(parts.size()));
  }
  check_same(c, m, hashes, static_cast<partition_id>(parts.size()));
  CHECK_FALSE(c.slot_of("id-never"));
  CHECK(c.with_hash(parts[0], "no such hash").empty());
  // slots are reused after detach: the capacity stays bounded by the peak
  CHECK(c.slot_capacity() <= static_cast<std::size_t>(next_id));
  c.clear();
  CHECK(c.size() == 0);
  CHECK(c.partition_count() == 0);
  CHECK_FALSE(c.slot_of(live.empty() ? "x" : live.front()));
}

TEST_CASE("reopen: a large store reopens with every memory findable by id, scope, keyword and vector", "[reopen]") {
  // Above the size from which the keyword index is built on a second thread.
  constexpr std::size_t n = 25000, dim = 32;
  const hashing_embedder emb(dim);
  memory_store store;
  std::map<std::string, std::string> text_of;
  write_batch b;
  for (std::size_t i = 0; i < n; ++i) {
    record r;
    r.id = "00000000-0000-4000-8000-" + std::to_string(100000000000ull + i);
    r.memory = "note " + std::to_string(i) + " about topic" + std::to_string(i % 37) + " and word" + std::to_string(i);
    r.hash = detail::md5_hex(r.memory);
    r.user_id = "user-" + std::to_string(i % 11);
    if (i % 3 == 0) r.agent_id = "agent";
    r.created_at = r.updated_at = utc_now();
    r.embedding = emb.embed(r.memory);
    if (i % 1000 == 5) r.expiration_date = "2000-01-01";  // long expired
    text_of[r.id] = r.memory;
    b.upserts.push_back(std::move(r));
  }
  store.apply(b);
  basic_memory<hashing_embedder, flat_index, memory_store, verbatim_extractor> mem(emb, std::move(store));
  REQUIRE(mem.size() == n);

  std::size_t listed = 0;
  for (int u = 0; u < 11; ++u) listed += mem.get_all(user("user-" + std::to_string(u)), {.limit = 0, .show_expired = true}).size();
  CHECK(listed == n);
  CHECK(mem.get_all(all_scopes, {.limit = 0}).size() == n - n / 1000);  // expired ones hidden
  for (std::size_t i : {std::size_t{0}, std::size_t{1}, std::size_t{4242}, n - 1}) {
    const auto id = "00000000-0000-4000-8000-" + std::to_string(100000000000ull + i);
    const auto r = mem.get(id);
    REQUIRE(r);
    CHECK(r->memory == text_of[id]);
    const auto s = user("user-" + std::to_string(i % 11));
    const auto kw = mem.search("word" + std::to_string(i), s, {.limit = 1, .mode = search_mode::keyword});
    REQUIRE(kw.size() == 1);
    CHECK(kw.front().record.id == id);
    const auto sem = mem.search(text_of[id], s, {.limit = 1, .mode = search_mode::semantic});
    REQUIRE(sem.size() == 1);
    CHECK(sem.front().record.id == id);
  }
  // the duplicate check finds a reopened memory: the same text in the same scope is not stored again
  const auto again = mem.add(text_of["00000000-0000-4000-8000-100000000004"], user("user-4"), {.infer = false});
  REQUIRE(again.results.size() == 1);
  CHECK(again.results.front().event == event_kind::none);
  CHECK(mem.size() == n);
}
