#pragma once
/// @file filter/eval.hpp
/// Evaluating filters: per record, per slot over typed columns, compiled over a set of slots into a
/// candidate bitmap, and against a partition's scope. Every path calls the same predicate test, so a filter
/// means one thing everywhere.
///
/// Semantics (one table for every path):
/// - A field is *missing* when a metadata key/path is absent, or a record string field is empty.
/// - Numbers compare as numbers (integers exactly, across int/unsigned/float). Strings compare byte-wise
///   (UTF-8 code point order), except that two strings which both parse as ISO-8601 timestamps compare as
///   instants (so offsets are honoured). created_at/updated_at are instants.
/// - eq on an array field matches when any element equals the operand (an array operand: the whole array
///   equals it). Arrays and objects equal element-wise. in = eq one of the list.
/// - gt/gte/lt/lte need both sides numbers, or both strings/instants; anything else is "no match".
/// - contains: substring of a string field, or element of an array field. icontains: the same ignoring ASCII
///   case (for arrays: an element string equal ignoring ASCII case).
/// - exists (`"*"`): present and not null.
/// - ne is exactly NOT eq and nin exactly NOT in: they match missing fields and values of other types.
///   Every other operator fails on a missing field or an incompatible type, never throws.

#include <engram/filter/expr.hpp>
#include <engram/index/bitmap.hpp>
#include <engram/ids.hpp>
#include <engram/record.hpp>
#include <engram/scope.hpp>
#include <engram/time.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>  // std::countr_zero
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace engram::inline v0 {

/// How basic_memory applies a filter to a vector search. Both give identical results; `automatic` picks by
/// the selectivity estimated on a sample of the candidates.
enum class filter_strategy : std::uint8_t {
  automatic,
  pre_filter,   ///< compile the filter to a candidate bitmap, then search only those slots
  post_filter,  ///< search with growing k, keep the hits that match
};

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

inline filter_value record_value(const filter_predicate& p, const record& r) {
  switch (p.kind) {
    case filter_field::user_id: return text_value(r.user_id);
    case filter_field::agent_id: return text_value(r.agent_id);
    case filter_field::run_id: return text_value(r.run_id);
    case filter_field::actor_id: return text_value(r.actor_id);
    case filter_field::role: return text_value(r.role);
    case filter_field::created_at: return instant_value(r.created_at);
    case filter_field::updated_at: return instant_value(r.updated_at);
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

/// True when record `r` matches `f` (the empty filter matches every record). O(size of the tree × path length).
inline bool filter_matches(const filter_expr& f, const record& r) {
  return detail::eval_tree(f, [&](const filter_predicate& p) { return detail::test_predicate(p, detail::record_value(p, r)); });
}

/// Three-valued answer of filter_scope_may_match.
enum class filter_tri : std::uint8_t { no, maybe, yes };

/// Whether records of partition scope `s` (an exact record scope) can match `f`, judging only the
/// user_id/agent_id/run_id predicates (the others are "maybe"), in Kleene logic. A partition answered `no`
/// holds no matching record, so it need not be searched.
inline filter_tri filter_scope_may_match(const filter_expr& f, const scope& s) {
  struct visitor {
    const scope& s;
    filter_tri operator()(std::monostate) const { return filter_tri::yes; }
    filter_tri operator()(const filter_predicate& p) const {
      if (!is_scope_field(p.kind)) return filter_tri::maybe;
      const auto& id = p.kind == filter_field::user_id ? s.user_id : p.kind == filter_field::agent_id ? s.agent_id : s.run_id;
      return detail::test_predicate(p, detail::text_value(id)) ? filter_tri::yes : filter_tri::no;
    }
    filter_tri all(const std::vector<filter_expr>& c) const {
      filter_tri out = filter_tri::yes;
      for (const auto& x : c) out = std::min(out, std::visit(*this, x.node));
      return out;
    }
    filter_tri any(const std::vector<filter_expr>& c) const {
      filter_tri out = filter_tri::no;
      for (const auto& x : c) out = std::max(out, std::visit(*this, x.node));
      return out;
    }
    filter_tri operator()(const filter_and& n) const { return all(n.children); }
    filter_tri operator()(const filter_or& n) const { return any(n.children); }
    filter_tri operator()(const filter_not& n) const {
      const auto a = any(n.children);
      return a == filter_tri::yes ? filter_tri::no : a == filter_tri::no ? filter_tri::yes : filter_tri::maybe;
    }
  };
  return std::visit(visitor{s}, f.node);
}

/// True when `f` by itself confines a search to named scopes: every way of matching it goes through an eq
/// or in on user_id, agent_id or run_id (an AND with such a predicate, an OR whose every branch is such).
/// Only such filters may stand in for a scope argument: `{"OR":[{"user_id":"a"},{"user_id":"b"}]}` does,
/// `{"user_id":{"ne":"a"}}` and `{"user_id":"*"}` do not.
inline bool filter_names_scope(const filter_expr& f) {
  struct visitor {
    bool operator()(std::monostate) const { return false; }
    bool operator()(const filter_predicate& p) const {
      return is_scope_field(p.kind) && (p.op == filter_op::eq || p.op == filter_op::in);
    }
    bool operator()(const filter_and& n) const {
      return std::any_of(n.children.begin(), n.children.end(), [&](const filter_expr& c) { return std::visit(*this, c.node); });
    }
    bool operator()(const filter_or& n) const {
      return std::all_of(n.children.begin(), n.children.end(), [&](const filter_expr& c) { return std::visit(*this, c.node); });
    }
    bool operator()(const filter_not&) const { return false; }
  };
  return std::visit(visitor{}, f.node);
}

/// The filterable fields of a set of records, stored as typed columns indexed by slot: the record fields, and
/// one column per top-level metadata key (strings interned per column, numbers and booleans inline, arrays
/// and objects kept as JSON). Compiling a filter against it evaluates each string predicate once per distinct
/// value, then combines 64 slots per word.
///
/// Thread-safety: const members may run concurrently; assign/erase/clear need exclusive access.
/// Memory: each column holds 16 bytes per slot up to the highest slot that has the key; distinct strings are
/// kept until clear().
class filter_columns {
 public:
  /// Stores (or replaces) the filterable fields of the record in `slot`.
  void assign(slot_id slot, const record& r) {
    erase(slot);
    if (slot >= live_.size()) live_.resize(std::size_t{slot} + 1, 0);
    live_[slot] = 1;
    ++size_;
    user_.put_text(slot, r.user_id);
    agent_.put_text(slot, r.agent_id);
    run_.put_text(slot, r.run_id);
    actor_.put_text(slot, r.actor_id);
    role_.put_text(slot, r.role);
    created_.put_instant(slot, r.created_at);
    updated_.put_instant(slot, r.updated_at);
    if (r.metadata.is_object())
      for (auto it = r.metadata.begin(); it != r.metadata.end(); ++it) {
        auto c = meta_.find(it.key());
        if (c == meta_.end()) c = meta_.emplace(it.key(), column{}).first;
        c->second.put(slot, it.value());
      }
  }

  /// Forgets `slot` (a no-op when it holds nothing). O(number of columns).
  void erase(slot_id slot) {
    if (slot >= live_.size() || !live_[slot]) return;
    live_[slot] = 0;
    --size_;
    for (auto* c : {&user_, &agent_, &run_, &actor_, &role_, &created_, &updated_}) c->clear_cell(slot);
    for (auto& [k, c] : meta_) c.clear_cell(slot);
  }

  void clear() { *this = filter_columns{}; }

  /// Number of slots held.
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool contains(slot_id slot) const noexcept { return slot < live_.size() && live_[slot]; }

  /// True when the record in `slot` matches `f` (false for a slot not held). Same answer as filter_matches on
  /// the record. O(size of the tree) hash lookups.
  [[nodiscard]] bool matches(const filter_expr& f, slot_id slot) const {
    if (!contains(slot)) return false;
    return detail::eval_tree(f, [&](const filter_predicate& p) {
      const auto plan = plan_for(p);
      return detail::test_predicate(p, value_at(plan, slot));
    });
  }

  /// The slots among `slots` whose records match `f`. O(|slots| × predicates) plus, per string predicate, one
  /// test per distinct value of its column (when there are fewer distinct values than slots).
  [[nodiscard]] slot_bitmap select(const filter_expr& f, std::span<const slot_id> slots) const {
    slot_bitmap out(slots.empty() ? 0 : std::size_t{*std::max_element(slots.begin(), slots.end())} + 1);
    for_each_set(eval_bits(f, slots), [&](std::size_t i) { out.set(slots[i]); });
    return out;
  }

  /// Every held slot whose record matches `f`: the same answer as select over all held slots, without
  /// listing them. O(highest slot × predicates); the better choice when the slots of interest are a large
  /// share of all slots.
  [[nodiscard]] slot_bitmap select(const filter_expr& f) const {
    slot_bitmap out(live_.size());
    for_each_set(eval_bits(f, dense_slots{live_.size()}), [&](std::size_t i) {
      if (live_[i]) out.set(static_cast<slot_id>(i));
    });
    return out;
  }

  /// How many of `slots` match `f` (the popcount of select without building the bitmap).
  [[nodiscard]] std::size_t count(const filter_expr& f, std::span<const slot_id> slots) const {
    std::size_t n = 0;
    for (const auto w : eval_bits(f, slots)) n += static_cast<std::size_t>(std::popcount(w));
    return n;
  }

 private:
  struct cell {
    detail::filter_value_kind kind = detail::filter_value_kind::missing;
    std::uint32_t ref = 0;  // string id, or index into `structured`
    union {
      std::int64_t i;
      std::uint64_t u;
      double d;
      bool b;
    };
    cell() : i(0) {}
  };

  struct column {
    std::vector<cell> cells;  // by slot
    std::vector<std::string> strings;
    std::vector<std::optional<timestamp>> times;  // parsed instant of each string, if any
    std::unordered_map<std::string, std::uint32_t> string_ids;
    std::vector<nlohmann::json> structured;
    std::vector<std::uint32_t> free_structured;

    cell& at(slot_id slot) {
      if (slot >= cells.size()) cells.resize(std::size_t{slot} + 1);
      return cells[slot];
    }
    void clear_cell(slot_id slot) {
      if (slot >= cells.size()) return;
      auto& c = cells[slot];
      if (c.kind == detail::filter_value_kind::structured) {
        structured[c.ref] = nullptr;
        free_structured.push_back(c.ref);
      }
      c = cell{};
    }
    std::uint32_t intern(const std::string& s) {
      if (auto it = string_ids.find(s); it != string_ids.end()) return it->second;
      const auto id = static_cast<std::uint32_t>(strings.size());
      string_ids.emplace(s, id);
      strings.push_back(s);
      times.push_back(try_parse_iso8601(s));
      return id;
    }
    void put_text(slot_id slot, const std::string& s) {
      if (s.empty()) return;
      auto& c = at(slot);
      c.kind = detail::filter_value_kind::string;
      c.ref = intern(s);
    }
    void put_instant(slot_id slot, timestamp t) {
      auto& c = at(slot);
      c.kind = detail::filter_value_kind::instant;
      c.i = t.time_since_epoch().count();
    }
    void put(slot_id slot, const nlohmann::json& v) {
      using K = detail::filter_value_kind;
      cell c;
      switch (v.type()) {
        case nlohmann::json::value_t::null: c.kind = K::null; break;
        case nlohmann::json::value_t::boolean: c.kind = K::boolean; c.b = v.get<bool>(); break;
        case nlohmann::json::value_t::number_integer: c.kind = K::integer; c.i = v.get<std::int64_t>(); break;
        case nlohmann::json::value_t::number_unsigned: c.kind = K::unsigned_integer; c.u = v.get<std::uint64_t>(); break;
        case nlohmann::json::value_t::number_float: c.kind = K::floating; c.d = v.get<double>(); break;
        case nlohmann::json::value_t::string: c.kind = K::string; c.ref = intern(v.get_ref<const std::string&>()); break;
        case nlohmann::json::value_t::array:
        case nlohmann::json::value_t::object:
          c.kind = K::structured;
          if (!free_structured.empty()) {
            c.ref = free_structured.back();
            free_structured.pop_back();
            structured[c.ref] = v;
          } else {
            c.ref = static_cast<std::uint32_t>(structured.size());
            structured.push_back(v);
          }
          break;
        default: return;
      }
      at(slot) = c;
    }
    [[nodiscard]] detail::filter_value value(slot_id slot) const {
      using K = detail::filter_value_kind;
      detail::filter_value v;
      if (slot >= cells.size()) return v;
      const auto& c = cells[slot];
      v.kind = c.kind;
      switch (c.kind) {
        case K::boolean: v.b = c.b; break;
        case K::integer:
        case K::instant: v.i = c.i; break;
        case K::unsigned_integer: v.u = c.u; break;
        case K::floating: v.d = c.d; break;
        case K::string:
          v.s = strings[c.ref];
          v.time = &times[c.ref];
          break;
        case K::structured: v.json = &structured[c.ref]; break;
        default: break;
      }
      return v;
    }
  };

  /// Where a predicate's values live: the column of its whole name, else (for a dotted path) the column of
  /// the first segment and the rest of the path inside its JSON values.
  struct plan {
    const column* exact = nullptr;
    const column* head = nullptr;
    std::string_view rest{};
  };

  [[nodiscard]] plan plan_for(const filter_predicate& p) const {
    plan out;
    switch (p.kind) {
      case filter_field::user_id: out.exact = &user_; return out;
      case filter_field::agent_id: out.exact = &agent_; return out;
      case filter_field::run_id: out.exact = &run_; return out;
      case filter_field::actor_id: out.exact = &actor_; return out;
      case filter_field::role: out.exact = &role_; return out;
      case filter_field::created_at: out.exact = &created_; return out;
      case filter_field::updated_at: out.exact = &updated_; return out;
      case filter_field::metadata: break;
    }
    if (auto it = meta_.find(p.field); it != meta_.end()) out.exact = &it->second;
    if (const auto dot = p.field.find('.'); dot != std::string::npos) {
      if (auto it = meta_.find(p.field.substr(0, dot)); it != meta_.end()) {
        out.head = &it->second;
        out.rest = std::string_view(p.field).substr(dot + 1);
      }
    }
    return out;
  }

  [[nodiscard]] static detail::filter_value value_at(const plan& pl, slot_id slot) {
    if (pl.exact) {
      auto v = pl.exact->value(slot);
      if (v.kind != detail::filter_value_kind::missing) return v;
    }
    if (pl.head) {
      const auto h = pl.head->value(slot);
      if (h.kind == detail::filter_value_kind::structured)
        if (const auto* j = detail::resolve_metadata_path(*h.json, pl.rest)) return detail::filter_value_of(*j);
    }
    return {};
  }

  using bits_t = std::vector<std::uint64_t>;

  static bool numeric_fast_path(const filter_predicate& p) noexcept {
    return p.value.is_number() && (p.op == filter_op::eq || p.op == filter_op::ne || p.op == filter_op::gt ||
                                   p.op == filter_op::gte || p.op == filter_op::lt || p.op == filter_op::lte);
  }
  /// The verdict of a numeric comparison for op (as test_predicate gives it for two numbers).
  static bool order_hit(filter_op op, std::partial_ordering o) noexcept {
    switch (op) {
      case filter_op::eq: return o == 0;
      case filter_op::ne: return !(o == 0);
      case filter_op::gt: return o > 0;
      case filter_op::gte: return o >= 0;
      case filter_op::lt: return o < 0;
      case filter_op::lte: return o <= 0;
      default: return false;
    }
  }

  /// Calls f(i) for each set bit i, in increasing order.
  template <class F>
  static void for_each_set(const bits_t& bits, F&& f) {
    for (std::size_t w = 0; w < bits.size(); ++w)
      for (std::uint64_t word = bits[w]; word; word &= word - 1)
        f(w * 64 + static_cast<std::size_t>(std::countr_zero(word)));
  }

  /// The slots 0 .. n-1, indexed like a span of slots.
  struct dense_slots {
    std::size_t n;
    [[nodiscard]] std::size_t size() const noexcept { return n; }
    slot_id operator[](std::size_t i) const noexcept { return static_cast<slot_id>(i); }
  };

  static void mask_tail(bits_t& b, std::size_t n) {
    if (n % 64 && !b.empty()) b.back() &= (std::uint64_t{1} << (n % 64)) - 1;
  }

  template <class Slots>
  [[nodiscard]] bits_t eval_bits(const filter_expr& f, const Slots& slots) const {
    const std::size_t n = slots.size();
    const std::size_t words = (n + 63) / 64;
    struct visitor {
      const filter_columns& self;
      const Slots& slots;
      std::size_t n, words;
      bits_t operator()(std::monostate) const {
        bits_t b(words, ~std::uint64_t{0});
        mask_tail(b, n);
        return b;
      }
      bits_t operator()(const filter_predicate& p) const { return self.eval_leaf(p, slots); }
      bits_t any(const std::vector<filter_expr>& c) const {
        bits_t acc(words, 0);
        for (const auto& x : c) {
          const auto b = std::visit(*this, x.node);
          for (std::size_t w = 0; w < words; ++w) acc[w] |= b[w];
        }
        return acc;
      }
      bits_t operator()(const filter_and& nd) const {
        bits_t acc = std::visit(*this, nd.children.front().node);
        for (std::size_t i = 1; i < nd.children.size(); ++i) {
          if (std::all_of(acc.begin(), acc.end(), [](std::uint64_t w) { return w == 0; })) break;
          const auto b = std::visit(*this, nd.children[i].node);
          for (std::size_t w = 0; w < words; ++w) acc[w] &= b[w];
        }
        return acc;
      }
      bits_t operator()(const filter_or& nd) const { return any(nd.children); }
      bits_t operator()(const filter_not& nd) const {
        auto acc = any(nd.children);
        for (auto& w : acc) w = ~w;
        mask_tail(acc, n);
        return acc;
      }
    };
    return std::visit(visitor{*this, slots, n, words}, f.node);
  }

  template <class Slots>
  [[nodiscard]] bits_t eval_leaf(const filter_predicate& p, const Slots& slots) const {
    const std::size_t n = slots.size();
    bits_t out((n + 63) / 64, 0);
    const auto pl = plan_for(p);
    // Strings: test each distinct value once when that is cheaper than testing each slot.
    std::vector<std::uint8_t> by_string;
    if (pl.exact && !pl.exact->strings.empty() && pl.exact->strings.size() <= n) {
      by_string.resize(pl.exact->strings.size());
      for (std::size_t s = 0; s < by_string.size(); ++s) {
        detail::filter_value v;
        v.kind = detail::filter_value_kind::string;
        v.s = pl.exact->strings[s];
        v.time = &pl.exact->times[s];
        by_string[s] = detail::test_predicate(p, v) ? 1 : 0;
      }
    }
    const bool missing_matches = detail::test_predicate(p, detail::filter_value{});
    const auto* cells = pl.exact ? pl.exact->cells.data() : nullptr;
    const std::size_t ncells = pl.exact ? pl.exact->cells.size() : 0;
    if (numeric_fast_path(p) && !pl.head) {
      // A number compared with a column: the operand decoded once, the test of test_predicate inlined.
      using K = detail::filter_value_kind;
      const auto x = detail::filter_value_of(p.value);
      const bool other_kind = p.op == filter_op::ne;  // what a non-number, non-array value gives
      for (std::size_t i = 0; i < n; ++i) {
        const slot_id s = slots[i];
        bool hit;
        if (s >= ncells) {
          hit = missing_matches;
        } else {
          const auto& c = cells[s];
          switch (c.kind) {
            case K::integer:
            case K::unsigned_integer:
            case K::floating: hit = order_hit(p.op, detail::compare_numbers(pl.exact->value(s), x)); break;
            case K::missing: hit = missing_matches; break;
            case K::structured: hit = detail::test_predicate(p, value_at(pl, s)); break;
            default: hit = other_kind; break;
          }
        }
        out[i / 64] |= std::uint64_t{hit} << (i % 64);
      }
      return out;
    }
    for (std::size_t i = 0; i < n; ++i) {
      const slot_id s = slots[i];
      bool hit;
      if (s < ncells && cells[s].kind == detail::filter_value_kind::string && !by_string.empty()) {
        hit = by_string[cells[s].ref] != 0;
      } else if ((s >= ncells || cells[s].kind == detail::filter_value_kind::missing) && !pl.head) {
        hit = missing_matches;
      } else {
        hit = detail::test_predicate(p, value_at(pl, s));
      }
      out[i / 64] |= std::uint64_t{hit} << (i % 64);
    }
    return out;
  }

  std::vector<std::uint8_t> live_;
  std::size_t size_ = 0;
  column user_, agent_, run_, actor_, role_, created_, updated_;
  std::unordered_map<std::string, column> meta_;
};

}  // namespace engram::inline v0
