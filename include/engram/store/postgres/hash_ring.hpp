#pragma once
/// @file store/postgres/hash_ring.hpp
/// Consistent hashing: a ring of virtual nodes per member, so that adding a member moves only the keys it
/// takes over (about 1/(n+1) of them) and removing one moves only its own.

#include <engram/detail/fnv.hpp>
#include <engram/error.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace engram::inline v0::detail {

/// A hash ring over named members. A member's points depend only on its name, so a key's owner depends only
/// on the set of names, never on their order. Immutable after construction: thread-safe to share.
class hash_ring {
 public:
  /// @throws validation_error for no member, an empty or repeated name, or zero virtual nodes.
  hash_ring(const std::vector<std::string>& names, std::size_t virtual_nodes) {
    if (names.empty()) throw validation_error("hash ring: at least one member is needed");
    if (virtual_nodes == 0) throw validation_error("hash ring: virtual_nodes must be at least 1");
    for (std::size_t m = 0; m < names.size(); ++m) {
      if (names[m].empty()) throw validation_error("hash ring: member " + std::to_string(m) + " has an empty name");
      if (std::find(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(m), names[m]) !=
          names.begin() + static_cast<std::ptrdiff_t>(m))
        throw validation_error("hash ring: member name '" + names[m] + "' is given twice");
      for (std::size_t v = 0; v < virtual_nodes; ++v)
        points_.emplace_back(point_of(names[m], v), m);
    }
    std::sort(points_.begin(), points_.end());
  }

  /// The index (into the names given) of the member owning `key`: the first point at or after the key's hash.
  /// O(log(members * virtual_nodes)).
  [[nodiscard]] std::size_t owner(std::string_view key) const noexcept {
    const auto h = mix64(fnv1a64(key));
    auto it = std::lower_bound(points_.begin(), points_.end(), std::pair<std::uint64_t, std::size_t>{h, 0});
    if (it == points_.end()) it = points_.begin();
    return it->second;
  }

 private:
  static std::uint64_t point_of(const std::string& name, std::size_t v) noexcept {
    return mix64(fnv1a64(std::to_string(v), fnv1a64("#", fnv1a64(name))));
  }

  std::vector<std::pair<std::uint64_t, std::size_t>> points_;  // sorted by hash
};

}  // namespace engram::inline v0::detail
