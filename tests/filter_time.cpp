// Time in filters: valid_from / invalid_at as instants, and Mem0's structured_attributes (derived from a
// memory's valid_since() in UTC), returned with every record and filterable per record and over columns alike.
#include <engram/engram.hpp>
#include <engram/filter/dsl.hpp>
#include <engram/filter/eval.hpp>
#include <engram/filter/parse.hpp>
#include <engram/json.hpp>
#include <engram/temporal/structured_attributes.hpp>

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <ctime>
#include <set>
#include <string>
#include <vector>

using namespace engram;
using nlohmann::json;

namespace {

structured_attributes at(const char* iso) { return structured_attributes_of(parse_iso8601(iso)); }

record rec(std::string id, const char* created, const char* valid_from = nullptr, const char* invalid_at = nullptr) {
  record r;
  r.id = std::move(id);
  r.memory = "m " + r.id;
  r.user_id = "u";
  r.created_at = r.updated_at = parse_iso8601(created);
  if (valid_from) r.valid_from = parse_iso8601(valid_from);
  if (invalid_at) r.invalid_at = parse_iso8601(invalid_at);
  return r;
}

// a: no valid_from (valid since created_at, a wednesday); b: monday of ISO week 1 of 2025, contradicted;
// c: sunday of ISO week 53 of 2020; d: a leap day, contradicted.
std::vector<record> sample() {
  return {rec("a", "2025-03-12T12:34:56Z"),
          rec("b", "2025-06-01T00:00:00Z", "2024-12-30T08:00:00Z", "2025-01-05T00:00:00Z"),
          rec("c", "2025-01-01T00:00:00Z", "2021-01-03T23:59:00Z"),
          rec("d", "2024-03-01T00:00:00Z", "2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z")};
}

using ids = std::set<std::string>;

/// The ids `f` selects per record; the column store must give the same answer by slot, by bitmap and by count.
ids matching(const filter_expr& f, const std::vector<record>& recs) {
  filter_columns cols;
  std::vector<slot_id> slots;
  for (std::size_t i = 0; i < recs.size(); ++i) {
    slots.push_back(static_cast<slot_id>(2 * i + 1));
    cols.assign(slots.back(), recs[i]);
  }
  const auto bits = cols.select(f, slots);
  const auto every = cols.select(f);
  ids out;
  for (std::size_t i = 0; i < recs.size(); ++i) {
    const bool ref = filter_matches(f, recs[i]);
    CHECK(cols.matches(f, slots[i]) == ref);
    CHECK(bits.test(slots[i]) == ref);
    CHECK(every.test(slots[i]) == ref);
    if (ref) out.insert(recs[i].id);
  }
  CHECK(cols.count(f, slots) == out.size());
  CHECK(every.count() == out.size());
  return out;
}

ids matching(const char* filter) {
  INFO(filter);
  return matching(parse_filter(filter), sample());
}

}  // namespace

TEST_CASE("filter_time: structured attributes of known dates", "[filter][time]") {
  const auto mem0 = at("2025-03-12T12:34:56Z");  // Mem0's documented example
  CHECK(mem0.year == 2025);
  CHECK(mem0.month == 3);
  CHECK(mem0.day == 12);
  CHECK(mem0.quarter == 1);
  CHECK(mem0.hour == 12);
  CHECK(mem0.minute == 34);
  CHECK(mem0.day_of_week_name() == "wednesday");
  CHECK(mem0.day_of_year == 71);
  CHECK(mem0.week_of_year == 11);
  CHECK_FALSE(mem0.is_weekend);
  CHECK(json(mem0) == json::parse(R"({"day": 12, "hour": 12, "year": 2025, "month": 3, "minute": 34, "quarter": 1,
                                      "is_weekend": false, "day_of_week": "wednesday", "day_of_year": 71,
                                      "week_of_year": 11})"));

  const auto sunday = at("2024-06-02T18:05:00Z");
  CHECK(sunday.day_of_week_name() == "sunday");
  CHECK(sunday.is_weekend);
  CHECK(sunday.quarter == 2);
  CHECK(at("2024-06-01T00:00:00Z").is_weekend);  // saturday
  CHECK_FALSE(at("2024-06-03T00:00:00Z").is_weekend);

  const auto dec30 = at("2024-12-30T00:00:00Z");  // a monday in ISO week 1 of 2025
  CHECK(dec30.week_of_year == 1);
  CHECK(dec30.year == 2024);
  CHECK(dec30.day_of_year == 365);
  CHECK(dec30.day_of_week_name() == "monday");
  const auto jan3 = at("2021-01-03T00:00:00Z");  // a sunday in ISO week 53 of 2020
  CHECK(jan3.week_of_year == 53);
  CHECK(jan3.day_of_year == 3);
  CHECK(jan3.is_weekend);
  CHECK(at("2021-01-04T00:00:00Z").week_of_year == 1);
  const auto last = at("2024-12-31T23:59:59.999999Z");
  CHECK(last.day_of_year == 366);
  CHECK(last.quarter == 4);
  CHECK(last.hour == 23);
  CHECK(last.minute == 59);
  CHECK(at("2024-02-29T00:00:00Z").day_of_year == 60);  // leap day
  CHECK(at("2023-03-01T00:00:00Z").day_of_year == 60);  // no leap day

  // UTC, whatever offset the time was written with; before 1970 too.
  const auto shifted = at("2025-03-12T01:00:00+05:00");
  CHECK(shifted.day == 11);
  CHECK(shifted.hour == 20);
  CHECK(shifted.day_of_week_name() == "tuesday");
  const auto before = at("1969-12-31T23:30:00Z");
  CHECK(before.year == 1969);
  CHECK(before.hour == 23);
  CHECK(before.day_of_week_name() == "wednesday");
}

TEST_CASE("filter_time: weeks and weekdays agree with the C library over fifty years", "[filter][time]") {
  using namespace std::chrono;
  const sys_days first{year{1990} / January / 1}, end{year{2040} / January / 1};
  int wrong = 0;
  for (sys_days d = first; d < end; d += days{1}) {
    const std::time_t t = system_clock::to_time_t(d);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%V %u %j %m %d", &tm);
    const auto a = structured_attributes_of(timestamp(d));
    char ours[32];
    std::snprintf(ours, sizeof ours, "%02d %d %03d %02d %02d", a.week_of_year, a.day_of_week + 1, a.day_of_year,
                  a.month, a.day);
    if (std::string(buf) != ours) {
      ++wrong;
      UNSCOPED_INFO(buf << " != " << ours);
    }
  }
  CHECK(wrong == 0);
}

TEST_CASE("filter_time: valid_from and invalid_at are instants, per record and over columns", "[filter][time]") {
  // valid_from falls back to created_at: a, which has none, is valid since 2025-03-12T12:34:56Z
  CHECK(matching(R"({"valid_from": {"gte": "2025-03-12T12:34:56Z"}})") == ids{"a"});  // equal instants
  CHECK(matching(R"({"valid_from": {"gt": "2025-03-12T12:34:56Z"}})").empty());
  CHECK(matching(R"({"valid_from": {"gte": "2025-03-12T13:34:56+01:00"}})") == ids{"a"});  // the same instant
  CHECK(matching(R"({"valid_from": {"lte": "2025-03-12T12:34:55.999999Z"}})") == ids{"b", "c", "d"});
  CHECK(matching(R"({"valid_from": {"lt": "2022-01-01"}})") == ids{"c"});
  CHECK(matching(R"({"valid_from": "2024-02-29"})") == ids{"d"});
  CHECK(matching(R"({"valid_from": ["2024-02-29", "2021-01-03T23:59:00Z"]})") == ids{"c", "d"});
  CHECK(matching(R"({"valid_from": "*"})") == ids{"a", "b", "c", "d"});  // never missing

  // invalid_at is missing while the fact holds
  CHECK(matching(R"({"invalid_at": "*"})") == ids{"b", "d"});  // was contradicted
  CHECK(matching(R"({"NOT": {"invalid_at": "*"}})") == ids{"a", "c"});
  CHECK(matching(R"({"invalid_at": {"ne": "2025-01-05T00:00:00Z"}})") == ids{"a", "c", "d"});
  CHECK(matching(R"({"invalid_at": {"nin": ["2025-01-05T00:00:00Z", "2024-03-01"]}})") == ids{"a", "c"});
  CHECK(matching(R"({"invalid_at": {"gt": "2000-01-01"}})") == ids{"b", "d"});  // never a missing one
  CHECK(matching(R"({"invalid_at": {"lt": "2100-01-01"}})") == ids{"b", "d"});
  CHECK(matching(R"({"invalid_at": {"lte": "2025-01-05T01:00:00+01:00"}})") == ids{"b", "d"});
  CHECK(matching(R"({"invalid_at": {"lt": "2025-01-05T01:00:00+01:00"}})") == ids{"d"});

  // valid at an instant: began on or before it, and not contradicted by then
  CHECK(matching(R"({"valid_from": {"lte": "2025-01-02"},
                     "OR": [{"NOT": {"invalid_at": "*"}}, {"invalid_at": {"gt": "2025-01-02"}}]})") == ids{"b", "c"});

  // the DSL builds the same trees
  CHECK((field("invalid_at") >= "2024-03-01") == parse_filter(R"({"invalid_at": {"gte": "2024-03-01"}})"));
  CHECK(matching(field("valid_from") < "2024-12-31" && field("invalid_at").exists(), sample()) == ids{"b", "d"});
}

TEST_CASE("filter_time: structured attributes filter per record and over columns alike", "[filter][time]") {
  CHECK(matching(R"({"structured_attributes.year": {"gte": 2025}})") == ids{"a"});
  CHECK(matching(R"({"structured_attributes.year": 2024})") == ids{"b", "d"});
  CHECK(matching(R"({"structured_attributes.week_of_year": 1})") == ids{"b"});
  CHECK(matching(R"({"structured_attributes.week_of_year": {"gte": 53}})") == ids{"c"});
  CHECK(matching(R"({"structured_attributes.day_of_week": "wednesday"})") == ids{"a"});
  CHECK(matching(R"({"structured_attributes.day_of_week": ["sunday", "monday"]})") == ids{"b", "c"});
  CHECK(matching(R"({"structured_attributes.day_of_week": {"ne": "thursday"}})") == ids{"a", "b", "c"});
  CHECK(matching(R"({"structured_attributes.is_weekend": true})") == ids{"c"});
  CHECK(matching(R"({"structured_attributes.is_weekend": {"ne": true}})") == ids{"a", "b", "d"});
  CHECK(matching(R"({"structured_attributes.day_of_year": 60})") == ids{"d"});
  CHECK(matching(R"({"structured_attributes.quarter": {"in": [1]}})") == ids{"a", "c", "d"});
  CHECK(matching(R"({"structured_attributes.hour": {"gte": 12}})") == ids{"a", "c"});
  CHECK(matching(R"({"structured_attributes.minute": {"lt": 1.5}})") == ids{"b", "d"});  // numbers compare as numbers
  CHECK(matching(R"({"structured_attributes.month": {"ne": 3}})") == ids{"b", "c", "d"});
  CHECK(matching(R"({"structured_attributes.day": {"nin": [12, 30]}})") == ids{"c", "d"});
  CHECK(matching(R"({"structured_attributes.minute": "*"})") == ids{"a", "b", "c", "d"});
  CHECK(matching(R"({"NOT": {"structured_attributes.is_weekend": false}})") == ids{"c"});

  // the nested form is the dotted one, entry by entry
  const auto nested = parse_filter(R"({"structured_attributes": {"year": 2024, "month": {"lte": 2}}})");
  CHECK(nested == parse_filter(R"({"structured_attributes.year": 2024, "structured_attributes.month": {"lte": 2}})"));
  CHECK(parse_filter(json(nested)) == nested);  // its canonical JSON is dotted
  CHECK(matching(nested, sample()) == ids{"d"});
  CHECK((field("structured_attributes.day_of_week") == "monday") ==
        parse_filter(R"({"structured_attributes.day_of_week": "monday"})"));

  // derived from valid_since(): a record without valid_from uses created_at, and columns follow reassignment
  record r = rec("r", "2025-03-15T10:00:00Z");  // a saturday
  const auto weekend = parse_filter(R"({"structured_attributes.is_weekend": true})");
  filter_columns cols;
  cols.assign(0, r);
  CHECK(filter_matches(weekend, r));
  CHECK(cols.matches(weekend, 0));
  r.valid_from = parse_iso8601("2025-03-12T10:00:00Z");  // a wednesday
  r.invalid_at = parse_iso8601("2025-03-13T10:00:00Z");
  cols.assign(0, r);
  CHECK_FALSE(filter_matches(weekend, r));
  CHECK_FALSE(cols.matches(weekend, 0));
  CHECK(cols.matches(parse_filter(R"({"invalid_at": "*"})"), 0));
  r.invalid_at.reset();
  cols.assign(0, r);
  CHECK_FALSE(cols.matches(parse_filter(R"({"invalid_at": "*"})"), 0));  // the old instant is gone
  cols.erase(0);
  CHECK_FALSE(cols.matches(parse_filter(R"({"structured_attributes.year": 2025})"), 0));

  // not scope fields: a partition is judged only by its ids
  const auto f = parse_filter(R"({"structured_attributes.year": 2025, "user_id": "x"})");
  CHECK(filter_scope_may_match(parse_filter(R"({"structured_attributes.year": 2025})"), user("x")) == filter_tri::maybe);
  CHECK(filter_scope_may_match(f, user("y")) == filter_tri::no);
  CHECK(filter_scope_may_match(f, user("x")) == filter_tri::maybe);
  CHECK_FALSE(filter_names_scope(parse_filter(R"({"valid_from": {"gte": "2024-01-01"}})")));
}

TEST_CASE("filter_time: bad operands and unknown attributes are validation errors", "[filter][time]") {
  struct bad {
    const char* filter;
    std::vector<const char*> says;
  };
  const std::vector<bad> cases = {
      {R"({"valid_from": {"gte": "last tuesday"}})", {"ISO-8601", "/valid_from/gte"}},
      {R"({"invalid_at": {"lt": 5}})", {"ISO-8601", "/invalid_at/lt"}},
      {R"({"invalid_at": {"in": ["2024-01-01", "soon"]}})", {"ISO-8601", "\"soon\""}},
      {R"({"valid_from": {"contains": "2024"}})", {"is a timestamp"}},
      {R"({"invalid_at": {"icontains": "2024"}})", {"is a timestamp"}},
      {R"({"structured_attributes.foo": 1})",
       {"unknown structured attribute 'structured_attributes.foo'", "year", "week_of_year", "is_weekend"}},
      {R"({"structured_attributes": {"foo": 1}})", {"unknown structured attribute", "/structured_attributes/foo"}},
      {R"({"structured_attributes": {"eq": 2025}})", {"unknown structured attribute"}},
      {R"({"structured_attributes": "*"})", {"unknown structured attribute"}},
      {R"({"structured_attributes.year.x": 1})", {"unknown structured attribute"}},
      {R"({"structured_attributes.year": "2025"})", {"expected a number", "\"2025\""}},
      {R"({"structured_attributes.month": {"in": [1, "2"]}})", {"expected a number"}},
      {R"({"structured_attributes.hour": {"contains": 1}})", {"is a number"}},
      {R"({"structured_attributes.day_of_week": "Monday"})", {"weekday name", "\"Monday\""}},
      {R"({"structured_attributes.day_of_week": {"gt": "monday"}})", {"a weekday is a name"}},
      {R"({"structured_attributes.is_weekend": 1})", {"true or false"}},
      {R"({"structured_attributes.is_weekend": {"lt": true}})", {"needs a number or a string"}},
      {R"({"structured_attributes.is_weekend": {"gte": 1}})", {"is a boolean"}},
      {R"({"metadata": {"valid_from": "2024-01-01"}})", {"not a metadata key"}},
  };
  for (const auto& c : cases) {
    INFO(c.filter);
    for (const char* s : c.says) CHECK_THROWS_WITH(parse_filter(c.filter), Catch::Contains(s));
  }
  CHECK_THROWS_AS(field("structured_attributes.weekday") == "monday", validation_error);
  CHECK_THROWS_AS(field("invalid_at") > "yesterday", validation_error);
}

TEST_CASE("filter_time: a record's JSON carries its structured attributes, which reading ignores", "[filter][time]") {
  record r = rec("r", "2025-03-20T09:00:00Z");
  CHECK(json(r)["structured_attributes"] == json(at("2025-03-20T09:00:00Z")));  // from created_at
  r.valid_from = parse_iso8601("2025-03-12T12:34:56Z");
  const json j = r;
  CHECK(j["structured_attributes"]["day_of_week"] == "wednesday");
  CHECK(j["structured_attributes"]["week_of_year"] == 11);
  CHECK(j["structured_attributes"].size() == 10);
  CHECK(j.get<record>() == r);
  CHECK(record_to_json(r, true).get<record>() == r);
  json odd = j;
  odd["structured_attributes"] = "whatever a client sends";
  CHECK(odd.get<record>() == r);
}

TEST_CASE("filter_time: a memory filters on valid_from and structured attributes", "[filter][time]") {
  memory mem;
  const auto old_id = mem.add("Lived in Lisbon", user("u"), {.infer = false, .timestamp = parse_iso8601("2021-01-03T10:00:00Z")})
                          .results.at(0)
                          .id;
  const auto new_id = mem.add("Lives in Oslo", user("u"), {.infer = false}).results.at(0).id;
  auto listed = [&](const char* filter) {
    ids out;
    for (const auto& r : mem.get_all(user("u"), {.filter = parse_filter(filter)})) out.insert(r.id);
    for (const auto& h : mem.search("lives in", user("u"), {.filter = parse_filter(filter)}))
      CHECK(out.count(h.record.id) == 1);
    return out;
  };
  CHECK(listed(R"({"structured_attributes.year": 2021})") == ids{old_id});
  CHECK(listed(R"({"structured_attributes": {"week_of_year": 53, "is_weekend": true}})") == ids{old_id});
  CHECK(listed(R"({"valid_from": {"gte": "2022-01-01"}})") == ids{new_id});
  CHECK(listed(R"({"invalid_at": "*"})").empty());
  CHECK(json(*mem.get(old_id))["structured_attributes"]["day_of_week"] == "sunday");
}
