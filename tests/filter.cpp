#include <engram/filter/dsl.hpp>
#include <engram/filter/eval.hpp>
#include <engram/filter/expr.hpp>
#include <engram/filter/parse.hpp>
#include <engram/record.hpp>

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <set>
#include <string>
#include <vector>

using namespace engram;
using nlohmann::json;

namespace {

record sample_record() {
  record r;
  r.id = "r1";
  r.memory = "text";
  r.user_id = "alice";
  r.agent_id = "";
  r.run_id = "run-7";
  r.actor_id = "Al";
  r.role = "user";
  r.created_at = parse_iso8601("2024-05-01T12:00:00Z");
  r.updated_at = parse_iso8601("2024-06-01T00:00:00Z");
  r.metadata = json::parse(R"({
    "n": 5, "neg": -3, "f": 2.5, "big": 9007199254740993, "u": 18446744073709551615,
    "s": "apple", "e": "", "b": true, "z": null,
    "arr": ["x", "Y", 3], "nums": [1, 2.0, 3],
    "obj": {"city": "Paris", "zip": 75001, "deep": {"k": "v"}},
    "ts": "2024-05-01T12:00:00+02:00", "date": "2024-05-01",
    "a.b": "literal-dot"
  })");
  return r;
}

/// The record's verdict through every evaluation path, which must agree.
bool verdict(const filter_expr& f, const record& r) {
  const bool direct = filter_matches(f, r);
  filter_columns cols;
  record other = r;
  other.metadata = json::object();  // a second slot so that columns have several rows
  cols.assign(0, other);
  cols.assign(3, r);
  const std::vector<slot_id> slots{0, 3};
  const bool by_slot = cols.matches(f, 3);
  const bool by_bitmap = cols.select(f, slots).test(3);
  const std::vector<slot_id> just{3};
  const bool by_bitmap_alone = cols.select(f, just).test(3);
  CHECK(by_slot == direct);
  CHECK(by_bitmap == direct);
  CHECK(by_bitmap_alone == direct);
  return direct;
}

bool check(const char* filter_json) { return verdict(parse_filter(filter_json), sample_record()); }

std::string error_of(const std::string& text) {
  try {
    (void)parse_filter(text);
  } catch (const validation_error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("filter: every operator on every type", "[filter]") {
  struct row {
    const char* filter;
    bool expected;
  };
  const row table[] = {
      // numbers: int, negative, float, beyond 2^53, uint64
      {R"({"n": 5})", true},
      {R"({"n": 5.0})", true},
      {R"({"n": {"eq": 4}})", false},
      {R"({"n": {"ne": 4}})", true},
      {R"({"n": {"ne": 5}})", false},
      {R"({"n": {"gt": 4}})", true},
      {R"({"n": {"gt": 5}})", false},
      {R"({"n": {"gte": 5}})", true},
      {R"({"n": {"lt": 5.5}})", true},
      {R"({"n": {"lte": 4.999}})", false},
      {R"({"n": {"in": [1, 5]}})", true},
      {R"({"n": {"in": [1, 2]}})", false},
      {R"({"n": {"nin": [1, 2]}})", true},
      {R"({"n": {"nin": [5]}})", false},
      {R"({"n": [4, 5]})", true},
      {R"({"neg": {"lt": 0}})", true},
      {R"({"neg": {"lt": 18446744073709551615}})", true},
      {R"({"u": {"gt": 9223372036854775807}})", true},
      {R"({"u": {"gt": -1}})", true},
      {R"({"f": {"gt": 2}})", true},
      {R"({"f": {"lt": 3}})", true},
      {R"({"big": {"eq": 9007199254740993}})", true},
      {R"({"big": {"eq": 9007199254740992}})", false},
      {R"({"big": {"gt": 9007199254740992}})", true},
      // strings: lexicographic, substring, case-insensitive
      {R"({"s": "apple"})", true},
      {R"({"s": "Apple"})", false},
      {R"({"s": {"gt": "apple"}})", false},
      {R"({"s": {"gte": "apple"}})", true},
      {R"({"s": {"lt": "banana"}})", true},
      {R"({"s": {"gt": "Zebra"}})", true},  // byte order: lower case after upper case
      {R"({"s": {"contains": "ppl"}})", true},
      {R"({"s": {"contains": "PPL"}})", false},
      {R"({"s": {"icontains": "PPL"}})", true},
      {R"({"s": {"icontains": "pear"}})", false},
      {R"({"s": {"in": ["pear", "apple"]}})", true},
      {R"({"s": {"nin": ["pear", "apple"]}})", false},
      {R"({"e": ""})", true},
      {R"({"e": "*"})", true},
      {R"({"s": {"contains": ""}})", true},
      // booleans
      {R"({"b": true})", true},
      {R"({"b": {"ne": true}})", false},
      {R"({"b": {"ne": false}})", true},
      {R"({"b": {"in": [false]}})", false},
      {R"({"b": 1})", false},  // a boolean is not a number
      // null
      {R"({"z": null})", true},
      {R"({"z": "*"})", false},  // present but null
      {R"({"z": {"ne": null}})", false},
      {R"({"z": {"ne": 1}})", true},
      {R"({"n": null})", false},
      // arrays: membership for eq/in/contains, whole-array equality for an array operand
      {R"({"arr": "x"})", true},
      {R"({"arr": 3})", true},
      {R"({"arr": "y"})", false},
      {R"({"arr": {"contains": "Y"}})", true},
      {R"({"arr": {"contains": "y"}})", false},
      {R"({"arr": {"icontains": "y"}})", true},
      {R"({"arr": {"contains": 3.0}})", true},
      {R"({"arr": {"in": ["q", "x"]}})", true},
      {R"({"arr": {"nin": ["q", "x"]}})", false},
      {R"({"arr": {"eq": ["x", "Y", 3]}})", true},
      {R"({"arr": {"eq": ["x", "Y"]}})", false},
      {R"({"nums": {"eq": [1.0, 2, 3]}})", true},
      {R"({"arr": {"gt": "a"}})", false},  // no ordering on arrays
      // objects and dotted paths
      {R"({"obj.city": "Paris"})", true},
      {R"({"obj.zip": {"gte": 75000}})", true},
      {R"({"obj.deep.k": "v"})", true},
      {R"({"obj.deep.k": {"icontains": "V"}})", true},
      {R"({"obj.nope": "*"})", false},
      {R"({"obj": {"eq": {"zip": 75001, "city": "Paris", "deep": {"k": "v"}}}})", true},
      {R"({"a.b": "literal-dot"})", true},  // a key with a dot is found as a whole first
      {R"({"s.x": "*"})", false},            // a path through a string finds nothing
      // timestamps: chronological, honouring offsets
      {R"({"ts": {"eq": "2024-05-01T10:00:00Z"}})", true},
      {R"({"ts": {"lt": "2024-05-01T11:00:00Z"}})", true},
      {R"({"ts": {"gt": "2024-05-01T09:59:59.999Z"}})", true},
      {R"({"ts": {"gt": "2024-05-01T12:00:00+04:00"}})", true},
      {R"({"date": {"eq": "2024-05-01T00:00:00Z"}})", true},
      {R"({"date": {"lt": "2024-05-01T00:00:01+00:00"}})", true},
      {R"({"ts": {"in": ["2024-05-01T10:00:00+00:00"]}})", true},
      {R"({"created_at": {"gte": "2024-05-01"}})", true},
      {R"({"created_at": {"gt": "2024-05-01T13:00:00+02:00"}})", true},
      {R"({"created_at": {"gt": "2024-05-01T15:00:00+02:00"}})", false},
      {R"({"created_at": {"eq": "2024-05-01T14:00:00+02:00"}})", true},
      {R"({"created_at": {"ne": "2024-05-01T14:00:00+02:00"}})", false},
      {R"({"updated_at": {"lt": "2024-12-31"}})", true},
      {R"({"updated_at": {"in": ["2024-06-01", "2025-01-01"]}})", true},
      {R"({"created_at": "*"})", true},
      // record fields
      {R"({"user_id": "alice"})", true},
      {R"({"user_id": {"in": ["bob", "alice"]}})", true},
      {R"({"user_id": {"ne": "alice"}})", false},
      {R"({"agent_id": "*"})", false},  // empty = missing
      {R"({"agent_id": {"ne": "x"}})", true},
      {R"({"run_id": {"contains": "un-"}})", true},
      {R"({"actor_id": {"icontains": "al"}})", true},
      {R"({"role": "user"})", true},
      {R"({"role": {"gt": "assistant"}})", true},
      // incompatible types: no match (never an exception); ne/nin match
      {R"({"n": "5"})", false},
      {R"({"n": {"gt": "4"}})", false},
      {R"({"s": {"gt": 4}})", false},
      {R"({"s": {"contains": 4}})", false},
      {R"({"n": {"contains": 5}})", false},
      {R"({"n": {"icontains": "5"}})", false},
      {R"({"n": {"ne": "5"}})", true},
      {R"({"n": {"nin": ["5"]}})", true},
      {R"({"obj": {"gt": 1}})", false},
      {R"({"user_id": {"gt": 1}})", false},
      // several operators on one key are ANDed; sibling keys are ANDed
      {R"({"n": {"gte": 1, "lte": 9}})", true},
      {R"({"n": {"gte": 1, "lte": 4}})", false},
      {R"({"n": {"$gte": 1, "$lt": 6}})", true},
      {R"({"n": 5, "s": "apple"})", true},
      {R"({"n": 5, "s": "pear"})", false},
      // $-prefixed spellings
      {R"({"n": {"$eq": 5}})", true},
      {R"({"n": {"$in": [5]}})", true},
      {R"({"s": {"$icontains": "APP"}})", true},
      {R"({"$and": [{"n": 5}, {"s": "apple"}]})", true},
      {R"({"$or": [{"n": 6}, {"s": "apple"}]})", true},
      {R"({"$not": {"n": 5}})", false},
      {R"({})", true},
  };
  for (const auto& t : table) {
    INFO(t.filter);
    CHECK(check(t.filter) == t.expected);
  }
}

TEST_CASE("filter: a missing field fails every operator except ne and nin", "[filter]") {
  const char* ops_failing[] = {
      R"({"missing": 1})",          R"({"missing": {"eq": 1}})",        R"({"missing": {"gt": 1}})",
      R"({"missing": {"gte": 1}})", R"({"missing": {"lt": 1}})",        R"({"missing": {"lte": 1}})",
      R"({"missing": {"in": [1]}})", R"({"missing": {"contains": "a"}})", R"({"missing": {"icontains": "a"}})",
      R"({"missing": "*"})",        R"({"missing": null})",             R"({"missing": {"in": []}})",
  };
  for (const char* f : ops_failing) {
    INFO(f);
    CHECK_FALSE(check(f));
  }
  CHECK(check(R"({"missing": {"ne": 1}})"));
  CHECK(check(R"({"missing": {"nin": [1]}})"));
  CHECK(check(R"({"missing": {"nin": []}})"));
  CHECK(check(R"({"NOT": {"missing": {"gt": 1}}})"));  // NOT is the logical negation
}

TEST_CASE("filter: AND, OR, NOT nest to any depth within the limit", "[filter]") {
  CHECK(check(R"({"AND": [{"n": 5}, {"OR": [{"s": "pear"}, {"NOT": [{"b": false}, {"z": "*"}]}]}]})"));
  CHECK_FALSE(check(R"({"AND": [{"n": 5}, {"OR": [{"s": "pear"}, {"NOT": [{"b": true}]}]}]})"));
  CHECK(check(R"({"NOT": [{"s": "pear"}, {"n": 6}]})"));   // none of them
  CHECK_FALSE(check(R"({"NOT": [{"s": "pear"}, {"n": 5}]})"));
  CHECK(check(R"({"OR": [{"AND": [{"n": 5}, {"s": "apple"}]}, {"n": 6}], "b": true})"));
  CHECK(check(R"({"NOT": {"NOT": {"NOT": {"NOT": {"n": 5}}}}})"));

  // 14 nested ANDs (2 JSON levels each) plus the leaf fit in 32 levels; 16 do not.
  auto nested = [](int levels) {
    std::string s = R"({"n": 5})";
    for (int i = 0; i < levels; ++i) s = R"({"AND": [)" + s + "]}";
    return s;
  };
  CHECK(check(nested(14).c_str()));
  const auto msg = error_of(nested(16));
  CHECK_THAT(msg, Catch::Contains("deeper than 32"));
  CHECK_THAT(msg, Catch::Contains("/AND/0/AND/0"));
}

TEST_CASE("filter: errors name the operator or key and the JSON path", "[filter]") {
  struct row {
    const char* filter;
    std::vector<const char*> parts;
  };
  const row rows[] = {
      {R"({"AND": [{"a": 1}, {"priority": {"gtx": 5}}]})", {"unknown operator 'gtx'", "/AND/1/priority/gtx"}},
      {R"({"AND": [{"a": 1}, {"priority": {"in": 5}}]})", {"'in' on 'priority' needs a list", "/AND/1/priority/in"}},
      {R"({"k": {"$nin": "x"}})", {"needs a list", "/k/$nin"}},
      {R"({"OR": []})", {"'OR' needs at least one filter", "/OR"}},
      {R"({"AND": {"a": 1}})", {"'AND' needs a list", "/AND"}},
      {R"({"NOT": []})", {"'NOT' needs at least one filter", "/NOT"}},
      {R"({"NOT": 3})", {"'NOT' needs a list of filters or one filter", "/NOT"}},
      {R"([{"a": 1}])", {"must be a JSON object, got array", "at /"}},
      {R"("a")", {"must be a JSON object, got string"}},
      {R"({"OR": [{"a": 1}, 7]})", {"expected a JSON object, got number", "/OR/1"}},
      {R"({"OR": [{"a": 1}, {}]})", {"empty filter object", "/OR/1"}},
      {R"({"$where": "x"})", {"unknown operator '$where'", "/$where"}},
      {R"({"k": {}})", {"no operator given for 'k'", "/k"}},
      {R"({"k": {"city": "Paris"}})", {"unknown operator 'city'", "/k/city"}},
      {R"({"k": {"EQ": 1}})", {"unknown operator 'EQ'"}},
      {R"({"k": {"gt": true}})", {"'gt' on 'k' needs a number or a string", "/k/gt"}},
      {R"({"k": {"lte": [1]}})", {"needs a number or a string"}},
      {R"({"k": {"icontains": 3}})", {"'icontains' on 'k' needs a string"}},
      {R"({"k": {"contains": null}})", {"needs a value"}},
      {R"({"created_at": {"gte": "last tuesday"}})", {"ISO-8601", "/created_at/gte"}},
      {R"({"updated_at": {"in": ["2024-01-01", 5]}})", {"ISO-8601", "/updated_at/in"}},
      {R"({"created_at": {"contains": "2024"}})", {"is a timestamp"}},
      {R"({"": 1})", {"empty field name"}},
      {R"({"a/b~c": {"bad": 1}})", {"/a~1b~0c/bad"}},
      {R"({"a": 1)", {"not valid JSON"}},
  };
  for (const auto& r : rows) {
    INFO(r.filter);
    const auto msg = error_of(r.filter);
    for (const char* p : r.parts) CHECK_THAT(msg, Catch::Contains(p));
  }
  CHECK_THROWS_AS(parse_filter(json(5)), validation_error);
  CHECK_THROWS_AS(parse_filter(json(nullptr)), validation_error);
  CHECK_THROWS_AS(json::parse(R"({"OR": []})").get<filter_expr>(), validation_error);
}

TEST_CASE("filter: the DSL builds the same trees as the JSON", "[filter]") {
  const std::pair<filter_expr, const char*> pairs[] = {
      {field("priority") >= 5, R"({"priority": {"gte": 5}})"},
      {field("priority") == 5, R"({"priority": 5})"},
      {field("tag").in({"a", "b"}), R"({"tag": ["a", "b"]})"},
      {field("tag").in({"a", "b"}), R"({"tag": {"$in": ["a", "b"]}})"},
      {field("tag").nin({"a"}), R"({"tag": {"nin": ["a"]}})"},
      {field("x").exists(), R"({"x": "*"})"},
      {!field("x"), R"({"NOT": {"x": "*"}})"},
      {field("title").contains("meet"), R"({"title": {"contains": "meet"}})"},
      {field("title").icontains("MEET"), R"({"title": {"icontains": "MEET"}})"},
      {field("s") != "x", R"({"s": {"ne": "x"}})"},
      {field("n") < 2.5, R"({"n": {"lt": 2.5}})"},
      {field("n") <= 2, R"({"n": {"lte": 2}})"},
      {field("n") > 2, R"({"n": {"gt": 2}})"},
      {field("address.city") == "Paris", R"({"address.city": {"eq": "Paris"}})"},
      {field("created_at") >= "2024-01-01", R"({"created_at": {"gte": "2024-01-01"}})"},
      {field("priority") >= 5 && (field("tag").in({"a", "b"}) || !field("x").exists()),
       R"({"AND": [{"priority": {"gte": 5}}, {"OR": [{"tag": ["a", "b"]}, {"NOT": [{"x": "*"}]}]}]})"},
      {field("a") == 1 && field("b") == 2 && field("c") == 3, R"({"AND": [{"a": 1}, {"AND": [{"b": 2}, {"c": 3}]}]})"},
      {field("a") == 1 || field("b") == 2 || field("c") == 3, R"({"OR": [{"a": 1}, {"b": 2}, {"c": 3}]})"},
      {field("a") >= 1 && field("a") <= 9, R"({"a": {"gte": 1, "lte": 9}})"},
      {field("user_id") == "a" || field("user_id") == "b", R"({"$or": [{"user_id": "a"}, {"user_id": "b"}]})"},
      {filter_expr{} && field("a") == 1, R"({"a": 1})"},
  };
  for (const auto& [dsl, text] : pairs) {
    INFO(text);
    CHECK(dsl == parse_filter(text));
    // and the canonical JSON reads back as the same tree
    CHECK(parse_filter(json(dsl)) == dsl);
  }
  CHECK_FALSE((field("a") == 1) == parse_filter(R"({"a": 2})"));
  CHECK_THROWS_AS(field("a").in(std::vector<json>{}) || filter_expr{}, validation_error);
  CHECK_THROWS_AS(field("$bad") == 1, validation_error);
  CHECK_THROWS_AS(field("AND") == 1, validation_error);
  CHECK_THROWS_AS(field("a") > true, validation_error);
  CHECK_THROWS_AS(field("created_at") > "yesterday", validation_error);
  filter_expr deep = field("a") == 1;
  CHECK_THROWS_AS([&] { for (int i = 0; i < 40; ++i) deep = !deep; }(), validation_error);
}

TEST_CASE("filter: Mem0's documented examples select what the docs say", "[filter]") {
  // A small corpus in the spirit of Mem0's metadata filtering and v2 filter pages.
  std::vector<record> rs;
  auto add = [&](std::string id, std::string user, std::string run, json meta, const char* created) {
    record r;
    r.id = std::move(id);
    r.user_id = std::move(user);
    r.run_id = std::move(run);
    r.metadata = std::move(meta);
    r.created_at = r.updated_at = parse_iso8601(created);
    rs.push_back(std::move(r));
  };
  add("m1", "alice", "", {{"category", "preferences"}}, "2024-01-05");
  add("m2", "alice", "", {{"category", "entertainment"}, {"type", "recommendation"}, {"priority", "high"}}, "2024-02-01");
  add("m3", "alice", "", {{"score", 0.9}, {"priority", 5}, {"confidence", 0.5}, {"rating", 3}}, "2024-03-01");
  add("m4", "alice", "", {{"score", 0.7}, {"priority", 9}, {"confidence", 0.5}, {"rating", 2}}, "2024-03-02");
  add("m5", "alice", "", {{"status", "active"}, {"archived", false}}, "2024-04-01");
  add("m6", "alice", "", {{"status", "active"}, {"archived", true}}, "2024-04-02");
  add("m7", "alice", "", {{"category", "food"}, {"status", "deleted"}}, "2024-05-01");
  add("m8", "alice", "", {{"category", "travel"}, {"status", "open"}}, "2024-05-02");
  add("m9", "alice", "", {{"title", "Team meeting notes"}, {"description", "Quarterly IMPORTANT review"}}, "2024-06-01");
  add("m10", "alice", "", {{"category", "work"}, {"priority", 8}, {"status", "in_progress"}}, "2024-07-01");
  add("m11", "alice", "", {{"category", "work"}, {"priority", 8}, {"status", "completed"}}, "2024-07-02");
  add("m12", "alice", "", {{"category", "urgent"}, {"priority", 1}}, "2024-08-01");
  add("m13", "alex", "r1", {{"categories", {"finance", "personal_information"}}}, "2024-09-01");
  add("m14", "alex", "", {{"categories", {"travel"}}}, "2025-01-01");
  add("m15", "bob", "r2", {{"category", "work"}, {"priority", 10}}, "2024-07-03");

  auto ids = [&](const char* f) {
    const auto expr = parse_filter(f);
    std::set<std::string> out;
    filter_columns cols;
    std::vector<slot_id> slots;
    for (std::size_t i = 0; i < rs.size(); ++i) {
      cols.assign(static_cast<slot_id>(i), rs[i]);
      slots.push_back(static_cast<slot_id>(i));
    }
    const auto bm = cols.select(expr, slots);
    for (std::size_t i = 0; i < rs.size(); ++i) {
      const bool m = filter_matches(expr, rs[i]);
      CHECK(m == bm.test(static_cast<slot_id>(i)));
      if (m) out.insert(rs[i].id);
    }
    return out;
  };
  using S = std::set<std::string>;
  CHECK(ids(R"({"category": "preferences"})") == S{"m1"});
  CHECK(ids(R"({"category": "entertainment", "type": "recommendation", "priority": "high"})") == S{"m2"});
  CHECK(ids(R"({"score": {"gt": 0.8}, "priority": {"gte": 5}, "confidence": {"lt": 0.9}, "rating": {"lte": 3}})") ==
        S{"m3"});
  CHECK(ids(R"({"status": {"eq": "active"}, "archived": {"ne": true}})") == S{"m5"});
  CHECK(ids(R"({"category": {"in": ["food", "travel", "entertainment"]}, "status": {"nin": ["deleted", "archived"]}})") ==
        S{"m2", "m8"});  // m2 has no status: nin matches a missing field
  CHECK(ids(R"({"title": {"contains": "meeting"}, "description": {"icontains": "important"}})") == S{"m9"});
  CHECK(ids(R"({"title": {"contains": "Meeting"}})").empty());
  CHECK(ids(R"({"AND": [{"user_id": "alice"}, {"category": "work"}, {"priority": {"gte": 7}}, {"status": {"ne": "completed"}}]})") ==
        S{"m10"});
  CHECK(ids(R"({"AND": [{"user_id": "alice"}, {"OR": [{"category": "urgent"}, {"priority": {"gte": 9}}]}]})") ==
        S{"m4", "m12"});
  CHECK(ids(R"({"AND": [{"user_id": "alice"}, {"NOT": {"category": "work"}}, {"category": "*"}]})") ==
        S{"m1", "m2", "m7", "m8", "m12"});
  CHECK(ids(R"({"AND": [{"user_id": "alex"}, {"run_id": "*"}]})") == S{"m13"});
  CHECK(ids(R"({"categories": {"contains": "finance"}})") == S{"m13"});
  CHECK(ids(R"({"categories": {"in": ["personal_information"]}})") == S{"m13"});
  CHECK(ids(R"({"AND": [{"user_id": "alex"}, {"created_at": {"gte": "2024-01-01", "lte": "2024-12-31"}}]})") == S{"m13"});
  // 2024-12-31T20:00-05:00 is 2025-01-01T01:00Z: m14 (2025-01-01T00:00Z) is before it, though not as text.
  CHECK(ids(R"({"OR": [{"user_id": "alex"}, {"user_id": "bob"}], "created_at": {"lt": "2024-12-31T20:00:00-05:00"}})") ==
        S{"m13", "m14", "m15"});
  CHECK(ids(R"({"user_id": {"in": ["alex", "bob"]}, "updated_at": {"gt": "2024-12-31T18:00:00-05:00"}})") == S{"m14"});
}

TEST_CASE("filter: scope predicates select partitions in three-valued logic", "[filter]") {
  const scope a{"a", "", ""}, b{"b", "planner", ""}, c{"c", "", "r1"};
  auto tri = [](const char* f, const scope& s) { return filter_scope_may_match(parse_filter(f), s); };
  const char* either = R"({"OR": [{"user_id": "a"}, {"user_id": "b"}]})";
  CHECK(tri(either, a) == filter_tri::yes);
  CHECK(tri(either, b) == filter_tri::yes);
  CHECK(tri(either, c) == filter_tri::no);
  CHECK(tri(R"({"user_id": "a", "priority": 5})", a) == filter_tri::maybe);
  CHECK(tri(R"({"user_id": "a", "priority": 5})", b) == filter_tri::no);
  CHECK(tri(R"({"NOT": {"user_id": "a"}})", a) == filter_tri::no);
  CHECK(tri(R"({"OR": [{"priority": 5}, {"user_id": "c"}]})", a) == filter_tri::maybe);
  CHECK(tri(R"({"agent_id": "*"})", a) == filter_tri::no);
  CHECK(tri(R"({"agent_id": "*"})", b) == filter_tri::yes);
  CHECK(tri(R"({"run_id": {"ne": "r1"}})", c) == filter_tri::no);

  CHECK(filter_names_scope(parse_filter(either)));
  CHECK(filter_names_scope(parse_filter(R"({"user_id": {"in": ["a", "b"]}})")));
  CHECK(filter_names_scope(parse_filter(R"({"AND": [{"user_id": "a"}, {"OR": [{"x": 1}, {"y": 2}]}]})")));
  CHECK_FALSE(filter_names_scope(parse_filter(R"({"OR": [{"user_id": "a"}, {"x": 1}]})")));
  CHECK_FALSE(filter_names_scope(parse_filter(R"({"user_id": {"ne": "a"}})")));
  CHECK_FALSE(filter_names_scope(parse_filter(R"({"user_id": "*"})")));
  CHECK_FALSE(filter_names_scope(parse_filter(R"({"NOT": {"user_id": "a"}})")));
  CHECK_FALSE(filter_names_scope(parse_filter(R"({"priority": 1})")));
  CHECK_FALSE(filter_names_scope(filter_expr{}));
}

TEST_CASE("filter: columns follow reassignment and erasure", "[filter]") {
  filter_columns cols;
  record r = sample_record();
  cols.assign(5, r);
  const auto f = parse_filter(R"({"obj.city": "Paris"})");
  CHECK(cols.matches(f, 5));
  r.metadata = {{"obj", {{"city", "Oslo"}}}};
  cols.assign(5, r);
  CHECK_FALSE(cols.matches(f, 5));
  CHECK_FALSE(cols.matches(parse_filter(R"({"n": 5})"), 5));  // the old key is gone
  CHECK(cols.matches(parse_filter(R"({"n": {"ne": 5}})"), 5));
  cols.erase(5);
  CHECK_FALSE(cols.contains(5));
  CHECK_FALSE(cols.matches(filter_expr{}, 5));
  CHECK(cols.size() == 0);
  const std::vector<slot_id> none;
  CHECK(cols.select(f, none).empty());
}

TEST_CASE("filter: the Platform's metadata form names metadata keys", "[filter]") {
  const auto f = parse_filter(R"({"metadata": {"food": "pizza", "rating": {"gte": 4}}, "user_id": "u"})");
  CHECK(nlohmann::json(f) == nlohmann::json::parse(
                                 R"({"AND": [{"food": {"eq": "pizza"}}, {"rating": {"gte": 4}}, {"user_id": {"eq": "u"}}]})"));
  record r;
  r.user_id = "u";
  r.metadata = {{"food", "pizza"}, {"rating", 5}};
  CHECK(filter_matches(f, r));
  r.metadata["rating"] = 3;
  CHECK_FALSE(filter_matches(f, r));
  // an object of operators only is a condition on a key named "metadata"
  const auto own = parse_filter(R"({"metadata": {"eq": 5}})");
  CHECK(nlohmann::json(own) == nlohmann::json::parse(R"({"metadata": {"eq": 5}})"));
  // record fields and logic go beside it, with an error naming the key and where
  CHECK_THROWS_WITH(parse_filter(R"({"metadata": {"user_id": "u"}})"), Catch::Contains("/metadata/user_id"));
  CHECK_THROWS_WITH(parse_filter(R"({"metadata": {"OR": [{"a": 1}]}})"), Catch::Contains("not a metadata key"));
}
