#pragma once
/// @file ids.hpp
/// The small integer ids the parts of a memory share: a record's slot, a scope partition, an index hit.

#include <cstdint>

namespace engram::inline v0 {

/// A vector's id inside an index: small, dense integers assigned by the memory.
using slot_id = std::uint32_t;
/// A scope partition's id inside an index.
using partition_id = std::uint32_t;

/// One index result.
struct index_hit {
  slot_id slot = 0;
  float score = 0.0f;
  friend bool operator==(const index_hit&, const index_hit&) = default;
};

/// Ranks hits: higher score first; equal scores by lower slot first (deterministic).
constexpr bool better_hit(const index_hit& a, const index_hit& b) noexcept {
  return a.score > b.score || (a.score == b.score && a.slot < b.slot);
}

}  // namespace engram::inline v0
