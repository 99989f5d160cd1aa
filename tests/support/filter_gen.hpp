#pragma once
// Random filters and records for property tests: a seeded generator of filter trees over metadata, scope,
// time and structured-attribute fields (every operator), and of records that such filters discriminate.
#include <engram/engram.hpp>
#include <engram/filter/dsl.hpp>
#include <engram/filter/parse.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace engram_test {

using namespace engram;
using nlohmann::json;

struct gen {
  std::mt19937 rng;
  explicit gen(unsigned seed) : rng(seed) {}

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); }
  bool coin(double p = 0.5) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; }

  json scalar() {
    static const char* strings[] = {"a", "b", "ab", "B", "Ab", "", "2024-01-01", "2024-01-01T01:00:00+02:00",
                                    "2023-12-31T23:30:00Z", "zeta"};
    switch (pick(6)) {
      case 0: return pick(7) - 3;
      case 1: return (pick(13) - 6) * 0.5;
      case 2: return strings[pick(10)];
      case 3: return coin();
      case 4: return nullptr;
      default: return static_cast<std::uint64_t>(pick(4));
    }
  }
  json value() {
    const int k = pick(10);
    if (k == 0) {
      json a = json::array();
      for (int i = pick(4); i > 0; --i) a.push_back(scalar());
      return a;
    }
    if (k == 1) return json{{"x", scalar()}, {"y", scalar()}};
    return scalar();
  }
  json metadata() {
    json m = json::object();
    for (const char* key : {"k0", "k1", "k2", "k3", "k4", "nest"})
      if (coin(0.7)) m[key] = std::string(key) == "nest" ? json{{"x", scalar()}} : value();
    return m;
  }
  std::string field_name() {
    static const char* names[] = {"k0", "k1", "k2", "k3", "k4", "nest.x", "nest", "absent", "user_id",
                                  "agent_id", "run_id", "actor_id", "role", "created_at", "updated_at",
                                  "valid_from", "invalid_at", "structured_attributes.day",
                                  "structured_attributes.hour", "structured_attributes.week_of_year",
                                  "structured_attributes.day_of_week", "structured_attributes.is_weekend"};
    return names[pick(22)];
  }
  filter_expr leaf() {
    while (true) {
      const auto name = field_name();
      const bool time_field = is_time_field(classify_filter_field(name));
      const bool attribute = classify_filter_field(name) == filter_field::structured_attribute;
      const auto op = static_cast<filter_op>(pick(11));
      json operand;
      auto one = [&]() -> json {
        if (time_field) {
          static const char* ts[] = {"2024-01-01", "2024-01-01T12:00:00+05:00", "2024-01-02T00:00:00Z",
                                     "2023-12-31T22:00:00-03:00"};
          return ts[pick(4)];
        }
        if (name == "user_id") return std::string("u") + std::to_string(pick(3));
        if (attribute) {
          if (name.ends_with("day_of_week")) return coin() ? "sunday" : "monday";
          if (name.ends_with("is_weekend")) return coin();
          return pick(54);  // covers day, hour and week numbers, with some values never seen
        }
        return coin(0.1) ? value() : scalar();
      };
      if (op == filter_op::in || op == filter_op::nin) {
        operand = json::array();
        for (int i = pick(4); i > 0; --i) operand.push_back(one());
      } else if (op == filter_op::icontains) {
        static const char* needles[] = {"a", "B", "ab", "", "2024"};
        operand = needles[pick(5)];
      } else {
        operand = one();
      }
      try {
        return make_filter_predicate(name, op, operand);
      } catch (const validation_error&) {
        // an operand the grammar refuses for this operator: draw again
      }
    }
  }
  filter_expr tree(int depth) {
    if (depth == 0 || coin(0.35)) return leaf();
    std::vector<filter_expr> kids;
    for (int i = 1 + pick(3); i > 0; --i) kids.push_back(tree(depth - 1));
    switch (pick(3)) {
      case 0: return make_filter_and(std::move(kids));
      case 1: return make_filter_or(std::move(kids));
      default: return make_filter_not(std::move(kids));
    }
  }
  record rec(int i) {
    record r;
    r.id = "id-" + std::to_string(i);
    r.user_id = "u" + std::to_string(pick(3));
    r.agent_id = coin() ? "g0" : "";
    r.run_id = coin(0.3) ? "r0" : "";
    r.actor_id = coin() ? (coin() ? "A" : "b") : "";
    r.role = coin() ? "user" : "assistant";
    r.created_at = parse_iso8601("2023-12-31T12:00:00Z") + std::chrono::hours(pick(48));
    r.updated_at = r.created_at + std::chrono::hours(pick(3));
    if (coin()) r.valid_from = r.created_at - std::chrono::hours(pick(24 * 9));
    if (coin(0.3)) r.invalid_at = r.created_at + std::chrono::hours(pick(3));
    r.metadata = metadata();
    return r;
  }
};

}  // namespace engram_test
