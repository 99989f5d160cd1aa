#pragma once
/// @file detail/identity_check.hpp
/// The refusal a durable store gives an embedder other than the one its vectors came from.

#include <engram/error.hpp>
#include <engram/scope_keys.hpp>
#include <engram/write_batch.hpp>

#include <string>

namespace engram::inline v0::detail {

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
