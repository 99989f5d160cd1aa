#pragma once
/// @file index/topk.hpp
/// Bounded top-k selection of (slot, score) pairs.

#include <engram/ids.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace engram::inline v0 {

/// Keeps the k best hits pushed into it. push() is O(1) when the hit cannot enter (the common case in a
/// large scan) and O(log k) otherwise.
class topk {
 public:
  explicit topk(std::size_t k) : k_(k) { heap_.reserve(k); }

  /// The score a new hit must beat to enter (−inf until k hits are held).
  [[nodiscard]] float threshold() const noexcept {
    return heap_.size() < k_ ? -std::numeric_limits<float>::infinity() : heap_.front().score;
  }

  void push(slot_id slot, float score) {
    if (k_ == 0) return;
    const index_hit h{slot, score};
    if (heap_.size() < k_) {
      heap_.push_back(h);
      std::push_heap(heap_.begin(), heap_.end(), better_hit);
    } else if (better_hit(h, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), better_hit);
      heap_.back() = h;
      std::push_heap(heap_.begin(), heap_.end(), better_hit);
    }
  }

  /// The hits, best first. Leaves the selector empty.
  [[nodiscard]] std::vector<index_hit> take_sorted() {
    std::sort_heap(heap_.begin(), heap_.end(), better_hit);
    return std::move(heap_);
  }

 private:
  std::size_t k_;
  std::vector<index_hit> heap_;  // a heap whose front is the worst kept hit
};

}  // namespace engram::inline v0
