#pragma once
/// @file detail/identity_check.hpp
/// The refusal a durable store gives an embedder other than the one its vectors came from, or a scope key set
/// that lacks a key it recorded.

#include <engram/error.hpp>
#include <engram/write_batch.hpp>

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace engram::inline v0::detail {

/// The (tenant keys, extra keys) of a stored description. @throws storage_error when it is not one.
inline std::pair<std::vector<std::string>, std::vector<std::string>> parse_scope_keys(std::string_view d,
                                                                                  const std::string& where) {
  std::pair<std::vector<std::string>, std::vector<std::string>> out;
  if (d.empty()) return out;
  const auto semi = d.find(';');
  if (d.substr(0, 7) != "tenant=" || semi == std::string_view::npos || d.substr(semi + 1, 6) != "extra=")
    throw storage_error(where + ": recorded scope keys '" + std::string(d) + "' are not a key set");
  auto split = [](std::string_view s, std::vector<std::string>& to) {
    while (!s.empty()) {
      const auto comma = s.find(',');
      to.emplace_back(s.substr(0, comma));
      if (comma == std::string_view::npos) break;
      s.remove_prefix(comma + 1);
    }
  };
  split(d.substr(7, semi - 7), out.first);
  split(d.substr(semi + 7), out.second);
  return out;
}

/// Whether a store whose recorded key set is `have` may be used by a memory whose key set is `want`: every key
/// recorded must be in `want` with the same role (a wider set is fine: records without the new keys have them
/// empty). @returns true when `want` is wider, so the store should record it.
/// @throws validation_error naming both key sets otherwise.
inline bool check_scope_keys(const std::string& have, const std::string& want, const std::string& where) {
  if (have == want) return false;
  const auto h = parse_scope_keys(have, where), w = parse_scope_keys(want, where);
  auto within = [](const std::vector<std::string>& a, const std::vector<std::string>& b) {
    return std::all_of(a.begin(), a.end(), [&](const std::string& k) { return std::find(b.begin(), b.end(), k) != b.end(); });
  };
  if (!within(h.first, w.first) || !within(h.second, w.second)) {
    auto name = [](const std::string& d) { return d.empty() ? std::string("user_id,agent_id,run_id (Mem0's)") : d; };
    throw validation_error(where + ": store was written with scope keys " + name(have) +
                           "; this memory's key set is " + name(want) +
                           " and cannot keep those scopes apart (use a key set holding every recorded key)");
  }
  return true;
}


/// @throws dimension_mismatch (another size) or validation_error (another name, or a key set lacking a recorded
///         scope key), naming both identities and `where` (the store and its location).
/// @returns true when `want` names a wider scope key set than recorded: the store should record `want`.
inline bool check_same_identity(const store_identity& have, const store_identity& want, const std::string& where) {
  if (have.dimension != want.dimension)
    throw dimension_mismatch(have.dimension, want.dimension,
                             where + ": store holds " + std::to_string(have.dimension) +
                                 "-dimensional vectors of embedder '" + have.embedder + "'; embedder '" +
                                 want.embedder + "' makes " + std::to_string(want.dimension));
  if (have.embedder != want.embedder)
    throw validation_error(where + ": store holds vectors of embedder '" + have.embedder + "', not '" +
                           want.embedder + "' (use engram::reembed to switch)");
  return check_scope_keys(have.scope_keys, want.scope_keys, where);
}

}  // namespace engram::inline v0::detail
