#pragma once
/// @file filter/expr.hpp
/// Metadata filter expression trees: predicates on one field, combined with AND / OR / NOT. Trees own their
/// children by value, are validated when built (by the JSON parser or the DSL), and mean the same thing
/// wherever they are evaluated (per record, over columns, against a partition's scope).

#include <engram/error.hpp>
#include <engram/temporal/structured_attributes.hpp>
#include <engram/time.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace engram::inline v0 {

/// What a predicate tests. `exists` is the `"*"` wildcard: present and not null.
enum class filter_op : std::uint8_t { eq, ne, gt, gte, lt, lte, in, nin, contains, icontains, exists };

/// The operator's name as the JSON grammar spells it ("eq", "in", ...; "*" for exists).
inline constexpr std::string_view to_string(filter_op op) noexcept {
  switch (op) {
    case filter_op::eq: return "eq";
    case filter_op::ne: return "ne";
    case filter_op::gt: return "gt";
    case filter_op::gte: return "gte";
    case filter_op::lt: return "lt";
    case filter_op::lte: return "lte";
    case filter_op::in: return "in";
    case filter_op::nin: return "nin";
    case filter_op::contains: return "contains";
    case filter_op::icontains: return "icontains";
    case filter_op::exists: return "*";
  }
  return "eq";
}

/// The operator named `name` (bare or `$`-prefixed, lower case), or std::nullopt for an unknown name.
inline std::optional<filter_op> parse_filter_op(std::string_view name) noexcept {
  if (!name.empty() && name.front() == '$') name.remove_prefix(1);
  for (const auto op : {filter_op::eq, filter_op::ne, filter_op::gt, filter_op::gte, filter_op::lt, filter_op::lte,
                        filter_op::in, filter_op::nin, filter_op::contains, filter_op::icontains})
    if (to_string(op) == name) return op;
  return std::nullopt;
}

/// Which value of a record a predicate reads: a metadata key (or dotted path), one of the record's fields, or
/// one of the structured_attributes derived from its valid_since() (`structured_attributes.<name>`).
enum class filter_field : std::uint8_t {
  metadata, user_id, agent_id, run_id, actor_id, role, created_at, updated_at, valid_from, invalid_at,
  structured_attribute
};

/// The prefix of the structured attribute fields (`structured_attributes.year`, ...).
inline constexpr std::string_view structured_attributes_prefix = "structured_attributes";

/// The record field a name denotes; any other name is a metadata key or dotted path. `structured_attributes`
/// and every `structured_attributes.*` name are attribute fields (an unknown attribute fails validation).
inline constexpr filter_field classify_filter_field(std::string_view name) noexcept {
  if (name == "user_id") return filter_field::user_id;
  if (name == "agent_id") return filter_field::agent_id;
  if (name == "run_id") return filter_field::run_id;
  if (name == "actor_id") return filter_field::actor_id;
  if (name == "role") return filter_field::role;
  if (name == "created_at") return filter_field::created_at;
  if (name == "updated_at") return filter_field::updated_at;
  if (name == "valid_from") return filter_field::valid_from;
  if (name == "invalid_at") return filter_field::invalid_at;
  if (name.starts_with(structured_attributes_prefix) &&
      (name.size() == structured_attributes_prefix.size() || name[structured_attributes_prefix.size()] == '.'))
    return filter_field::structured_attribute;
  return filter_field::metadata;
}

/// True for the fields whose values are instants (created_at, updated_at, valid_from, invalid_at).
inline constexpr bool is_time_field(filter_field f) noexcept {
  return f == filter_field::created_at || f == filter_field::updated_at || f == filter_field::valid_from ||
         f == filter_field::invalid_at;
}

/// True for the three ids that partition a memory (user_id, agent_id, run_id).
inline constexpr bool is_scope_field(filter_field f) noexcept {
  return f == filter_field::user_id || f == filter_field::agent_id || f == filter_field::run_id;
}

/// Deepest nesting a filter may have (logical levels plus the depth of operand values), counted as JSON levels.
inline constexpr std::size_t max_filter_depth = 32;

/// One test on one field. Build it with make_filter_predicate (or the parser / DSL), which validates it.
struct filter_predicate {
  std::string field;                             ///< metadata key, dotted path, record field name, or
                                                 ///< structured_attributes.<name>
  filter_field kind = filter_field::metadata;    ///< derived from `field`
  structured_attribute attribute = structured_attribute::year;  ///< derived: which one, for kind structured_attribute
  filter_op op = filter_op::eq;
  nlohmann::json value;                          ///< the operand: a list for in/nin, null for exists
  /// Derived: for each operand (the one value, or each list element for in/nin), the instant it names when it
  /// is an ISO-8601 string. Strings that are both timestamps compare chronologically.
  std::vector<std::optional<timestamp>> times;

  friend bool operator==(const filter_predicate& a, const filter_predicate& b) {
    return a.field == b.field && a.op == b.op && a.value == b.value;
  }
};

struct filter_expr;

/// Every child matches.
struct filter_and {
  std::vector<filter_expr> children;
};
/// At least one child matches.
struct filter_or {
  std::vector<filter_expr> children;
};
/// No child matches (NOT over a list means "none of them").
struct filter_not {
  std::vector<filter_expr> children;
};

/// A filter: a tree of predicates. Default-constructed it is empty and matches every record.
/// Values, not pointers: copying a filter copies the tree; it is immutable in use and safe to share between threads.
struct filter_expr {
  using node_type = std::variant<std::monostate, filter_predicate, filter_and, filter_or, filter_not>;
  node_type node;

  filter_expr() = default;
  filter_expr(filter_predicate p) : node(std::move(p)) {}  // NOLINT: a predicate is a filter
  filter_expr(filter_and n) : node(std::move(n)) {}        // NOLINT
  filter_expr(filter_or n) : node(std::move(n)) {}         // NOLINT
  filter_expr(filter_not n) : node(std::move(n)) {}        // NOLINT

  /// True for the empty filter (matches everything).
  [[nodiscard]] bool empty() const noexcept { return std::holds_alternative<std::monostate>(node); }

  friend bool operator==(const filter_expr& a, const filter_expr& b);
};

inline bool operator==(const filter_and& a, const filter_and& b) { return a.children == b.children; }
inline bool operator==(const filter_or& a, const filter_or& b) { return a.children == b.children; }
inline bool operator==(const filter_not& a, const filter_not& b) { return a.children == b.children; }
inline bool operator==(const filter_expr& a, const filter_expr& b) { return a.node == b.node; }

namespace detail {
/// True when `j` nests deeper than `limit` levels (a scalar is one level). Recursion is bounded by `limit`.
inline bool json_deeper_than(const nlohmann::json& j, std::size_t limit) {
  if (limit == 0) return true;
  if (!j.is_structured() || j.empty()) return false;
  for (const auto& x : j)
    if (json_deeper_than(x, limit - 1)) return true;
  return false;
}
/// Nesting depth of a JSON value (a scalar is 1). Only for values already checked with json_deeper_than.
inline std::size_t json_depth(const nlohmann::json& j) {
  if (!j.is_structured() || j.empty()) return 1;
  std::size_t d = 0;
  for (const auto& x : j) d = std::max(d, json_depth(x));
  return d + 1;
}
inline bool is_iso_time_string(const nlohmann::json& v) { return v.is_string() && try_parse_iso8601(v.get_ref<const std::string&>()); }
inline bool is_weekday_name(const nlohmann::json& v) {
  return v.is_string() && std::find(weekday_names.begin(), weekday_names.end(), v.get_ref<const std::string&>()) !=
                              weekday_names.end();
}
}  // namespace detail

/// Depth of a tree as the JSON it stands for: a predicate `{"k":{"op":v}}` is 2 plus its operand's depth.
inline std::size_t filter_depth(const filter_expr& f) {
  struct visitor {
    std::size_t operator()(std::monostate) const { return 1; }
    std::size_t operator()(const filter_predicate& p) const { return 2 + detail::json_depth(p.value); }
    std::size_t list(const std::vector<filter_expr>& c) const {
      std::size_t d = 0;
      for (const auto& x : c) d = std::max(d, filter_depth(x));
      return d + 2;  // {"AND": [ ... ]}
    }
    std::size_t operator()(const filter_and& n) const { return list(n.children); }
    std::size_t operator()(const filter_or& n) const { return list(n.children); }
    std::size_t operator()(const filter_not& n) const { return list(n.children); }
  };
  return std::visit(visitor{}, f.node);
}

/// Builds and validates one predicate. `where` names the place for messages (a JSON path like `/AND/1/priority`).
/// @throws validation_error for an empty or reserved field name, a non-list for in/nin, an operand that can
///         never be compared (gt on a boolean, icontains on a number), a non-ISO-8601 operand for
///         created_at/updated_at/valid_from/invalid_at, an unknown `structured_attributes.<name>` or an operand
///         of the wrong type for it (a number; a weekday name for day_of_week; a boolean for is_weekend), or an
///         operand nested deeper than max_filter_depth.
inline filter_predicate make_filter_predicate(std::string field, filter_op op, nlohmann::json value,
                                              std::string_view where = {}) {
  const std::string at = where.empty() ? std::string() : " at " + std::string(where);
  auto fail = [&](const std::string& why) { throw validation_error("filter: " + why + at); };
  if (field.empty()) fail("empty field name");
  if (field.front() == '$') fail("unknown operator '" + field + "' (a field name cannot start with '$')");
  if (field == "AND" || field == "OR" || field == "NOT")
    fail("'" + field + "' is a logical operator, not a field name");
  const auto kind = classify_filter_field(field);
  const std::string name = "'" + std::string(to_string(op)) + "' on '" + field + "'";
  if (value.is_discarded()) fail(name + ": the operand is not a JSON value");
  if (detail::json_deeper_than(value, max_filter_depth - 2))
    fail(name + ": the operand is nested deeper than " + std::to_string(max_filter_depth) + " levels");
  switch (op) {
    case filter_op::in:
    case filter_op::nin:
      if (!value.is_array()) fail(name + " needs a list, got " + std::string(value.type_name()));
      break;
    case filter_op::gt:
    case filter_op::gte:
    case filter_op::lt:
    case filter_op::lte:
      if (!value.is_number() && !value.is_string())
        fail(name + " needs a number or a string, got " + std::string(value.type_name()));
      break;
    case filter_op::icontains:
      if (!value.is_string()) fail(name + " needs a string, got " + std::string(value.type_name()));
      break;
    case filter_op::contains:
      if (value.is_null()) fail(name + " needs a value, got null");
      break;
    case filter_op::exists:
      value = nullptr;
      break;
    case filter_op::eq:
    case filter_op::ne:
      break;
  }
  // Each operand (the value, or each element for in/nin; none for exists) must pass `ok`, else `expected`.
  auto check_operands = [&](auto ok, const std::string& expected) {
    auto check = [&](const nlohmann::json& v) {
      if (!ok(v)) fail(name + ": expected " + expected + ", got " + v.dump());
    };
    if (op == filter_op::in || op == filter_op::nin) {
      for (const auto& v : value) check(v);
    } else if (op != filter_op::exists) {
      check(value);
    }
  };
  const bool text_op = op == filter_op::contains || op == filter_op::icontains;
  auto attribute = structured_attribute::year;
  if (is_time_field(kind)) {
    if (text_op) fail(name + ": '" + field + "' is a timestamp; use eq, ne, gt, gte, lt, lte, in or nin");
    check_operands(detail::is_iso_time_string, "an ISO-8601 timestamp such as \"2024-05-01T12:00:00Z\"");
  } else if (kind == filter_field::structured_attribute) {
    const auto dot = std::min(field.size(), structured_attributes_prefix.size() + 1);
    const auto which = parse_structured_attribute(std::string_view(field).substr(dot));
    if (!which) {
      std::string names;
      for (const auto n : structured_attribute_names) names += (names.empty() ? "" : ", ") + std::string(n);
      fail("unknown structured attribute '" + field + "' (expected structured_attributes.<name>, <name> one of " +
           names + ")");
    }
    attribute = *which;
    const bool ordered = op == filter_op::gt || op == filter_op::gte || op == filter_op::lt || op == filter_op::lte;
    if (attribute == structured_attribute::day_of_week) {
      if (text_op || ordered) fail(name + ": a weekday is a name; use eq, ne, in or nin");
      check_operands(detail::is_weekday_name, "a lower-case weekday name such as \"monday\"");
    } else if (attribute == structured_attribute::is_weekend) {
      if (text_op || ordered) fail(name + ": '" + field + "' is a boolean; use eq, ne, in or nin");
      check_operands([](const nlohmann::json& v) { return v.is_boolean(); }, "true or false");
    } else {
      if (text_op) fail(name + ": '" + field + "' is a number; use eq, ne, gt, gte, lt, lte, in or nin");
      check_operands([](const nlohmann::json& v) { return v.is_number(); }, "a number");
    }
  }
  filter_predicate p;
  p.field = std::move(field);
  p.kind = kind;
  p.attribute = attribute;
  p.op = op;
  p.value = std::move(value);
  auto time_of = [](const nlohmann::json& v) -> std::optional<timestamp> {
    return v.is_string() ? try_parse_iso8601(v.get_ref<const std::string&>()) : std::nullopt;
  };
  if (p.op == filter_op::in || p.op == filter_op::nin) {
    p.times.reserve(p.value.size());
    for (const auto& v : p.value) p.times.push_back(time_of(v));
  } else {
    p.times.push_back(time_of(p.value));
  }
  return p;
}

namespace detail {
template <class Node>
void splice_into(std::vector<filter_expr>& out, filter_expr&& f) {
  if (auto* same = std::get_if<Node>(&f.node)) {
    for (auto& c : same->children) out.push_back(std::move(c));
  } else {
    out.push_back(std::move(f));
  }
}
template <class Node>
filter_expr make_list(std::vector<filter_expr> children, const char* what) {
  if (children.empty()) throw validation_error(std::string("filter: ") + what + " needs at least one condition");
  std::vector<filter_expr> flat;
  flat.reserve(children.size());
  for (auto& c : children) {
    if (c.empty()) throw validation_error(std::string("filter: an empty filter inside ") + what);
    splice_into<Node>(flat, std::move(c));
  }
  if (flat.size() == 1) return std::move(flat.front());
  return filter_expr{Node{std::move(flat)}};
}
}  // namespace detail

/// AND of `children` (nested ANDs are flattened; one child is returned as is). @throws validation_error when
/// empty or when a child is the empty filter. Depth is limited where trees are built from input (the parser
/// and the DSL), not here.
inline filter_expr make_filter_and(std::vector<filter_expr> children) {
  return detail::make_list<filter_and>(std::move(children), "AND");
}
/// OR of `children`, as make_filter_and.
inline filter_expr make_filter_or(std::vector<filter_expr> children) {
  return detail::make_list<filter_or>(std::move(children), "OR");
}
/// NOT: none of `children` matches. @throws validation_error when empty or a child is the empty filter.
inline filter_expr make_filter_not(std::vector<filter_expr> children) {
  if (children.empty()) throw validation_error("filter: NOT needs at least one condition");
  for (const auto& c : children)
    if (c.empty()) throw validation_error("filter: an empty filter inside NOT");
  return filter_expr{filter_not{std::move(children)}};
}

}  // namespace engram::inline v0
