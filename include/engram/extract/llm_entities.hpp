#pragma once
/// @file extract/llm_entities.hpp
/// The entity call of llm_extractor (entity memory): the instructions that ask a chat model for the entities
/// and relations of memory texts, and the strict reading of its reply. A reply that does not answer every
/// text in the asked shape is refused whole (provider_error): the add it serves then stores nothing, never a
/// memory with half its entities.

#include <engram/entity/mentions.hpp>
#include <engram/error.hpp>
#include <engram/text/utf8.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace engram::inline v0 {

/// Most entities, and most relations, kept for one memory text; a reply naming more is refused.
inline constexpr std::size_t max_entities_per_memory = 64;
/// Longest entity name or relationship accepted, in bytes.
inline constexpr std::size_t max_entity_name_bytes = 200;

/// The built-in system prompt of the entity call.
inline std::string default_entity_prompt() {
  return "You build the entity memory of an AI assistant. For each numbered memory below, list the entities "
         "it names and the relations it states between them.\n\n"
         "Rules:\n"
         "- Entities are people, organizations, places, dates, handles (e-mail addresses, @names) and titles of "
         "works, products or events. Give each with the name as the memory writes it, in full (\"Maria Lopez\", "
         "not \"she\"), and a type: one of person, organization, place, date, handle, title, name.\n"
         "- The user the memory is about is not an entity unless the memory names them.\n"
         "- A relation joins two entities of the same memory: {\"source\", \"relationship\", \"destination\"}, "
         "the relationship in a few lowercase words (\"works at\", \"is based in\", \"manages\").\n"
         "- A memory that names nothing gets empty lists.\n\n"
         "Answer with one JSON object and nothing else: {\"memories\": [{\"entities\": [{\"name\": \"...\", "
         "\"type\": \"...\"}], \"relations\": [{\"source\": \"...\", \"relationship\": \"...\", \"destination\": "
         "\"...\"}]}, ...]}, one item per memory, in the order given.";
}

/// The user message of the entity call: the texts, numbered from 1.
inline std::string entity_call_input(std::span<const std::string> texts) {
  std::string out = "Memories:\n";
  for (std::size_t i = 0; i < texts.size(); ++i) out += std::to_string(i + 1) + ". " + texts[i] + "\n";
  return out;
}

namespace detail {

/// A non-empty name or relationship of the reply, trimmed. @throws provider_error naming `where`.
inline std::string entity_text(const nlohmann::json& item, std::string_view key, const std::string& where) {
  const auto it = item.find(std::string(key));
  if (it == item.end() || !it->is_string())
    throw provider_error("entity reply: " + where + " has no string '" + std::string(key) + "'");
  const auto& s = it->get_ref<const std::string&>();
  const auto b = s.find_first_not_of(" \t\r\n");
  const std::string t = b == std::string::npos ? std::string() : s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
  if (t.empty()) throw provider_error("entity reply: " + where + " has an empty '" + std::string(key) + "'");
  if (t.size() > max_entity_name_bytes || !is_valid_utf8(t))
    throw provider_error("entity reply: " + where + "'s '" + std::string(key) + "' is over " +
                         std::to_string(max_entity_name_bytes) + " bytes or not UTF-8");
  return t;
}

/// The list `key` of `item`: absent is empty; anything but an array of at most max_entities_per_memory is refused.
inline const nlohmann::json& entity_list(const nlohmann::json& item, const char* key, const std::string& where) {
  static const nlohmann::json none = nlohmann::json::array();
  const auto it = item.find(key);
  if (it == item.end() || it->is_null()) return none;
  if (!it->is_array()) throw provider_error("entity reply: " + where + "'s '" + key + "' is not a list");
  if (it->size() > max_entities_per_memory)
    throw provider_error("entity reply: " + where + " names " + std::to_string(it->size()) + " " + key +
                         "; at most " + std::to_string(max_entities_per_memory) + " are kept");
  return *it;
}

}  // namespace detail

/// Reads the entity call's reply for `count` texts: {"memories": [{"entities": [...], "relations": [...]}, ...]}
/// with exactly `count` items. Types are read with parse_entity_type (unknown kinds become `name`); a relation's
/// target is "destination" (Mem0's word) or "target". @throws provider_error saying what is wrong.
inline std::vector<recognized_entities> parse_entity_reply(const nlohmann::json& reply, std::size_t count) {
  if (!reply.is_object() || !reply.contains("memories") || !reply["memories"].is_array())
    throw provider_error("entity reply: no 'memories' list");
  const auto& items = reply["memories"];
  if (items.size() != count)
    throw provider_error("entity reply: " + std::to_string(items.size()) + " items for " + std::to_string(count) +
                         " memories");
  std::vector<recognized_entities> out(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::string where = "memory " + std::to_string(i + 1);
    if (!items[i].is_object()) throw provider_error("entity reply: " + where + " is not an object");
    auto& found = out[i];
    for (const auto& e : detail::entity_list(items[i], "entities", where)) {
      if (!e.is_object()) throw provider_error("entity reply: an entity of " + where + " is not an object");
      const auto type = e.contains("type") && e["type"].is_string() ? parse_entity_type(e["type"].get<std::string>())
                                                                    : entity_type::name;
      entity_mention m{detail::entity_text(e, "name", "an entity of " + where), type};
      bool known = false;
      for (const auto& x : found.entities) known = known || x.name == m.name;
      if (!known) found.entities.push_back(std::move(m));
    }
    for (const auto& r : detail::entity_list(items[i], "relations", where)) {
      if (!r.is_object()) throw provider_error("entity reply: a relation of " + where + " is not an object");
      const std::string what = "a relation of " + where;
      entity_relation rel{detail::entity_text(r, "source", what), detail::entity_text(r, "relationship", what),
                          detail::entity_text(r, r.contains("destination") ? "destination" : "target", what)};
      found.relations.push_back(std::move(rel));
    }
  }
  return out;
}

}  // namespace engram::inline v0
