#pragma once
/// @file filter/eval.hpp
/// Evaluating filters: per record, per slot over typed columns, compiled over a set of slots into a
/// candidate bitmap, and against a partition's scope. Every path calls the same predicate test, so a filter
/// means one thing everywhere.
///
/// This header evaluates a filter against one record and against a partition's scope; the column store
/// (filter_columns) is in filter/columns.hpp and the predicate test with its semantics in
/// filter/predicate.hpp, both included here.

#include <engram/filter/columns.hpp>
#include <engram/filter/expr.hpp>
#include <engram/filter/predicate.hpp>
#include <engram/record.hpp>
#include <engram/scope.hpp>

#include <algorithm>
#include <cstdint>
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

}  // namespace engram::inline v0
