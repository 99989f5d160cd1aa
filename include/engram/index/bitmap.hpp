#pragma once
/// @file index/bitmap.hpp
/// A set of slots as a bitmap: the candidate set a filter hands to an index search.

#include <engram/ids.hpp>

#include <algorithm>  // std::min
#include <bit>        // std::countr_zero
#include <cstddef>
#include <cstdint>
#include <vector>

namespace engram::inline v0 {

/// A dense bitmap over slot ids. Slots beyond the current size read as unset.
class slot_bitmap {
 public:
  slot_bitmap() = default;
  explicit slot_bitmap(std::size_t slots) : words_((slots + 63) / 64, 0) {}

  void set(slot_id s) {
    const std::size_t w = s / 64;
    if (w >= words_.size()) words_.resize(w + 1, 0);
    const std::uint64_t bit = std::uint64_t{1} << (s % 64);
    count_ += (words_[w] & bit) ? 0 : 1;
    words_[w] |= bit;
  }
  void reset(slot_id s) noexcept {
    const std::size_t w = s / 64;
    if (w >= words_.size()) return;
    const std::uint64_t bit = std::uint64_t{1} << (s % 64);
    count_ -= (words_[w] & bit) ? 1 : 0;
    words_[w] &= ~bit;
  }
  [[nodiscard]] bool test(slot_id s) const noexcept {
    const std::size_t w = s / 64;
    return w < words_.size() && ((words_[w] >> (s % 64)) & 1u);
  }
  /// Number of set slots.
  [[nodiscard]] std::size_t count() const noexcept { return count_; }
  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }

  /// Calls f(slot) for each set slot, in increasing order.
  template <class F>
  void for_each(F&& f) const {
    for_each_in(0, words_.size() * 64, f);
  }

  /// Calls f(slot) for each set slot in [first, last), in increasing order. O((last - first) / 64 + hits).
  template <class F>
  void for_each_in(std::size_t first, std::size_t last, F&& f) const {
    const std::size_t end = std::min(last, words_.size() * 64);
    for (std::size_t w = first / 64; w * 64 < end; ++w) {
      std::uint64_t bits = words_[w];
      if (w == first / 64) bits &= ~std::uint64_t{0} << (first % 64);
      if (end - w * 64 < 64) bits &= (std::uint64_t{1} << (end - w * 64)) - 1;
      while (bits) {
        const int b = std::countr_zero(bits);
        f(static_cast<slot_id>(w * 64 + static_cast<std::size_t>(b)));
        bits &= bits - 1;
      }
    }
  }

 private:
  std::vector<std::uint64_t> words_;
  std::size_t count_ = 0;
};

}  // namespace engram::inline v0
