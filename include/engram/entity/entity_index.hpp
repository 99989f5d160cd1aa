#pragma once
/// @file entity/entity_index.hpp
/// The entities and relations of each scope, derived from its memories (an extractor's entities when the record
/// has them, record::entities, else the offline recogniser's reading of the text) and rebuilt from the store like
/// the keyword index: which memories mention an entity, which entities are related, and which entities a query
/// names. Part of a memory's derived state (memory_config::entities).
///
/// Resolution inside a scope: names are compared lowercased with spaces collapsed ("Maria" and "maria" are one
/// entity); a one-word name is an alias of the one multi-word person or name of the scope that contains the
/// word ("Maria" of "Maria Lopez"), when exactly one does: with "Maria Lopez" and "Maria Silva" in one scope,
/// "Maria" stays an entity of its own. With a similarity threshold (memory_config::entity_similarity), a name
/// that is none of these joins the entity of the scope whose names' vectors are closest to its own, when the
/// cosine reaches the threshold and the types agree (the same, or either a plain name; never dates or
/// handles); a name without a vector yet (name_similarity.hpp) does not merge that way. Merges follow the order
/// in which memories were indexed and are undone when the memory that caused them goes (a scope's graph is
/// rebuilt from its memories on every removal).

#include <engram/entity/name_similarity.hpp>
#include <engram/entity/recognizer.hpp>
#include <engram/ids.hpp>
#include <engram/text/tokenize.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <optional>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

namespace engram::inline v0 {

/// Why a name joined an entity of another name.
enum class merge_reason : std::uint8_t {
  spelling,    ///< the same name written otherwise ("maria lopez", "Maria  Lopez")
  word,        ///< a one-word name and the one multi-word name of the scope containing it ("Maria", "Maria Lopez")
  similarity,  ///< the names' vectors are close (memory_config::entity_similarity)
};

/// "spelling", "word" or "similarity".
inline constexpr std::string_view to_string(merge_reason r) noexcept {
  switch (r) {
    case merge_reason::spelling: return "spelling";
    case merge_reason::word: return "word";
    case merge_reason::similarity: return "similarity";
  }
  return "spelling";
}

/// One merge of an entity: the name that joined it, the memory whose indexing joined them (deleting that
/// memory undoes the merge) and why.
struct entity_merge {
  std::string name;
  std::string memory_id;
  merge_reason reason = merge_reason::spelling;
  friend bool operator==(const entity_merge&, const entity_merge&) = default;
};

/// One entity of a scope: its name (as first written), type, other names it was written as, how many
/// memories mention it, and the merges that gave it its other names (in the order they happened).
struct entity_info {
  std::string name;
  entity_type type = entity_type::name;
  std::vector<std::string> aliases;
  std::size_t memories = 0;
  std::vector<entity_merge> merges{};
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

/// Entities and relations by partition, from the memories in each slot. Not thread-safe: its owner locks; except
/// names_missing(texts, given), remember_name_vectors() and similarity(), which need no lock (the name vectors
/// lock themselves). Memory: each slot keeps its names and relations (the texts of its entities); with
/// similarity on, one vector per distinct name.
class entity_index {
 public:
  using entity_id = std::uint32_t;

  /// `similarity`: memory_config::entity_similarity (0: off). @throws validation_error outside 0..1.
  explicit entity_index(float similarity = 0.0f) : similarity_(checked_entity_similarity(similarity)) {}

  /// Adds what the memory in `slot` (of partition `p`) names: `given` when set (an extractor's entities, even
  /// none), else what the recogniser finds in `text`; replaces what the slot named before.
  void assign(slot_id slot, partition_id p, std::string_view text,
              const std::optional<recognized_entities>& given = std::nullopt) {
    if (slots_.count(slot)) erase(slot);
    auto found = given ? given_entities(*given) : recognizer_.recognize(text);
    if (found.entities.empty()) return;
    auto& sd = slots_[slot];
    sd.partition = p;
    sd.found = std::move(found);
    if (!held_) add_to_graph(graph_of(p), similar_of(p), slot, sd.found);
  }

  /// The cosine threshold of resolution by name similarity; 0 when off.
  [[nodiscard]] float similarity() const noexcept { return similarity_; }

  /// With similarity on: the normalised names (entity_key) that memories with these `texts` (recognised) and
  /// these `given` entities (an extractor's) would bring and that have no vector yet, each once; dates and
  /// handles excluded. Empty when off. Needs no lock.
  [[nodiscard]] std::vector<std::string> names_missing(std::span<const std::string> texts,
                                                       std::span<const recognized_entities> given = {}) const {
    if (similarity_ <= 0.0f) return {};
    std::vector<std::string> keys;
    for (const auto& t : texts) add_keys(recognizer_.recognize(t), keys);
    for (const auto& g : given) add_keys(given_entities(g), keys);
    return names_.missing(keys);
  }

  /// With similarity on: the names of the indexed memories that have no vector yet (what a rebuild embeds).
  [[nodiscard]] std::vector<std::string> names_missing() const {
    if (similarity_ <= 0.0f) return {};
    std::vector<std::string> keys;
    for (const auto& [slot, sd] : slots_) add_keys(sd.found, keys);
    return names_.missing(keys);
  }

  /// Keeps the embedder's vectors of `names` (normalised names, as names_missing gives them), for resolution
  /// by similarity from now on: what is indexed already is not re-resolved. Needs no lock.
  void remember_name_vectors(std::span<const std::string> names, std::span<const std::vector<float>> vectors) {
    names_.remember(names, vectors);
  }

  /// While held, assign() only records what each memory names; releasing builds every scope's graph (a bulk
  /// load: the names' vectors are learnt in between).
  void hold(bool on) {
    const bool release = held_ && !on;
    held_ = on;
    if (!release) return;
    std::vector<partition_id> parts;
    for (const auto& [slot, sd] : slots_) parts.push_back(sd.partition);
    graphs_.clear();
    std::sort(parts.begin(), parts.end());
    parts.erase(std::unique(parts.begin(), parts.end()), parts.end());
    for (const auto p : parts) rebuild(p);
  }

  /// Forgets what the memory in `slot` named; its scope's graph is rebuilt from the memories left.
  void erase(slot_id slot) {
    auto it = slots_.find(slot);
    if (it == slots_.end()) return;
    const auto p = it->second.partition;
    slots_.erase(it);
    if (!held_) rebuild(p);
  }

  void clear() {
    slots_.clear();
    graphs_.clear();
    similar_.clear();
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

  /// As below, the merges naming memories by slot number.
  [[nodiscard]] entity_graph graph(const std::vector<partition_id>& parts) const {
    return graph(parts, [](slot_id s) { return std::to_string(s); });
  }

  /// The entities and relations of the partitions `parts`, each name once, most mentioned first; `id_of(slot)`
  /// gives the id of the memory in a slot (for the merges).
  template <class IdOf>
  [[nodiscard]] entity_graph graph(const std::vector<partition_id>& parts, IdOf&& id_of) const {
    entity_graph out;
    for (const auto p : parts) {
      if (p >= graphs_.size()) continue;
      const auto& g = graphs_[p];
      for (entity_id e = 0; e < g.nodes.size(); ++e) {
        const auto& n = g.nodes[e];
        if (g.parent[e] != e || n.slots.empty()) continue;
        auto& info = out.entities.emplace_back(entity_info{n.name, n.type, n.aliases, distinct(n.slots)});
        for (const auto& m : n.merges) info.merges.push_back({m.name, std::string(id_of(m.slot)), m.reason});
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
    for (const auto& s : similar_) b += s.bytes();
    return b + names_.bytes();
  }

 private:
  struct merge_note {
    std::string name;
    slot_id slot;
    merge_reason reason;
  };
  struct node {
    std::string name;
    entity_type type = entity_type::name;
    std::vector<std::string> aliases;
    std::vector<slot_id> slots;  // memories mentioning it (a slot once per mention)
    std::vector<merge_note> merges;
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

  similar_names& similar_of(partition_id p) {
    if (similarity_ <= 0.0f) return no_similar_;  // off: never read
    if (p >= similar_.size()) similar_.resize(std::size_t{p} + 1);
    return similar_[p];
  }

  graph_t& graph_of(partition_id p) {
    if (p >= graphs_.size()) graphs_.resize(std::size_t{p} + 1);
    return graphs_[p];
  }

  static bool person_like(entity_type t) { return t == entity_type::person || t == entity_type::name; }

  /// Counts `m` (named by the memory in `slot`) as a name of entity `e`: a plain name's type refined, another
  /// spelling kept as an alias, with the merge that brought it.
  static entity_id join(graph_t& g, entity_id e, const entity_mention& m, slot_id slot, merge_reason why) {
    auto& n = g.nodes[e];
    if (n.type == entity_type::name && m.type != entity_type::name) n.type = m.type;  // the more specific
    if (n.name != m.name && std::find(n.aliases.begin(), n.aliases.end(), m.name) == n.aliases.end()) {
      n.aliases.push_back(m.name);
      n.merges.push_back({m.name, slot, why});
    }
    return e;
  }

  /// The entity of `g` (of a type `m` may join) that has the name closest to `m`'s (by `near`, whose names are
  /// those of `g`'s entities or gone), when one is at the threshold; nullopt otherwise.
  [[nodiscard]] std::optional<entity_id> most_similar(const graph_t& g, similar_names& near, const std::string& key,
                                                      const entity_mention& m) const {
    if (similarity_ <= 0.0f || !similarity_mergeable(m.type)) return std::nullopt;
    const auto v = names_.find(key);
    if (v.empty()) return std::nullopt;  // not embedded (yet): no merge by similarity
    for (const auto& [cosine, other] : near.of(key, v, similarity_)) {
      const auto it = g.strong.find(other);
      if (it == g.strong.end()) continue;
      const auto e = root(g, it->second);
      if (similarity_mergeable(g.nodes[e].type) && compatible_types(g.nodes[e].type, m.type)) return e;
    }
    return std::nullopt;
  }

  entity_id mention(graph_t& g, similar_names& near, const entity_mention& m, slot_id slot) const {
    const auto key = entity_key(m.name);
    const bool single = key.find(' ') == std::string::npos;
    if (auto e = resolve(g, key, single))
      return join(g, *e, m, slot, g.strong.count(key) ? merge_reason::spelling : merge_reason::word);
    if (auto e = most_similar(g, near, key, m)) {
      g.strong.emplace(key, *e);  // the name now names it (queries too)
      return join(g, *e, m, slot, merge_reason::similarity);
    }
    const auto id = static_cast<entity_id>(g.nodes.size());
    g.nodes.push_back({m.name, m.type, {}, {}, {}});
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
            if (old != id && person_like(g.nodes[old].type)) merge(g, old, id, slot);
          }
      }
    }
    return id;
  }

  /// Entity `from` (a one-word name) joins `into`, whose name the memory in `slot` brought.
  static void merge(graph_t& g, entity_id from, entity_id into, slot_id slot) {
    auto& a = g.nodes[from];
    auto& b = g.nodes[into];
    b.aliases.push_back(a.name);
    b.merges.push_back({a.name, slot, merge_reason::word});
    for (auto& m : a.merges) b.merges.push_back(std::move(m));
    a.merges.clear();
    for (auto& al : a.aliases) b.aliases.push_back(std::move(al));
    b.slots.insert(b.slots.end(), a.slots.begin(), a.slots.end());
    a.slots.clear();
    a.aliases.clear();
    g.parent[from] = into;
  }

  void add_to_graph(graph_t& g, similar_names& near, slot_id slot, const recognized_entities& found) const {
    std::vector<std::pair<const std::string*, entity_id>> ids;
    for (const auto& m : found.entities) {
      const auto e = mention(g, near, m, slot);
      g.nodes[e].slots.push_back(slot);
      ids.emplace_back(&m.name, e);
    }
    auto id_of = [&](const std::string& name) {
      for (const auto& [n, e] : ids)
        if (*n == name) return e;
      const auto key = entity_key(name);  // an extractor's relation may spell a name otherwise
      for (const auto& [n, e] : ids)
        if (entity_key(*n) == key) return e;
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
    auto& near = similar_of(p);
    for (const auto s : in_p) add_to_graph(g, near, s, slots_.at(s).found);
    if (similarity_ > 0.0f) near.prune([&](const std::string& key) { return g.strong.count(key) != 0; });
  }

  /// An extractor's entities as the index takes them: names as given (blank ones and repeats dropped), each
  /// relation between two non-blank names, a name only a relation gives added as a plain name.
  static recognized_entities given_entities(const recognized_entities& given) {
    recognized_entities out;
    std::vector<std::string> keys;
    auto add = [&](const std::string& name, entity_type t) {
      auto key = entity_key(name);
      if (key.empty() || std::find(keys.begin(), keys.end(), key) != keys.end()) return;
      keys.push_back(std::move(key));
      out.entities.push_back({name, t});
    };
    for (const auto& e : given.entities) add(e.name, e.type);
    for (const auto& r : given.relations)
      if (!entity_key(r.source).empty() && !entity_key(r.target).empty()) {
        add(r.source, entity_type::name);
        add(r.target, entity_type::name);
        out.relations.push_back(r);
      }
    return out;
  }

  /// Appends the keys of the names in `found` that may merge by similarity.
  static void add_keys(const recognized_entities& found, std::vector<std::string>& keys) {
    for (const auto& m : found.entities)
      if (similarity_mergeable(m.type)) keys.push_back(entity_key(m.name));
  }

  offline_recognizer recognizer_;
  float similarity_ = 0.0f;  // memory_config::entity_similarity
  name_vectors names_;       // unit vectors of names by key (similarity on)
  std::vector<similar_names> similar_;  // by partition: names close to each other (similarity on)
  similar_names no_similar_;            // similarity off
  bool held_ = false;        // a bulk load: graphs are built on release
  std::unordered_map<slot_id, slot_data> slots_;
  std::vector<graph_t> graphs_;  // by partition
};

}  // namespace detail
}  // namespace engram::inline v0
