// Opening a memory over a store that already holds records: the bookkeeping rebuilt in bulk must be the
// same as the one built one add at a time.
#include <engram/engram.hpp>
#include <engram/detail/crc32c.hpp>
#include <engram/store/file/record_codec.hpp>
#include <engram/store/file_store.hpp>

#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iterator>  // std::istreambuf_iterator
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

namespace {

record sample_record(std::size_t i, std::size_t dim) {
  record r;
  r.id = "rec-" + std::to_string(i);
  r.memory = "remembered thing number " + std::to_string(i);
  r.hash = detail::md5_hex(r.memory);
  r.metadata = nlohmann::json{{"i", i}, {"tag", i % 2 ? "odd" : "even"}};
  r.user_id = "u" + std::to_string(i % 3);
  r.created_at = r.updated_at = utc_now();
  if (i % 7 != 3) {  // some records have no vector (imported text)
    r.embedding.resize(dim + i % 2);  // odd ones: another length, so sizes and padding vary
    for (std::size_t k = 0; k < r.embedding.size(); ++k) r.embedding[k] = float(i) * 0.5f + float(k) / 7.0f;
  }
  return r;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::map<std::string, record> all_records(const file_store& s) {
  std::map<std::string, record> out;
  s.for_each([&](const record& r) { out[r.id] = r; });
  return out;
}

}  // namespace

TEST_CASE("reopen: file_store reads snapshot vectors in place and keeps them exact through changes", "[reopen]") {
  engram_test::temp_dir dir;
  const auto db = dir.sub("db");
  std::map<std::string, record> want;
  {
    file_store s(db, {.mode = durability::buffered});
    write_batch b;
    for (std::size_t i = 0; i < 40; ++i) {
      b.upserts.push_back(sample_record(i, 5));
      want[b.upserts.back().id] = b.upserts.back();
    }
    s.apply(b);
    s.compact();
  }
  for (int round = 0; round < 3; ++round) {
    file_store s(db, {.mode = durability::buffered});
    CHECK(s.recovery().snapshot_records == want.size());
    CHECK(all_records(s) == want);
    std::size_t visited = 0;
    s.for_each_vector([&](const record& r, std::span<const float> v) {
      ++visited;
      const auto& w = want.at(r.id);
      CHECK(std::vector<float>(v.begin(), v.end()) == w.embedding);
      CHECK(reinterpret_cast<std::uintptr_t>(v.data()) % alignof(float) == 0);
    });
    CHECK(visited == want.size());
    for (const auto& [id, r] : want) CHECK(s.get(id) == r);
    // replace one, erase one, add one: the others keep reading their vectors from the mapped snapshot
    write_batch b;
    auto changed = sample_record(100 + std::size_t(round), 5);
    changed.id = "rec-" + std::to_string(round * 5 + 1);
    b.upserts.push_back(changed);
    b.upserts.push_back(sample_record(200 + std::size_t(round), 5));
    b.erases.push_back("rec-" + std::to_string(round * 5 + 2));
    s.apply(b);
    want[changed.id] = changed;
    want[b.upserts.back().id] = b.upserts.back();
    want.erase(b.erases.front());
    CHECK(all_records(s) == want);
    if (round != 1) s.compact();  // round 1: the changes stay in the log
  }
}

TEST_CASE("reopen: a memory over a compacted file_store finds every memory by vector after reopening", "[reopen]") {
  engram_test::temp_dir dir;
  const hashing_embedder emb(32);
  using mem_t = basic_memory<hashing_embedder, flat_index, file_store, verbatim_extractor>;
  std::vector<std::string> texts;
  for (int i = 0; i < 30; ++i) texts.push_back("fact " + std::to_string(i) + " about hobby" + std::to_string(i * 7));
  {
    mem_t mem(emb, file_store(dir.sub("db"), {.mode = durability::buffered}));
    for (const auto& t : texts) mem.add(t, user("alice"), {.infer = false});
  }
  file_store(dir.sub("db")).compact();
  mem_t mem(emb, file_store(dir.sub("db"), {.mode = durability::buffered}));
  REQUIRE(mem.size() == texts.size());
  for (const auto& t : texts) {
    const auto hits = mem.search(t, user("alice"), {.limit = 1, .mode = search_mode::semantic});
    REQUIRE(hits.size() == 1);
    CHECK(hits.front().record.memory == t);
    CHECK(hits.front().record.embedding == emb.embed(t));
  }
}

namespace {
/// The 24-byte header of a file_store file written by an earlier engram: `magic`, `version`, generation `gen`.
std::string legacy_header(const char* magic, std::uint32_t version, std::uint64_t gen) {
  std::string h(magic, 8);
  detail::byte_writer w(h);
  w.u32(version);
  w.u32(0);
  w.u64(gen);
  return h;
}

/// `payload` framed as a file_store entry: length, CRC-32C, payload.
std::string framed(const std::string& payload) {
  std::string f;
  detail::byte_writer w(f);
  w.u32(static_cast<std::uint32_t>(payload.size()));
  std::uint32_t crc = detail::crc32c(f.data(), 4);
  crc = detail::crc32c_extend(crc, payload.data(), payload.size());
  w.u32(crc);
  return f + payload;
}

/// The identity entry (kind 2) binding a store to the 5-dimension hashing embedder, framed.
std::string hashing5_identity() {
  std::string p;
  detail::byte_writer w(p);
  w.u8(2);
  w.str("hashing-v1");
  w.u64(5);
  return framed(p);
}
/// A log as the file_store of format `version` wrote it: header, identity, batch `b` as one entry of kind `kind`
/// with its records in `layout`.
std::string legacy_log(std::uint32_t version, std::uint8_t kind, const write_batch& b, detail::record_layout layout) {
  std::string p;
  detail::byte_writer w(p);
  w.u8(kind);
  detail::encode_batch(w, b, layout);
  return legacy_header(detail::file_format::log_magic, version, 0) + hashing5_identity() + framed(p);
}
/// legacy_log, then the first half of its batch entry again, as a crash during a second append leaves it.
std::string torn_legacy_log(std::uint32_t version, std::uint8_t kind, const write_batch& b,
                            detail::record_layout layout) {
  const auto one = legacy_log(version, kind, b, layout);
  const auto entry = one.substr(detail::file_format::header_size + hashing5_identity().size());
  return one + entry.substr(0, entry.size() / 2);
}
}  // namespace

TEST_CASE("reopen: a snapshot of the earlier format (vectors inside each record entry) still opens", "[reopen]") {
  engram_test::temp_dir dir;
  const auto db = dir.sub("db");
  std::filesystem::create_directories(db);
  // Written by hand as the earlier file_store wrote it: header, identity, sizes, records (kind 3), events
  // (kind 4), end (kind 5), with an empty log of the same generation.
  auto header = [](const char* magic) { return legacy_header(magic, 1, 3); };  // before aligned snapshot vectors
  std::string file = header("ENGRMSNP") + hashing5_identity();
  auto frame = [&](const std::string& payload) { file += framed(payload); };
  std::string p;
  detail::byte_writer w(p);
  w.u8(6);
  w.u64(10);
  w.u64(10);
  frame(p);
  std::map<std::string, record> want;
  for (std::size_t i = 0; i < 10; ++i) {
    auto r = sample_record(i, 5);
    r.immutable = false;  // the first format has no immutable records
    want[r.id] = r;
    p.clear();
    w.u8(3);
    detail::encode_record(w, r, detail::record_layout::v1);
    frame(p);
    p.clear();
    w.u8(4);
    detail::encode_event(w, history_event{"ev-" + r.id, r.id, std::nullopt, r.memory, event_kind::add, r.created_at,
                                          std::nullopt, false, "", "user"});
    frame(p);
  }
  p.clear();
  w.u8(5);
  w.u64(10);
  w.u64(10);
  frame(p);
  std::ofstream(db + "/snapshot", std::ios::binary) << file;
  std::ofstream(db + "/log.3", std::ios::binary) << header("ENGRMLOG");

  {
    file_store s(db);
    CHECK(s.recovery().snapshot_records == 10);
    CHECK(s.recovery().snapshot_events == 10);
    CHECK(all_records(s) == want);
    CHECK(s.history("rec-4").size() == 1);
    REQUIRE(s.identity());
    CHECK(s.identity()->dimension == 5);
    s.compact();  // rewritten in the current format
  }
  file_store s(db, {.read_only = true});
  CHECK(all_records(s) == want);
  CHECK(s.history("rec-4").size() == 1);
}

TEST_CASE("reopen: a log of format 3 (records without flags) opens, and appending to it mixes both layouts",
          "[reopen][immutable]") {
  engram_test::temp_dir dir;
  const auto db = dir.sub("db");
  std::filesystem::create_directories(db);
  // Written as the file_store of format 3 wrote it: header, identity (kind 2), one batch (kind 1).
  std::map<std::string, record> want;
  write_batch old;
  for (std::size_t i = 0; i < 3; ++i) {
    old.upserts.push_back(sample_record(i, 5));
    want[old.upserts.back().id] = old.upserts.back();
  }
  std::ofstream(db + "/log.0", std::ios::binary)
      << legacy_log(3, detail::file_format::kind_batch, old, detail::record_layout::v1);

  auto frozen = sample_record(7, 5);
  frozen.immutable = true;
  {
    file_store s(db);
    CHECK(all_records(s) == want);
    write_batch b;
    b.upserts = {frozen};
    s.apply(b);  // appended as format 5's batch, after the format 3 one
    want[frozen.id] = frozen;
  }
  file_store s(db, {.read_only = true});
  CHECK(all_records(s) == want);
  CHECK(s.get(frozen.id)->immutable);
}

TEST_CASE("reopen: a log of format 4 (records with flags, no validity) opens, is appended to, and compacts",
          "[reopen][validity]") {
  engram_test::temp_dir dir;
  const auto db = dir.sub("db");
  std::filesystem::create_directories(db);
  // Written as the file_store of format 4 wrote it: header, identity, one batch of kind 11 (format 4's layout),
  // then half of a second one, as a crash during that append leaves it.
  std::map<std::string, record> want;
  write_batch old;
  for (std::size_t i = 0; i < 4; ++i) {
    auto r = sample_record(i, 5);  // no validity (format 4 has none): valid since created_at
    r.immutable = i == 2;
    old.upserts.push_back(r);
    want[r.id] = r;
  }
  std::ofstream(db + "/log.0", std::ios::binary)
      << torn_legacy_log(4, detail::file_format::kind_batch_flags, old, detail::record_layout::with_flags);

  auto closed = sample_record(11, 5);
  closed.valid_from = closed.created_at - std::chrono::hours{48};
  closed.invalid_at = closed.created_at + std::chrono::microseconds{5};
  closed.superseded_by = "rec-12";
  auto opened = sample_record(12, 5);
  opened.valid_from = opened.created_at - std::chrono::hours{24};
  {
    file_store s(db, {.on_warning = [](const std::string&) {}});
    CHECK(s.recovery().discarded_entries == 1);
    CHECK(all_records(s) == want);
    for (const auto& [id, r] : want) CHECK(s.get(id)->valid_since() == r.created_at);
    write_batch b;
    b.upserts = {closed, opened};
    s.apply(b);  // appended as format 5's batch (kind 14), after the format 4 one
    want[closed.id] = closed;
    want[opened.id] = opened;
  }
  CHECK(static_cast<std::uint8_t>(read_bytes(db + "/log.0")[8]) == detail::file_format::version);
  {
    file_store s(db, {.read_only = true});
    CHECK(all_records(s) == want);
    CHECK(s.get(closed.id)->superseded_by == closed.superseded_by);
  }
  {
    file_store s(db);
    s.compact();  // the snapshot holds format 5's records (kind 16)
  }
  file_store s(db, {.read_only = true});
  CHECK(s.recovery().snapshot_records == want.size());
  CHECK(all_records(s) == want);
  CHECK(s.get(opened.id)->valid_from == opened.valid_from);
}

TEST_CASE("reopen: a log of format 6 (no entities) opens, is marked current before its append, and compacts",
          "[reopen][entities]") {
  engram_test::temp_dir dir;
  const auto db = dir.sub("db");
  std::filesystem::create_directories(db);
  // Written as the file_store of format 6 wrote it: header, identity, one batch of kind 14 (format 5's layout,
  // which format 6 kept), then half of a second one.
  std::map<std::string, record> want;
  write_batch old;
  for (std::size_t i = 0; i < 4; ++i) {
    auto r = sample_record(i, 5);
    r.valid_from = r.created_at - std::chrono::hours{1};
    r.immutable = i == 1;
    old.upserts.push_back(r);
    want[r.id] = r;  // no entities: recognised from the text
  }
  std::ofstream(db + "/log.0", std::ios::binary)
      << torn_legacy_log(6, detail::file_format::kind_batch_validity, old, detail::record_layout::with_validity);

  auto given = sample_record(21, 5);
  given.entities = recognized_entities{{{"Zo\xC3\xAB", entity_type::person}, {"Acme", entity_type::organization}},
                                       {{"Zo\xC3\xAB", "works at", "Acme"}}};
  auto none_found = sample_record(22, 5);
  none_found.entities = recognized_entities{};  // the extractor's answer: nothing, kept as such
  {
    file_store s(db, {.on_warning = [](const std::string&) {}});
    CHECK(s.recovery().discarded_entries == 1);
    CHECK(all_records(s) == want);
    write_batch b;
    b.upserts = {given, none_found};
    s.apply(b);  // appended as the current format's batch (kind 21 since format 8), after the format 6 one
    want[given.id] = given;
    want[none_found.id] = none_found;
  }
  CHECK(static_cast<std::uint8_t>(read_bytes(db + "/log.0")[8]) == detail::file_format::version);
  {
    file_store s(db, {.read_only = true});
    CHECK(all_records(s) == want);
    CHECK_FALSE(s.get("rec-0")->entities);
  }
  {
    file_store s(db);
    s.compact();  // the snapshot holds the current format's records (kind 23 since format 8)
  }
  CHECK(static_cast<std::uint8_t>(read_bytes(db + "/snapshot")[8]) == detail::file_format::version);
  file_store s(db, {.read_only = true});
  CHECK(s.recovery().snapshot_records == want.size());
  CHECK(all_records(s) == want);
  CHECK(s.get(given.id)->entities == given.entities);
}

TEST_CASE("reopen: format 7 stores a record without entities in format 5's bytes, and refuses bad entities",
          "[reopen][entities]") {
  auto r = sample_record(4, 5);
  r.valid_from = r.created_at;
  r.superseded_by = "rec-5";
  std::string v5, v7;
  detail::byte_writer w5(v5), w7(v7);
  detail::encode_record(w5, r, detail::record_layout::with_validity);
  detail::encode_record(w7, r, detail::record_layout::with_entities);
  CHECK(v7 == v5);  // records without entities do not grow

  r.entities = recognized_entities{{{"Acme", entity_type::organization}}, {}};
  std::string e;
  detail::byte_writer we(e);
  detail::encode_record(we, r, detail::record_layout::with_entities);
  detail::byte_reader rd(e.data(), e.size(), "test");
  CHECK(detail::decode_record(rd, detail::record_layout::with_entities) == r);
  CHECK_THROWS_AS(detail::encode_record(w5, r, detail::record_layout::with_validity), storage_error);
  // the type byte follows the name "Acme" near the end: a value past entity_type::name is refused
  auto bad = e;
  const auto at = bad.rfind("Acme") + 4;
  bad[at] = 9;
  detail::byte_reader rb(bad.data(), bad.size(), "test");
  CHECK_THROWS_WITH(detail::decode_record(rb, detail::record_layout::with_entities),
                    Catch::Contains("unknown entity type 9"));
  // an older layout reading the entities flag: unknown flags, not a misread
  detail::byte_reader ro(e.data(), e.size(), "test");
  CHECK_THROWS_WITH(detail::decode_record(ro, detail::record_layout::with_validity),
                    Catch::Contains("unknown record flags"));
}
