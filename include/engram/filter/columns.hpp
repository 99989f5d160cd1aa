#pragma once
/// @file filter/columns.hpp
/// The column store of filter evaluation: typed metadata columns by slot, a filter compiled over a set of
/// slots into a candidate bitmap (select), or tested on one slot (matches), with the predicate test of
/// filter/predicate.hpp, so its answers equal filter_matches on the record.

#include <engram/filter/expr.hpp>
#include <engram/filter/predicate.hpp>
#include <engram/ids.hpp>
#include <engram/index/bitmap.hpp>
#include <engram/record.hpp>
#include <engram/temporal/structured_attributes.hpp>
#include <engram/time.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>  // std::countr_zero
#include <chrono>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace engram::inline v0 {

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
    valid_.put_instant(slot, r.valid_since());
    if (r.invalid_at) invalid_.put_instant(slot, *r.invalid_at);
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
    for (auto* c : {&user_, &agent_, &run_, &actor_, &role_, &created_, &updated_, &valid_, &invalid_}) c->clear_cell(slot);
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
  /// the first segment and the rest of the path inside its JSON values. A structured attribute is derived
  /// from the instant in the valid_from column (`derived`), as record_value derives it from the record.
  struct plan {
    const column* exact = nullptr;
    const column* head = nullptr;
    std::string_view rest{};
    bool derived = false;
    structured_attribute attribute = structured_attribute::year;
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
      case filter_field::valid_from: out.exact = &valid_; return out;
      case filter_field::invalid_at: out.exact = &invalid_; return out;
      case filter_field::structured_attribute:
        out.exact = &valid_;
        out.derived = true;
        out.attribute = p.attribute;
        return out;
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
      if (pl.derived && v.kind == detail::filter_value_kind::instant)
        return detail::attribute_value(structured_attributes_of(timestamp(std::chrono::microseconds(v.i))), pl.attribute);
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
    if (numeric_fast_path(p) && !pl.head && !pl.derived) {
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
  column user_, agent_, run_, actor_, role_, created_, updated_, valid_, invalid_;
  std::unordered_map<std::string, column> meta_;
};

}  // namespace engram::inline v0
