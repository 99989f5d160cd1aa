// engram::dump_json writes exactly what nlohmann's dump(-1, ' ', false, replace) writes, on any document:
// random trees of random strings (every byte value, valid and broken UTF-8), integers and floats; and
// append_record_json / append_hit_json write what dumping record_to_json / a hit's to_json writes.
#include <engram/json_dump.hpp>
#include <engram/json_records.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <random>
#include <string>

namespace {

using json = nlohmann::json;

std::string nlohmann_dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string random_string(std::mt19937_64& rng) {
  std::string s;
  const auto n = rng() % 40;
  const auto kind = rng() % 4;
  for (std::size_t i = 0; i < n; ++i) {
    switch (kind) {
      case 0: s += static_cast<char>(0x20 + rng() % 0x5f); break;   // printable ASCII
      case 1: s += static_cast<char>(rng() % 0x80); break;          // ASCII with controls
      case 2: {                                                     // valid UTF-8, mixed widths
        static const char* pieces[] = {"a", "é", "ü", "日本", "\xf0\x9f\x98\x80", "\"", "\\", "\n", "\x7f", "\xe2\x80\xa8"};
        s += pieces[rng() % std::size(pieces)];
        break;
      }
      default: s += static_cast<char>(rng() % 256);  // any byte: mostly broken UTF-8
    }
  }
  return s;
}

double random_double(std::mt19937_64& rng) {
  switch (rng() % 6) {
    case 0: return std::uniform_real_distribution<double>(0, 1)(rng);                       // a score
    case 1: return std::uniform_real_distribution<double>(-1e6, 1e6)(rng);
    case 2: return static_cast<double>(static_cast<std::int64_t>(rng() % 2'000'000) - 1'000'000);  // "12.0"
    case 3: return static_cast<double>(std::uniform_real_distribution<float>(-1, 1)(rng));  // an embedding
    case 4: {
      std::uint64_t bits = rng();  // any bit pattern: subnormals, huge exponents, NaN, infinities
      double d;
      std::memcpy(&d, &bits, sizeof d);
      return d;
    }
    default: {
      static const double special[] = {0.0, -0.0, 1e-5, 1e-4, 1e15, 1e16, 1e17, 123456789012345678.0,
                                       std::numeric_limits<double>::min(), std::numeric_limits<double>::max(),
                                       std::numeric_limits<double>::denorm_min(),
                                       std::numeric_limits<double>::infinity(),
                                       std::numeric_limits<double>::quiet_NaN()};
      return special[rng() % std::size(special)];
    }
  }
}

json random_value(std::mt19937_64& rng, int depth) {
  const auto pick = rng() % (depth > 4 ? 6 : 8);
  switch (pick) {
    case 0: return nullptr;
    case 1: return rng() % 2 == 0;
    case 2: return static_cast<std::int64_t>(rng());
    case 3: return static_cast<std::uint64_t>(rng());
    case 4: return random_double(rng);
    case 5: return random_string(rng);
    case 6: {
      json a = json::array();
      for (auto n = rng() % 5; n > 0; --n) a.push_back(random_value(rng, depth + 1));
      return a;
    }
    default: {
      json o = json::object();
      for (auto n = rng() % 5; n > 0; --n) o[random_string(rng)] = random_value(rng, depth + 1);
      return o;
    }
  }
}

}  // namespace

TEST_CASE("dump_json: the fixed cases nlohmann writes in a particular way", "[json_dump]") {
  for (const json& j : {json(nullptr), json(true), json(false), json(0), json(-1), json(1u),
                        json(std::numeric_limits<std::int64_t>::min()), json(std::numeric_limits<std::uint64_t>::max()),
                        json(0.0), json(-0.0), json(1.0), json(0.1), json(1e-5), json(1e21), json(2.5e-300),
                        json(std::nan("")), json(-std::numeric_limits<double>::infinity()), json::array(),
                        json::object(), json(""), json("\x01\x1f\"\\/\b\f\n\r\t\x7f"), json("caf\xc3\xa9"),
                        json("bad \xff byte"), json("cut \xe6\x97"), json("overlong \xc0\xaf"),
                        json("surrogate \xed\xa0\x80"), json("exactly8"), json("seven77\""),
                        json{{"b", 1}, {"a", {1, 2.5, "x"}}, {"", json::object()}}}) {
    CAPTURE(nlohmann_dump(j));
    CHECK(engram::dump_json(j) == nlohmann_dump(j));
  }
  std::string appended = "prefix:";
  engram::append_json(appended, json{{"k", "v"}});
  CHECK(appended == R"(prefix:{"k":"v"})");
}

TEST_CASE("dump_json equals nlohmann's dump on 5,000 random documents", "[json_dump]") {
  std::mt19937_64 rng(20261207);
  for (int i = 0; i < 5000; ++i) {
    const auto j = random_value(rng, 0);
    const auto expected = nlohmann_dump(j);
    const auto got = engram::dump_json(j);
    if (got != expected) {
      CAPTURE(i, expected, got);
      FAIL("dump_json differs from nlohmann's dump");
    }
  }
  SUCCEED();
}

TEST_CASE("dump_json keeps an ordered_json's member order, as nlohmann's dump does", "[json_dump]") {
  // a log line puts "time" first; a sorting writer would move it after "key"
  const nlohmann::ordered_json line{{"time", "2026-12-07T00:00:00.000Z"}, {"request_id", "r"}, {"key", nullptr},
                                    {"scope", nlohmann::ordered_json{{"z", 1}, {"a", {2.5, "x\n"}}}}};
  CHECK(engram::dump_json(line) == R"({"time":"2026-12-07T00:00:00.000Z","request_id":"r","key":null,"scope":{"z":1,"a":[2.5,"x\n"]}})");
  CHECK(engram::dump_json(line) == line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
  std::mt19937_64 rng(4);
  for (int i = 0; i < 500; ++i) {  // random documents as ordered_json, members in reverse-sorted order
    const auto j = random_value(rng, 0);
    nlohmann::ordered_json o;
    for (auto it = j.rbegin(); j.is_object() && it != j.rend(); ++it) o[it.key()] = it.value();
    if (!j.is_object()) o = j;
    REQUIRE(engram::dump_json(o) == o.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
  }
}

TEST_CASE("dump_json: strings of every length around the 8-byte blocks, one special byte anywhere", "[json_dump]") {
  for (std::size_t n = 0; n < 40; ++n)
    for (std::size_t at = 0; at < n; ++at)
      for (const char special : {'"', '\\', '\n', '\x01', '\x1f', '\x80', '\xc3', '\x7f', '\x20'}) {
        std::string s(n, 'x');
        s[at] = special;
        if (special == '\xc3' && at + 1 < n) s[at + 1] = '\xa9';  // valid "é" when it fits
        const json j = s;
        CAPTURE(n, at, static_cast<int>(static_cast<unsigned char>(special)));
        REQUIRE(engram::dump_json(j) == nlohmann_dump(j));
      }
}

namespace {

engram::timestamp random_time(std::mt19937_64& rng) {
  // 1900..2100, with microseconds
  const auto us = static_cast<std::int64_t>(rng() % 6'311'390'400'000'000ULL) - 2'208'988'800'000'000LL;
  return engram::timestamp{std::chrono::microseconds{us}};
}

std::string maybe(std::mt19937_64& rng, std::string s) { return rng() % 2 ? s : std::string(); }

engram::record random_record(std::mt19937_64& rng) {
  engram::record r;
  r.id = "0b6e0c5c-1f7a-4a7e-9a56-" + std::to_string(rng() % 1'000'000'000'000ULL);
  r.memory = random_string(rng);
  r.hash = "9e107d9d372bb6826bd81d3542a419d6";
  r.metadata = rng() % 3 == 0 ? json::object() : random_value(rng, 3);
  if (rng() % 3 == 0) r.metadata = json{{"categories", {"food", random_string(rng)}}, {"k", 1}};
  if (rng() % 5 == 0) r.metadata = json{{"categories", "not a list"}};
  r.user_id = maybe(rng, "alice");
  r.agent_id = maybe(rng, random_string(rng));
  r.run_id = maybe(rng, "run-1");
  r.actor_id = maybe(rng, "bob");
  r.role = maybe(rng, "user");
  r.created_at = random_time(rng);
  r.updated_at = random_time(rng);
  if (rng() % 4 == 0) r.embedding = {0.25f, -1.0f, static_cast<float>(random_double(rng))};
  if (rng() % 3 == 0) r.expiration_date = "2031-02-03";
  r.immutable = rng() % 4 == 0;
  if (rng() % 2) r.valid_from = random_time(rng);
  if (rng() % 3 == 0) r.invalid_at = random_time(rng);
  if (rng() % 3 == 0) r.superseded_by = "next-id";
  if (rng() % 3 == 0)
    r.entities = engram::recognized_entities{{{"Alice", engram::entity_type::person}, {random_string(rng), {}}},
                                             {{"Alice", "works_at", "Acme"}}};
  // further scope keys: the platform's, and names that sort before, between and after the members, and ones
  // that collide with a member or with each other (record_to_json decides those)
  static const char* keys[] = {"org_id", "project_id", "app_id", "aaa", "mid_key", "zzz", "role", "score", "user_id"};
  for (auto* lines : {&r.tenant, &r.extra}) {
    std::vector<std::string> chosen;
    for (const char* k : keys)
      if (rng() % 5 == 0) chosen.push_back(k);
    std::sort(chosen.begin(), chosen.end());
    for (const auto& k : chosen) *lines += k + "=v-" + k + "\n";
    if (!lines->empty()) lines->pop_back();
  }
  return r;
}

}  // namespace

TEST_CASE("append_record_json and append_hit_json equal the dumped JSON objects on 5,000 random records", "[json_dump]") {
  std::mt19937_64 rng(7);
  int direct = 0;
  for (int i = 0; i < 5000; ++i) {
    engram::search_hit h{random_record(rng), static_cast<float>(random_double(rng)), std::nullopt};
    if (rng() % 2) h.details = engram::score_details{0.5f, 0.25f, 1.0f, 0.0f, 0.125f, 0.0f, 0.9f, 0.3f, 7.5f};
    const bool with_embedding = rng() % 2;
    std::string got;
    engram::append_record_json(got, h.record, with_embedding);
    const auto expected = engram::dump_json(engram::record_to_json(h.record, with_embedding));
    std::string got_hit;
    engram::append_hit_json(got_hit, h);
    const auto expected_hit = engram::dump_json(json(h));
    if (got != expected || got_hit != expected_hit) {
      CAPTURE(i, expected, got, expected_hit, got_hit);
      FAIL("the directly written JSON differs");
    }
    std::string scratch;  // counts the records the direct path wrote itself (most of them)
    direct += engram::detail::append_record_members(scratch, h.record, false, nullptr) ? 1 : 0;
  }
  CHECK(direct > 500);  // about a fifth here: the random scope keys collide often, on purpose
  std::vector<engram::search_hit> hits{{random_record(rng), 0.5f, std::nullopt}, {random_record(rng), 0.25f, std::nullopt}};
  std::string list;
  engram::append_json_list(list, hits);
  CHECK(list == engram::dump_json(json(hits)));
  CHECK(json::parse(list).size() == 2);
}
