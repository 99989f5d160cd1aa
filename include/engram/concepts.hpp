#pragma once
/// @file concepts.hpp
/// The four policies of basic_memory, as concepts whose names say what a type must provide. What a policy may
/// offer beyond them (a pending queue, a change feed, ...) is in capabilities.hpp.

#include <engram/extract/actions.hpp>
#include <engram/index/bitmap.hpp>
#include <engram/ids.hpp>
#include <engram/record.hpp>
#include <engram/scope.hpp>
#include <engram/write_batch.hpp>

#include <concepts>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace engram::inline v0 {

/// Turns text into a vector of fixed size. Optional: `embed_batch(std::span<const std::string>)` (used for
/// many texts at once when present) and `name()` (recorded by durable stores; defaults to "custom").
/// basic_memory calls it from several threads at once: it must be thread-safe.
template <class E>
concept embedder = requires(const E& e, std::string_view text) {
  { e.dimension() } -> std::convertible_to<std::size_t>;
  { e.embed(text) } -> std::convertible_to<std::vector<float>>;
};

/// Holds vectors under slots grouped in partitions and finds the nearest ones.
template <class I>
concept vector_index = requires(I& i, const I& ci, slot_id s, partition_id p, std::span<const float> v, std::size_t k,
                                std::span<const partition_id> ps, const slot_bitmap* c) {
  { ci.dimension() } -> std::convertible_to<std::size_t>;
  { ci.size() } -> std::convertible_to<std::size_t>;
  i.add(s, p, v);
  i.update(s, v);
  i.remove(s);
  i.clear();
  { ci.search(v, k, ps, c) } -> std::convertible_to<std::vector<index_hit>>;
};

/// The durable truth: records and history, changed only through atomic write batches.
/// Optional: `bind(store_identity)` to refuse vectors of another embedder.
template <class S>
concept record_store = requires(S& s, const S& cs, const write_batch& b, std::string_view id) {
  s.apply(b);
  { cs.get(id) } -> std::same_as<std::optional<record>>;
  cs.for_each([](const record&) {});
  { cs.history(id) } -> std::convertible_to<std::vector<history_event>>;
  s.clear();
};

/// Turns messages into facts, then decides ADD / UPDATE / DELETE / NONE for them given nearby memories.
template <class X>
concept fact_extractor = requires(X& x, std::span<const message> msgs, const extraction_context& ctx,
                                  std::span<const fact> facts, std::span<const std::vector<existing_memory>> near) {
  { x.extract(msgs, ctx) } -> std::convertible_to<std::vector<fact>>;
  { x.decide(facts, near, ctx) } -> std::convertible_to<std::vector<memory_action>>;
};

namespace detail {
template <class E>
std::vector<std::vector<float>> embed_all(const E& e, std::span<const std::string> texts) {
  if constexpr (requires { { e.embed_batch(texts) } -> std::convertible_to<std::vector<std::vector<float>>>; }) {
    return e.embed_batch(texts);
  } else {
    std::vector<std::vector<float>> out;
    out.reserve(texts.size());
    for (const auto& t : texts) out.push_back(e.embed(t));
    return out;
  }
}
template <class E>
std::string embedder_name(const E& e) {
  if constexpr (requires { { e.name() } -> std::convertible_to<std::string>; }) {
    return e.name();
  } else {
    return "custom";
  }
}
}  // namespace detail

}  // namespace engram::inline v0
