#pragma once
/// @file examples/common/mcp_handler.hpp
/// engram's memory tools over the Model Context Protocol: JSON-RPC 2.0 messages in, JSON-RPC messages out.
/// Transport-free: engram-mcp feeds it newline-delimited messages from stdin, engram-server the bodies of
/// `POST /mcp` (Streamable HTTP). Stateless between messages, so one instance serves many threads as long as
/// the memory itself is thread-safe.
///
/// Scope binding: a caller whose principal is bound to a user (engram-mcp --user-id U, or an HTTP key bound
/// to U) gets U as user_id on every tool call. A `user_id` the model passes (as an argument or inside
/// `filters`) is overridden, not refused: the tools then act exactly as if the model had named U, and
/// `tools/list` does not offer a `user_id` argument at all. Reads by memory id return "not found" for any
/// memory of another user.
///
/// Projects: every scope a tool uses is built by request_scope from the principal, so a key bound to a project
/// (engram-server's HTTP keys) stays in it: naming another project is refused, reads by id of another project's
/// memory return "not found", and list_entities lists its project's only.

#include "errors.hpp"
#include "graph.hpp"
#include "purge.hpp"
#include "service.hpp"

#include <engram/engram.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace engram_app::mcp {

/// Protocol revisions this server speaks, newest first.
inline constexpr std::array<std::string_view, 3> protocol_versions = {"2025-06-18", "2025-03-26", "2024-11-05"};

/// The version to answer an `initialize` with: the client's when supported, else our newest.
inline std::string negotiate_version(std::string_view requested) {
  for (auto v : protocol_versions)
    if (v == requested) return std::string(v);
  return std::string(protocol_versions.front());
}

/// A JSON-RPC error response.
inline json error_response(const json& id, rpc_code code, const std::string& message) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", static_cast<int>(code)}, {"message", message}}}};
}

namespace detail {

inline json scope_properties(json props, bool offer_user_id) {
  if (offer_user_id) props["user_id"] = {{"type", "string"}, {"description", "The user whose memories these are."}};
  props["agent_id"] = {{"type", "string"}, {"description", "The agent whose memories these are."}};
  props["run_id"] = {{"type", "string"}, {"description", "The run or session whose memories these are."}};
  props["app_id"] = {{"type", "string"}, {"description", "The application whose memories these are."}};
  props["org_id"] = {{"type", "string"},
                     {"description", "The organisation of the project (with project_id; a key bound to a project "
                                     "always uses its own)."}};
  props["project_id"] = {{"type", "string"},
                         {"description", "The project whose memories these are (with org_id; none: the default "
                                         "project, or the key's own)."}};
  return props;
}

inline json tool(const char* name, const char* title, const char* description, json properties,
                 json required, bool read_only, bool destructive) {
  return json{{"name", name},
              {"title", title},
              {"description", description},
              {"inputSchema",
               {{"type", "object"},
                {"properties", std::move(properties)},
                {"required", std::move(required)},
                {"additionalProperties", false}}},
              {"annotations",
               {{"title", title}, {"readOnlyHint", read_only}, {"destructiveHint", destructive},
                {"idempotentHint", read_only}, {"openWorldHint", false}}}};
}

inline bool has_type(const json& v, std::string_view type) {
  if (type == "string") return v.is_string();
  if (type == "integer") return v.is_number_integer();
  if (type == "number") return v.is_number();
  if (type == "boolean") return v.is_boolean();
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  return type == "null" && v.is_null();
}

/// Checks arguments against the subset of JSON Schema our tools use (type, minimum, maximum, required,
/// additionalProperties: false). @throws engram::validation_error naming the argument and what was expected.
inline void check_arguments(const json& schema, const json& args) {
  const auto& props = schema.at("properties");
  for (const auto& [key, value] : args.items()) {
    const auto p = props.find(key);
    if (p == props.end()) {
      std::string known;
      for (const auto& [k, _] : props.items()) known += (known.empty() ? "" : ", ") + k;
      throw engram::validation_error("unknown argument '" + key + "'; the arguments are: " + known);
    }
    const std::string type = p->at("type").get<std::string>();
    if (!has_type(value, type))
      throw engram::validation_error("argument '" + key + "' must be of type " + type + ", got " + value.type_name() +
                                     " " + value.dump());
    if (auto m = p->find("minimum"); m != p->end() && value.get<double>() < m->get<double>())
      throw engram::validation_error("argument '" + key + "' must be at least " + m->dump() + ", got " + value.dump());
    if (auto m = p->find("maximum"); m != p->end() && value.get<double>() > m->get<double>())
      throw engram::validation_error("argument '" + key + "' must be at most " + m->dump() + ", got " + value.dump());
  }
  for (const auto& r : schema.at("required"))
    if (!args.contains(r.get<std::string>()))
      throw engram::validation_error("argument '" + r.get<std::string>() + "' is required");
}

/// Removes `user_id` from the top level of a filter and from the leaves of a top-level AND: a bound caller's
/// own user id replaces it. Deeper mentions (inside OR, NOT) stay and can only narrow the bound scope.
inline void drop_user_id(json& filters) {
  if (!filters.is_object()) return;
  filters.erase("user_id");
  for (const char* logic : {"AND", "$and"})
    if (auto it = filters.find(logic); it != filters.end() && it->is_array()) {
      json kept = json::array();
      for (auto& leaf : *it) {
        if (leaf.is_object()) leaf.erase("user_id");
        if (!(leaf.is_object() && leaf.empty())) kept.push_back(std::move(leaf));
      }
      if (kept.empty()) filters.erase(logic);
      else *it = std::move(kept);
    }
}

inline std::string clip(const std::string& s, std::size_t n = 120) {
  return s.size() <= n ? s : s.substr(0, n) + "...";
}

/// "N memories" and one line per record (at most 20), for search and list results.
inline std::string summarize_records(const json& results, const char* noun) {
  const auto n = results.size();
  std::string text = n == 0 ? std::string("No ") + noun + "." : std::to_string(n) + " " + noun + ":";
  std::size_t shown = 0;
  for (const auto& r : results) {
    if (++shown > 20) {
      text += "\n(" + std::to_string(n - 20) + " more in the structured result)";
      break;
    }
    text += "\n- " + clip(r.value("memory", "")) + " (id " + r.value("id", "");
    if (r.contains("score")) {
      char buf[32];
      std::snprintf(buf, sizeof buf, ", score %.3f", r["score"].get<double>());
      text += buf;
    }
    text += ")";
  }
  return text;
}

}  // namespace detail

/// The MCP server: lifecycle (`initialize`, `notifications/initialized`, `ping`), `tools/list` and
/// `tools/call` over a service. Thread-safety: as the memory's (the server keeps no per-call state).
template <class Memory>
class server {
 public:
  explicit server(Memory& memory)
      : memory_(memory), service_(memory), graph_(memory), unbound_tools_(tools(true)), bound_tools_(tools(false)) {}

  /// The app's files that delete_entities (a purge, purge.hpp) scrubs besides the memory. Before sharing.
  void set_purge_files(purge_files files) { purge_files_ = std::move(files); }

  /// Tells `observer` of the changes the tools commit (service::set_observer).
  void set_observer(change_observer observer) { service_.set_observer(std::move(observer)); }

  /// The tools as `tools/list` lists them: with `user_id` arguments only when `offer_user_id`.
  static json tools(bool offer_user_id) {
    const bool offer_user = offer_user_id;
    using detail::scope_properties;
    using detail::tool;
    const json memory_id = {{"type", "string"}, {"description", "The memory's id, as returned by the other tools."}};
    const json filters = {{"type", "object"},
                          {"description",
                           "Mem0 filter over metadata and scope fields, e.g. {\"category\": \"food\"} or "
                           "{\"AND\": [{\"created_at\": {\"gte\": \"2026-01-01\"}}, {\"topic\": {\"in\": [\"a\", \"b\"]}}]}."}};
    const json metadata = {{"type", "object"}, {"description", "Key-value data stored with the memory."}};
    const json expiration = {{"type", "string"},
                             {"description", "YYYY-MM-DD (UTC): after this day the memory is hidden from search and "
                                             "listing; an empty string removes the date."}};
    const json show_expired = {{"type", "boolean"}, {"description", "Include memories past their expiration date."}};
    const json as_of = {{"type", "string"},
                        {"description", "Only the memories that held at this time: an ISO-8601 date or time "
                                        "(2024-06-01, 2024-06-01T12:00:00Z) or Unix seconds as digits. A fact "
                                        "replaced since (when the server keeps old versions) is found as of a "
                                        "time before it was replaced."}};
    const json include_invalid = {{"type", "boolean"},
                                  {"description", "Include every version, the replaced ones too (not with as_of)."}};
    const json enable_graph = {{"type", "boolean"},
                               {"description", "Add `relations` (source, relationship, destination or target) from the "
                                               "entity graph: needs the server's entity index (--entities on)."}};
    json message_item = {{"type", "object"},
                         {"properties", {{"role", {{"type", "string"}}}, {"content", {{"type", "string"}}}}},
                         {"required", {"role", "content"}}};
    const char* scope_note = offer_user ? " Give at least one of user_id, agent_id, run_id." : "";
    return json::array({
        tool("add_memory", "Add memory",
             (std::string("Remember something: a text, or a conversation as messages. Returns what was stored.") + scope_note).c_str(),
             scope_properties({{"text", {{"type", "string"}, {"description", "What to remember."}}},
                               {"messages", {{"type", "array"}, {"items", message_item},
                                             {"description", "A conversation to remember, as {role, content} messages (instead of text)."}}},
                               {"metadata", metadata},
                               {"infer", {{"type", "boolean"}, {"description", "Let the extractor decide what to remember (default true, as Mem0); false stores the input verbatim."}}},
                               {"expiration_date", expiration},
                               {"immutable", {{"type", "boolean"}, {"description", "Never change or delete the memories this add creates when later facts contradict them (an explicit update is refused)."}}},
                               {"timestamp", {{"type", "string"}, {"description", "When the conversation happened, ISO-8601 (the memories' created_at; the date the extractor resolves relative times against)."}}},
                               {"includes", {{"type", "array"}, {"items", {{"type", "string"}}}, {"description", "Kinds of information to remember only, for this add (with the LLM extractor)."}}},
                               {"excludes", {{"type", "array"}, {"items", {{"type", "string"}}}, {"description", "Kinds of information never to remember, for this add (with the LLM extractor)."}}},
                               {"custom_categories", {{"type", "array"}, {"items", {{"type", "object"}}}, {"description", "Categories to file facts under, for this add: [{\"name\": \"description\"}]."}}},
                               {"custom_instructions", {{"type", "string"}, {"description", "Extra extraction instructions for this add."}}},
                               {"prompt", {{"type", "string"}, {"description", "Replaces the extraction prompt for this add."}}},
                               {"memory_type", {{"type", "string"}, {"enum", {"procedural_memory"}}, {"description", "procedural_memory: summarise this agent run (messages, with an agent_id) into one memory of the steps taken and their results."}}},
                               {"enable_graph", {{"type", "boolean"}, {"description", "Have the LLM extractor name the entities and relations of what this add stores (needs the server's entity index, --entities on or llm)."}}}},
                              offer_user),
             json::array(), false, false),
        tool("search_memories", "Search memories",
             (std::string("Find the memories most relevant to a query, best first, with scores.") + scope_note).c_str(),
             scope_properties({{"query", {{"type", "string"}, {"description", "What to look for, in natural language."}}},
                               {"filters", filters},
                               {"limit", {{"type", "integer"}, {"minimum", 1}, {"maximum", 1000}, {"description", "At most this many results (default 100)."}}},
                               {"threshold", {{"type", "number"}, {"description", "Only results scoring at least this."}}},
                               {"mode", {{"type", "string"}, {"enum", {"hybrid", "semantic", "keyword"}},
                                         {"description", "Ranking: hybrid (meaning and keywords, the default), semantic (meaning only) or keyword (exact words only, e.g. names, codes)."}}},
                               {"weights", {{"type", "object"},
                                            {"description", "Ranking weights, e.g. {\"keyword\": 0.7, \"recency\": 0.2, \"importance\": 0.3}: semantic, keyword, fusion (weighted or rrf), recency (with recency_half_life_days), importance (metadata number, importance_key), access, newest_first (a cosine in (0, 1]: the latest of near-duplicate statements first), entity (with entity_hops 0 or 1; needs the server's entity index)."}}},
                               {"explain", {{"type", "boolean"}, {"description", "Add score_details (the parts of each score) to every result."}}},
                               {"show_expired", show_expired},
                               {"as_of", as_of},
                               {"include_invalid", include_invalid},
                               {"enable_graph", enable_graph}},
                              offer_user),
             json::array({"query"}), true, false),
        tool("list_memories", "List memories", "List the memories of a scope, newest first.",
             scope_properties({{"filters", filters},
                               {"limit", {{"type", "integer"}, {"minimum", 1}, {"description", "At most this many memories (default 100)."}}},
                               {"show_expired", show_expired},
                               {"as_of", as_of},
                               {"include_invalid", include_invalid},
                               {"enable_graph", enable_graph}},
                              offer_user),
             json::array(), true, false),
        tool("get_memory", "Get memory", "Read one memory by id.", json{{"memory_id", memory_id}},
             json::array({"memory_id"}), true, false),
        tool("update_memory", "Update memory", "Replace the text (and optionally the metadata and expiration date) of one memory.",
             json{{"memory_id", memory_id}, {"text", {{"type", "string"}, {"description", "The new text."}}}, {"metadata", metadata},
                  {"expiration_date", expiration}},
             json::array({"memory_id", "text"}), false, true),
        tool("delete_memory", "Delete memory", "Delete one memory by id.", json{{"memory_id", memory_id}},
             json::array({"memory_id"}), false, true),
        tool("memory_history", "Memory history", "The changes made to one memory, oldest first.",
             json{{"memory_id", memory_id}}, json::array({"memory_id"}), true, false),
        tool("delete_all_memories", "Delete all memories",
             (std::string("Delete every memory of a scope (its history is kept).") + scope_note).c_str(),
             scope_properties(json::object(), offer_user), json::array(), false, true),
        tool("list_entities", "List entities",
             "The users, agents and runs that hold memories, with how many each.", json::object(), json::array(),
             true, false),
        tool("delete_entities", "Delete entity",
             offer_user ? "Delete one user, agent or run with all its memories and their history, for good: give exactly one of "
                          "user_id, agent_id, run_id (an app_id narrows it to that app's memories)."
                        : "Delete one of your agents or runs with all its memories and their history, for good: give exactly one "
                          "of agent_id, run_id (an app_id narrows it to that app's memories).",
             scope_properties(json::object(), offer_user), json::array(), false, true),
        tool("entity_graph", "Entity graph",
             (std::string("The people, places, organisations and other entities the memories of a scope name, with "
                          "the relations between them (needs the server's entity index, --entities on).") + scope_note).c_str(),
             scope_properties(json::object(), offer_user), json::array(), true, false),
    });
  }

  /// Handles one message (a request, a notification, or a batch of them). Returns the response to send, or
  /// nothing for notifications and client responses. Never throws for bad input.
  std::optional<json> handle(const json& msg, const principal& who) {
    if (msg.is_array()) {
      if (msg.empty()) return error_response(nullptr, rpc_code::invalid_request, "empty batch");
      json out = json::array();
      for (const auto& m : msg)
        if (auto r = handle_one(m, who)) out.push_back(std::move(*r));
      if (out.empty()) return std::nullopt;
      return out;
    }
    return handle_one(msg, who);
  }

  /// Handles one message as text: malformed JSON is answered with a parse error (-32700).
  std::optional<json> handle_text(const std::string& text, const principal& who) {
    json msg;
    try {
      msg = parse_body(text);
    } catch (const std::exception& e) {
      return error_response(nullptr, rpc_code::parse_error, std::string("parse error: ") + e.what());
    }
    return handle(msg, who);
  }

 private:
  std::optional<json> handle_one(const json& msg, const principal& who) {
    if (!msg.is_object()) return error_response(nullptr, rpc_code::invalid_request, "a JSON-RPC message must be an object");
    const auto id_it = msg.find("id");
    const bool is_request = id_it != msg.end();
    json id = is_request && (id_it->is_string() || id_it->is_number_integer()) ? *id_it : json(nullptr);
    const auto method_it = msg.find("method");
    // A response from the client (we never send requests, so there is nothing to match it with): ignore.
    if (method_it == msg.end() && is_request && (msg.contains("result") || msg.contains("error"))) return std::nullopt;
    if (msg.value("jsonrpc", json()) != "2.0")
      return error_response(id, rpc_code::invalid_request, "'jsonrpc' must be \"2.0\"");
    if (method_it == msg.end() || !method_it->is_string())
      return error_response(id, rpc_code::invalid_request, "'method' must be a string");
    if (is_request && !(id_it->is_string() || id_it->is_number_integer()))
      return error_response(nullptr, rpc_code::invalid_request, "'id' must be a string or an integer");
    const auto& method = method_it->get_ref<const std::string&>();
    json params = msg.value("params", json::object());
    if (!params.is_object())
      return is_request ? std::optional<json>(error_response(id, rpc_code::invalid_params, "'params' must be an object"))
                        : std::nullopt;
    if (!is_request) return std::nullopt;  // notifications/initialized, cancelled, ...: nothing to answer

    try {
      json result;
      if (method == "initialize") {
        const auto v = params.find("protocolVersion");
        if (v == params.end() || !v->is_string())
          return error_response(id, rpc_code::invalid_params, "'protocolVersion' (a string) is required");
        result = {{"protocolVersion", negotiate_version(v->get<std::string>())},
                  {"capabilities", {{"tools", json::object()}}},
                  {"serverInfo", {{"name", "engram"}, {"title", "engram memory"}, {"version", engram::version_string}}},
                  {"instructions",
                   "Long-term memory. Use search_memories before answering questions that may depend on what the "
                   "user said before, and add_memory to remember facts, preferences and decisions."}};
      } else if (method == "ping") {
        result = json::object();
      } else if (method == "tools/list") {
        result = {{"tools", catalogue(who)}};
      } else if (method == "tools/call") {
        const auto name = params.find("name");
        if (name == params.end() || !name->is_string())
          return error_response(id, rpc_code::invalid_params, "'name' (the tool's name) is required");
        json args = params.value("arguments", json::object());
        if (args.is_null()) args = json::object();
        if (!args.is_object())
          return error_response(id, rpc_code::invalid_params, "'arguments' must be an object");
        const json* schema = nullptr;
        for (const auto& t : catalogue(who))
          if (t["name"] == *name) schema = &t["inputSchema"];
        if (!schema) return error_response(id, rpc_code::invalid_params, "unknown tool '" + name->get<std::string>() + "'");
        result = call(name->get<std::string>(), *schema, std::move(args), who);
      } else {
        return error_response(id, rpc_code::method_not_found, "method not found: '" + method + "'");
      }
      return json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
    } catch (const std::exception& e) {
      return error_response(id, rpc_error_code(current_error_kind()), std::string("internal error: ") + e.what());
    }
  }

  const json& catalogue(const principal& who) const {
    return who.bound_user_id.empty() ? unbound_tools_ : bound_tools_;
  }

  static json tool_error(const std::string& message) {
    return json{{"content", json::array({{{"type", "text"}, {"text", message}}})}, {"isError", true}};
  }

  static json tool_result(json structured, std::string text) {
    return json{{"content", json::array({{{"type", "text"}, {"text", std::move(text)}}})},
                {"structuredContent", std::move(structured)},
                {"isError", false}};
  }

  /// Runs one tool. Bad input, unknown ids and refusals become a result with isError (the model can read
  /// them and retry); only unexpected failures escape as exceptions.
  json call(const std::string& name, const json& schema, json args, const principal& who) {
    try {
      const bool deletes_scope = name == "delete_all_memories" || name == "delete_entities";
      if (deletes_scope && !who.bound_user_id.empty() && args.contains("user_id") && args["user_id"] != who.bound_user_id)
        // elsewhere a bound server reads a foreign user_id as its own user; a deletion must not guess
        return tool_error("this server is bound to user '" + who.bound_user_id + "': it cannot delete another user's memories");
      int scope_keys = 0;  // named by the caller, before a bound user is filled in
      for (const char* key : {"user_id", "agent_id", "run_id"}) scope_keys += args.contains(key);
      if (!who.bound_user_id.empty()) {
        args.erase("user_id");  // overridden, see the file comment
        if (auto f = args.find("filters"); f != args.end()) detail::drop_user_id(*f);
      }
      detail::check_arguments(schema, args);
      if (!who.bound_user_id.empty())
        args["user_id"] = who.bound_user_id;
      const auto memory_id = args.value("memory_id", std::string());
      if (name == "add_memory") {
        if (!args.contains("text") && !args.contains("messages"))
          return tool_error("give 'text' (what to remember) or 'messages' (a conversation)");
        auto out = service_.add(args, who);
        std::string text;
        for (const auto& e : out["results"])
          text += std::string(text.empty() ? "" : "\n") + e.value("event", "") + " " + e.value("id", "") + ": " +
                  detail::clip(e.value("memory", ""));
        if (text.empty()) text = "Nothing new to remember.";
        return tool_result(std::move(out), std::move(text));
      }
      if (name == "search_memories") {
        auto out = service_.search(args, who);
        auto text = detail::summarize_records(out["results"], "memories found");
        return tool_result(std::move(out), std::move(text));
      }
      if (name == "list_memories") {
        // newest first, the limit applied after ordering: an agent with a large scope sees its latest memories
        const auto limit = whole_number(args, "limit", 1, 1'000'000).value_or(100);
        json every = args;
        every["limit"] = 0;
        auto out = service_.list(every, who);
        auto& items = out["results"];
        std::reverse(items.begin(), items.end());
        if (items.size() > limit) items.erase(items.begin() + static_cast<std::ptrdiff_t>(limit), items.end());
        auto text = detail::summarize_records(out["results"], "memories");
        return tool_result(std::move(out), std::move(text));
      }
      if (name == "get_memory") {
        auto out = service_.get(memory_id, who);
        auto text = detail::clip(out.value("memory", ""), 2000) + " (id " + memory_id + ")";
        return tool_result(std::move(out), std::move(text));
      }
      if (name == "update_memory") {
        json req = {{"text", args["text"]}};
        if (args.contains("metadata")) req["metadata"] = args["metadata"];
        if (args.contains("expiration_date")) req["expiration_date"] = args["expiration_date"];
        auto out = service_.update(memory_id, req, who);
        auto text = "Updated " + memory_id + ": " + detail::clip(out.value("memory", ""));
        return tool_result(std::move(out), std::move(text));
      }
      if (name == "delete_memory") {
        auto out = service_.remove(memory_id, who);
        return tool_result(std::move(out), "Deleted " + memory_id + ".");
      }
      if (name == "memory_history") {
        json out = {{"results", service_.history(memory_id, who)}};
        std::string text = std::to_string(out["results"].size()) + " events for " + memory_id + ":";
        for (const auto& e : out["results"]) {
          text += "\n- " + e.value("event", "") + " " + e.value("created_at", "");
          if (e["old_memory"].is_string()) text += " from \"" + detail::clip(e["old_memory"].get<std::string>(), 60) + "\"";
          if (e["new_memory"].is_string()) text += " to \"" + detail::clip(e["new_memory"].get<std::string>(), 60) + "\"";
        }
        return tool_result(std::move(out), std::move(text));
      }
      if (name == "delete_all_memories") {
        auto out = service_.remove_all(args, who);
        return tool_result(std::move(out), "Deleted " + std::to_string(out.value("deleted", std::size_t{0})) + " memories.");
      }
      if (name == "list_entities") {
        auto out = service_.entities(who);
        std::string text = std::to_string(out["results"].size()) + " entities:";
        for (const auto& e : out["results"])
          text += "\n- " + e.value("type", "") + " " + e.value("id", "") + " (" +
                  std::to_string(e.value("total_memories", std::size_t{0})) + " memories)";
        return tool_result(std::move(out), std::move(text));
      }
      if (name == "delete_entities") {
        if (scope_keys != 1) return tool_error("give exactly one of user_id, agent_id, run_id: the entity to delete");
        auto out = purge_scope(memory_, request_scope(args, who), purge_files_);
        return tool_result(std::move(out), "Deleted the entity, its " +
                                               std::to_string(out.value("deleted", std::size_t{0})) +
                                               " memories and their history.");
      }
      if (name == "entity_graph") {
        auto out = graph_.graph(args, who);
        std::string text = std::to_string(out["entities"].size()) + " entities, " +
                           std::to_string(out["relations"].size()) + " relations:";
        for (const auto& e : out["entities"])
          text += "\n- " + e.value("name", "") + " (" + e.value("type", "") + ", " +
                  std::to_string(e.value("memories", std::size_t{0})) + " memories)";
        for (const auto& r : out["relations"])
          text += "\n- " + r.value("source", "") + " -" + r.value("relationship", "") + "-> " + r.value("target", "");
        return tool_result(std::move(out), std::move(text));
      }
      return tool_error("tool '" + name + "' is listed but not implemented");
    } catch (const std::exception& e) {
      const auto prefix = tool_error_prefix(current_error_kind());
      if (!prefix) throw;  // not the model's to handle: a JSON-RPC error (handle_one)
      return tool_error(std::string(*prefix) + e.what());
    }
  }

  Memory& memory_;
  purge_files purge_files_;
  service<Memory> service_;
  graph_service<Memory> graph_;
  const json unbound_tools_, bound_tools_;  // built once; read-only afterwards
};

}  // namespace engram_app::mcp
