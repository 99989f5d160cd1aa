#pragma once
/// @file entity/entity_index.hpp
/// The entities and relations of each scope, derived from its memories' texts by the offline recogniser and
/// rebuilt from the store like the keyword index: which memories mention an entity, which entities are related,
/// and which entities a query names. Part of a memory's derived state (memory_config::entities).
///
/// Resolution inside a scope: names are compared lowercased with spaces collapsed ("Maria" and "maria" are one
/// entity); a one-word name is an alias of the one multi-word person or name of the scope that contains the
/// word ("Maria" of "Maria Lopez"), when exactly one does: with "Maria Lopez" and "Maria Silva" in one scope,
/// "Maria" stays an entity of its own. Merges follow the order in which memories were indexed and are undone
/// when the memory that caused them goes (a scope's graph is rebuilt from its memories on every removal).

#include <engram/entity/recognizer.hpp>
#include <engram/ids.hpp>
#include <engram/text/tokenize.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace engram::inline v0 {

/// One entity of a scope: its name (as first written), type, other names it was written as, and how many
/// memories mention it.
struct entity_info {
  std::string name;
  entity_type type = entity_type::name;
  std::vector<std::string> aliases;
  std::size_t memories = 0;
  friend bool operator==(const entity_info&, const entity_info&) = default;
};

/// One relation of a scope (entities by name) and how many memories state it.
struct relation_info {
  std::string source;
  std::string relationship;
  std::string target;
  std::size_t memories = 0;
  friend bool operator==(const relation_info&, const relation_info&) = default;
};

/// A scope's entities and relations.
struct entity_graph {
  std::vector<entity_info> entities;
  std::vector<relation_info> relations;
};

namespace detail {

/// A name as entities are compared: ASCII-lowercased, runs of spaces as one.
inline std::string entity_key(std::string_view name) {
  std::string out;
  for (const char c : name) {
    if (c == ' ') {
      if (!out.empty() && out.back() != ' ') out += ' ';
      continue;
    }
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

/// Entities and relations by partition, from the texts of the memories in each slot. Not thread-safe: its
/// owner locks. Memory: each slot keeps its recognised names and relations (the texts of its entities).
class entity_index {
 public:
  using entity_id = std::uint32_t;

  /// Recognises `text` (the memory in `slot`, of partition `p`) and adds what it names; replaces what the slot
  /// named before.
  void assign(slot_id slot, partition_id p, std::string_view text) {
    if (slots_.count(slot)) erase(slot);
    auto& sd = slots_[slot];
    sd.partition = p;
    sd.found = recognizer_.recognize(text);
    if (sd.found.entities.empty()) {
      slots_.erase(slot);
      return;
    }
    add_to_graph(graph_of(p), slot, sd.found);
  }

  /// Forgets what the memory in `slot` named; its scope's graph is rebuilt from the memories left.
  void erase(slot_id slot) {
    auto it = slots_.find(slot);
    if (it == slots_.end()) return;
    const auto p = it->second.partition;
    slots_.erase(it);
    rebuild(p);
  }

  void clear() {
    slots_.clear();
    graphs_.clear();
  }

  /// The entities of partition `p` that `query` names: the names the recogniser finds in it, and the known
  /// names of the scope it contains as whole words (case ignored), up to three words long.
  [[nodiscard]] std::vector<entity_id> named_in(partition_id p, std::string_view query) const {
    std::vector<entity_id> out;
    if (p >= graphs_.size() || graphs_[p].nodes.empty()) return out;
    const auto& g = graphs_[p];
    auto take = [&](const std::string& key, bool single_word) {
      if (auto e = resolve(g, key, single_word)) {
        if (std::find(out.begin(), out.end(), *e) == out.end()) out.push_back(*e);
      }
    };
    for (const auto& m : recognizer_.recognize(query).entities) take(entity_key(m.name), m.name.find(' ') == std::string::npos);
    std::vector<std::string> words;
    for (const auto& w : split_words(query)) words.push_back(w);
    for (std::size_t i = 0; i < words.size(); ++i) {
      std::string key;
      for (std::size_t n = 0; n < 3 && i + n < words.size(); ++n) {
        key += (n ? " " : "") + words[i + n];
        if (n == 0 && (is_keyword_stop_word(key) || key.size() < 2)) break;
        take(key, n == 0);
        // split_words turns a possessive into one word ("maria's" -> "marias"): try it without the s
        if (key.size() > 3 && key.back() == 's') take(key.substr(0, key.size() - 1), n == 0);
      }
    }
    return out;
  }

  /// Calls f(slot) for each memory of partition `p` that mentions entity `e` (a slot may come twice).
  template <class F>
  void for_each_mention(partition_id p, entity_id e, F&& f) const {
    for (const auto s : graphs_[p].nodes[e].slots) f(s);
  }

  /// Calls f(entity) once for each entity related to `e` in partition `p` (either direction), except dates: a
  /// shared date is no reason to think two things are related.
  template <class F>
  void for_each_neighbour(partition_id p, entity_id e, F&& f) const {
    const auto& g = graphs_[p];
    std::vector<entity_id> others;  // once each: a relation stated by many memories is one neighbour
    for (const auto& r : g.edges) {
      const auto a = root(g, r.source), b = root(g, r.target);
      const auto other = a == e ? b : b == e ? a : e;
      if (other != e && g.nodes[other].type != entity_type::date && !g.nodes[other].slots.empty()) others.push_back(other);
    }
    std::sort(others.begin(), others.end());
    others.erase(std::unique(others.begin(), others.end()), others.end());
    for (const auto o : others) f(o);
  }

  /// True for a date entity (not expanded through).
  [[nodiscard]] bool is_date(partition_id p, entity_id e) const { return graphs_[p].nodes[e].type == entity_type::date; }

  /// The entities and relations of the partitions `parts`, each name once, most mentioned first.
  [[nodiscard]] entity_graph graph(const std::vector<partition_id>& parts) const {
    entity_graph out;
    for (const auto p : parts) {
      if (p >= graphs_.size()) continue;
      const auto& g = graphs_[p];
      for (entity_id e = 0; e < g.nodes.size(); ++e) {
        const auto& n = g.nodes[e];
        if (g.parent[e] != e || n.slots.empty()) continue;
        out.entities.push_back({n.name, n.type, n.aliases, distinct(n.slots)});
      }
      std::vector<std::pair<relation_info, std::vector<slot_id>>> rels;
      for (const auto& r : g.edges) {
        relation_info ri{g.nodes[root(g, r.source)].name, r.relationship, g.nodes[root(g, r.target)].name, 0};
        auto it = std::find_if(rels.begin(), rels.end(), [&](const auto& x) { return x.first == ri; });
        if (it == rels.end()) it = rels.insert(rels.end(), {ri, {}});
        it->second.push_back(r.slot);
      }
      for (auto& [ri, s] : rels) {
        ri.memories = distinct(s);
        out.relations.push_back(std::move(ri));
      }
    }
    std::stable_sort(out.entities.begin(), out.entities.end(),
                     [](const auto& a, const auto& b) { return a.memories > b.memories; });
    return out;
  }

  /// Bytes held, estimated (for reports).
  [[nodiscard]] std::size_t bytes() const noexcept {
    std::size_t b = 0;
    for (const auto& [slot, sd] : slots_) {
      b += 64;
      for (const auto& e : sd.found.entities) b += 48 + e.name.size();
      for (const auto& r : sd.found.relations) b += 96 + r.source.size() + r.relationship.size() + r.target.size();
    }
    for (const auto& g : graphs_) {
      for (const auto& n : g.nodes) b += 96 + n.name.size() + n.slots.size() * sizeof(slot_id);
      b += g.edges.size() * 48 + (g.strong.size() + g.weak.size()) * 64;
    }
    return b;
  }

 private:
  struct node {
    std::string name;
    entity_type type = entity_type::name;
    std::vector<std::string> aliases;
    std::vector<slot_id> slots;  // memories mentioning it (a slot once per mention)
  };
  struct edge {
    entity_id source, target;
    std::string relationship;
    slot_id slot;
  };
  struct graph_t {
    std::unordered_map<std::string, entity_id> strong;             // key of a name -> entity
    std::unordered_map<std::string, std::vector<entity_id>> weak;  // word of a multi-word name -> entities
    std::vector<node> nodes;
    std::vector<entity_id> parent;  // merged entities point to the entity they joined
    std::vector<edge> edges;
  };
  struct slot_data {
    partition_id partition = 0;
    recognized_entities found;
  };

  static std::size_t distinct(std::vector<slot_id> s) {
    std::sort(s.begin(), s.end());
    return static_cast<std::size_t>(std::unique(s.begin(), s.end()) - s.begin());
  }

  static entity_id root(const graph_t& g, entity_id e) {
    while (g.parent[e] != e) e = g.parent[e];
    return e;
  }

  /// The entity `key` names in `g`: an exact name, else (for one word) the one multi-word name containing it.
  static std::optional<entity_id> resolve(const graph_t& g, const std::string& key, bool single_word) {
    if (auto it = g.strong.find(key); it != g.strong.end()) return root(g, it->second);
    if (single_word)
      if (auto it = g.weak.find(key); it != g.weak.end() && it->second.size() == 1) return root(g, it->second.front());
    return std::nullopt;
  }

  graph_t& graph_of(partition_id p) {
    if (p >= graphs_.size()) graphs_.resize(std::size_t{p} + 1);
    return graphs_[p];
  }

  static bool person_like(entity_type t) { return t == entity_type::person || t == entity_type::name; }

  static entity_id mention(graph_t& g, const entity_mention& m) {
    const auto key = entity_key(m.name);
    const bool single = key.find(' ') == std::string::npos;
    if (auto e = resolve(g, key, single)) {
      auto& n = g.nodes[*e];
      if (n.type == entity_type::name && m.type != entity_type::name) n.type = m.type;  // the more specific
      if (n.name != m.name && std::find(n.aliases.begin(), n.aliases.end(), m.name) == n.aliases.end())
        n.aliases.push_back(m.name);
      return *e;
    }
    const auto id = static_cast<entity_id>(g.nodes.size());
    g.nodes.push_back({m.name, m.type, {}, {}});
    g.parent.push_back(id);
    g.strong.emplace(key, id);
    if (!single && person_like(m.type)) {
      std::size_t start = 0;
      while (start < key.size()) {
        auto end = key.find(' ', start);
        if (end == std::string::npos) end = key.size();
        const auto word = key.substr(start, end - start);
        start = end + 1;
        if (word.size() < 2 || is_keyword_stop_word(word)) continue;
        auto& owners = g.weak[word];
        owners.push_back(id);
        // an entity of that one word alone joins the new name, while the word names nothing else
        if (owners.size() == 1)
          if (auto it = g.strong.find(word); it != g.strong.end()) {
            const auto old = root(g, it->second);
            if (old != id && person_like(g.nodes[old].type)) merge(g, old, id);
          }
      }
    }
    return id;
  }

  static void merge(graph_t& g, entity_id from, entity_id into) {
    auto& a = g.nodes[from];
    auto& b = g.nodes[into];
    b.aliases.push_back(a.name);
    for (auto& al : a.aliases) b.aliases.push_back(std::move(al));
    b.slots.insert(b.slots.end(), a.slots.begin(), a.slots.end());
    a.slots.clear();
    a.aliases.clear();
    g.parent[from] = into;
  }

  static void add_to_graph(graph_t& g, slot_id slot, const recognized_entities& found) {
    std::vector<std::pair<std::string, entity_id>> ids;
    for (const auto& m : found.entities) {
      const auto e = mention(g, m);
      g.nodes[e].slots.push_back(slot);
      ids.emplace_back(m.name, e);
    }
    auto id_of = [&](const std::string& name) {
      for (const auto& [n, e] : ids)
        if (n == name) return e;
      return ids.front().second;
    };
    for (const auto& r : found.relations) g.edges.push_back({id_of(r.source), id_of(r.target), r.relationship, slot});
  }

  void rebuild(partition_id p) {
    auto& g = graph_of(p);
    g = graph_t{};
    std::vector<slot_id> in_p;
    for (const auto& [slot, sd] : slots_)
      if (sd.partition == p) in_p.push_back(slot);
    std::sort(in_p.begin(), in_p.end());
    for (const auto s : in_p) add_to_graph(g, s, slots_.at(s).found);
  }

  offline_recognizer recognizer_;
  std::unordered_map<slot_id, slot_data> slots_;
  std::vector<graph_t> graphs_;  // by partition
};

}  // namespace detail
}  // namespace engram::inline v0
