#pragma once
/// @file filter/parse.hpp
/// Mem0's filter JSON to a filter_expr (and back).
///
/// Grammar:
///   filter   := {} (matches everything, top level only) | { entry, ... }      sibling entries are ANDed
///   entry    := "AND"|"$and": [filter, ...]  |  "OR"|"$or": [filter, ...]      non-empty lists
///             | "NOT"|"$not": filter | [filter, ...]                           none of them matches
///             | field: value          equality (value a scalar)
///             | field: [v, ...]       in
///             | field: "*"            present and not null
///             | field: {op: v, ...}   op in eq ne gt gte lt lte in nin contains icontains, bare or `$`-prefixed;
///                                     several ops are ANDed
///             | "metadata": {key: value-or-ops, ...}   the Platform's form: each entry a condition on that
///                                     metadata key (an object of operators only is a key named "metadata")
///             | "structured_attributes": {name: value-or-ops, ...}   the same as
///                                     "structured_attributes.<name>": value-or-ops for each entry
///   field    := a metadata key, a dotted path ("address.city"), or user_id agent_id run_id actor_id role
///               created_at updated_at valid_from invalid_at, or structured_attributes.<name> with <name> one of
///               year month day quarter hour minute day_of_week day_of_year week_of_year is_weekend
/// Errors name the operator or key and its JSON pointer (`/AND/1/priority/gte`).

#include <engram/error.hpp>
#include <engram/filter/expr.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace engram::inline v0 {

namespace detail {

/// RFC 6901 escaping of one reference token.
inline std::string json_pointer_token(std::string_view key) {
  std::string out;
  out.reserve(key.size());
  for (const char c : key) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
  return out;
}

class filter_parser {
 public:
  filter_expr parse_root(const nlohmann::json& j) {
    if (!j.is_object())
      throw validation_error(std::string("filter: a filter must be a JSON object, got ") + j.type_name() + " at /");
    if (j.empty()) return {};
    return parse_object(j, "", 1);
  }

 private:
  [[noreturn]] static void fail(const std::string& why, const std::string& path) {
    throw validation_error("filter: " + why + " at " + (path.empty() ? std::string("/") : path));
  }

  static bool is_logical(std::string_view key, std::string_view upper, std::string_view lower) {
    return key == upper || key == lower;
  }

  filter_expr parse_object(const nlohmann::json& j, const std::string& path, std::size_t depth) {
    if (depth > max_filter_depth) fail("nested deeper than " + std::to_string(max_filter_depth) + " levels", path);
    if (!j.is_object()) fail(std::string("expected a JSON object, got ") + j.type_name(), path);
    if (j.empty()) fail("empty filter object (a condition is required here)", path);
    std::vector<filter_expr> parts;
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& key = it.key();
      const std::string here = path + "/" + json_pointer_token(key);
      if (is_logical(key, "AND", "$and")) {
        parts.push_back(make_filter_and(parse_list(it.value(), key, here, depth)));
      } else if (is_logical(key, "OR", "$or")) {
        parts.push_back(make_filter_or(parse_list(it.value(), key, here, depth)));
      } else if (is_logical(key, "NOT", "$not")) {
        if (it.value().is_object()) {
          std::vector<filter_expr> one;
          one.push_back(parse_object(it.value(), here, depth + 1));
          parts.push_back(make_filter_not(std::move(one)));
        } else {
          parts.push_back(make_filter_not(parse_list(it.value(), key, here, depth)));
        }
      } else if (key == "metadata" && is_metadata_form(it.value())) {
        parse_metadata_form(it.value(), here, depth + 1, parts);
      } else if (key == structured_attributes_prefix && is_metadata_form(it.value())) {
        for (auto at = it.value().begin(); at != it.value().end(); ++at)
          parse_field(key + "." + at.key(), at.value(), here + "/" + json_pointer_token(at.key()), depth + 2, parts);
      } else if (!key.empty() && key.front() == '$') {
        fail("unknown operator '" + key + "' (expected $and, $or, $not or a field name)", here);
      } else if (key.empty()) {
        fail("empty field name", here);
      } else {
        parse_field(key, it.value(), here, depth + 1, parts);
      }
    }
    return parts.size() == 1 ? std::move(parts.front()) : make_filter_and(std::move(parts));
  }

  /// True for the Platform's `{"metadata": {"k": v, ...}}`: an object with a key that is not an operator (an
  /// object of operators only is a condition on a metadata key named "metadata").
  static bool is_metadata_form(const nlohmann::json& v) {
    if (!v.is_object() || v.empty()) return false;
    for (auto it = v.begin(); it != v.end(); ++it)
      if (!parse_filter_op(it.key())) return true;
    return false;
  }

  /// `{"metadata": {"k": v, ...}}`: each entry a condition on metadata key k (any form parse_field takes).
  void parse_metadata_form(const nlohmann::json& v, const std::string& here, std::size_t depth,
                           std::vector<filter_expr>& parts) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string& key = it.key();
      const std::string where = here + "/" + json_pointer_token(key);
      if (key.empty()) fail("empty field name", where);
      if (classify_filter_field(key) != filter_field::metadata || is_logical(key, "AND", "$and") ||
          is_logical(key, "OR", "$or") || is_logical(key, "NOT", "$not") || key.front() == '$')
        fail("'" + key + "' is not a metadata key: inside 'metadata' name metadata keys only (put record fields and "
             "AND/OR/NOT beside 'metadata')",
             where);
      parse_field(key, it.value(), where, depth + 1, parts);
    }
  }

  std::vector<filter_expr> parse_list(const nlohmann::json& v, const std::string& key, const std::string& here,
                                      std::size_t depth) {
    if (!v.is_array())
      fail("'" + key + "' needs a list of filters" + (key == "NOT" || key == "$not" ? " or one filter" : "") +
               ", got " + v.type_name(),
           here);
    if (v.empty()) fail("'" + key + "' needs at least one filter, got an empty list", here);
    if (depth + 1 > max_filter_depth) fail("nested deeper than " + std::to_string(max_filter_depth) + " levels", here);
    std::vector<filter_expr> out;
    out.reserve(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) out.push_back(parse_object(v[i], here + "/" + std::to_string(i), depth + 2));
    return out;
  }

  /// `depth` is the level of `v` itself.
  void parse_field(const std::string& key, const nlohmann::json& v, const std::string& here, std::size_t depth,
                   std::vector<filter_expr>& parts) {
    auto leaf = [&](filter_op op, const nlohmann::json& operand, const std::string& where, std::size_t level) {
      if (json_deeper_than(operand, max_filter_depth - (level - 1)))
        fail("'" + key + "' is nested deeper than " + std::to_string(max_filter_depth) + " levels", where);
      parts.emplace_back(make_filter_predicate(key, op, operand, where));
    };
    if (v.is_string() && v.get_ref<const std::string&>() == "*") {
      leaf(filter_op::exists, nullptr, here, depth);
    } else if (v.is_array()) {
      leaf(filter_op::in, v, here, depth);
    } else if (v.is_object()) {
      if (v.empty()) fail("no operator given for '" + key + "' (expected e.g. {\"eq\": value})", here);
      for (auto it = v.begin(); it != v.end(); ++it) {
        const std::string where = here + "/" + json_pointer_token(it.key());
        const auto op = parse_filter_op(it.key());
        if (!op)
          fail("unknown operator '" + it.key() +
                   "' for '" + key + "' (expected eq, ne, gt, gte, lt, lte, in, nin, contains or icontains)",
               where);
        leaf(*op, it.value(), where, depth + 1);
      }
    } else {
      leaf(filter_op::eq, v, here, depth);
    }
  }
};

}  // namespace detail

/// Parses a Mem0 filter. `{}` is the empty filter (matches everything).
/// @throws validation_error naming the operator or key and its JSON pointer: unknown operator, a non-list for
///         in/nin, an empty AND/OR/NOT, a non-object filter, nesting deeper than max_filter_depth.
inline filter_expr parse_filter(const nlohmann::json& j) { return detail::filter_parser{}.parse_root(j); }

/// Parses a Mem0 filter from JSON text. @throws validation_error for malformed JSON too.
inline filter_expr parse_filter(std::string_view text) {
  auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) throw validation_error("filter: not valid JSON: '" + std::string(text.substr(0, 80)) + "'");
  return parse_filter(j);
}
/// JSON text, as above (these overloads keep text from being taken for a JSON string value).
inline filter_expr parse_filter(const char* text) { return parse_filter(std::string_view(text)); }
inline filter_expr parse_filter(const std::string& text) { return parse_filter(std::string_view(text)); }

/// The canonical JSON of a filter: `{}` for the empty filter, `{"k": {"op": v}}` for a predicate (`{"k": "*"}` for
/// exists), `{"AND"|"OR"|"NOT": [...]}` for the logical nodes. parse_filter(to_json(f)) == f.
inline void to_json(nlohmann::json& j, const filter_expr& f) {
  struct visitor {
    nlohmann::json operator()(std::monostate) const { return nlohmann::json::object(); }
    nlohmann::json operator()(const filter_predicate& p) const {
      if (p.op == filter_op::exists) return nlohmann::json{{p.field, "*"}};
      nlohmann::json inner = nlohmann::json::object();
      inner[std::string(to_string(p.op))] = p.value;
      nlohmann::json out = nlohmann::json::object();
      out[p.field] = std::move(inner);
      return out;
    }
    static nlohmann::json list(const char* key, const std::vector<filter_expr>& children) {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& c : children) arr.push_back(nlohmann::json(c));
      nlohmann::json out = nlohmann::json::object();
      out[key] = std::move(arr);
      return out;
    }
    nlohmann::json operator()(const filter_and& n) const { return list("AND", n.children); }
    nlohmann::json operator()(const filter_or& n) const { return list("OR", n.children); }
    nlohmann::json operator()(const filter_not& n) const { return list("NOT", n.children); }
  };
  j = std::visit(visitor{}, f.node);
}

/// ADL hook: `j.get<engram::filter_expr>()`. @throws validation_error as parse_filter.
inline void from_json(const nlohmann::json& j, filter_expr& f) { f = parse_filter(j); }

}  // namespace engram::inline v0
