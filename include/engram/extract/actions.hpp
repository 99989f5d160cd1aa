#pragma once
/// @file extract/actions.hpp
/// The vocabulary between basic_memory and an Extractor: facts out of messages, the existing memories near
/// each fact, and the actions the extractor decides.

#include <engram/record.hpp>
#include <engram/scope.hpp>
#include <engram/time.hpp>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace engram::inline v0 {

/// What an extractor is told about the add it serves.
/// A category an extractor may file facts under (llm_extractor writes the chosen ones into metadata["categories"]).
struct memory_category {
  std::string name;
  std::string description{};  ///< shown to the model to tell categories apart
};

/// What one add asks of extraction beyond the extractor's own settings (Mem0's per-request `includes`,
/// `excludes`, `custom_categories`, `custom_instructions`, `prompt`), for that call only. An extractor that takes
/// no instructions (verbatim_extractor) ignores it; llm_extractor appends the lists and instructions to its
/// configured ones, and `prompt` replaces its extraction prompt.
struct extraction_request {
  std::string custom_instructions{};
  std::vector<std::string> includes{};
  std::vector<std::string> excludes{};
  std::vector<memory_category> categories{};
  std::string prompt{};
  /// Mem0's procedural memory (`memory_type: "procedural_memory"`): the conversation is an agent's run,
  /// summarised by the model into one memory of the steps taken and their results (metadata memory_type
  /// "procedural_memory"), added without reconciliation. Needs an agent_id and a model: an extractor that
  /// cannot summarise refuses it. `prompt` then replaces the summary prompt.
  bool procedural = false;
  /// Whether an extractor that can name entities (entity_extractor) does so for this add: unset, its own
  /// setting decides (llm_extractor_options::entities); Mem0's `enable_graph` on an add sets it.
  std::optional<bool> entities{};

  [[nodiscard]] bool empty() const noexcept {
    return custom_instructions.empty() && includes.empty() && excludes.empty() && categories.empty() &&
           prompt.empty() && !procedural && !entities;
  }
  friend bool operator==(const extraction_request&, const extraction_request&) = default;
};

/// JSON of an extraction_request (kept with an add_async entry); absent members are empty.
inline void to_json(nlohmann::json& j, const memory_category& c) { j = {{"name", c.name}, {"description", c.description}}; }
inline void from_json(const nlohmann::json& j, memory_category& c) {
  c.name = j.value("name", std::string());
  c.description = j.value("description", std::string());
}
inline void to_json(nlohmann::json& j, const extraction_request& r) {
  j = {{"custom_instructions", r.custom_instructions}, {"includes", r.includes}, {"excludes", r.excludes},
       {"categories", r.categories}, {"prompt", r.prompt}};
  if (r.procedural) j["procedural"] = true;
  if (r.entities) j["entities"] = *r.entities;
}
inline void from_json(const nlohmann::json& j, extraction_request& r) {
  r.custom_instructions = j.value("custom_instructions", std::string());
  r.includes = j.value("includes", std::vector<std::string>{});
  r.excludes = j.value("excludes", std::vector<std::string>{});
  r.categories = j.value("categories", std::vector<memory_category>{});
  r.prompt = j.value("prompt", std::string());
  r.procedural = j.value("procedural", false);
  r.entities = j.contains("entities") && j["entities"].is_boolean() ? std::optional<bool>(j["entities"].get<bool>())
                                                                    : std::nullopt;
}

struct extraction_context {
  engram::scope scope;                                  ///< the scope of the add
  nlohmann::json metadata = nlohmann::json::object();  ///< the caller's metadata for the add
  /// When the conversation happened, when the caller says (add_options::timestamp): relative times resolve
  /// against it. Unset: now.
  std::optional<timestamp> when{};
  extraction_request request{};  ///< this add's own extraction instructions
};

/// One self-contained statement worth remembering.
struct fact {
  std::string text;
  std::string role;      ///< role of the message it came from
  std::string actor_id;  ///< speaker name of that message, if any
  nlohmann::json metadata = nlohmann::json::object();  ///< extra metadata for the memory (e.g. categories)
  /// When the fact became true, when the extractor could tell ("I moved to Porto last month" said on
  /// 2026-12-04: 2026-11); unset: the add's timestamp. The memory's valid_from.
  std::optional<timestamp> valid_from{};
};

/// An existing memory of the scope, near a fact.
struct existing_memory {
  std::string id;
  std::string memory;
  std::string hash;
  float score = 0.0f;  ///< cosine similarity to the fact
  /// When the memory's fact became true (record::valid_since()): lets an extractor tell which of two
  /// statements is older, so a change in the world can be told from a correction.
  timestamp valid_from{};
};

/// What to do for one fact: ADD `text`; UPDATE `target_id` to `text`; DELETE `target_id`; NONE.
/// `fact_index` says which fact an ADD or UPDATE comes from (its role, actor and metadata are used);
/// out of range means none.
struct memory_action {
  event_kind event = event_kind::add;
  std::string text;
  std::string target_id;
  std::size_t fact_index = static_cast<std::size_t>(-1);
  /// Non-empty: the extractor could not turn what it was told into an action (e.g. a model's unknown event
  /// name); the memory applies nothing for it and reports it in add_result::skipped with this reason.
  std::string skip_reason{};
  /// For an UPDATE: the stored memory was wrong rather than out of date (a correction, not a change in the
  /// world). Under contradiction_policy::supersede a correction rewrites the memory in place and keeps no
  /// closed version of the old text; under erase it changes nothing.
  bool correction = false;
};

}  // namespace engram::inline v0
