#pragma once
/// @file examples/common/graph.hpp
/// The entity graph of a scope as JSON (memory_config::entities), shared by engram-server, the CLI and MCP:
/// GET /v1/graph/ (a scope's entities and relations), GET /v1/graph/entity/ (one entity and its memories), and the
/// purge of an entity (every memory mentioning it is deleted, so its relations go with them).
///
/// Which memories mention an entity is found from each memory of the scope: the entities an LLM named in it
/// (record::entities), else its text recognised again with the library's offline recogniser, names compared as
/// the index compares them (lowercased, spaces collapsed; the entity's name or one of its aliases).

#include "errors.hpp"
#include "graph_json.hpp"
#include "service.hpp"

#include <engram/engram.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace engram_app {

/// The graph operations over one memory, JSON in and out.
template <class Memory>
class graph_service {
 public:
  explicit graph_service(Memory& memory) : mem_(memory) {}

  /// Tells `observer` of the memories delete_entity deletes (service::set_observer).
  void set_observer(change_observer observer) { observer_ = std::move(observer); }

  /// GET /v1/graph/: {"entities": [{name, type, aliases, memories}], "relations": [{source, relationship,
  /// target, memories}]} of the request's scope (required).
  json graph(const json& req, const principal& who) const {
    const auto g = mem_.entity_graph_of(scope_of(req, who));
    json entities = json::array(), relations = json::array();
    for (const auto& e : g.entities) entities.push_back(graph_detail::entity_json(e));
    for (const auto& r : g.relations) relations.push_back(graph_detail::relation_json(r));
    return json{{"entities", std::move(entities)}, {"relations", std::move(relations)}};
  }

  /// GET /v1/graph/entity/?name=...: the entity (name, type, aliases, memories: how many), its relations, and
  /// the memories mentioning it as `results` [{id, memory}]. @throws engram::not_found for an unknown name.
  json entity(const json& req, const principal& who) const {
    const auto s = scope_of(req, who);
    const auto g = mem_.entity_graph_of(s);
    const auto& e = find_entity(g, name_of(req));
    auto out = graph_detail::entity_json(e);
    json relations = json::array(), results = json::array();
    for (const auto& r : g.relations)
      if (r.source == e.name || r.target == e.name) relations.push_back(graph_detail::relation_json(r));
    for (const auto& rec : mentioning(s, e)) results.push_back({{"id", rec.id}, {"memory", rec.memory}});
    out["relations"] = std::move(relations);
    out["results"] = std::move(results);
    return out;
  }

  /// DELETE /v1/graph/entity/?name=...: deletes every memory of the scope that mentions the entity (its
  /// relations go with them) and answers how many. @throws engram::not_found for an unknown name.
  json delete_entity(const json& req, const principal& who) {
    const auto s = scope_of(req, who);
    const auto& e = find_entity(mem_.entity_graph_of(s), name_of(req));
    std::vector<std::string> ids;
    std::vector<memory_change> gone;
    for (const auto& rec : mentioning(s, e)) {
      ids.push_back(rec.id);
      gone.push_back(change_of(engram::event_kind::del, rec));
    }
    if (!ids.empty()) mem_.delete_many(ids);
    if (observer_ && !gone.empty()) observer_(gone);
    return json{{"message", "Deleted " + std::to_string(ids.size()) + " memories mentioning '" + e.name + "'"},
                {"deleted", ids.size()}};
  }

 private:
  /// The request's scope, required (any of user_id, agent_id, run_id), confined to the caller's user.
  engram::scope scope_of(const json& req, const principal& who) const {
    if (!mem_.config().entities)
      throw engram::validation_error("this server keeps no entity graph; start it with --entities on");
    auto s = request_scope(req, who);
    if (s.empty()) throw engram::validation_error("a scope is required: user_id, agent_id or run_id");
    return s;
  }

  static std::string name_of(const json& req) {
    auto name = detail::optional_string(req, "name");
    if (engram::detail::entity_key(name).empty()) throw engram::validation_error("'name' (an entity's name) is required");
    return name;
  }

  /// The entity of `g` known by `name` (its name or an alias, compared as the index compares names).
  static engram::entity_info find_entity(const engram::entity_graph& g, const std::string& name) {
    const auto key = engram::detail::entity_key(name);
    for (const auto& e : g.entities) {
      const auto keys = graph_detail::keys_of(e);
      if (std::find(keys.begin(), keys.end(), key) != keys.end()) return e;
    }
    throw engram::not_found("no entity named '" + engram::printable(name) + "' in this scope");
  }

  /// The memories of `s` whose text names `e`: expired ones and versions closed by a contradiction too, so that
  /// a purge leaves no version naming the entity behind.
  std::vector<engram::record> mentioning(const engram::scope& s, const engram::entity_info& e) const {
    engram::get_all_options options;
    options.limit = 0;
    options.show_expired = true;
    options.include_invalid = true;
    const auto keys = graph_detail::keys_of(e);
    auto known = [&](const std::string& name) {
      return std::find(keys.begin(), keys.end(), engram::detail::entity_key(name)) != keys.end();
    };
    std::vector<engram::record> out;
    for (auto& rec : mem_.get_all(s, options)) {
      const auto found = rec.entities ? *rec.entities : recognizer_.recognize(rec.memory);  // an LLM's, if named
      bool hit = std::any_of(found.entities.begin(), found.entities.end(), [&](const auto& m) { return known(m.name); });
      for (const auto& r : found.relations) hit = hit || known(r.source) || known(r.target);
      if (hit) out.push_back(std::move(rec));
    }
    return out;
  }

  Memory& mem_;
  engram::offline_recognizer recognizer_;
  change_observer observer_;
};

}  // namespace engram_app
