#pragma once
/// @file filter/predicate.hpp
/// One predicate tested against one value, whatever the value's origin (a record field, a JSON value, a
/// column cell), and the walk of a filter tree over such tests: the one test every evaluation path calls, so
/// a filter means one thing everywhere.
///
/// Semantics (one table for every path):
/// - A field is *missing* when a metadata key/path is absent, or a record string field is empty.
/// - Numbers compare as numbers (integers exactly, across int/unsigned/float). Strings compare byte-wise
///   (UTF-8 code point order), except that two strings which both parse as ISO-8601 timestamps compare as
///   instants (so offsets are honoured). created_at/updated_at/valid_from/invalid_at are instants: valid_from
///   is record::valid_since() (never missing), invalid_at is missing while the fact holds (so `"*"` means "was
///   contradicted", ne/nin match a still-valid memory, and gt/lt never match one).
/// - `structured_attributes.<name>` is derived from valid_since() in UTC (temporal/structured_attributes.hpp):
///   a number, a lower-case weekday name (day_of_week) or a boolean (is_weekend); never missing.
/// - eq on an array field matches when any element equals the operand (an array operand: the whole array
///   equals it). Arrays and objects equal element-wise. in = eq one of the list.
/// - gt/gte/lt/lte need both sides numbers, or both strings/instants; anything else is "no match".
/// - contains: substring of a string field, or element of an array field. icontains: the same ignoring ASCII
///   case (for arrays: an element string equal ignoring ASCII case).
/// - exists (`"*"`): present and not null.
/// - ne is exactly NOT eq and nin exactly NOT in: they match missing fields and values of other types.
///   Every other operator fails on a missing field or an incompatible type, never throws.

#include <engram/filter/expr.hpp>
#include <engram/record.hpp>
#include <engram/temporal/structured_attributes.hpp>
#include <engram/time.hpp>

#include <nlohmann/json.hpp>

#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace engram::inline v0 {

namespace detail {

enum class filter_value_kind : std::uint8_t { missing, null, boolean, integer, unsigned_integer, floating, string, instant, structured };

/// A borrowed value of any origin (a record field, a JSON value, a column cell), the input of the one test.
struct filter_value {
  filter_value_kind kind = filter_value_kind::missing;
  bool b = false;
  std::int64_t i = 0;  // integer; microseconds for instant
  std::uint64_t u = 0;
  double d = 0.0;
  std::string_view s{};
  const std::optional<timestamp>* time = nullptr;  // for strings: the parsed instant, when known
  const nlohmann::json* json = nullptr;            // for structured values
};

inline filter_value filter_value_of(const nlohmann::json& v, const std::optional<timestamp>* time = nullptr) {
  filter_value out;
  switch (v.type()) {
    case nlohmann::json::value_t::null: out.kind = filter_value_kind::null; break;
    case nlohmann::json::value_t::boolean: out.kind = filter_value_kind::boolean; out.b = v.get<bool>(); break;
    case nlohmann::json::value_t::number_integer:
      out.kind = filter_value_kind::integer;
      out.i = v.get<std::int64_t>();
      break;
    case nlohmann::json::value_t::number_unsigned:
      out.kind = filter_value_kind::unsigned_integer;
      out.u = v.get<std::uint64_t>();
      break;
    case nlohmann::json::value_t::number_float:
      out.kind = filter_value_kind::floating;
      out.d = v.get<double>();
      break;
    case nlohmann::json::value_t::string:
      out.kind = filter_value_kind::string;
      out.s = v.get_ref<const std::string&>();
      out.time = time;
      break;
    case nlohmann::json::value_t::array:
    case nlohmann::json::value_t::object:
      out.kind = filter_value_kind::structured;
      out.json = &v;
      break;
    default: break;  // binary, discarded: treated as missing
  }
  return out;
}

inline bool is_number(const filter_value& v) noexcept {
  return v.kind == filter_value_kind::integer || v.kind == filter_value_kind::unsigned_integer ||
         v.kind == filter_value_kind::floating;
}

inline long double as_long_double(const filter_value& v) noexcept {
  switch (v.kind) {
    case filter_value_kind::integer: return static_cast<long double>(v.i);
    case filter_value_kind::unsigned_integer: return static_cast<long double>(v.u);
    default: return static_cast<long double>(v.d);
  }
}

/// Numeric order; integers exactly (long double holds every int64/uint64 on x86; elsewhere compare by kind).
inline std::partial_ordering compare_numbers(const filter_value& a, const filter_value& b) noexcept {
  using K = filter_value_kind;
  if (a.kind == K::integer && b.kind == K::integer) return a.i <=> b.i;
  if (a.kind == K::unsigned_integer && b.kind == K::unsigned_integer) return a.u <=> b.u;
  if (a.kind == K::integer && b.kind == K::unsigned_integer)
    return a.i < 0 ? std::partial_ordering::less : static_cast<std::uint64_t>(a.i) <=> b.u;
  if (a.kind == K::unsigned_integer && b.kind == K::integer)
    return b.i < 0 ? std::partial_ordering::greater : a.u <=> static_cast<std::uint64_t>(b.i);
  return as_long_double(a) <=> as_long_double(b);
}

inline std::optional<timestamp> instant_of(const filter_value& v) {
  if (v.kind == filter_value_kind::instant) return timestamp(std::chrono::microseconds(v.i));
  if (v.kind != filter_value_kind::string) return std::nullopt;
  if (v.time) return *v.time;
  return try_parse_iso8601(v.s);
}

/// Order of two string-like values: instants when both are timestamps, else bytes (as unsigned char).
inline std::partial_ordering compare_texts(const filter_value& a, const filter_value& b) {
  using K = filter_value_kind;
  const bool a_text = a.kind == K::string || a.kind == K::instant;
  const bool b_text = b.kind == K::string || b.kind == K::instant;
  if (!a_text || !b_text) return std::partial_ordering::unordered;
  // A string known not to be a timestamp (its parse is cached) spares parsing the other side.
  auto known_plain = [](const filter_value& v) { return v.kind == K::string && v.time && !v.time->has_value(); };
  if (!known_plain(a) && !known_plain(b)) {
    if (const auto ta = instant_of(a))
      if (const auto tb = instant_of(b)) return *ta <=> *tb;
  }
  if (a.kind == K::instant || b.kind == K::instant) return std::partial_ordering::unordered;
  const int c = a.s.compare(b.s);
  return c < 0 ? std::partial_ordering::less : c > 0 ? std::partial_ordering::greater : std::partial_ordering::equivalent;
}

inline bool values_equal(const filter_value& a, const filter_value& b);

inline bool json_equal(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.is_array() && b.is_array()) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!json_equal(a[i], b[i])) return false;
    return true;
  }
  if (a.is_object() && b.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(); it != a.end(); ++it) {
      auto jt = b.find(it.key());
      if (jt == b.end() || !json_equal(it.value(), *jt)) return false;
    }
    return true;
  }
  if (a.is_structured() || b.is_structured()) return false;
  return values_equal(filter_value_of(a), filter_value_of(b));
}

/// Equality of two values of any kinds; never descends into array elements (see eq_field for that).
inline bool values_equal(const filter_value& a, const filter_value& b) {
  using K = filter_value_kind;
  if (a.kind == K::missing || b.kind == K::missing) return false;
  if (is_number(a) && is_number(b)) return compare_numbers(a, b) == 0;
  if ((a.kind == K::string || a.kind == K::instant) && (b.kind == K::string || b.kind == K::instant)) {
    if (a.kind == K::string && b.kind == K::string && a.s == b.s) return true;
    return compare_texts(a, b) == 0;
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case K::null: return true;
    case K::boolean: return a.b == b.b;
    case K::structured: return json_equal(*a.json, *b.json);
    default: return false;
  }
}

/// eq as the filter means it: on an array field against a non-array operand, any element equal.
inline bool eq_field(const filter_value& field, const filter_value& operand) {
  if (field.kind == filter_value_kind::structured && field.json->is_array() &&
      !(operand.kind == filter_value_kind::structured && operand.json->is_array())) {
    for (const auto& e : *field.json)
      if (values_equal(filter_value_of(e), operand)) return true;
    return false;
  }
  return values_equal(field, operand);
}

inline char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

inline bool ascii_iequal(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

inline bool ascii_icontains(std::string_view hay, std::string_view needle) noexcept {
  if (needle.empty()) return true;
  if (needle.size() > hay.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= hay.size(); ++i)
    if (ascii_iequal(hay.substr(i, needle.size()), needle)) return true;
  return false;
}

/// The one predicate test. `v` is the field's value for the record at hand.
inline bool test_predicate(const filter_predicate& p, const filter_value& v) {
  using K = filter_value_kind;
  auto operand = [&](std::size_t i) {
    const auto& j = (p.op == filter_op::in || p.op == filter_op::nin) ? p.value[i] : p.value;
    return filter_value_of(j, i < p.times.size() ? &p.times[i] : nullptr);
  };
  auto any_in = [&] {
    for (std::size_t i = 0; i < p.value.size(); ++i)
      if (eq_field(v, operand(i))) return true;
    return false;
  };
  auto order = [&] {
    const auto x = operand(0);
    if (is_number(v) && is_number(x)) return compare_numbers(v, x);
    return compare_texts(v, x);
  };
  switch (p.op) {
    case filter_op::eq: return eq_field(v, operand(0));
    case filter_op::ne: return !eq_field(v, operand(0));
    case filter_op::in: return any_in();
    case filter_op::nin: return !any_in();
    case filter_op::gt: return order() > 0;
    case filter_op::gte: return order() >= 0;
    case filter_op::lt: return order() < 0;
    case filter_op::lte: return order() <= 0;
    case filter_op::exists: return v.kind != K::missing && v.kind != K::null;
    case filter_op::contains: {
      const auto x = operand(0);
      if (v.kind == K::string) return x.kind == K::string && v.s.find(x.s) != std::string_view::npos;
      if (v.kind == K::structured && v.json->is_array()) {
        for (const auto& e : *v.json)
          if (values_equal(filter_value_of(e), x)) return true;
      }
      return false;
    }
    case filter_op::icontains: {
      const std::string_view x = p.value.get_ref<const std::string&>();
      if (v.kind == K::string) return ascii_icontains(v.s, x);
      if (v.kind == K::structured && v.json->is_array()) {
        for (const auto& e : *v.json)
          if (e.is_string() && ascii_iequal(e.get_ref<const std::string&>(), x)) return true;
      }
      return false;
    }
  }
  return false;
}

/// Resolves a metadata key or dotted path: the whole name as a key first, else split at the first dot and
/// descend into an object. Returns nullptr when absent.
inline const nlohmann::json* resolve_metadata_path(const nlohmann::json& obj, std::string_view path) {
  const nlohmann::json* cur = &obj;
  while (true) {
    if (!cur->is_object()) return nullptr;
    if (auto it = cur->find(path); it != cur->end()) return &*it;
    const auto dot = path.find('.');
    if (dot == std::string_view::npos) return nullptr;
    auto it = cur->find(path.substr(0, dot));
    if (it == cur->end()) return nullptr;
    cur = &*it;
    path.remove_prefix(dot + 1);
  }
}

inline filter_value text_value(const std::string& s) {
  filter_value v;
  if (!s.empty()) {
    v.kind = filter_value_kind::string;
    v.s = s;
  }
  return v;
}

inline filter_value instant_value(timestamp t) {
  filter_value v;
  v.kind = filter_value_kind::instant;
  v.i = t.time_since_epoch().count();
  return v;
}

/// The value of attribute `which` among `a`.
inline filter_value attribute_value(const structured_attributes& a, structured_attribute which) {
  filter_value v;
  v.kind = filter_value_kind::integer;
  switch (which) {
    case structured_attribute::year: v.i = a.year; break;
    case structured_attribute::month: v.i = a.month; break;
    case structured_attribute::day: v.i = a.day; break;
    case structured_attribute::quarter: v.i = a.quarter; break;
    case structured_attribute::hour: v.i = a.hour; break;
    case structured_attribute::minute: v.i = a.minute; break;
    case structured_attribute::day_of_year: v.i = a.day_of_year; break;
    case structured_attribute::week_of_year: v.i = a.week_of_year; break;
    case structured_attribute::day_of_week:
      v.kind = filter_value_kind::string;
      v.s = a.day_of_week_name();  // static storage
      break;
    case structured_attribute::is_weekend:
      v.kind = filter_value_kind::boolean;
      v.b = a.is_weekend;
      break;
  }
  return v;
}

inline filter_value record_value(const filter_predicate& p, const record& r) {
  switch (p.kind) {
    case filter_field::user_id: return text_value(r.user_id);
    case filter_field::agent_id: return text_value(r.agent_id);
    case filter_field::run_id: return text_value(r.run_id);
    case filter_field::actor_id: return text_value(r.actor_id);
    case filter_field::role: return text_value(r.role);
    case filter_field::created_at: return instant_value(r.created_at);
    case filter_field::updated_at: return instant_value(r.updated_at);
    case filter_field::valid_from: return instant_value(r.valid_since());
    case filter_field::invalid_at: return r.invalid_at ? instant_value(*r.invalid_at) : filter_value{};
    case filter_field::structured_attribute:
      return attribute_value(structured_attributes_of(r.valid_since()), p.attribute);
    case filter_field::metadata: break;
  }
  if (const auto* v = resolve_metadata_path(r.metadata, p.field)) return filter_value_of(*v);
  return {};
}

/// Evaluates a tree; `leaf(predicate)` returns whether the predicate holds.
template <class Leaf>
bool eval_tree(const filter_expr& f, Leaf&& leaf) {
  struct visitor {
    Leaf& leaf;
    bool operator()(std::monostate) const { return true; }
    bool operator()(const filter_predicate& p) const { return leaf(p); }
    bool operator()(const filter_and& n) const {
      for (const auto& c : n.children)
        if (!eval_tree(c, leaf)) return false;
      return true;
    }
    bool operator()(const filter_or& n) const {
      for (const auto& c : n.children)
        if (eval_tree(c, leaf)) return true;
      return false;
    }
    bool operator()(const filter_not& n) const {
      for (const auto& c : n.children)
        if (eval_tree(c, leaf)) return false;
      return true;
    }
  };
  return std::visit(visitor{leaf}, f.node);
}

}  // namespace detail

}  // namespace engram::inline v0
