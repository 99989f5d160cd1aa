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
struct extraction_context {
  engram::scope scope;                                  ///< the scope of the add
  nlohmann::json metadata = nlohmann::json::object();  ///< the caller's metadata for the add
  /// When the conversation happened, when the caller says (add_options::timestamp): relative times resolve
  /// against it. Unset: now.
  std::optional<timestamp> when{};
};

/// One self-contained statement worth remembering.
struct fact {
  std::string text;
  std::string role;      ///< role of the message it came from
  std::string actor_id;  ///< speaker name of that message, if any
  nlohmann::json metadata = nlohmann::json::object();  ///< extra metadata for the memory (e.g. categories)
};

/// An existing memory of the scope, near a fact.
struct existing_memory {
  std::string id;
  std::string memory;
  std::string hash;
  float score = 0.0f;  ///< cosine similarity to the fact
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
};

}  // namespace engram::inline v0
