#pragma once
/// @file examples/common/scope_json.hpp
/// A scope's ids as top-level fields of a JSON object, as the apps' own files and answers carry them (events,
/// exports, webhook deliveries): user_id, agent_id, run_id and the keys of platform_scope_keys (org_id,
/// project_id, app_id), each when set. A record's JSON has them there too (include/engram/json.hpp), so the scope
/// of a listed memory reads back the same way. An object without org_id and project_id is of the default project
/// (an empty tenant): what every such file written before projects holds.

#include <engram/engram.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <string>
#include <string_view>

namespace engram_app {

/// Every key a scope may have in the apps (platform_scope_keys), Mem0's three first.
inline constexpr std::array<std::string_view, 6> scope_json_keys{"user_id", "agent_id", "run_id",
                                                                 "org_id",  "project_id", "app_id"};

/// Sets in `obj` (an object) each id of `s` that is set.
inline void put_scope_ids(nlohmann::json& obj, const engram::scope& s) {
  for (const auto key : scope_json_keys)
    if (const auto v = s.key(key); !v.empty()) obj[std::string(key)] = std::string(v);
}

/// The scope whose ids `obj` holds at its top level (string values; anything else is ignored).
inline engram::scope scope_ids_of(const nlohmann::json& obj) {
  engram::scope s;
  if (!obj.is_object()) return s;
  for (const auto key : scope_json_keys) {
    const auto it = obj.find(std::string(key));
    if (it != obj.end() && it->is_string() && !it->get_ref<const std::string&>().empty())
      engram::set_scope_key<engram::platform_scope_keys>(s, key, it->get_ref<const std::string&>());
  }
  return s;
}

}  // namespace engram_app
