#pragma once
/// @file store/write_batch.hpp
/// The unit of durability: every change one memory operation makes, applied by a store all or nothing.

#include <engram/record.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace engram::inline v0 {

/// Records to insert or replace (whole), ids to erase, and history events to append, in that order.
/// A store applies a batch atomically: after a crash either all of it is there or none.
struct write_batch {
  std::vector<record> upserts;
  std::vector<std::string> erases;
  std::vector<history_event> events;

  [[nodiscard]] bool empty() const noexcept { return upserts.empty() && erases.empty() && events.empty(); }
};

/// What produced a store's vectors. A store remembers the identity it was first used with and refuses
/// another, so vectors of different models never mix.
struct store_identity {
  std::string embedder;       ///< the embedder's name(), e.g. "hashing-v1" or "openai:text-embedding-3-small"
  std::size_t dimension = 0;  ///< its vector size

  friend bool operator==(const store_identity&, const store_identity&) = default;
};

}  // namespace engram::inline v0
