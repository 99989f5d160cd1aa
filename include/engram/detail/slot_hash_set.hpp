#pragma once
/// @file detail/slot_hash_set.hpp
/// An open-addressing hash set of 32-bit slot numbers whose keys live in the caller's own arrays: the id index
/// of scope_catalog and of record_table, with no node or key copy per entry.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace engram::inline v0::detail {

/// An open-addressing (linear probing) set of slot numbers whose keys live elsewhere: the caller gives the
/// hash of the key it looks for and a predicate telling whether a slot holds that key. Each cell keeps 32
/// bits of its key's hash, so probing rarely touches the keys, and growing never recomputes a hash.
/// Erasing shifts the following cells back (no tombstones). Not thread-safe.
class slot_hash_set {
 public:
  using slot_id = std::uint32_t;
  static constexpr slot_id none = ~slot_id{0};

  /// Makes room for `n` entries without growing.
  void reserve(std::size_t n) {
    std::size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    if (cap > cells_.size()) rehash(cap);
  }

  /// The slot whose key `is_key` accepts among those hashed to `hash`, or `none`.
  template <class IsKey>
  [[nodiscard]] slot_id find(std::uint64_t hash, IsKey&& is_key) const {
    if (cells_.empty()) return none;
    const auto tag = fold(hash);
    for (std::size_t i = tag & mask_;; i = (i + 1) & mask_) {
      const auto& c = cells_[i];
      if (c.slot == none) return none;
      if (c.tag == tag && is_key(c.slot)) return c.slot;
    }
  }

  /// Adds `slot` with key hash `hash` (the caller guarantees that no slot with an equal key is present).
  void insert(std::uint64_t hash, slot_id slot) {
    if (2 * (size_ + 1) > cells_.size()) rehash(cells_.empty() ? 16 : 2 * cells_.size());
    place(cell{slot, fold(hash)});
    ++size_;
  }

  /// Removes `slot`, stored with key hash `hash`; a no-op when it is not there.
  void erase(std::uint64_t hash, slot_id slot) {
    if (cells_.empty()) return;
    std::size_t i = fold(hash) & mask_;
    while (cells_[i].slot != slot) {
      if (cells_[i].slot == none) return;
      i = (i + 1) & mask_;
    }
    // Backward shift: move later cells of the cluster into the hole unless that would put them before home.
    for (std::size_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {
      if (cells_[j].slot == none) break;
      const std::size_t home = cells_[j].tag & mask_;
      if (((j - home) & mask_) >= ((j - i) & mask_)) {
        cells_[i] = cells_[j];
        i = j;
      }
    }
    cells_[i] = cell{};
    --size_;
  }

  /// Replaces `from` (key hash `hash`) by `to` in place; `to` must have the same key.
  void replace(std::uint64_t hash, slot_id from, slot_id to) {
    if (cells_.empty()) return;
    for (std::size_t i = fold(hash) & mask_; cells_[i].slot != none; i = (i + 1) & mask_)
      if (cells_[i].slot == from) {
        cells_[i].slot = to;
        return;
      }
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  struct cell {
    slot_id slot = none;
    std::uint32_t tag = 0;
  };
  static std::uint32_t fold(std::uint64_t h) noexcept { return static_cast<std::uint32_t>(h ^ (h >> 32)); }

  void place(cell c) {
    std::size_t i = c.tag & mask_;
    while (cells_[i].slot != none) i = (i + 1) & mask_;
    cells_[i] = c;
  }
  void rehash(std::size_t cap) {
    std::vector<cell> old(cap);
    old.swap(cells_);
    mask_ = cap - 1;
    for (const auto& c : old)
      if (c.slot != none) place(c);
  }

  std::vector<cell> cells_;  // size 0 or a power of two
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace engram::inline v0::detail
