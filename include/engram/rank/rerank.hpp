#pragma once
/// @file rank/rerank.hpp
/// The reranker hook: a last pass over a search's candidates, e.g. a cross-encoder scoring (query, memory)
/// pairs. basic_memory calls it (when set in memory_config) on its candidate pool, best first, before the
/// pool is cut to the requested limit.

#include <engram/record.hpp>

#include <concepts>
#include <functional>
#include <string_view>
#include <utility>
#include <vector>

namespace engram::inline v0 {

/// A reranker reorders (and may rescore or drop) hits: `rerank(query, hits) -> hits`, best first.
template <class R>
concept reranker = requires(const R& r, std::string_view q, std::vector<search_hit> hits) {
  { r.rerank(q, std::move(hits)) } -> std::convertible_to<std::vector<search_hit>>;
};

/// The default: keeps the order and scores it is given.
struct no_reranker {
  [[nodiscard]] std::vector<search_hit> rerank(std::string_view, std::vector<search_hit> hits) const { return hits; }
};

/// A type-erased reranker, as memory_config holds it. Empty means no reranking.
using rerank_function = std::function<std::vector<search_hit>(std::string_view, std::vector<search_hit>)>;

/// Wraps any reranker for memory_config::rerank. The reranker must be safe to call concurrently (searches run
/// in parallel).
template <reranker R>
rerank_function make_rerank_function(R r) {
  return [r = std::move(r)](std::string_view q, std::vector<search_hit> hits) { return r.rerank(q, std::move(hits)); };
}

}  // namespace engram::inline v0
