#pragma once
/// @file index/flat.hpp
/// Exact (brute-force) vector search over per-scope partitions.

#include <engram/detail/aligned_allocator.hpp>
#include <engram/error.hpp>
#include <engram/index/bitmap.hpp>
#include <engram/index/topk.hpp>
#include <engram/simd/scalar.hpp>

#include <algorithm>  // std::copy_n
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace engram::inline v0 {

/// Exact cosine search. Vectors are stored L2-normalised (so cosine is a dot product), each row padded to a
/// multiple of 16 floats inside one 64-byte-aligned contiguous block per partition. A removed row is filled by
/// the partition's last row, so add, update and remove are O(dimension) and partitions stay dense.
///
/// Thread-safety: const members may run concurrently; mutations need exclusive access (basic_memory
/// provides it).
class flat_index {
 public:
  /// Floats per row are rounded up to this multiple (64 bytes).
  static constexpr std::size_t row_align = 16;

  explicit flat_index(std::size_t dimension) : dim_(dimension), stride_(round_up(dimension)) {
    if (dimension == 0) throw validation_error("flat_index: dimension must be at least 1");
  }

  [[nodiscard]] std::size_t dimension() const noexcept { return dim_; }
  /// Number of vectors held.
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool contains(slot_id slot) const noexcept { return slot < where_.size() && where_[slot].used; }

  /// Adds `vector` as `slot` in `partition`. @throws dimension_mismatch, validation_error if the slot is taken.
  void add(slot_id slot, partition_id partition, std::span<const float> vector) {
    check_dimension(vector.size(), "flat_index::add");
    if (contains(slot)) throw validation_error("flat_index::add: slot " + std::to_string(slot) + " is in use");
    if (partition >= parts_.size()) parts_.resize(std::size_t{partition} + 1);
    auto& p = parts_[partition];
    const auto row = static_cast<std::uint32_t>(p.slots.size());
    p.rows.resize(p.rows.size() + stride_, 0.0f);
    p.slots.push_back(slot);
    write_row(p, row, vector);
    if (slot >= where_.size()) where_.resize(std::size_t{slot} + 1);
    where_[slot] = location{partition, row, true};
    ++size_;
  }

  /// Replaces the vector of `slot`. @throws dimension_mismatch, validation_error if the slot is absent.
  void update(slot_id slot, std::span<const float> vector) {
    check_dimension(vector.size(), "flat_index::update");
    if (!contains(slot)) throw validation_error("flat_index::update: no slot " + std::to_string(slot));
    const auto loc = where_[slot];
    write_row(parts_[loc.partition], loc.row, vector);
  }

  /// Removes `slot`; a no-op when absent.
  void remove(slot_id slot) noexcept {
    if (!contains(slot)) return;
    const auto loc = where_[slot];
    auto& p = parts_[loc.partition];
    const auto last = static_cast<std::uint32_t>(p.slots.size() - 1);
    if (loc.row != last) {
      std::copy_n(p.rows.begin() + std::ptrdiff_t(last * stride_), stride_,
                  p.rows.begin() + std::ptrdiff_t(loc.row * stride_));
      p.slots[loc.row] = p.slots[last];
      where_[p.slots[loc.row]].row = loc.row;
    }
    p.slots.pop_back();
    p.rows.resize(p.rows.size() - stride_);
    where_[slot] = location{};
    --size_;
  }

  /// Removes everything.
  void clear() noexcept {
    parts_.clear();
    where_.clear();
    size_ = 0;
  }

  /// The k vectors of `partitions` closest to `query` by cosine, best first (ties: lower slot first).
  /// @param candidates when given, only these slots may be returned.
  /// @throws dimension_mismatch when the query's size differs from dimension().
  [[nodiscard]] std::vector<index_hit> search(std::span<const float> query, std::size_t k,
                                              std::span<const partition_id> partitions,
                                              const slot_bitmap* candidates = nullptr) const {
    check_dimension(query.size(), "flat_index::search");
    topk best(k);
    if (k == 0) return {};
    const auto q = normalized(query);
    for (const partition_id pid : partitions) {
      if (pid >= parts_.size()) continue;
      const auto& p = parts_[pid];
      const float* row = p.rows.data();
      for (std::size_t r = 0; r < p.slots.size(); ++r, row += stride_) {
        if (candidates && !candidates->test(p.slots[r])) continue;
        best.push(p.slots[r], simd::dot_scalar(q.data(), row, dim_));
      }
    }
    return best.take_sorted();
  }

 private:
  struct partition_data {
    std::vector<float, detail::aligned_allocator<float>> rows;  // slots.size() rows of stride_ floats
    std::vector<slot_id> slots;                                   // row -> slot
  };
  struct location {
    partition_id partition = 0;
    std::uint32_t row = 0;
    bool used = false;
  };

  static constexpr std::size_t round_up(std::size_t d) noexcept { return (d + row_align - 1) / row_align * row_align; }

  void check_dimension(std::size_t got, const char* where) const {
    if (got != dim_) throw dimension_mismatch(dim_, got, where);
  }

  std::vector<float, detail::aligned_allocator<float>> normalized(std::span<const float> v) const {
    std::vector<float, detail::aligned_allocator<float>> out(stride_, 0.0f);
    double sum = 0.0;
    for (const float x : v) sum += double(x) * double(x);
    const float inv = sum > 0.0 ? static_cast<float>(1.0 / std::sqrt(sum)) : 0.0f;
    for (std::size_t i = 0; i < dim_; ++i) out[i] = v[i] * inv;
    return out;
  }

  void write_row(partition_data& p, std::uint32_t row, std::span<const float> v) const {
    const auto n = normalized(v);
    std::copy(n.begin(), n.end(), p.rows.begin() + std::ptrdiff_t(std::size_t{row} * stride_));
  }

  std::size_t dim_;
  std::size_t stride_;
  std::size_t size_ = 0;
  std::vector<partition_data> parts_;  // indexed by partition id
  std::vector<location> where_;        // indexed by slot id
};

}  // namespace engram::inline v0
