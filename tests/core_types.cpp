#include <engram/detail/md5.hpp>
#include <engram/text/utf8.hpp>
#include <engram/json.hpp>
#include <engram/scope.hpp>
#include <engram/time.hpp>
#include <engram/uuid.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <set>
#include <string>
#include <vector>

using namespace engram;

TEST_CASE("core: md5 matches the RFC 1321 test suite", "[core]") {
  CHECK(detail::md5_hex("") == "d41d8cd98f00b204e9800998ecf8427e");
  CHECK(detail::md5_hex("a") == "0cc175b9c0f1b6a831c399e269772661");
  CHECK(detail::md5_hex("abc") == "900150983cd24fb0d6963f7d28e17f72");
  CHECK(detail::md5_hex("message digest") == "f96b697d7cb7938d525a2f31aaf161d0");
  CHECK(detail::md5_hex("12345678901234567890123456789012345678901234567890123456789012345678901234567890") ==
        "57edf4a22be3c955ac49da2e2107b67a");
}

TEST_CASE("core: uuid v4 shape and uniqueness", "[core]") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto u = make_uuid_v4();
    REQUIRE(is_uuid(u));
    CHECK(u[14] == '4');
    CHECK((u[19] == '8' || u[19] == '9' || u[19] == 'a' || u[19] == 'b'));
    seen.insert(u);
  }
  CHECK(seen.size() == 1000);
  CHECK_FALSE(is_uuid("not-a-uuid"));
  CHECK_FALSE(is_uuid("0123456789abcdef0123456789abcdef0123"));
}

TEST_CASE("core: format_iso8601 writes every instant as the fixed-width printf form does", "[core]") {
  using namespace std::chrono;
  const auto reference = [](timestamp t) {  // the form, spelled with snprintf
    const auto day = floor<days>(t);
    const year_month_day ymd{day};
    const hh_mm_ss<microseconds> tod{t - day};
    char buf[64];
    const int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%06lld+00:00", int(ymd.year()),
                                unsigned(ymd.month()), unsigned(ymd.day()), int(tod.hours().count()),
                                int(tod.minutes().count()), int(tod.seconds().count()),
                                static_cast<long long>(tod.subseconds().count()));
    return std::string(buf, static_cast<std::size_t>(n));
  };
  std::vector<timestamp> instants{timestamp{}, parse_iso8601("0999-01-01T00:00:00Z"),
                                  parse_iso8601("2024-12-31T23:59:59.999999Z"), parse_iso8601("9999-12-31T23:59:59Z"),
                                  timestamp{} - microseconds(1), sys_days{year{10000} / 1 / 1} + hours(5),
                                  sys_days{year{-12} / 3 / 4}};
  std::uint64_t x = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < 2000; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    instants.push_back(timestamp{} + microseconds(static_cast<std::int64_t>(x % 320000000000000000ull)) -
                       microseconds(60000000000000000ll));  // years ~68 to ~10100
  }
  for (const auto t : instants) {
    INFO(reference(t));
    CHECK(format_iso8601(t) == reference(t));
  }
}

TEST_CASE("core: ISO-8601 round trip and offsets", "[core]") {
  const auto t = parse_iso8601("2024-05-01T12:34:56.789012Z");
  CHECK(format_iso8601(t) == "2024-05-01T12:34:56.789012+00:00");
  CHECK(parse_iso8601(format_iso8601(t)) == t);
  CHECK(parse_iso8601("2024-05-01T14:34:56.789012+02:00") == t);
  CHECK(parse_iso8601("2024-05-01T05:34:56.789012-0700") == t);
  CHECK(parse_iso8601("2024-05-01") == parse_iso8601("2024-05-01T00:00:00Z"));
  CHECK(parse_iso8601("2024-05-01 12:34") == parse_iso8601("2024-05-01T12:34:00+00:00"));
  for (const char* bad : {"", "2024", "2024-13-01", "2024-02-30", "2024-05-01T25:00", "2024-05-01X",
                          "2024-05-01T12:00:00+", "yesterday", "2024-05-01T12:00:00."})
    CHECK_FALSE(try_parse_iso8601(bad).has_value());
  CHECK_THROWS_AS(parse_iso8601("soon"), validation_error);
}

TEST_CASE("core: utf-8 validation", "[core]") {
  CHECK(detail::is_valid_utf8("plain"));
  CHECK(detail::is_valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  CHECK_FALSE(detail::is_valid_utf8("\xc3"));          // truncated
  CHECK_FALSE(detail::is_valid_utf8("\xc0\xaf"));      // overlong
  CHECK_FALSE(detail::is_valid_utf8("\xed\xa0\x80"));  // surrogate
  CHECK_FALSE(detail::is_valid_utf8("\xff"));
}

TEST_CASE("core: parse_json limits nesting, UTF-8 and numbers, with printable messages", "[core][json]") {
  const auto nested = [](std::size_t levels) { return std::string(levels, '[') + std::string(levels, ']'); };
  CHECK(engram::parse_json(nested(engram::max_json_depth), "x").is_array());
  CHECK_THROWS_WITH(engram::parse_json(nested(engram::max_json_depth + 1), "x"), Catch::Contains("deeper than 64"));
  CHECK_THROWS_AS(engram::parse_json(nested(200000), "x"), engram::validation_error);  // no stack to exhaust
  CHECK_THROWS_AS(engram::parse_json(nested(3), "x", 2), engram::validation_error);
  for (const std::string bad : {"\"\xff\"", "\"\xc0\xae\"", "{\"a\":\"\xed\xa0\x80\"}"}) {
    INFO(engram::printable(bad));
    try {
      (void)engram::parse_json(bad, "body");
      FAIL("accepted");
    } catch (const engram::validation_error& e) {
      CHECK(engram::detail::is_valid_utf8(e.what()));
      CHECK(std::string(e.what()).rfind("body: not valid JSON", 0) == 0);
    }
  }
  CHECK_THROWS_WITH(engram::parse_json(R"({"t":1e400})", "body"), Catch::Contains("out of range"));
  CHECK_THROWS_WITH(engram::parse_json("{", "line 3"), Catch::StartsWith("line 3: not valid JSON"));
  CHECK(engram::parse_json(R"({"t":"\u001b"})", "x")["t"] == "\x1b");

  CHECK(engram::printable("plain é 日本") == "plain é 日本");
  CHECK(engram::printable("\x1b]0;t\x07\x1b[2J") == "\\u001b]0;t\\u0007\\u001b[2J");
  CHECK(engram::printable("a\xc2\x9b" "b\x7f") == "a\\u009bb\\u007f");
  CHECK(engram::printable("\xff\xc0\xae") == "\\xff\\xc0\\xae");
  CHECK(engram::printable("\xe6\x97") == "\\xe6\\x97");  // truncated sequence
}

TEST_CASE("core: parse_json counts only brackets outside strings, and answers as the depth-checking parse", "[core][json]") {
  CHECK(engram::parse_json(R"({"a":"[[[[{{{{"})", "x", 1).at("a") == "[[[[{{{{");
  CHECK(engram::parse_json(R"({"a":"\"[[[[","b":"\\"})", "x", 1).at("b") == "\\");
  CHECK_THROWS_WITH(engram::parse_json(R"({"a":[{"b":1}]})", "x", 2), Catch::Contains("deeper than 2"));
  CHECK_THROWS_WITH(engram::parse_json("[1,,[[[[", "x", 2), Catch::Contains("not valid JSON"));  // the first error wins
  // random texts from JSON's punctuation: the same value or the same message as parsing with the depth callback
  const auto reference = [](const std::string& text, std::size_t max_depth) -> std::string {
    const nlohmann::json::parser_callback_t limit = [&](int depth, nlohmann::json::parse_event_t e, nlohmann::json&) {
      if ((e == nlohmann::json::parse_event_t::object_start || e == nlohmann::json::parse_event_t::array_start) &&
          static_cast<std::size_t>(depth) >= max_depth)
        throw std::length_error("deep");
      return true;
    };
    try {
      return nlohmann::json::parse(text, limit).dump();
    } catch (const std::length_error&) {
      return "too deep";
    } catch (const nlohmann::json::exception&) {
      return "error";
    }
  };
  std::mt19937 rng(11);
  const std::string alphabet = "[]{}\",:\\1a ";
  int deep = 0, values = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string text;
    const auto n = rng() % 24;
    for (std::size_t k = 0; k < n; ++k) text += alphabet[rng() % alphabet.size()];
    if (i % 3 == 0) text = std::string(rng() % 5, '[') + "\"" + text + "\"" + std::string(rng() % 5, ']');
    const std::size_t max_depth = 1 + rng() % 3;
    const auto want = reference(text, max_depth);
    std::string got;
    try {
      got = engram::parse_json(text, "x", max_depth).dump();
    } catch (const engram::validation_error& e) {
      got = std::string(e.what()).find("deeper than") != std::string::npos ? "too deep" : "error";
    }
    deep += want == "too deep";
    values += want != "too deep" && want != "error";
    if (got != want) {
      CAPTURE(text, max_depth, want, got);
      FAIL("parse_json answers otherwise than the depth-checking parse");
    }
  }
  CHECK(deep > 100);
  CHECK(values > 100);
}

TEST_CASE("core: scope selection and validation", "[core]") {
  const scope alice_travel{"alice", "travel", ""};
  CHECK(user("alice").selects(alice_travel));
  CHECK(agent("travel").selects(alice_travel));
  CHECK_FALSE(user("bob").selects(alice_travel));
  CHECK_FALSE(scope{"alice", "", "r1"}.selects(alice_travel));
  CHECK_FALSE(scope{}.selects(alice_travel));
  CHECK_THROWS_WITH(validate_scope(scope{}, "add"), Catch::Contains("add: a scope is required"));
  CHECK_THROWS_AS(validate_scope(user(std::string(300, 'x')), "add"), validation_error);
  CHECK_THROWS_AS(validate_scope(user(std::string("a\0b", 3)), "add"), validation_error);
  CHECK_NOTHROW(validate_scope(user("alice"), "add"));
}

TEST_CASE("core: record JSON has Mem0's shape and round-trips", "[core][json]") {
  record r;
  r.id = make_uuid_v4();
  r.memory = "Likes green tea";
  r.hash = detail::md5_hex(r.memory);
  r.metadata = {{"category", "food"}};
  r.user_id = "alice";
  r.role = "user";
  r.created_at = parse_iso8601("2024-05-01T12:00:00Z");
  r.updated_at = parse_iso8601("2024-05-02T12:00:00Z");
  r.embedding = {0.5f, -0.25f};

  const nlohmann::json j = r;
  CHECK(j["id"] == r.id);
  CHECK(j["memory"] == "Likes green tea");
  CHECK(j["hash"] == r.hash);
  CHECK(j["metadata"]["category"] == "food");
  CHECK(j["user_id"] == "alice");
  CHECK_FALSE(j.contains("agent_id"));  // absent ids are omitted, as Mem0 does
  CHECK_FALSE(j.contains("embedding"));
  CHECK(j["created_at"] == "2024-05-01T12:00:00.000000+00:00");
  CHECK(j["valid_from"] == j["created_at"]);  // no valid_from: valid since created_at, and said so
  CHECK_FALSE(j.contains("invalid_at"));
  CHECK_FALSE(j.contains("superseded_by"));

  const auto with_vec = record_to_json(r, true);
  CHECK(with_vec["embedding"].size() == 2);
  auto read_back = with_vec.get<record>();
  CHECK(read_back.valid_from == r.created_at);
  read_back.valid_from.reset();
  CHECK(read_back == r);
  auto without = j.get<record>();
  CHECK(without.embedding.empty());

  r.valid_from = parse_iso8601("2024-04-01T08:30:00.250000Z");
  r.invalid_at = parse_iso8601("2024-06-01T00:00:00Z");
  r.superseded_by = make_uuid_v4();
  const nlohmann::json closed = r;
  CHECK(closed["valid_from"] == "2024-04-01T08:30:00.250000+00:00");
  CHECK(closed["invalid_at"] == "2024-06-01T00:00:00.000000+00:00");
  CHECK(closed["superseded_by"] == *r.superseded_by);
  CHECK(record_to_json(r, true).get<record>() == r);
  auto old = nlohmann::json::parse(R"({"id":"1","memory":"x","created_at":"2024-05-01T12:00:00Z"})").get<record>();
  CHECK_FALSE(old.valid_from);  // JSON written before validity: valid since created_at, never invalidated
  CHECK_FALSE(old.invalid_at);
  CHECK_FALSE(old.superseded_by);
  CHECK(old.valid_since() == old.created_at);
  CHECK_THROWS_WITH(nlohmann::json::parse(R"({"id":"1","memory":"x","invalid_at":"soon"})").get<record>(),
                    Catch::Contains("invalid_at"));

  CHECK_THROWS_AS(nlohmann::json::parse(R"({"memory":"x"})").get<record>(), validation_error);
  CHECK_THROWS_WITH(nlohmann::json::parse(R"({"id":"1","memory":"x","metadata":[1]})").get<record>(),
                    Catch::Contains("metadata"));
  CHECK_THROWS_AS(nlohmann::json::parse(R"({"id":"1","memory":"x","created_at":"later"})").get<record>(),
                  validation_error);
}

TEST_CASE("core: record JSON carries an extractor's entities only when set, and reads them back strictly",
          "[core][json][entities]") {
  record r;
  r.id = "m1";
  r.memory = "Zoë works at Acme in Paris";
  r.created_at = r.updated_at = parse_iso8601("2024-05-01T12:00:00Z");
  r.valid_from = r.created_at;
  CHECK_FALSE(nlohmann::json(r).contains("entities"));  // unset: the entity index recognises them from the text
  CHECK_FALSE(nlohmann::json(r).get<record>().entities);

  r.entities = recognized_entities{};  // the extractor found none: kept, distinct from unset
  CHECK(nlohmann::json(r)["entities"] == nlohmann::json::parse(R"({"entities":[],"relations":[]})"));
  CHECK(nlohmann::json(r).get<record>() == r);

  r.entities = recognized_entities{};
  for (const auto t : {entity_type::person, entity_type::organization, entity_type::place, entity_type::date,
                       entity_type::handle, entity_type::title, entity_type::name})
    r.entities->entities.push_back({"n-" + std::string(to_string(t)), t});
  r.entities->relations = {{"Zoë", "works at", "Acme"}, {"Acme", "based in", "Paris"}};
  const nlohmann::json j = r;
  CHECK(j["entities"]["entities"][0] == nlohmann::json::parse(R"({"name":"n-person","type":"person"})"));
  CHECK(j["entities"]["relations"][1] ==
        nlohmann::json::parse(R"({"source":"Acme","relationship":"based in","target":"Paris"})"));
  CHECK(j.get<record>() == r);
  CHECK(nlohmann::json::parse(j.dump()).get<record>() == r);

  auto read = [](const char* entities) {
    auto line = nlohmann::json::parse(R"({"id":"1","memory":"x"})");
    line["entities"] = nlohmann::json::parse(entities);
    return line.get<record>();
  };
  CHECK_FALSE(read("null").entities);  // null: as absent
  // lenient where the meaning is plain: missing lists are empty, a missing or foreign type is a name
  const auto partial = read(R"({"entities":[{"name":"Acme","type":"Company"},{"name":"gizmo"},
                                            {"name":"x","type":"product"}]})");
  REQUIRE(partial.entities);
  CHECK(partial.entities->entities ==
        std::vector<entity_mention>{{"Acme", entity_type::organization}, {"gizmo", entity_type::name},
                                    {"x", entity_type::name}});
  CHECK(partial.entities->relations.empty());
  // strict on wrong JSON types: a validation_error naming the field
  auto refused = [&](const char* entities, const char* field) {
    INFO(entities);
    CHECK_THROWS_AS(read(entities), validation_error);
    CHECK_THROWS_WITH(read(entities), Catch::Contains(std::string("'") + field + "'"));
  };
  refused(R"([])", "entities");
  refused(R"("Acme")", "entities");
  refused(R"({"entities":{"name":"Acme"}})", "entities.entities");
  refused(R"({"relations":"works at"})", "entities.relations");
  refused(R"({"entities":["Acme"]})", "entities.entities[0]");
  refused(R"({"entities":[{"name":"a"},{"name":7}]})", "entities.entities[1].name");
  refused(R"({"entities":[{"type":"person"}]})", "entities.entities[0].name");
  refused(R"({"entities":[{"name":"a","type":3}]})", "entities.entities[0].type");
  refused(R"({"relations":[{"source":"a","relationship":"knows"}]})", "entities.relations[0].target");
  refused(R"({"relations":[{"source":"a","relationship":["knows"],"target":"b"}]})",
          "entities.relations[0].relationship");
}

TEST_CASE("core: categories chosen by the extractor are returned at the top of a record, as Mem0 does",
          "[core][json]") {
  record r;
  r.id = "1";
  r.memory = "Flies to Oslo in May";
  r.valid_from = r.created_at;  // as an add sets it (JSON always carries it)
  CHECK_FALSE(nlohmann::json(r).contains("categories"));
  r.metadata = {{"categories", {"travel", "plans"}}, {"k", 1}};
  const nlohmann::json j = r;
  CHECK(j["categories"] == nlohmann::json{"travel", "plans"});
  CHECK(j["metadata"]["categories"] == j["categories"]);  // still in metadata, where filters look
  CHECK(record_to_json(r, true).get<record>() == r);      // reading ignores the copy
  r.metadata = {{"categories", "not a list"}};
  CHECK_FALSE(nlohmann::json(r).contains("categories"));
}

TEST_CASE("core: event, history and message JSON", "[core][json]") {
  const memory_event add{"id1", "Likes tea", event_kind::add, std::nullopt};
  CHECK(nlohmann::json(add) == nlohmann::json::parse(R"({"id":"id1","memory":"Likes tea","event":"ADD"})"));
  const memory_event upd{"id1", "Likes coffee", event_kind::update, "Likes tea"};
  CHECK(nlohmann::json(upd)["previous_memory"] == "Likes tea");
  CHECK(nlohmann::json(upd).get<memory_event>() == upd);

  history_event h;
  h.id = "h1";
  h.memory_id = "id1";
  h.new_memory = "Likes tea";
  h.event = event_kind::add;
  h.created_at = parse_iso8601("2024-05-01T12:00:00Z");
  const nlohmann::json hj = h;
  for (const char* key : {"id", "memory_id", "old_memory", "new_memory", "event", "created_at", "updated_at",
                          "is_deleted", "actor_id", "role"})
    CHECK(hj.contains(key));
  CHECK(hj["old_memory"].is_null());
  CHECK(hj.get<history_event>() == h);

  const auto m = nlohmann::json::parse(R"({"role":"user","content":[{"type":"text","text":"hi"},
                                           {"type":"image_url","image_url":{"url":"x"}}],"name":"al"})")
                     .get<message>();
  CHECK(m.content == "hi");
  CHECK(m.name == "al");
  CHECK_THROWS_AS(nlohmann::json::parse(R"({"role":"user"})").get<message>(), validation_error);
  CHECK_THROWS_AS(nlohmann::json::parse(R"({"role":"user","content":5})").get<message>(), validation_error);
  CHECK_THROWS_AS(parse_event_kind("MERGE"), validation_error);

  const std::vector<memory_event> evs{add};
  CHECK(results(evs).dump() == R"({"results":[{"event":"ADD","id":"id1","memory":"Likes tea"}]})");
}

#include <sys/wait.h>
#include <unistd.h>

TEST_CASE("core: a forked child does not repeat its parent's uuids", "[core]") {
  (void)make_uuid_v4();  // the parent's generator exists before the fork
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const auto u = make_uuid_v4();
    (void)!write(fds[1], u.data(), u.size());
    _exit(0);
  }
  close(fds[1]);
  const auto mine = make_uuid_v4();
  char buf[36] = {};
  REQUIRE(read(fds[0], buf, sizeof buf) == 36);
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  CHECK(std::string(buf, 36) != mine);
}
