#pragma once
/// @file scope_keys.hpp
/// Which keys a memory's scopes may name: a compile-time policy, the last template parameter of basic_memory.
/// Mem0's key set (user_id, agent_id, run_id) is the default; platform_scope_keys adds an organisation and a
/// project as walls (a tenant: no query reaches across them) and an app id that selects as user_id does.
/// A durable store records the key set it was written with (store_identity::scope_keys) and refuses a memory
/// whose key set lacks one of its keys (detail/identity_check.hpp): that memory could not keep those scopes apart.

#include <engram/error.hpp>
#include <engram/scope.hpp>

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace engram::inline v0 {

/// A key set: `tenant_keys`, the wall keys, and `extra_keys`, further selecting keys, as constexpr ranges of
/// std::string_view (identifiers; none of user_id, agent_id, run_id; none in both).
template <class K>
concept scope_key_set = requires {
  { K::tenant_keys.size() } -> std::convertible_to<std::size_t>;
  { K::extra_keys.size() } -> std::convertible_to<std::size_t>;
};

/// Mem0's keys: user_id, agent_id, run_id. Every store written before key sets existed holds these.
struct mem0_scope_keys {
  static constexpr std::array<std::string_view, 0> tenant_keys{};
  static constexpr std::array<std::string_view, 0> extra_keys{};
};

/// Mem0 Platform's keys: an organisation and a project as walls, and an app id beside user, agent and run.
struct platform_scope_keys {
  static constexpr std::array<std::string_view, 2> tenant_keys{"org_id", "project_id"};
  static constexpr std::array<std::string_view, 1> extra_keys{"app_id"};
};

namespace detail {

template <scope_key_set K>
constexpr bool is_tenant_key(std::string_view key) noexcept {
  return std::find(K::tenant_keys.begin(), K::tenant_keys.end(), key) != K::tenant_keys.end();
}
template <scope_key_set K>
constexpr bool is_extra_key(std::string_view key) noexcept {
  return std::find(K::extra_keys.begin(), K::extra_keys.end(), key) != K::extra_keys.end();
}

/// True for a key set of Mem0's keys alone (no store support needed).
template <scope_key_set K>
inline constexpr bool only_mem0_keys = K::tenant_keys.size() == 0 && K::extra_keys.size() == 0;

/// Each key once, none of Mem0's three, each an identifier: checked when a memory is instantiated.
template <scope_key_set K>
consteval bool well_formed_key_set() {
  std::vector<std::string_view> all(K::tenant_keys.begin(), K::tenant_keys.end());
  all.insert(all.end(), K::extra_keys.begin(), K::extra_keys.end());
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto k = all[i];
    if (k.empty() || k == "user_id" || k == "agent_id" || k == "run_id") return false;
    for (const char c : k)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    for (std::size_t j = 0; j < i; ++j)
      if (all[j] == k) return false;
  }
  return true;
}

/// The key set as stored: "" for Mem0's, else "tenant=k1,k2;extra=k3" (keys in declaration order).
template <scope_key_set K>
std::string describe_scope_keys() {
  if (K::tenant_keys.size() == 0 && K::extra_keys.size() == 0) return {};
  auto join = [](const auto& keys) {
    std::string out;
    for (const auto k : keys) {
      if (!out.empty()) out += ',';
      out += k;
    }
    return out;
  };
  return "tenant=" + join(K::tenant_keys) + ";extra=" + join(K::extra_keys);
}

}  // namespace detail

/// Sets key `key` of `s` to `value` (empty removes it): user_id, agent_id, run_id, or a key of the key set `K`.
/// @throws validation_error for a key `K` does not have.
template <scope_key_set K = mem0_scope_keys>
void set_scope_key(scope& s, std::string_view key, std::string_view value) {
  if (key == "user_id") {
    s.user_id = value;
  } else if (key == "agent_id") {
    s.agent_id = value;
  } else if (key == "run_id") {
    s.run_id = value;
  } else if (detail::is_tenant_key<K>(key)) {
    s.tenant = detail::with_scope_line(s.tenant, key, value);
  } else if (detail::is_extra_key<K>(key)) {
    s.extra = detail::with_scope_line(s.extra, key, value);
  } else {
    throw validation_error("unknown scope key '" + std::string(key) + "' (this memory's keys: " +
                           [] {
                             std::string all = "user_id, agent_id, run_id";
                             for (const auto k : K::tenant_keys) all += ", " + std::string(k);
                             for (const auto k : K::extra_keys) all += ", " + std::string(k);
                             return all;
                           }() + ")");
  }
}

/// Throws validation_error unless every key `s` names beyond Mem0's three is a key of `K` in its role.
template <scope_key_set K>
void validate_scope_keys(const scope& s, std::string_view operation) {
  auto check = [&](std::string_view lines, bool tenant) {
    while (!lines.empty()) {
      const auto end = lines.find('\n');
      const auto key = lines.substr(0, lines.substr(0, end).find('='));
      if (tenant ? !detail::is_tenant_key<K>(key) : !detail::is_extra_key<K>(key))
        throw validation_error(std::string(operation) + ": scope key '" + std::string(key) +
                               (tenant ? "' is not a tenant key" : "' is not a key") + " of this memory's key set");
      if (end == std::string_view::npos) break;
      lines.remove_prefix(end + 1);
    }
  };
  check(s.tenant, true);
  check(s.extra, false);
}

}  // namespace engram::inline v0
