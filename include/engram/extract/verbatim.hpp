#pragma once
/// @file extract/verbatim.hpp
/// The offline default extractor: every non-system message is one memory, as said.

#include <engram/detail/md5.hpp>
#include <engram/error.hpp>
#include <engram/extract/actions.hpp>
#include <engram/record.hpp>

#include <concepts>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace engram::inline v0 {

/// Stores each non-empty, non-system message verbatim, skipping a text that the scope already remembers
/// exactly (same content hash and text). It never updates or deletes. Stateless and thread-safe.
struct verbatim_extractor {
  /// One fact per non-system message with non-blank content.
  /// @throws validation_error for a procedural add: summarising a run needs a model.
  [[nodiscard]] std::vector<fact> extract(std::span<const message> messages, const extraction_context& ctx) const {
    if (ctx.request.procedural)
      throw validation_error("procedural memory is a model's summary of an agent's run: it needs the LLM extractor "
                             "and infer (the verbatim extractor stores messages as given)");
    std::vector<fact> out;
    for (const auto& m : messages) {
      if (m.role == "system") continue;
      if (m.content.find_first_not_of(" \t\r\n") == std::string::npos) continue;
      out.push_back(fact{m.content, m.role, m.name, nlohmann::json::object()});
    }
    return out;
  }

  /// ADD each fact unless an existing memory near it has the same text (NONE, naming that memory).
  [[nodiscard]] std::vector<memory_action> decide(std::span<const fact> facts,
                                                  std::span<const std::vector<existing_memory>> neighbours,
                                                  const extraction_context&) const {
    std::vector<memory_action> out;
    out.reserve(facts.size());
    for (std::size_t i = 0; i < facts.size(); ++i) {
      memory_action a{event_kind::add, facts[i].text, {}, i};
      if (i < neighbours.size() && !neighbours[i].empty())
        for (const auto h = detail::md5_hex(facts[i].text); const auto& n : neighbours[i])
          if (n.hash == h && n.memory == facts[i].text) {
            a.event = event_kind::none;
            a.target_id = n.id;
            break;
          }
      out.push_back(std::move(a));
    }
    return out;
  }
};

namespace detail {

/// Whether `x` decides as verbatim_extractor does: it is one, or wraps one (any_extractor::target).
template <class X>
[[nodiscard]] bool decides_verbatim(const X& x) {
  if constexpr (std::is_same_v<X, verbatim_extractor>)
    return true;
  else if constexpr (requires { { x.template target<verbatim_extractor>() } -> std::convertible_to<const verbatim_extractor*>; })
    return x.template target<verbatim_extractor>() != nullptr;
  else
    return false;
}

}  // namespace detail

}  // namespace engram::inline v0
