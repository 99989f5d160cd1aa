#pragma once
/// @file scope.hpp
/// Whose memory: the user, agent and run ids that partition a memory. Scope is a wall, not a hint: every
/// operation reads and writes only the memories whose ids match.

#include <engram/text/utf8.hpp>
#include <engram/error.hpp>

#include <compare>
#include <cstddef>
#include <functional>  // std::hash
#include <string>
#include <string_view>
#include <utility>  // std::move

namespace engram::inline v0 {

/// The ids a memory belongs to. A record's scope is exact (its three ids, empty where not given); a query's
/// scope selects every record whose ids equal each non-empty id of the query, so `user("alice")` reads
/// alice's memories under every agent and run.
struct scope {
  std::string user_id;
  std::string agent_id;
  std::string run_id;

  /// True when no id is set. Such a scope selects nothing; operations that need one throw.
  [[nodiscard]] bool empty() const noexcept { return user_id.empty() && agent_id.empty() && run_id.empty(); }

  /// True when this (query) scope selects a record whose exact scope is `r`.
  [[nodiscard]] bool selects(const scope& r) const noexcept {
    return !empty() && (user_id.empty() || user_id == r.user_id) &&
           (agent_id.empty() || agent_id == r.agent_id) && (run_id.empty() || run_id == r.run_id);
  }

  friend bool operator==(const scope&, const scope&) = default;
  friend auto operator<=>(const scope&, const scope&) = default;
};

/// The scope of one user's memories (every agent and run).
inline scope user(std::string id) { return scope{std::move(id), {}, {}}; }
/// The scope of one agent's memories.
inline scope agent(std::string id) { return scope{{}, std::move(id), {}}; }
/// The scope of one run (session).
inline scope run(std::string id) { return scope{{}, {}, std::move(id)}; }

/// Tag for the few operations that may explicitly address every scope at once (export, admin listing).
struct all_scopes_t {
  explicit constexpr all_scopes_t() = default;
};
/// Pass where an operation accepts "every scope" instead of a scope.
inline constexpr all_scopes_t all_scopes{};

/// Longest id accepted, in bytes.
inline constexpr std::size_t max_scope_id_bytes = 256;

namespace detail {
/// A hash of the scope whose ids are `user`, `agent` and `run` (views, so that no scope need be built).
inline std::size_t scope_hash_of(std::string_view user, std::string_view agent, std::string_view run) noexcept {
  const std::hash<std::string_view> h;
  return h(user) ^ (h(agent) * 0x9E3779B97F4A7C15ull) ^ (h(run) * 0xC2B2AE3D27D4EB4Full);
}

inline void validate_scope_id(std::string_view field, const std::string& value, std::string_view operation) {
  if (value.size() > max_scope_id_bytes)
    throw validation_error(std::string(operation) + ": " + std::string(field) + " is " +
                           std::to_string(value.size()) + " bytes; at most " + std::to_string(max_scope_id_bytes) +
                           " are allowed");
  for (const char c : value)
    if (static_cast<unsigned char>(c) < 0x20)
      throw validation_error(std::string(operation) + ": " + std::string(field) +
                             " contains a control character; ids must be printable text");
  if (!is_valid_utf8(value))
    throw validation_error(std::string(operation) + ": " + std::string(field) + " is not valid UTF-8");
}
}  // namespace detail

/// Throws validation_error unless `s` names at least one id and every id is well-formed.
/// @param operation the caller's name, used in the message ("add", "search", ...).
inline void validate_scope(const scope& s, std::string_view operation) {
  if (s.empty())
    throw validation_error(std::string(operation) +
                           ": a scope is required: give at least one of user_id, agent_id, run_id");
  detail::validate_scope_id("user_id", s.user_id, operation);
  detail::validate_scope_id("agent_id", s.agent_id, operation);
  detail::validate_scope_id("run_id", s.run_id, operation);
}

}  // namespace engram::inline v0
