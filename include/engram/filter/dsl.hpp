#pragma once
/// @file filter/dsl.hpp
/// A C++ way to write filters, building the same trees as the JSON parser:
///
///     using engram::field;
///     auto f = field("priority") >= 5 && (field("tag").in({"a", "b"}) || !field("archived").exists());
///
/// is the tree of `{"AND":[{"priority":{"gte":5}},{"OR":[{"tag":{"in":["a","b"]}},{"NOT":{"archived":"*"}}]}]}`.
/// `&&` and `||` flatten chains (`a && b && c` is one AND of three), as the parser does for nested ANDs.

#include <engram/error.hpp>
#include <engram/filter/expr.hpp>

#include <nlohmann/json.hpp>

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace engram::inline v0 {

/// A named field, the left-hand side of a DSL predicate. Cheap to copy; makes predicates, holds no state.
class filter_field_ref {
 public:
  explicit filter_field_ref(std::string name) : name_(std::move(name)) {}

  [[nodiscard]] const std::string& name() const noexcept { return name_; }

  /// `{"k": {"in": [...]}}`.
  [[nodiscard]] filter_expr in(std::initializer_list<nlohmann::json> values) const {
    return make(filter_op::in, nlohmann::json::array_t(values));
  }
  [[nodiscard]] filter_expr in(std::vector<nlohmann::json> values) const {
    return make(filter_op::in, nlohmann::json::array_t(std::move(values)));
  }
  /// `{"k": {"nin": [...]}}`.
  [[nodiscard]] filter_expr nin(std::initializer_list<nlohmann::json> values) const {
    return make(filter_op::nin, nlohmann::json::array_t(values));
  }
  [[nodiscard]] filter_expr nin(std::vector<nlohmann::json> values) const {
    return make(filter_op::nin, nlohmann::json::array_t(std::move(values)));
  }
  /// Substring of a string, or element of an array.
  [[nodiscard]] filter_expr contains(nlohmann::json value) const { return make(filter_op::contains, std::move(value)); }
  /// As contains, ignoring ASCII case.
  [[nodiscard]] filter_expr icontains(std::string value) const { return make(filter_op::icontains, std::move(value)); }
  /// `{"k": "*"}`: present and not null.
  [[nodiscard]] filter_expr exists() const { return make(filter_op::exists, nullptr); }

  /// Equality and ordering against any value nlohmann::json can hold.
  template <class T>
  friend filter_expr operator==(const filter_field_ref& f, T&& v) {
    return f.make(filter_op::eq, nlohmann::json(std::forward<T>(v)));
  }
  template <class T>
  friend filter_expr operator!=(const filter_field_ref& f, T&& v) {
    return f.make(filter_op::ne, nlohmann::json(std::forward<T>(v)));
  }
  template <class T>
  friend filter_expr operator<(const filter_field_ref& f, T&& v) {
    return f.make(filter_op::lt, nlohmann::json(std::forward<T>(v)));
  }
  template <class T>
  friend filter_expr operator<=(const filter_field_ref& f, T&& v) {
    return f.make(filter_op::lte, nlohmann::json(std::forward<T>(v)));
  }
  template <class T>
  friend filter_expr operator>(const filter_field_ref& f, T&& v) {
    return f.make(filter_op::gt, nlohmann::json(std::forward<T>(v)));
  }
  template <class T>
  friend filter_expr operator>=(const filter_field_ref& f, T&& v) {
    return f.make(filter_op::gte, nlohmann::json(std::forward<T>(v)));
  }
  /// `!field("x")` is `!field("x").exists()`: x is missing or null.
  friend filter_expr operator!(const filter_field_ref& f) {
    std::vector<filter_expr> one;
    one.push_back(f.exists());
    return make_filter_not(std::move(one));
  }

 private:
  [[nodiscard]] filter_expr make(filter_op op, nlohmann::json v) const {
    return make_filter_predicate(name_, op, std::move(v), name_);
  }
  std::string name_;
};

/// The field `name`: a metadata key, a dotted path, or a record field (user_id, created_at, ...).
inline filter_field_ref field(std::string name) { return filter_field_ref(std::move(name)); }

namespace detail {
inline filter_expr checked_depth(filter_expr f) {
  if (filter_depth(f) > max_filter_depth)
    throw validation_error("filter: nests deeper than " + std::to_string(max_filter_depth) + " levels");
  return f;
}
}  // namespace detail

/// Both match. The empty filter is the identity (`filter_expr{} && f` is f).
inline filter_expr operator&&(filter_expr a, filter_expr b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  std::vector<filter_expr> v;
  v.push_back(std::move(a));
  v.push_back(std::move(b));
  return detail::checked_depth(make_filter_and(std::move(v)));
}
/// Either matches. @throws validation_error when a side is the empty filter (an OR with "everything" is
/// almost certainly a mistake).
inline filter_expr operator||(filter_expr a, filter_expr b) {
  std::vector<filter_expr> v;
  v.push_back(std::move(a));
  v.push_back(std::move(b));
  return detail::checked_depth(make_filter_or(std::move(v)));
}
/// Does not match. @throws validation_error for the empty filter.
inline filter_expr operator!(filter_expr a) {
  std::vector<filter_expr> v;
  v.push_back(std::move(a));
  return detail::checked_depth(make_filter_not(std::move(v)));
}

}  // namespace engram::inline v0
