#pragma once
/// @file examples/common/service.hpp
/// Mem0-shaped requests (JSON in, JSON out) over a basic_memory, shared by engram-server and the CLI.
/// Transport-free: the server maps routes onto these calls, and errors onto HTTP statuses (errors.hpp).

#include "errors.hpp"
#include "graph_json.hpp"
#include "lists.hpp"
#include "request.hpp"

#include <engram/engram.hpp>
#include <engram/json_dump.hpp>
#include <engram/json_records.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>  // std::function: change_observer
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace engram_app {

using nlohmann::json;

/// The organisation and project of memories written without one (and of keys bound to none), as ping names it.
inline constexpr std::string_view default_org = "engram", default_project = "engram";

/// Who is calling. A key bound to a user may only read and write that user's memories; a key bound to a project
/// only that project's (an admin key too); only admins may reset or list every scope; a server-wide admin key (no
/// project) may name any project in a request.
struct principal {
  std::string name = "local";
  std::string bound_user_id;  ///< empty: not bound
  bool admin = true;
  std::string org_id{}, project_id{};  ///< the project the key is bound to; both empty: none

  /// The tenant (engram::scope::tenant) of the key's project: empty for the default project.
  [[nodiscard]] std::string tenant() const {
    if (project_id.empty() || (org_id == default_org && project_id == default_project)) return {};
    engram::scope s;
    engram::set_scope_key<engram::platform_scope_keys>(s, "org_id", org_id);
    engram::set_scope_key<engram::platform_scope_keys>(s, "project_id", project_id);
    return s.tenant;
  }
  /// True when the key may choose the project per request (a server-wide admin key, or no keys at all).
  [[nodiscard]] bool any_project() const noexcept { return admin && project_id.empty(); }
  /// True when the key may see a memory of exact scope `r`.
  [[nodiscard]] bool may_see(const engram::scope& r) const {
    return (any_project() || r.tenant == tenant()) && (bound_user_id.empty() || r.user_id == bound_user_id);
  }
};

namespace detail {
inline std::string optional_string(const json& obj, const char* key) {
  if (!obj.is_object()) return {};
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return {};
  if (!it->is_string())
    throw engram::validation_error(std::string("'") + key + "' must be a string, got " + it->type_name());
  return it->get<std::string>();
}

/// A boolean field: true/false, or (from a query string) "true"/"false"/"1"/"0". nullopt when absent or null.
inline std::optional<bool> optional_bool(const json& obj, const char* key) {
  if (!obj.is_object()) return std::nullopt;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    if (s == "true" || s == "1") return true;
    if (s == "false" || s == "0") return false;
  }
  throw engram::validation_error(std::string("'") + key + "' must be true or false, got " + it->dump());
}

/// A list of strings given as a list, or as Mem0's string form (one string; commas separate items).
inline std::vector<std::string> string_list(const json& obj, const char* key) {
  std::vector<std::string> out;
  if (!obj.is_object()) return out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  auto add = [&](const std::string& s) {
    for (auto& item : comma_list(s)) out.push_back(std::move(item));
  };
  if (it->is_string()) {
    add(it->get<std::string>());
  } else if (it->is_array()) {
    for (const auto& x : *it) {
      if (!x.is_string()) throw engram::validation_error(std::string("'") + key + "' must list strings, got " + x.dump());
      add(x.get<std::string>());
    }
  } else {
    throw engram::validation_error(std::string("'") + key + "' must be a string or a list of strings, got " +
                                   it->type_name());
  }
  return out;
}

/// Mem0's `custom_categories`: a list of {"name": "description"} objects (or of names).
inline std::vector<engram::memory_category> categories_of(const json& obj) {
  std::vector<engram::memory_category> out;
  if (!obj.is_object()) return out;
  auto it = obj.find("custom_categories");
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array()) throw engram::validation_error("'custom_categories' must be a list, got " + std::string(it->type_name()));
  for (const auto& c : *it) {
    if (c.is_string()) {
      out.push_back({c.get<std::string>(), ""});
    } else if (c.is_object() && !c.empty()) {
      for (auto e = c.begin(); e != c.end(); ++e) {
        if (!e.value().is_string())
          throw engram::validation_error("'custom_categories': the description of '" + e.key() + "' must be a string");
        out.push_back({e.key(), e.value().get<std::string>()});
      }
    } else {
      throw engram::validation_error("'custom_categories' must list {\"name\": \"description\"} objects or names, got " +
                                     c.dump());
    }
  }
  return out;
}

/// A time field: Unix seconds (a number, or a string of digits with an optional fraction, as a query string
/// gives it) or an ISO-8601 date or date-time ("2024-06-01", "2024-06-01T12:00:00Z", "...T12:00:00+02:00");
/// nullopt when absent or null. @throws engram::validation_error naming `key` for anything else.
inline std::optional<engram::timestamp> time_field(const json& obj, const char* key) {
  if (!obj.is_object()) return std::nullopt;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  const auto expected = std::string("'") + key + "' must be Unix seconds or an ISO-8601 date or time (2024-06-01, "
                        "2024-06-01T12:00:00Z, 2024-06-01T12:00:00+02:00), got ";
  std::optional<double> secs;
  if (it->is_number()) secs = it->get<double>();
  if (it->is_string()) {
    const auto& s = it->get_ref<const std::string&>();
    if (auto t = engram::try_parse_iso8601(s)) return t;
    const auto digits = [](std::string_view d) {
      return !d.empty() && d.size() <= 15 && std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    const auto dot = s.find('.');
    if (digits(std::string_view(s).substr(0, dot)) && (dot == std::string::npos || digits(std::string_view(s).substr(dot + 1))))
      secs = std::stod(s);
  }
  if (!secs) {
    const bool space = it->is_string() && it->get_ref<const std::string&>().find(' ') != std::string::npos;
    throw engram::validation_error(expected + engram::dump_json(*it) +
                                   (space ? " (in a query string, send a '+' as %2B)" : ""));
  }
  if (!std::isfinite(*secs) || *secs < 0 || *secs > 253402300799.0)
    throw engram::validation_error(std::string("'") + key + "' must be Unix seconds between 1970 and 9999, got " + it->dump());
  return engram::timestamp{std::chrono::microseconds{static_cast<std::int64_t>(*secs * 1e6)}};
}

/// Mem0's `timestamp` (time_field).
inline std::optional<engram::timestamp> timestamp_of(const json& obj) { return time_field(obj, "timestamp"); }

/// Sets the versions a search or listing sees (search_options / get_all_options): as of a time, or every
/// version. Both at once is refused (`both` names them as the caller spelled them): every version would be
/// returned and the time ignored.
template <class Options>
void set_validity(Options& options, std::optional<engram::timestamp> as_of, bool include_invalid, std::string_view both) {
  if (as_of && include_invalid)
    throw engram::validation_error(std::string(both) + ": every version is returned then, whatever the time, so "
                                   "the time would be ignored; give one of them");
  options.as_of = as_of;
  options.include_invalid = include_invalid;
}

/// A request's `as_of` (time_field) and `include_invalid` (a boolean) into its search or listing options.
template <class Options>
void read_validity(const json& req, Options& options) {
  set_validity(options, time_field(req, "as_of"), optional_bool(req, "include_invalid").value_or(false),
               "'as_of' with 'include_invalid': true");
}

/// True when `key` is present with a value that asks for something: not null, false or "".
inline bool is_set(const json& req, const char* key) {
  if (!req.is_object()) return false;
  auto it = req.find(key);
  return it != req.end() && !it->is_null() && !(it->is_boolean() && !it->get<bool>()) &&
         !(it->is_string() && it->get_ref<const std::string&>().empty());
}

/// Refuses a documented Mem0 field this server cannot honour when its value would change the outcome
/// (`enable_graph` is checked against the memory: wants_graph in graph_json.hpp).
inline void refuse_unsupported(const json& req) {
  auto truthy = [&](const char* key) { return is_set(req, key); };
  if (truthy("structured_data_schema"))
    throw engram::validation_error("'structured_data_schema': structured data extraction is not supported");
  if (truthy("memory_type") && req["memory_type"] != "procedural_memory")
    throw engram::validation_error("'memory_type' must be \"procedural_memory\" (an agent's run summarised into one "
                                   "memory) or absent, got " + req["memory_type"].dump());
}

/// Checks Mem0's answer-shaping fields: `output_format` ("v1.0" or "v1.1"), `version` ("v1" or "v2": see
/// docs/server.md) and `async_mode` (a boolean: whether an add is queued, see service::add and events.hpp).
/// Called before anything is stored.
inline void check_output_fields(const json& req) {
  if (!req.is_object()) return;
  if (auto v = req.find("version"); v != req.end() && !v->is_null() && *v != "v1" && *v != "v2")
    throw engram::validation_error("'version' must be \"v1\" or \"v2\", got " + v->dump());
  if (auto a = req.find("async_mode"); a != req.end() && !a->is_null() && !a->is_boolean())
    throw engram::validation_error("'async_mode' must be a boolean, got " + a->dump());
  if (auto f = req.find("output_format"); f != req.end() && !f->is_null() && *f != "v1.0" && *f != "v1.1")
    throw engram::validation_error("'output_format' must be \"v1.0\" or \"v1.1\", got " + f->dump());
}

/// `out` in the request's `output_format`: "v1.1" (or none) `{"results": [...]}`, "v1.0" the bare list, as
/// Mem0 answered. @throws validation_error as check_output_fields.
inline json in_output_format(const json& req, json out) {
  check_output_fields(req);
  if (!req.is_object() || req.value("output_format", json()) != "v1.0") return out;
  return out.is_object() && out.contains("results") ? std::move(out["results"]) : out;
}

/// The scope keys a request may name: Mem0's three, the app and the project (platform_scope_keys).
inline constexpr std::array<const char*, 6> request_scope_keys{"user_id", "agent_id", "run_id",
                                                               "app_id",  "org_id",   "project_id"};

/// Sets key `key` of `s` to `value`. @throws validation_error when it is already set to another value.
inline void set_request_key(engram::scope& s, const char* key, const std::string& value) {
  const auto have = s.key(key);
  if (!have.empty() && have != value)
    throw engram::validation_error(std::string("'") + key + "' is given twice with different values");
  engram::set_scope_key<engram::platform_scope_keys>(s, key, value);
}

/// Scope ids named in a Mem0 Platform filter: top-level keys, or inside a top-level AND list.
inline void scope_from_filters(const json& given, engram::scope& s) {
  const json filters = given.is_string() ? engram::parse_json(given.get<std::string>(), "'filters'") : given;
  if (!filters.is_object()) return;
  auto take = [&](const json& obj) {
    for (const char* key : request_scope_keys) {
      auto it = obj.find(key);
      // "*" means "present" (an exists predicate the filter keeps), not a user called "*".
      if (it == obj.end() || !it->is_string() || it->get_ref<const std::string&>() == "*") continue;
      set_request_key(s, key, it->get<std::string>());
    }
  };
  take(filters);
  for (const char* logic : {"AND", "$and"})
    if (auto it = filters.find(logic); it != filters.end() && it->is_array())
      for (const auto& leaf : *it)
        if (leaf.is_object()) take(leaf);
}
/// The keys request_scope lifts from a filter into the scope and the memory's filters cannot read (an app, an
/// organisation, a project) taken out of `tree`: at its top and in its top-level AND, as an equality to a string.
/// @throws validation_error for one anywhere else (under OR or NOT, or not an equality): it could not be honoured.
inline void strip_lifted_keys(json& tree) {
  static constexpr std::array<const char*, 3> lifted{"app_id", "org_id", "project_id"};
  auto strip = [](json& obj) {
    for (const char* key : lifted)
      if (auto it = obj.find(key); it != obj.end()) {
        if (!it->is_string() || it->get_ref<const std::string&>() == "*")
          throw engram::validation_error(std::string("filters: '") + key +
                                         "' names one value (a string): it chooses the memories' " +
                                         (key[0] == 'a' ? "app" : "project") + ", it is not compared as a field");
        obj.erase(it);
      }
  };
  std::function<void(const json&)> refuse_deeper = [&](const json& j) {
    if (j.is_array())
      for (const auto& x : j) refuse_deeper(x);
    if (!j.is_object()) return;
    for (const char* key : lifted)
      if (j.contains(key))
        throw engram::validation_error(std::string("filters: '") + key + "' may only be named at the top or in the "
                                       "top-level AND (it chooses the memories, it is not compared as a field)");
    for (const auto& [k, v] : j.items()) refuse_deeper(v);
  };
  if (!tree.is_object()) return refuse_deeper(tree);
  strip(tree);
  for (const char* logic : {"AND", "$and"})
    if (auto it = tree.find(logic); it != tree.end() && it->is_array()) {
      for (auto& leaf : *it)
        if (leaf.is_object()) strip(leaf);
      it->erase(std::remove_if(it->begin(), it->end(), [](const json& leaf) { return leaf.is_object() && leaf.empty(); }),
                it->end());
      if (it->empty()) tree.erase(logic);
    }
  refuse_deeper(tree);
  if (tree.empty()) tree = json();
}
}  // namespace detail

/// The scope a request names (top-level ids, then ids inside `filters`; an app id, an organisation and project
/// too), with the caller's binding enforced: a bound key gets its own user id and project filled in, and naming
/// any other user or project is forbidden. Naming a project needs both org_id and project_id; none is the
/// default project (default_org, default_project), that of keys bound to none.
inline engram::scope request_scope(const json& req, const principal& who) {
  engram::scope s;
  for (const char* key : detail::request_scope_keys)
    if (auto v = detail::optional_string(req, key); !v.empty()) detail::set_request_key(s, key, v);
  if (req.is_object())
    if (auto it = req.find("filters"); it != req.end()) detail::scope_from_filters(*it, s);
  if (!who.bound_user_id.empty()) {
    if (!s.user_id.empty() && s.user_id != who.bound_user_id)
      throw forbidden("this key may only use the memories of user '" + who.bound_user_id + "'");
    s.user_id = who.bound_user_id;
  }
  const std::string org(s.key("org_id")), project(s.key("project_id"));
  if (org.empty() != project.empty())
    throw engram::validation_error("'org_id' and 'project_id' name a project together: give both or neither");
  principal named = who;  // the project the request names, as a key bound to it would be
  named.org_id = org.empty() ? std::string(default_org) : org;
  named.project_id = project.empty() ? std::string(default_project) : project;
  if (!who.any_project() && !org.empty() && named.tenant() != who.tenant())
    throw forbidden("this key may only use the memories of project '" +
                    (who.project_id.empty() ? std::string(default_org) + "/" + std::string(default_project)
                                            : who.org_id + "/" + who.project_id) + "'");
  s.tenant = who.any_project() ? named.tenant() : who.tenant();
  return s;
}

/// "semantic" | "keyword" | "hybrid" as a search_mode. @throws engram::validation_error naming `where`.
inline engram::search_mode parse_search_mode(std::string_view s, std::string_view where) {
  if (s == "hybrid") return engram::search_mode::hybrid;
  if (s == "semantic") return engram::search_mode::semantic;
  if (s == "keyword") return engram::search_mode::keyword;
  throw engram::validation_error(std::string(where) + " '" + std::string(s) +
                                 "' is not a search mode (expected semantic, keyword or hybrid)");
}

/// Ranking weights from a JSON object: any of "semantic", "keyword", "fusion" ("weighted" | "rrf"), "rrf_k",
/// "recency", "recency_half_life_days", "importance", "importance_key", "access", "access_saturation",
/// "newest_first", "entity", "entity_hops" over the defaults (rank/fusion.hpp). @throws
/// engram::validation_error for an unknown key, a wrong type, or an entity_hops other than 0 or 1 (the other
/// values are checked by the memory's search: finite, not negative, newest_first at most 1).
inline engram::ranking_weights parse_ranking_weights(const json& j) {
  engram::ranking_weights w;
  if (j.is_null()) return w;
  if (!j.is_object()) throw engram::validation_error(std::string("'weights' must be an object, got ") + j.type_name());
  for (const auto& [key, v] : j.items()) {
    auto number = [&, &key = key, &v = v]() {
      if (!v.is_number()) throw engram::validation_error("weights." + key + " must be a number, got " + v.dump());
      return v.get<double>();
    };
    if (key == "semantic") w.semantic = float(number());
    else if (key == "keyword") w.keyword = float(number());
    else if (key == "rrf_k") w.rrf_k = float(number());
    else if (key == "recency") w.recency = float(number());
    else if (key == "recency_half_life_days") w.recency_half_life_days = number();
    else if (key == "importance") w.importance = float(number());
    else if (key == "access") w.access = float(number());
    else if (key == "access_saturation") w.access_saturation = float(number());
    else if (key == "newest_first") w.newest_first = float(number());
    else if (key == "entity") w.entity = float(number());
    else if (key == "entity_hops") {
      if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > 1)
        throw engram::validation_error("weights.entity_hops must be 0 or 1, got " + v.dump());
      w.entity_hops = v.get<unsigned>();
    } else if (key == "importance_key") {
      if (!v.is_string() || v.get<std::string>().empty())
        throw engram::validation_error("weights.importance_key must be a non-empty string");
      w.importance_key = v.get<std::string>();
    } else if (key == "fusion") {
      const auto f = v.is_string() ? v.get<std::string>() : std::string();
      if (f == "weighted") w.fusion = engram::fusion_method::weighted;
      else if (f == "rrf" || f == "reciprocal_rank") w.fusion = engram::fusion_method::reciprocal_rank;
      else throw engram::validation_error("weights.fusion must be \"weighted\" or \"rrf\", got " + v.dump());
    } else {
      throw engram::validation_error("unknown ranking weight '" + key +
                                     "' (expected semantic, keyword, fusion, rrf_k, recency, recency_half_life_days, "
                                     "importance, importance_key, access, access_saturation, newest_first, entity or "
                                     "entity_hops)");
    }
  }
  return w;
}

/// Refuses ranking weights that `memory` cannot honour: an entity weight without an entity index (the term
/// would be 0 for every memory). @throws engram::validation_error.
template <class Memory>
void check_weights_for(const Memory& memory, const engram::ranking_weights& w) {
  if (w.entity > 0.0f && !memory.config().entities)
    throw engram::validation_error("weights.entity: this memory keeps no entity index (start it with --entities on)");
}

/// What the adds of a project default to (projects.hpp: the Platform's project settings).
struct project_settings {
  std::string custom_instructions;
  std::string agent_custom_instructions;
  std::vector<engram::memory_category> custom_categories;
};

/// The settings of the project whose tenant (engram::scope::tenant) is given.
using project_settings_source = std::function<project_settings(const std::string& tenant)>;

/// An add request, checked and parsed: what to remember, for whom, how.
struct add_request {
  engram::scope scope;
  std::vector<engram::message> messages;
  engram::add_options options;
};

/// A change to one memory, as the service reports it once committed (set_observer): engram-server's webhooks.
struct memory_change {
  engram::event_kind event = engram::event_kind::add;  ///< add, update or del
  std::string id;
  std::string memory;                          ///< the text after an add or update; the deleted text for a delete
  std::optional<std::string> previous_memory;  ///< an update's text before, when it changed
  engram::scope scope;
  json metadata;                               ///< the memory's metadata when known, else null
};

/// Told of committed changes: on the writing thread, after the memory committed and before the call answers,
/// the changes of one call in their order. Empty (the default): nobody is told.
using change_observer = std::function<void(std::span<const memory_change>)>;

/// The memories an add added, updated or deleted (`r`, NONE skipped) in scope `s`; its ADDs carry `metadata`
/// (the add's own: an extractor's categories are not in it).
inline std::vector<memory_change> changes_of(const engram::add_result& r, const engram::scope& s, const json& metadata) {
  std::vector<memory_change> out;
  for (const auto& e : r.results)
    if (e.event != engram::event_kind::none)
      out.push_back({e.event, e.id, e.memory, e.previous_memory, s,
                     e.event == engram::event_kind::add ? metadata : json(nullptr)});
  return out;
}

/// `r`'s change `event` (its text before in `previous`, for an update that changed it).
inline memory_change change_of(engram::event_kind event, const engram::record& r,
                               std::optional<std::string> previous = std::nullopt) {
  if (previous && *previous == r.memory) previous.reset();
  return {event, r.id, r.memory, std::move(previous), r.scope(), r.metadata};
}

/// Mem0's operations as JSON requests over one memory.
template <class Memory>
class service {
 public:
  explicit service(Memory& memory) : mem_(memory) {}

  /// Tells `observer` of every change the calls below commit (reset() excepted: it tells nothing). Set it before
  /// the service is shared between threads.
  void set_observer(change_observer observer) { observer_ = std::move(observer); }
  /// Where an add's project settings come from (none: no project settings).
  void set_project_settings(project_settings_source projects) { projects_ = std::move(projects); }

  /// POST /memories: {"messages": [...] | "text", scope ids, "metadata"?, "infer"?, "expiration_date"?,
  /// "timestamp"? (when the conversation happened), "includes"?, "excludes"?, "custom_categories"?,
  /// "custom_instructions"?, "prompt"? (this add's extraction instructions), "memory_type"?
  /// ("procedural_memory"), "immutable"? (never changed by reconciliation nor update), "enable_graph"? (with an
  /// entity index: an LLM extractor names this add's entities; refused without one: wants_graph)}; "org_id", "project_id", "app_id" are refused when
  /// set (see refuse_unsupported). `"async_mode": true` is refused: this call answers once
  /// the add is stored (the server's Platform routes queue such adds: events.hpp).
  json add(const json& req, const principal& who) {
    const auto a = parse_add(req, who);
    if (detail::optional_bool(req, "async_mode").value_or(false))
      throw engram::validation_error("'async_mode': this add is answered once stored; send \"async_mode\": false (or "
                                     "omit it). engram-server queues adds on POST /v1/memories/ and /v3/memories/add/");
    auto result = mem_.add(a.messages, a.scope, a.options);
    tell(changes_of(result, a.scope, a.options.metadata));
    return detail::in_output_format(req, std::move(result));
  }

  /// An add request (as add() takes it) checked and parsed, nothing stored. @throws as add().
  add_request parse_add(const json& req, const principal& who) const {
    const auto s = request_scope(req, who);
    std::vector<engram::message> messages;
    const auto it = req.is_object() ? req.find("messages") : req.end();
    if (it == req.end()) {
      const auto text = detail::optional_string(req, "text");
      if (text.empty()) throw engram::validation_error("'messages' (a list of messages, or a string) is required");
      messages.push_back({"user", text, {}});
    } else if (it->is_string()) {
      messages.push_back({"user", it->get<std::string>(), {}});
    } else if (it->is_array()) {
      if (it->empty()) throw engram::validation_error("'messages' is an empty list: nothing to remember");
      for (std::size_t i = 0; i < it->size(); ++i) {
        try {
          messages.push_back((*it)[i].get<engram::message>());
        } catch (const engram::validation_error& e) {
          throw engram::validation_error("messages[" + std::to_string(i) + "]: " + e.what());
        }
      }
    } else {
      throw engram::validation_error(std::string("'messages' must be a list or a string, got ") + it->type_name());
    }
    require_text(messages, "'messages'");
    detail::refuse_unsupported(req);
    const bool graph = wants_graph(req, mem_.config().entities);
    detail::check_output_fields(req);
    engram::add_options options;
    if (graph) options.extraction.entities = true;  // an LLM extractor names this add's entities
    if (auto m = req.find("metadata"); m != req.end() && !m->is_null()) options.metadata = *m;
    if (auto e = detail::optional_string(req, "expiration_date"); !e.empty()) options.expiration_date = e;
    options.timestamp = detail::timestamp_of(req);
    options.extraction.includes = detail::string_list(req, "includes");
    options.extraction.excludes = detail::string_list(req, "excludes");
    // the request's own instructions and categories, else its project's (the Platform's project settings)
    const auto project = projects_ ? projects_(s.tenant) : project_settings{};
    options.extraction.categories = detail::categories_of(req);
    if (!req.contains("custom_categories")) options.extraction.categories = project.custom_categories;
    options.extraction.custom_instructions = req.contains("custom_instructions")
                                                 ? detail::optional_string(req, "custom_instructions")
                                                 : project.custom_instructions;
    // instructions for agent-scoped memories apply when this add is one
    auto agent = req.contains("agent_custom_instructions") ? detail::optional_string(req, "agent_custom_instructions")
                                                           : project.agent_custom_instructions;
    if (!agent.empty() && !s.agent_id.empty())
      options.extraction.custom_instructions += (options.extraction.custom_instructions.empty() ? "" : "\n") + agent;
    options.extraction.prompt = detail::optional_string(req, "prompt");
    options.extraction.procedural = detail::is_set(req, "memory_type");  // checked: procedural_memory
    options.immutable = detail::optional_bool(req, "immutable").value_or(false);
    if (auto inf = req.find("infer"); inf != req.end() && !inf->is_null()) {
      if (!inf->is_boolean()) throw engram::validation_error("'infer' must be a boolean");
      options.infer = inf->get<bool>();
    }
    return add_request{s, std::move(messages), std::move(options)};
  }

  /// POST /search: {"query", scope ids (or inside "filters"), "top_k"|"limit"?, "threshold"?,
  /// "mode": "semantic"|"keyword"|"hybrid"?, "weights"? (parse_ranking_weights), "keyword_search"?, "rerank"?,
  /// "explain"?, "show_expired"?, "as_of"? (detail::time_field: the memories valid then), "include_invalid"?
  /// (every version, closed ones too), "enable_graph"? (adds `relations`: query_relations)}.
  /// Mem0's `keyword_search: true` asks for hybrid ranking (false changes nothing); `rerank` is accepted and
  /// has no effect (no reranker is configured). `explain` adds `score_details` to each hit.
  json search(const json& req, const principal& who) const {
    auto found = run_search(req, who);
    auto out = only_fields(req, engram::results(found.hits));
    if (found.relations) out["relations"] = std::move(*found.relations);
    return detail::in_output_format(req, std::move(out));
  }

  /// search's answer as text, the same bytes as answer_body(search(req, who)), with the memories written
  /// straight from the hits (engram/json_records.hpp) instead of through JSON objects: what engram-server
  /// serves. A request naming `fields` goes through search().
  std::string search_text(const json& req, const principal& who) const {
    if (detail::is_set(req, "fields")) return answer_body(search(req, who));
    auto found = run_search(req, who);
    detail::check_output_fields(req);
    std::string out;
    if (req.value("output_format", json()) == "v1.0") {  // the bare list (relations are not part of it)
      engram::append_json_list(out, found.hits);
      return out;
    }
    out += '{';
    if (found.relations) {  // keys in nlohmann's order, as search() writes them
      out += "\"relations\":";
      engram::append_json(out, *found.relations);
      out += ',';
    }
    out += "\"results\":";
    engram::append_json_list(out, found.hits);
    out += '}';
    return out;
  }

 private:
  struct search_found {
    std::vector<engram::search_hit> hits;
    std::optional<json> relations;  // with enable_graph
  };

  /// A search request read, checked and run (search's documentation above).
  search_found run_search(const json& req, const principal& who) const {
    const auto s = request_scope(req, who);
    const auto query = detail::optional_string(req, "query");
    if (query.empty()) throw engram::validation_error("'query' is required");
    const bool graph = wants_graph(req, mem_.config().entities);
    engram::search_options options;
    options.limit = read_limit(req, options.limit);
    if (const auto m = detail::optional_string(req, "mode"); !m.empty())
      options.mode = parse_search_mode(m, "'mode'");
    else if (detail::optional_bool(req, "keyword_search").value_or(false))
      options.mode = engram::search_mode::hybrid;
    (void)detail::optional_bool(req, "rerank");  // validated only
    if (req.is_object())
      if (auto w = req.find("weights"); w != req.end()) options.weights = parse_ranking_weights(*w);
    options.explain = detail::optional_bool(req, "explain").value_or(false);
    options.show_expired = detail::optional_bool(req, "show_expired").value_or(false);
    detail::read_validity(req, options);
    check_weights_for(mem_, options.weights);
    if (auto t = req.find("threshold"); t != req.end() && !t->is_null()) {
      if (!t->is_number()) throw engram::validation_error("'threshold' must be a number");
      options.threshold = t->get<float>();
    }
    options.filter = filters_of(req, true);
    if (detail::is_set(req, "reference_date"))
      throw engram::validation_error("'reference_date': relative time queries are not supported yet");
    (void)detail::optional_bool(req, "latest_only");  // every memory engram returns is its latest version
    // No scope id anywhere: the memory takes the scopes a filter names (an OR over users, say), or refuses.
    search_found found{mem_.search(query, s, options), std::nullopt};
    if (graph) found.relations = query_relations(mem_, graph_scope(s), query);
    return found;
  }

 public:

  /// GET /memories: every memory of a scope, or of the scopes the filter names (admins may omit both to list
  /// everything).
  /// A scope id "*" means "present", as in a filter: `{"user_id": "*"}` lists the memories that have a user id.
  /// `as_of` and `include_invalid` choose the versions listed, as on a search; `enable_graph` adds the
  /// scope's `relations` (scope_relations).
  json list(const json& request, const principal& who) const {
    const auto req = wildcards_to_filter(request);
    const auto s = request_scope(req, who);
    if (wants_graph(req, mem_.config().entities)) {
      json plain = request;
      plain.erase("enable_graph");
      auto out = list(plain, who);
      const auto scope = graph_scope(s);
      if (out.is_object()) out["relations"] = scope_relations(mem_, scope);
      return out;
    }
    engram::get_all_options options;
    options.limit = read_limit(req, options.limit);
    options.filter = filters_of(req);
    (void)detail::optional_bool(req, "latest_only");  // every memory engram lists is its latest version
    options.show_expired = detail::optional_bool(req, "show_expired").value_or(false);
    detail::read_validity(req, options);
    if (s.empty() && !engram::filter_names_scope(options.filter)) {
      if (!who.admin) throw forbidden("listing every scope needs an admin key");
      if (who.any_project() && s.key("org_id").empty())  // a server-wide admin naming no project: every project
        return detail::in_output_format(req, engram::results(mem_.get_all(engram::all_scopes, options)));
      const auto limit = options.limit;  // a project's admin, or a project named: every scope of that project
      options.limit = 0;
      auto all = mem_.get_all(engram::all_scopes, options);
      std::erase_if(all, [&](const engram::record& r) { return r.tenant != s.tenant; });
      if (limit != 0 && all.size() > limit) all.resize(limit);
      return detail::in_output_format(req, engram::results(std::move(all)));
    }
    return detail::in_output_format(req, engram::results(mem_.get_all(s, options)));
  }

  /// POST /v2/memories/, /v3/memories/: a listing (as list) paged as the Platform's get_all: `page` (1-based)
  /// and `page_size` (default 100), whole numbers. Pages cover every memory listed (no limit unless the request
  /// names one), and `count` is how many there are.
  json list_page(const json& req, const principal& who) const {
    const auto page = whole_number(req, "page", 1, 1'000'000'000).value_or(1);
    const auto size = whole_number(req, "page_size", 1, 1'000'000).value_or(100);
    json every = req;
    if (every.is_object()) {
      if (!every.contains("limit") && !every.contains("top_k")) every["limit"] = 0;
      every.erase("output_format");  // applied to the page below
      every.erase("enable_graph");   // relations are added to the page
    }
    const bool graph = wants_graph(req, mem_.config().entities);
    const auto s = graph ? graph_scope(request_scope(wildcards_to_filter(req), who)) : engram::scope{};
    auto all = list(every, who);
    auto& items = all["results"];
    json slice = json::array();
    for (std::size_t i = (page - 1) * size; i < items.size() && slice.size() < size; ++i) slice.push_back(std::move(items[i]));
    json out{{"count", items.size()}, {"page", page}, {"page_size", size}, {"results", std::move(slice)}};
    if (graph) out["relations"] = scope_relations(mem_, s);
    return detail::in_output_format(req, std::move(out));
  }

  /// GET /memories/{id}
  json get(const std::string& id, const principal& who) const { return visible(id, who); }

  /// PUT /memories/{id}: {"text"|"data"|"memory": new text, "metadata"?, "expiration_date"?, "timestamp"? (when
  /// the change happened: updated_at)}, any of them alone. Metadata is merged as Mem0 merges (a null value removes the key); `expiration_date` null or ""
  /// clears it; "immutable" is refused (chosen at add), and so is any update of an immutable memory.
  json update(const std::string& id, const json& req, const principal& who) {
    const auto before = visible_record(id, who, "");
    if (detail::is_set(req, "immutable"))
      throw engram::validation_error("'immutable' is chosen when a memory is added; an update cannot change it");
    engram::update_options options;
    for (const char* key : {"text", "data", "memory"})
      if (!options.text)
        if (auto t = detail::optional_string(req, key); !t.empty()) options.text = std::move(t);
    if (auto m = req.find("metadata"); m != req.end() && !m->is_null()) options.metadata = *m;
    if (req.is_object() && req.contains("expiration_date"))
      options.expiration_date = detail::optional_string(req, "expiration_date");
    options.timestamp = detail::timestamp_of(req);
    if (!options.text && !options.metadata && !options.expiration_date && !options.timestamp)
      throw engram::validation_error("'text' (the new memory text), 'metadata', 'expiration_date' or 'timestamp' is required");
    auto after = mem_.update(id, options);
    tell(std::array{change_of(engram::event_kind::update, after, before.memory)});
    return json(std::move(after));
  }

  /// DELETE /memories/{id}
  json remove(const std::string& id, const principal& who) {
    auto gone = visible_record(id, who, "");
    mem_.delete_memory(id);
    tell(std::array{change_of(engram::event_kind::del, gone)});
    return json{{"message", "Memory deleted successfully"}};
  }

  /// DELETE /memories?user_id=...: a scope is required. With an observer the scope's memories are listed and
  /// deleted by id (listed again when a concurrent delete took one first), so that each deletion is told.
  json remove_all(const json& req, const principal& who) {
    const auto s = request_scope(req, who);
    if (!observer_ || s.empty())  // (an empty scope: delete_all's error)
      return json{{"message", "All relevant memories deleted"}, {"deleted", mem_.delete_all(s)}};
    engram::get_all_options every;
    every.limit = 0;
    every.show_expired = every.include_invalid = true;  // what delete_all deletes: every version of the scope
    std::vector<memory_change> gone;
    for (int attempt = 0;; ++attempt) {
      gone.clear();
      std::vector<std::string> ids;
      for (const auto& r : mem_.get_all(s, every)) {
        ids.push_back(r.id);
        gone.push_back(change_of(engram::event_kind::del, r));
      }
      try {
        if (!ids.empty()) mem_.delete_many(ids);
        break;
      } catch (const engram::not_found&) {
        if (attempt == 4) throw;
      }
    }
    tell(gone);
    return json{{"message", "All relevant memories deleted"}, {"deleted", gone.size()}};
  }

  /// GET /memories/{id}/history: the events of one id, oldest first. A bound key reads only the history of
  /// its own user's live memories (a deleted memory's events keep no scope to check against).
  json history(const std::string& id, const principal& who) const {
    if (!who.any_project() || !who.bound_user_id.empty()) (void)visible(id, who);
    return json(mem_.history(id));
  }

  /// POST /reset: admin only.
  json reset(const principal& who) {
    if (!who.any_project()) throw forbidden("reset wipes every project: it needs a server-wide admin key");
    mem_.reset();
    return json{{"message", "Reset all memories"}};
  }

  /// Most memories one batch request may name (the Platform's limit).
  static constexpr std::size_t max_batch_items = 1000;

  /// PUT /v1/batch/: {"memories": [{"memory_id", "text"?, "metadata"?}, ...]}, 1 to 1,000 items, each with a new
  /// text (not blank) or a metadata patch (merged as update merges it). All or nothing: every item is checked
  /// first (id, the caller may see it, not immutable, something to change, no id twice), then all are applied
  /// in one write batch. Errors name the item's index: 400 (malformed, immutable), 404 (unknown or another
  /// user's id), 413 (over 1,000 items).
  json batch_update(const json& req, const principal& who) {
    const auto& items = batch_items(req, "update");
    std::vector<engram::memory_update> updates;
    std::vector<std::string> before;
    for (std::size_t i = 0; i < items.size(); ++i) {
      const auto& item = items[i];
      const auto where = "memories[" + std::to_string(i) + "]";
      auto& u = updates.emplace_back(engram::memory_update{batch_id(item, where), {}});
      for (const char* key : {"text", "memory", "data"})
        if (item.contains(key) && !item[key].is_null()) {
          if (!item[key].is_string() || engram::detail::is_blank(item[key].get_ref<const std::string&>()))
            throw engram::validation_error(where + "." + key + " must be a non-empty string");
          if (!u.options.text) u.options.text = item[key].get<std::string>();
        }
      if (auto m = item.find("metadata"); m != item.end() && !m->is_null()) {
        if (!m->is_object()) throw engram::validation_error(where + ".metadata must be an object");
        u.options.metadata = *m;
      }
      if (!u.options.text && !u.options.metadata)
        throw engram::validation_error(where + ": give 'text' (the new memory text) or 'metadata'");
      const auto current = visible_record(u.id, who, where + ": ");
      if (current.immutable)
        throw engram::validation_error(where + ": memory '" + u.id + "' is immutable (added with immutable: true)");
      before.push_back(current.memory);
    }
    std::vector<engram::record> after;
    try {
      after = mem_.update_many(updates);
    } catch (const engram::validation_error& e) {
      throw engram::validation_error("memories: " + std::string(e.what()));
    }
    std::vector<memory_change> changes;
    for (std::size_t i = 0; i < after.size() && i < before.size(); ++i)
      changes.push_back(change_of(engram::event_kind::update, after[i], before[i]));
    tell(changes);
    return json{{"message", "Successfully updated " + std::to_string(updates.size()) + " memories"}};
  }

  /// DELETE /v1/batch/: {"memories": [{"memory_id"}, ...]}, 1 to 1,000 items; all or nothing, checked as
  /// batch_update checks (404 for an unknown or another user's id, 400 for an id given twice, 413 over 1,000).
  json batch_delete(const json& req, const principal& who) {
    const auto& items = batch_items(req, "delete");
    std::vector<std::string> ids;
    std::vector<memory_change> gone;
    for (std::size_t i = 0; i < items.size(); ++i) {
      const auto where = "memories[" + std::to_string(i) + "]";
      ids.push_back(batch_id(items[i], where));
      gone.push_back(change_of(engram::event_kind::del, visible_record(ids.back(), who, where + ": ")));
    }
    try {
      mem_.delete_many(ids);
    } catch (const engram::validation_error& e) {
      throw engram::validation_error("memories: " + std::string(e.what()));
    }
    tell(gone);
    return json{{"message", "Successfully deleted " + std::to_string(ids.size()) + " memories"}};
  }

  /// GET /v1/entities/: the users, agents and runs that hold memories, with counts (admin: all; bound: own).
  json entities(const principal& who) const {
    std::map<std::pair<std::string, std::string>, std::size_t> counts;
    for (const auto& r : mem_.get_all(engram::all_scopes, {.limit = 0})) {
      if (!who.may_see(r.scope())) continue;
      if (!r.user_id.empty()) ++counts[{"user", r.user_id}];
      if (!r.agent_id.empty()) ++counts[{"agent", r.agent_id}];
      if (!r.run_id.empty()) ++counts[{"run", r.run_id}];
    }
    json out = json::array();
    for (const auto& [k, n] : counts) out.push_back({{"type", k.first}, {"id", k.second}, {"name", k.second}, {"total_memories", n}});
    return json{{"results", out}};
  }

 private:
  /// The request's `filters` as a filter tree (Mem0's grammar); an empty tree when absent.
  /// The SDKs' shorthands are conditions ANDed to it: `categories` (any of these), `start_date`/`end_date`
  /// (created_at on or after / on or before) and, on a search (`with_metadata`), `metadata` (each key equal).
  static engram::filter_expr filters_of(const json& req, bool with_metadata = false) {
    if (!req.is_object()) return {};
    json tree;
    if (auto it = req.find("filters"); it != req.end() && !it->is_null())
      tree = it->is_string() ? engram::parse_json(it->get<std::string>(), "'filters'") : *it;  // string: a query parameter
    detail::strip_lifted_keys(tree);
    json extra = json::array();
    if (auto cats = detail::string_list(req, "categories"); !cats.empty())
      extra.push_back({{"categories", {{"in", cats}}}});
    for (const auto& [key, op] : {std::pair{"start_date", "gte"}, std::pair{"end_date", "lte"}})
      if (auto it = req.find(key); it != req.end() && !it->is_null()) {
        if (!it->is_string()) throw engram::validation_error(std::string("'") + key + "' must be an ISO-8601 date or time");
        extra.push_back({{"created_at", {{op, *it}}}});
      }
    if (auto m = req.find("metadata"); with_metadata && m != req.end() && !m->is_null()) {
      if (!m->is_object()) throw engram::validation_error("'metadata' on a search must be an object (each key must equal)");
      if (!m->empty()) extra.push_back({{"metadata", *m}});
    }
    if (!extra.empty()) {
      if (!tree.is_null()) extra.insert(extra.begin(), tree);
      tree = extra.size() == 1 ? extra[0] : json{{"AND", extra}};
    }
    return tree.is_null() ? engram::filter_expr{} : engram::parse_filter(tree);
  }

  /// Each result reduced to `fields` (and its id), when the request lists them.
  static json only_fields(const json& req, json out) {
    const auto fields = detail::string_list(req, "fields");
    if (fields.empty() || !out.is_object() || !out.contains("results")) return out;
    for (auto& r : out["results"]) {
      json kept = {{"id", r.value("id", json())}};
      for (const auto& f : fields)
        if (r.contains(f)) kept[f] = r[f];
      r = std::move(kept);
    }
    return out;
  }

  /// `top_k` or `limit` (whichever is given first): a whole number, from a body or a query string.
  static std::size_t read_limit(const json& req, std::size_t fallback) {
    for (const char* key : {"top_k", "limit"})
      if (auto n = whole_number(req, key, 0, 1'000'000)) return *n;
    return fallback;
  }

  /// The scope whose graph `enable_graph` answers: one named by its ids. @throws validation_error otherwise.
  static const engram::scope& graph_scope(const engram::scope& s) {
    if (s.empty())
      throw engram::validation_error("'enable_graph' needs a scope: user_id, agent_id or run_id (not \"*\")");
    return s;
  }

  /// The request with each scope id "*" taken out of the scope and added to the filter as "present".
  static json wildcards_to_filter(const json& req) {
    if (!req.is_object()) return req;
    json present = json::array();
    for (const char* key : {"user_id", "agent_id", "run_id"})
      if (auto it = req.find(key); it != req.end() && it->is_string() && it->get_ref<const std::string&>() == "*")
        present.push_back(json{{key, "*"}});
    if (present.empty()) return req;
    json out = req;
    for (const auto& p : present) out.erase(p.begin().key());
    if (auto f = out.find("filters"); f != out.end() && !f->is_null())
      present.push_back(f->is_string() ? engram::parse_json(f->get<std::string>(), "'filters'") : *f);
    out["filters"] = json{{"AND", std::move(present)}};
    return out;
  }

  /// The request's `memories` list: 1 to max_batch_items objects. @throws validation_error, too_large.
  static const json& batch_items(const json& req, std::string_view op) {
    const auto it = req.is_object() ? req.find("memories") : req.end();
    if (it == req.end() || !it->is_array())
      throw engram::validation_error("'memories' (a list of {\"memory_id\"" +
                                     std::string(op == "update" ? ", \"text\"" : "") + "} objects) is required");
    if (it->empty()) throw engram::validation_error("'memories' is an empty list: nothing to " + std::string(op));
    if (it->size() > max_batch_items)
      throw too_large("'memories' lists " + std::to_string(it->size()) + " memories; at most " +
                      std::to_string(max_batch_items) + " per batch");
    for (std::size_t i = 0; i < it->size(); ++i)
      if (!(*it)[i].is_object())
        throw engram::validation_error("memories[" + std::to_string(i) + "] must be an object with a 'memory_id'");
    return *it;
  }

  /// An item's `memory_id`: a non-empty string of at most 256 bytes without control characters.
  static std::string batch_id(const json& item, const std::string& where) {
    const auto it = item.find("memory_id");
    if (it == item.end() || !it->is_string() || it->get_ref<const std::string&>().empty())
      throw engram::validation_error(where + ".memory_id must be a non-empty string");
    const auto& id = it->get_ref<const std::string&>();
    if (id.size() > 256 || std::any_of(id.begin(), id.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }))
      throw engram::validation_error(where + ".memory_id is not a memory id: '" + engram::printable(id) + "'");
    return id;
  }

  /// The record as JSON if the caller may see it: not_found otherwise (a bound key cannot even learn that
  /// another user's id exists).
  json visible(const std::string& id, const principal& who) const { return json(visible_record(id, who, "")); }

  /// The record `id` if the caller may see it; not_found (its message led by `where`) otherwise.
  engram::record visible_record(const std::string& id, const principal& who, const std::string& where) const {
    auto rec = mem_.get(id);
    if (!rec || !who.may_see(rec->scope()))
      throw engram::not_found(where + "no memory with id '" + id + "'");
    return std::move(*rec);
  }

  /// Tells the observer, if any, of `changes`.
  void tell(std::span<const memory_change> changes) const {
    if (observer_ && !changes.empty()) observer_(changes);
  }

  Memory& mem_;
  change_observer observer_;
  project_settings_source projects_;
};

}  // namespace engram_app
