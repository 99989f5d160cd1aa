#pragma once
/// @file scope.hpp
/// Whose memory: the user, agent and run ids that partition a memory, and the further keys of a memory's key set
/// (scope_keys.hpp: an organisation and project, an app). Scope is a wall, not a hint: every operation reads and
/// writes only the memories whose ids match.

#include <engram/text/utf8.hpp>
#include <engram/error.hpp>

#include <compare>
#include <cstddef>
#include <functional>  // std::hash
#include <string>
#include <string_view>
#include <utility>  // std::move

namespace engram::inline v0 {

namespace detail {
/// The value of `key` in `lines`, the canonical form of scope::tenant and scope::extra: `key=value` lines joined by
/// '\n', sorted by key, no empty value (ids hold no control character, keys no '='). Empty when absent.
inline std::string_view scope_line_value(std::string_view lines, std::string_view key) noexcept {
  while (!lines.empty()) {
    const auto end = lines.find('\n');
    const auto line = lines.substr(0, end);
    if (line.size() > key.size() && line[key.size()] == '=' && line.substr(0, key.size()) == key)
      return line.substr(key.size() + 1);
    if (end == std::string_view::npos) break;
    lines.remove_prefix(end + 1);
  }
  return {};
}

/// True when every line of `query` is a line of `record` (both canonical).
inline bool scope_lines_within(std::string_view query, std::string_view record) noexcept {
  while (!query.empty()) {
    const auto end = query.find('\n');
    const auto line = query.substr(0, end);
    const auto eq = line.find('=');
    if (eq == std::string_view::npos || scope_line_value(record, line.substr(0, eq)) != line.substr(eq + 1))
      return false;
    if (end == std::string_view::npos) break;
    query.remove_prefix(end + 1);
  }
  return true;
}

/// `lines` with `key` set to `value` (removed when `value` is empty), canonical.
inline std::string with_scope_line(std::string_view lines, std::string_view key, std::string_view value) {
  std::string out;
  bool placed = value.empty();
  auto put = [&](std::string_view line) {
    if (!out.empty()) out += '\n';
    out += line;
  };
  while (!lines.empty()) {
    const auto end = lines.find('\n');
    const auto line = lines.substr(0, end);
    const auto k = line.substr(0, line.find('='));
    if (!placed && key < k) {
      put(std::string(key) + "=" + std::string(value));
      placed = true;
    }
    if (k != key) put(line);
    if (end == std::string_view::npos) break;
    lines.remove_prefix(end + 1);
  }
  if (!placed) put(std::string(key) + "=" + std::string(value));
  return out;
}
}  // namespace detail

/// The ids a memory belongs to. A record's scope is exact (its ids, empty where not given); a query's scope
/// selects every record whose ids equal each non-empty id of the query, so `user("alice")` reads alice's
/// memories under every agent and run.
///
/// Keys beyond Mem0's three come from the memory's key set (scope_keys.hpp) and are set with set_scope_key:
/// - `tenant` holds the wall keys (an organisation and project): a query selects only records whose tenant
///   equals its own, all of it; an empty tenant is one more tenant (the one of data written without walls).
/// - `extra` holds keys that select as user_id does (an app id): each one the query names must match.
/// Both are canonical `key=value` lines (see detail::scope_line_value); empty under Mem0's key set.
struct scope {
  std::string user_id;
  std::string agent_id;
  std::string run_id;
  std::string tenant{};
  std::string extra{};

  /// True when no id is set (the tenant is not an id). Such a scope selects nothing; operations that need one throw.
  [[nodiscard]] bool empty() const noexcept {
    return user_id.empty() && agent_id.empty() && run_id.empty() && extra.empty();
  }

  /// True when this (query) scope selects a record whose exact scope is `r`.
  [[nodiscard]] bool selects(const scope& r) const noexcept {
    return !empty() && tenant == r.tenant && (user_id.empty() || user_id == r.user_id) &&
           (agent_id.empty() || agent_id == r.agent_id) && (run_id.empty() || run_id == r.run_id) &&
           detail::scope_lines_within(extra, r.extra);
  }

  /// As selects(), but a scope naming no id covers every record of its tenant (of every tenant when it has none
  /// either): what "every scope" means when a store loads or counts by scope.
  [[nodiscard]] bool covers(const scope& r) const noexcept {
    return empty() ? tenant.empty() || tenant == r.tenant : selects(r);
  }

  /// The value of a key of the tenant or extra ids (empty when not set); user_id, agent_id and run_id too.
  [[nodiscard]] std::string_view key(std::string_view name) const noexcept {
    if (name == "user_id") return user_id;
    if (name == "agent_id") return agent_id;
    if (name == "run_id") return run_id;
    const auto t = detail::scope_line_value(tenant, name);
    return t.empty() ? detail::scope_line_value(extra, name) : t;
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
/// A hash of the scope whose ids are `user`, `agent` and `run`, `tenant` and `extra` (views, so that no scope
/// need be built).
inline std::size_t scope_hash_of(std::string_view user, std::string_view agent, std::string_view run,
                                 std::string_view tenant = {}, std::string_view extra = {}) noexcept {
  const std::hash<std::string_view> h;
  std::size_t x = h(user) ^ (h(agent) * 0x9E3779B97F4A7C15ull) ^ (h(run) * 0xC2B2AE3D27D4EB4Full);
  if (!tenant.empty()) x ^= h(tenant) * 0x165667B19E3779F9ull;
  if (!extra.empty()) x ^= h(extra) * 0x27D4EB2F165667C5ull;
  return x;
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

namespace detail {
/// @throws validation_error unless `lines` is canonical (sorted keys, one line each, non-empty well-formed values).
inline void validate_scope_lines(std::string_view lines, std::string_view field, std::string_view operation) {
  std::string_view previous;
  bool first = true;
  while (!lines.empty()) {
    const auto end = lines.find('\n');
    const auto line = lines.substr(0, end);
    const auto eq = line.find('=');
    if (eq == 0 || eq == std::string_view::npos || eq + 1 == line.size() || (!first && line.substr(0, eq) <= previous) ||
        end + 1 == lines.size())
      throw validation_error(std::string(operation) + ": scope " + std::string(field) +
                             " is not key=value lines sorted by key (set keys with set_scope_key)");
    previous = line.substr(0, eq);
    for (const char c : previous)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
        throw validation_error(std::string(operation) + ": scope key '" + std::string(previous) +
                               "' is not a lowercase identifier");
    first = false;
    validate_scope_id(previous, std::string(line.substr(eq + 1)), operation);
    if (end == std::string_view::npos) break;
    lines.remove_prefix(end + 1);
  }
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
  detail::validate_scope_lines(s.tenant, "tenant", operation);
  detail::validate_scope_lines(s.extra, "extra", operation);
}

}  // namespace engram::inline v0
