#pragma once
/// @file memory/action_inputs.hpp
/// What an add's actions write besides what the store holds: the vector of each text they may write, and the
/// entities an extractor named in them (entity memory). Gathered before the write lock is taken, since both
/// may call a model.

#include <engram/capabilities.hpp>
#include <engram/concepts.hpp>
#include <engram/entity/mentions.hpp>
#include <engram/error.hpp>
#include <engram/extract/actions.hpp>
#include <engram/memory/validate.hpp>  // is_blank
#include <engram/record.hpp>

#include <algorithm>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace engram::inline v0::detail {

/// The texts actions add or update that are not the text of a fact (an extractor may rephrase): they need
/// vectors of their own, embedded before the write lock is taken.
inline std::vector<std::string> action_texts_to_embed(std::span<const memory_action> actions,
                                                      std::span<const std::string> fact_texts) {
  std::vector<std::string> out;
  for (const auto& a : actions)
    if ((a.event == event_kind::add || a.event == event_kind::update) && !is_blank(a.text) &&
        std::find(fact_texts.begin(), fact_texts.end(), a.text) == fact_texts.end() &&
        std::find(out.begin(), out.end(), a.text) == out.end())
      out.push_back(a.text);
  return out;
}

/// The distinct texts actions add or update, in order: what an extractor names entities for.
inline std::vector<std::string> written_texts(std::span<const memory_action> actions) {
  return action_texts_to_embed(actions, std::span<const std::string>());
}

/// The extractor's entities of `texts`, if it names them (entity_extractor): one per text, or nullopt. Called
/// without the memory's lock (it may call a model).
template <class Extractor>
std::optional<std::vector<recognized_entities>> name_entities(Extractor& x, std::span<const std::string> texts,
                                                              const extraction_context& ctx) {
  if constexpr (entity_extractor<Extractor>) {
    if (!texts.empty()) return x.entities_of(texts, ctx);
  }
  return std::nullopt;
}

/// The vectors and entities of the texts an add's actions may write.
class action_inputs {
 public:
  /// `texts` (the facts') with their `vectors`; the texts of `actions` not among them are embedded with `embed`
  /// (texts -> vectors).
  template <class Embed>
  action_inputs(std::span<const memory_action> actions, std::vector<std::string> texts,
                std::vector<std::vector<float>> vectors, Embed&& embed)
      : texts_(std::move(texts)), vectors_(std::move(vectors)) {
    auto extra = action_texts_to_embed(actions, texts_);
    auto extra_vectors = embed(std::span<const std::string>(extra));
    for (std::size_t i = 0; i < extra.size(); ++i) {
      texts_.push_back(std::move(extra[i]));
      vectors_.push_back(std::move(extra_vectors.at(i)));
    }
  }

  /// Asks `name` (texts -> optional entities, one per text) for the entities of every text `actions` write.
  template <class Name>
  void name_entities(std::span<const memory_action> actions, Name&& name) {
    named_ = written_texts(actions);
    if (named_.empty()) return;
    entities_ = name(std::span<const std::string>(named_));
    if (entities_ && entities_->size() != named_.size())
      throw provider_error("extractor: named entities for " + std::to_string(entities_->size()) + " of " +
                           std::to_string(named_.size()) + " memory texts");
  }

  /// The vector of `text`, one of the facts' or the actions' texts.
  [[nodiscard]] const std::vector<float>& vector_of(const std::string& text) const {
    return vectors_.at(std::size_t(std::find(texts_.begin(), texts_.end(), text) - texts_.begin()));
  }
  /// The entities the extractor named in `text`; unset when it named none (the index recognises the text).
  [[nodiscard]] std::optional<recognized_entities> entities_of(const std::string& text) const {
    if (!entities_) return std::nullopt;
    const auto it = std::find(named_.begin(), named_.end(), text);
    if (it == named_.end()) return std::nullopt;
    return (*entities_)[std::size_t(it - named_.begin())];
  }

 private:
  std::vector<std::string> texts_;
  std::vector<std::vector<float>> vectors_;
  std::vector<std::string> named_;
  std::optional<std::vector<recognized_entities>> entities_;
};

}  // namespace engram::inline v0::detail
