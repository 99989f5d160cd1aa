#pragma once
/// @file index/flat.hpp
/// Exact (brute-force) vector search over per-scope partitions.

#include <engram/detail/aligned_allocator.hpp>
#include <engram/index/row_scan.hpp>
#include <engram/error.hpp>
#include <engram/index/bitmap.hpp>
#include <engram/index/executor.hpp>
#include <engram/index/merged_topk.hpp>
#include <engram/index/topk.hpp>
#include <engram/simd/int8.hpp>
#include <engram/simd/rows.hpp>

#include <algorithm>  // std::copy_n, std::min, std::max
#include <array>
#include <bit>  // std::countr_zero, std::popcount
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>  // std::forward
#include <vector>

namespace engram::inline v0 {

/// Options of flat_index.
struct flat_index_options {
  /// Also keep an int8 code of every row (per-vector scale; +25% memory at d = 384) for search_int8().
  bool int8_codes = false;
  /// Where one query's scan runs (default: the calling thread). Must outlive the index's searches.
  executor_ref executor{};
  /// A scan is split over the executor only when each part gets at least this many bytes of rows (its cost
  /// must pay for handing it to another thread); smaller scans stay on the calling thread.
  std::size_t parallel_min_bytes = std::size_t{2} << 20;
};

/// Exact cosine search. Vectors are stored L2-normalised (so cosine is a dot product), each row padded to a
/// multiple of 16 floats inside one 64-byte-aligned contiguous block per partition. A removed row is filled by
/// the partition's last row, so add, update and remove are O(dimension) and partitions stay dense.
///
/// Scores are SIMD dot products (simd/rows.hpp) computed the same way by every search path, so search(),
/// search_batch() and the sparse candidate path return bit-identical scores and therefore identical hits.
///
/// One search splits its rows over options().executor when the scan is large (parallel_min_bytes per part):
/// each part keeps its own top k and the parts are merged, so the hits equal the serial scan's exactly.
///
/// Thread-safety: const members may run concurrently; mutations need exclusive access (basic_memory
/// provides it).
class flat_index {
 public:
  /// Floats per row are rounded up to this multiple (64 bytes).
  static constexpr std::size_t row_align = 16;
  static_assert(row_align % simd::batch_width == 0 && simd::batch_width <= 32,
                "rows must pad to whole SIMD batches and a group mask fits 32 bits");

  explicit flat_index(std::size_t dimension, flat_index_options options = {})
      : dim_(dimension),
        stride_(round_up(dimension)),
        code_stride_((dimension + simd::int8_align - 1) / simd::int8_align * simd::int8_align),
        int8_(options.int8_codes),
        executor_(options.executor),
        parallel_min_bytes_(std::max<std::size_t>(options.parallel_min_bytes, 1)) {
    if (dimension == 0) throw validation_error("flat_index: dimension must be at least 1");
  }

  [[nodiscard]] std::size_t dimension() const noexcept { return dim_; }
  /// Floats per stored row (dimension() rounded up to row_align).
  [[nodiscard]] std::size_t stride() const noexcept { return stride_; }
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
    if (int8_) {
      p.codes.resize(p.codes.size() + code_stride_, 0);
      p.scale.push_back(0.0f);
      p.code_sum.push_back(0);
    }
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
      if (int8_) {
        std::copy_n(p.codes.begin() + std::ptrdiff_t(last * code_stride_), code_stride_,
                    p.codes.begin() + std::ptrdiff_t(loc.row * code_stride_));
        p.scale[loc.row] = p.scale[last];
        p.code_sum[loc.row] = p.code_sum[last];
      }
    }
    p.slots.pop_back();
    p.rows.resize(p.rows.size() - stride_);
    if (int8_) {
      p.codes.resize(p.codes.size() - code_stride_);
      p.scale.pop_back();
      p.code_sum.pop_back();
    }
    where_[slot] = location{};
    --size_;
  }

  /// Makes room for `rows` vectors in `partition` (bulk loading: one allocation instead of repeated growth).
  void reserve(partition_id partition, std::size_t rows) {
    if (partition >= parts_.size()) parts_.resize(std::size_t{partition} + 1);
    auto& p = parts_[partition];
    p.rows.reserve(rows * stride_);
    p.slots.reserve(rows);
    if (int8_) {
      p.codes.reserve(rows * code_stride_);
      p.scale.reserve(rows);
      p.code_sum.reserve(rows);
    }
  }

  /// Runs later searches on `executor` (which must outlive them). Needs exclusive access, like a mutation.
  void set_executor(executor_ref executor) noexcept { executor_ = executor; }

  /// Removes everything.
  void clear() noexcept {
    parts_.clear();
    where_.clear();
    size_ = 0;
  }

  /// A candidate bitmap with at most (rows of the searched partitions) / sparse_divisor set slots is visited
  /// slot by slot (slot -> row lookups); a denser one is applied as a mask during the sequential scan.
  static constexpr std::size_t sparse_divisor = 4;

  /// The k vectors of `partitions` closest to `query` by cosine, best first (ties: lower slot first).
  /// @param candidates when given, only these slots may be returned.
  /// @throws dimension_mismatch when the query's size differs from dimension().
  /// Complexity: O(rows of `partitions` x dimension), or O(set candidates x dimension + slots / 64) when the
  /// candidates are sparse; plus O(log k) per hit that enters the top k.
  [[nodiscard]] std::vector<index_hit> search(std::span<const float> query, std::size_t k,
                                              std::span<const partition_id> partitions,
                                              const slot_bitmap* candidates = nullptr) const {
    check_dimension(query.size(), "flat_index::search");
    if (k == 0) return {};
    const auto q = normalized(query);
    if (candidates && is_sparse(*candidates, partitions)) return search_sparse(q.data(), k, partitions, *candidates);
    // the rows to scan, as one sequence over the partitions in order, cut into equal parts
    const std::size_t rows = rows_of(partitions);
    const std::size_t tasks = parallel_parts(rows);
    return merged(k, tasks, [&](std::size_t t, topk& best) {
      for_part(partitions, rows, tasks, t, [&](const partition_data& p, std::size_t begin, std::size_t end) {
        scan_partition(q.data(), p, begin, end, candidates, best);
      });
    });
  }

  /// search() for `count` queries stored one after the other in `queries` (count x dimension() floats).
  /// result[i] equals search(query i, k, partitions, candidates). Rows are read once per block of queries
  /// and each row batch feeds several queries (register blocking), so it is compute-bound, not memory-bound.
  /// Large batches are cut into parts of queries over options().executor.
  /// @throws dimension_mismatch when queries.size() != count * dimension().
  [[nodiscard]] std::vector<std::vector<index_hit>> search_batch(std::span<const float> queries, std::size_t count,
                                                                 std::size_t k,
                                                                 std::span<const partition_id> partitions,
                                                                 const slot_bitmap* candidates = nullptr) const {
    if (queries.size() != count * dim_)
      throw dimension_mismatch(count * dim_, queries.size(), "flat_index::search_batch (count x dimension floats)");
    std::vector<std::vector<index_hit>> out(count);
    if (k == 0 || count == 0) return out;
    if (candidates && is_sparse(*candidates, partitions)) {
      for (std::size_t i = 0; i < count; ++i) out[i] = search(queries.subspan(i * dim_, dim_), k, partitions, candidates);
      return out;
    }
    std::vector<float, detail::aligned_allocator<float>> qs(count * stride_);
    for (std::size_t i = 0; i < count; ++i) {
      const auto n = normalized(queries.subspan(i * dim_, dim_));
      std::copy(n.begin(), n.end(), qs.begin() + std::ptrdiff_t(i * stride_));
    }
    std::vector<topk> best(count, topk(k));
    constexpr std::size_t W = simd::batch_width;
    constexpr std::size_t tile = 6;     // queries per register block
    constexpr std::size_t block = 240;  // queries per cache block (240 x 1.5 KB at d = 384 stays in L2)
    // the queries are cut into parts (whole tiles) over the executor; each row is read once per tile
    const std::size_t tiles = (count + tile - 1) / tile;
    const std::size_t tasks = std::min(tiles, parallel_parts(rows_of(partitions) * tiles));
    auto run = [&](std::size_t task) {
      const std::size_t q0 = std::min(count, tiles * task / tasks * tile);
      const std::size_t q1 = std::min(count, tiles * (task + 1) / tasks * tile);
      std::array<simd::float_batch, tile> scores;
      for (std::size_t b0 = q0; b0 < q1; b0 += block) {
        const std::size_t b1 = std::min(q1, b0 + block);
        for_each_group(partitions, candidates, [&](const partition_data& p, std::size_t g, std::size_t cnt, std::uint32_t mask) {
          const float* rows = p.rows.data() + g * stride_;
          std::size_t i = b0;
          if (cnt == W) {
            for (; i + tile <= b1; i += tile) {
              std::array<const float*, tile> qp;
              for (std::size_t t = 0; t < tile; ++t) qp[t] = qs.data() + (i + t) * stride_;
              simd::dot_group_multi<tile>(qp.data(), rows, stride_, scores.data());
              for (std::size_t t = 0; t < tile; ++t) push_group(p, g, mask, scores[t], best[i + t]);
            }
          }
          for (; i < b1; ++i)
            push_group(p, g, mask, simd::dot_group(qs.data() + i * stride_, rows, cnt, stride_), best[i]);
        });
      }
    };
    if (tasks <= 1)
      run(0);
    else
      executor_.bulk(tasks, run);
    for (std::size_t i = 0; i < count; ++i) out[i] = best[i].take_sorted();
    return out;
  }

  /// Whether rows also carry int8 codes (flat_index_options::int8_codes).
  [[nodiscard]] bool has_int8_codes() const noexcept { return int8_; }

  /// Approximate search through the int8 codes, then an exact rescoring of the best `shortlist` rows
  /// (default max(8k, 64)) in float32. Returned scores are exact and equal search()'s bit for bit; the hits
  /// equal search()'s whenever the true top k are in the shortlist (recall@10 measured 1.0 at shortlist 50 on
  /// clustered 1M x 384 data, bench/int8.cpp). Reads a quarter of the bytes of search(). Sparse candidates
  /// are searched exactly, as by search(). The code scan is cut into parts over options().executor as
  /// search()'s is (parallel_min_bytes of codes per part); the shortlist, and so the hits, equal the serial scan's.
  /// @throws dimension_mismatch; validation_error when the index keeps no int8 codes.
  [[nodiscard]] std::vector<index_hit> search_int8(std::span<const float> query, std::size_t k,
                                                   std::span<const partition_id> partitions,
                                                   const slot_bitmap* candidates = nullptr,
                                                   std::size_t shortlist = 0) const {
    check_dimension(query.size(), "flat_index::search_int8");
    if (!int8_)
      throw validation_error("flat_index::search_int8: the index keeps no int8 codes (set flat_index_options::int8_codes)");
    if (k == 0) return {};
    if (candidates && is_sparse(*candidates, partitions)) return search(query, k, partitions, candidates);
    const auto q = normalized(query);
    std::vector<std::int8_t, detail::aligned_allocator<std::int8_t>> qc(code_stride_, 0);
    (void)simd::quantize_int8(q.data(), dim_, qc.data());
    std::vector<std::uint8_t, detail::aligned_allocator<std::uint8_t>> qu(code_stride_);
    for (std::size_t i = 0; i < code_stride_; ++i) qu[i] = static_cast<std::uint8_t>(qc[i] + 128);
    // approximate score, up to the query's positive scale: scale_row * (sum (qc + 128) * c - 128 * sum c)
    // the code scan, in parts over the executor like search(); the merged shortlist is the serial one
    const std::size_t rows = rows_of(partitions);
    const std::size_t tasks = parallel_parts(rows, code_stride_);
    const auto listed = merged(std::max({shortlist, 8 * k, std::size_t{64}}), tasks, [&](std::size_t t, topk& approx) {
      for_part(partitions, rows, tasks, t, [&](const partition_data& part, std::size_t begin, std::size_t end) {
        for_each_group(part, begin, end, candidates, [&](const partition_data& p, std::size_t g, std::size_t,
                                                         std::uint32_t mask) {
          const float thr = approx.threshold();
          while (mask) {
            const auto r = g + static_cast<std::size_t>(std::countr_zero(mask));
            mask &= mask - 1;
            const std::int32_t dot = simd::dot_u8s8(qu.data(), p.codes.data() + r * code_stride_, code_stride_);
            const float s = p.scale[r] * static_cast<float>(dot - 128 * p.code_sum[r]);
            if (s >= thr) approx.push(p.slots[r], s);
          }
        });
      });
    });
    // exact rescoring, with the kernel search() uses
    topk best(k);
    detail::gathered_scorer exact(q.data(), stride_, best);
    for (const auto& h : listed) {
      const auto loc = where_[h.slot];
      exact.offer(parts_[loc.partition].rows.data() + std::size_t{loc.row} * stride_, h.slot);
    }
    (void)exact.finish();
    return best.take_sorted();
  }

 private:
  struct partition_data {
    std::vector<float, detail::aligned_allocator<float>> rows;  // slots.size() rows of stride_ floats
    std::vector<slot_id> slots;                                   // row -> slot
    std::vector<std::int8_t, detail::aligned_allocator<std::int8_t>> codes;  // int8 rows of code_stride_ bytes
    std::vector<float> scale;                                                 // per row: value of one code step
    std::vector<std::int32_t> code_sum;                                       // per row: sum of its codes
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

  /// Whether `c` is sparse enough, relative to the rows of `partitions`, to visit slot by slot.
  bool is_sparse(const slot_bitmap& c, std::span<const partition_id> partitions) const noexcept {
    return c.count() * sparse_divisor <= rows_of(partitions);
  }

  /// Rows held by `partitions` (a partition named twice counts twice, as a scan reads it twice).
  std::size_t rows_of(std::span<const partition_id> partitions) const noexcept {
    std::size_t rows = 0;
    for (const partition_id pid : partitions)
      if (pid < parts_.size()) rows += parts_[pid].slots.size();
    return rows;
  }

  /// The mask of rows [0, cnt) of a group.
  static constexpr std::uint32_t all_rows(std::size_t cnt) noexcept {
    return cnt >= 32 ? ~std::uint32_t{0} : (std::uint32_t{1} << cnt) - 1;
  }

  /// The rows of a group to read for the candidates in `mask`: all of them when at least half are candidates
  /// (one sequential stream is faster than skipping rows: 50% random candidates over 1M x 384 took 73 ms read
  /// whole against 85-97 ms row by row, bench/scale.cpp), else only the candidates.
  static std::uint32_t read_mask(std::uint32_t mask, std::size_t cnt) noexcept {
    return 2 * static_cast<std::size_t>(std::popcount(mask)) >= cnt ? all_rows(cnt) : mask;
  }

  /// Bit r set when row g + r (r < cnt) may be returned.
  static std::uint32_t group_mask(const partition_data& p, std::size_t g, std::size_t cnt,
                                  const slot_bitmap* candidates) noexcept {
    if (!candidates) return all_rows(cnt);
    std::uint32_t mask = 0;
    for (std::size_t r = 0; r < cnt; ++r) mask |= std::uint32_t{candidates->test(p.slots[g + r])} << r;
    return mask;
  }

  /// Offers the rows of group g selected by `mask` to `best`; most groups fail the threshold test at once.
  static void push_group(const partition_data& p, std::size_t g, std::uint32_t mask, const simd::float_batch& s,
                         topk& best) {
    if (!xsimd::any(s >= simd::float_batch(best.threshold()))) return;
    alignas(64) std::array<float, simd::batch_width> sc;
    s.store_aligned(sc.data());
    while (mask) {
      const auto r = static_cast<std::size_t>(std::countr_zero(mask));
      best.push(p.slots[g + r], sc[r]);
      mask &= mask - 1;
    }
  }

  /// How many parts a scan of `rows` rows of `row_bytes` each (default: the float rows) is cut into: 1 unless
  /// each part gets parallel_min_bytes.
  std::size_t parallel_parts(std::size_t rows, std::size_t row_bytes = 0) const {
    const std::size_t by_size = rows * (row_bytes ? row_bytes : stride_ * sizeof(float)) / parallel_min_bytes_;
    return std::max<std::size_t>(1, std::min(executor_.concurrency(), by_size));
  }

  /// Calls f(p, begin, end) for the rows [begin, end) of each partition that part t of `tasks` equal parts
  /// covers, the rows of `partitions` (`rows` in all) taken as one sequence in order.
  template <class F>
  void for_part(std::span<const partition_id> partitions, std::size_t rows, std::size_t tasks, std::size_t t,
                F&& f) const {
    const std::size_t begin = part_begin(rows, tasks, t), end = part_begin(rows, tasks, t + 1);
    std::size_t offset = 0;  // of the partition's first row in the sequence
    for (const partition_id pid : partitions) {
      if (pid >= parts_.size()) continue;
      const auto& p = parts_[pid];
      const std::size_t n = p.slots.size();
      if (offset < end && begin < offset + n)
        f(p, std::max(begin, offset) - offset, std::min(end, offset + n) - offset);
      offset += n;
    }
  }

  /// First row of part t of `parts` equal parts of [0, rows), on a group boundary (part `parts` begins at rows).
  static std::size_t part_begin(std::size_t rows, std::size_t parts, std::size_t t) noexcept {
    constexpr std::size_t W = simd::batch_width;
    if (t >= parts) return rows;
    return std::min(rows, (rows / W) * t / parts * W);
  }

  /// Runs scan(t, best) for t < tasks over the executor and merges their top k (detail::merged_topk).
  template <class Scan>
  std::vector<index_hit> merged(std::size_t k, std::size_t tasks, Scan&& scan) const {
    return detail::merged_topk(executor_, k, tasks, std::forward<Scan>(scan));
  }

  /// Calls f(p, g, cnt, mask) for each group (rows g .. g+cnt-1, cnt <= batch_width) of rows [begin, end) of
  /// `p` that holds a candidate; bit r of `mask` is set when row g + r may be returned.
  template <class F>
  static void for_each_group(const partition_data& p, std::size_t begin, std::size_t end, const slot_bitmap* candidates,
                             F&& f) {
    constexpr std::size_t W = simd::batch_width;
    for (std::size_t g = begin; g < end; g += W) {
      const std::size_t cnt = std::min(W, end - g);
      const std::uint32_t mask = group_mask(p, g, cnt, candidates);
      if (mask != 0) f(p, g, cnt, mask);
    }
  }
  /// for_each_group() over every row of `partitions`.
  template <class F>
  void for_each_group(std::span<const partition_id> partitions, const slot_bitmap* candidates, F&& f) const {
    for (const partition_id pid : partitions)
      if (pid < parts_.size()) for_each_group(parts_[pid], 0, parts_[pid].slots.size(), candidates, f);
  }

  /// Rows [begin, end) of `p` into `best`; a group's rows outside the candidates are not read.
  void scan_partition(const float* q, const partition_data& p, std::size_t begin, std::size_t end,
                      const slot_bitmap* candidates, topk& best) const {
    for_each_group(p, begin, end, candidates, [&](const partition_data&, std::size_t g, std::size_t cnt, std::uint32_t mask) {
      const float* rows = p.rows.data() + g * stride_;
      const auto s = (simd::interleaved_groups && cnt == simd::batch_width)
                         ? simd::dot_group_interleaved(q, rows, stride_)
                         : simd::dot_group_masked(q, rows, read_mask(mask, cnt), stride_);
      push_group(p, g, mask, s, best);
    });
  }

  /// The sparse path: candidates visited slot by slot, the slot range cut into parts over the executor.
  std::vector<index_hit> search_sparse(const float* q, std::size_t k, std::span<const partition_id> partitions,
                                       const slot_bitmap& candidates) const {
    std::vector<unsigned char> wanted(parts_.size(), 0);
    for (const partition_id pid : partitions)
      if (pid < parts_.size()) wanted[pid] = 1;
    const auto row_of = [&](slot_id s) -> const float* {
      if (s >= where_.size()) return nullptr;
      const auto loc = where_[s];
      if (!loc.used || !wanted[loc.partition]) return nullptr;
      return parts_[loc.partition].rows.data() + std::size_t{loc.row} * stride_;
    };
    const std::size_t slots = where_.size(), tasks = parallel_parts(candidates.count());
    return merged(k, tasks, [&](std::size_t t, topk& best) {
      detail::scan_candidates(q, stride_, candidates, row_of, best, slots * t / tasks, slots * (t + 1) / tasks);
    });
  }

  /// Writes `v` scaled to unit length (zero stays zero) to dst[0, dim_) and zeros to the padding up to stride_.
  void normalize_into(float* dst, std::span<const float> v) const noexcept { detail::normalize_row(dst, v, stride_); }

  std::vector<float, detail::aligned_allocator<float>> normalized(std::span<const float> v) const {
    std::vector<float, detail::aligned_allocator<float>> out(stride_);
    normalize_into(out.data(), v);
    return out;
  }

  /// Writes `v`, L2-normalised, into the row in place (no temporary: bulk loading writes a million rows).
  void write_row(partition_data& p, std::uint32_t row, std::span<const float> v) const {
    float* dst = p.rows.data() + std::size_t{row} * stride_;
    normalize_into(dst, v);
    if (int8_) {
      const auto q = simd::quantize_int8(dst, dim_, p.codes.data() + std::size_t{row} * code_stride_);
      p.scale[row] = q.scale;
      p.code_sum[row] = q.code_sum;
    }
  }

  std::size_t dim_;
  std::size_t stride_;
  std::size_t code_stride_;
  bool int8_;
  executor_ref executor_;
  std::size_t parallel_min_bytes_;
  std::size_t size_ = 0;
  std::vector<partition_data> parts_;  // indexed by partition id
  std::vector<location> where_;        // indexed by slot id
};

}  // namespace engram::inline v0
