#pragma once
/// @file examples/common/graph_json.hpp
/// Mem0's `enable_graph` over engram's entity index (memory_config::entities): the request field, and the
/// `relations` a search or a listing answers beside its `results`. Used by service.hpp; the graph routes are
/// in graph.hpp.

#include <engram/engram.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace engram_app {

using nlohmann::json;

namespace graph_detail {
/// `text` lowercased, each run of characters other than ASCII letters and digits (and bytes of UTF-8
/// sequences) one space, with a space at both ends: whole names are found as " name ".
inline std::string word_text(std::string_view text) {
  std::string out = " ";
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    const bool word = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || u >= 0x80;
    if (word) out += c;
    else if (c >= 'A' && c <= 'Z') out += static_cast<char>(c - 'A' + 'a');
    else if (out.back() != ' ') out += ' ';
  }
  if (out.back() != ' ') out += ' ';
  return out;
}

/// The keys (engram::detail::entity_key) an entity is known by: its name and its aliases.
inline std::vector<std::string> keys_of(const engram::entity_info& e) {
  std::vector<std::string> keys{engram::detail::entity_key(e.name)};
  for (const auto& a : e.aliases) keys.push_back(engram::detail::entity_key(a));
  return keys;
}

inline json entity_json(const engram::entity_info& e) {
  json merges = json::array();
  for (const auto& m : e.merges)
    merges.push_back({{"name", m.name}, {"memory_id", m.memory_id}, {"by", std::string(engram::to_string(m.reason))}});
  return json{{"name", e.name}, {"type", std::string(engram::to_string(e.type))}, {"aliases", e.aliases},
              {"memories", e.memories}, {"merges", std::move(merges)}};
}

inline json relation_json(const engram::relation_info& r) {
  return json{{"source", r.source}, {"relationship", r.relationship}, {"target", r.target}, {"memories", r.memories}};
}
}  // namespace graph_detail

/// A request's `enable_graph`: false when absent, null or false; true or false, or (from a query string)
/// "true"/"false"/"1"/"0". @throws engram::validation_error when it is anything else, or true while the
/// memory keeps no entity index (`entities` false): never silently ignored.
inline bool wants_graph(const json& req, bool entities) {
  if (!req.is_object()) return false;
  const auto it = req.find("enable_graph");
  if (it == req.end() || it->is_null()) return false;
  bool on = false;
  if (it->is_boolean()) on = it->get<bool>();
  else if (it->is_string() && (*it == "true" || *it == "1")) on = true;
  else if (!(it->is_string() && (*it == "false" || *it == "0")))
    throw engram::validation_error("'enable_graph' must be true or false, got " + it->dump());
  if (on && !entities)
    throw engram::validation_error("'enable_graph': this server keeps no entity graph; start it with "
                                   "--entities on");
  return on;
}

/// Mem0's search `relations`: the relations of the entities `query` names (by name or alias, as whole words,
/// case ignored; or by one word of a person's name) in scope `s`, each with the entity at its other end (one hop), as {source, relationship, destination}.
template <class Memory>
json query_relations(const Memory& mem, const engram::scope& s, std::string_view query) {
  const auto g = mem.entity_graph_of(s);
  const auto text = graph_detail::word_text(query);
  std::vector<std::string> named;  // names of the entities the query names
  for (const auto& e : g.entities)
    for (const auto& key : graph_detail::keys_of(e))
      if (!key.empty() && text.find(graph_detail::word_text(key)) != std::string::npos) {
        named.push_back(e.name);
        break;
      }
  // a one-word name in the query ("Ana") names the one person of the scope whose name has that word ("Ana
  // Silva"), when exactly one has it: as the index resolves a one-word mention
  std::istringstream words(text);
  for (std::string w; words >> w;) {
    if (w.size() < 2 || engram::is_keyword_stop_word(w)) continue;
    const engram::entity_info* only = nullptr;
    std::size_t n = 0;
    for (const auto& e : g.entities) {
      const auto name = graph_detail::word_text(e.name);
      const bool person = e.type == engram::entity_type::person || e.type == engram::entity_type::name;
      if (person && std::count(name.begin(), name.end(), ' ') > 2 && name.find(" " + w + " ") != std::string::npos) {
        only = &e;
        ++n;
      }
    }
    if (n == 1 && std::find(named.begin(), named.end(), only->name) == named.end()) named.push_back(only->name);
  }
  auto is_named = [&](const std::string& name) { return std::find(named.begin(), named.end(), name) != named.end(); };
  json out = json::array();
  for (const auto& r : g.relations)
    if (is_named(r.source) || is_named(r.target))
      out.push_back({{"source", r.source}, {"relationship", r.relationship}, {"destination", r.target}});
  return out;
}

/// Mem0's listing `relations`: every relation of scope `s`, as {source, relationship, target}.
template <class Memory>
json scope_relations(const Memory& mem, const engram::scope& s) {
  json out = json::array();
  for (const auto& r : mem.entity_graph_of(s).relations)
    out.push_back({{"source", r.source}, {"relationship", r.relationship}, {"target", r.target}});
  return out;
}

}  // namespace engram_app
