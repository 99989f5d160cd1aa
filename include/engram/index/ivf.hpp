#pragma once
/// @file index/ivf.hpp
/// Approximate vector search with inverted lists (IVF), one coarse quantiser per scope partition.

#include <engram/detail/aligned_allocator.hpp>
#include <engram/error.hpp>
#include <engram/index/bitmap.hpp>
#include <engram/index/kmeans.hpp>
#include <engram/index/topk.hpp>
#include <engram/simd/rows.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>  // std::memcpy
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace engram::inline v0 {

/// Options of ivf_index. Every member has a default, so designated initialisers may name any subset.
struct ivf_index_options {
  /// Inverted lists per trained partition (fewer when the partition holds < nlist * min_per_list vectors).
  std::size_t nlist = 1024;
  /// Lists probed per partition by search() (search()'s `nprobe` argument overrides it).
  std::size_t nprobe = 16;
  /// A partition trains itself when an add brings it to this many vectors; below it, it is searched exactly.
  std::size_t train_threshold = 65536;
  /// At most this many vectors (a fixed-seed sample) train the k-means.
  std::size_t max_train = 65536;
  /// Vectors per list the training wants at least: nlist_used = min(nlist, max(1, size / min_per_list)).
  std::size_t min_per_list = 32;
  /// k-means rounds.
  std::size_t iterations = 10;
  /// Seed of the training sample and of the k-means initialisation.
  std::uint64_t seed = 0x5eed;
  /// A trained partition retrains when it has grown to this multiple of its size at the last training, or
  /// when its imbalance factor exceeds max_imbalance after growing by 10%. 0 disables both.
  double retrain_growth = 2.0;
  /// Bound on the imbalance factor (nlist * sum of squared list sizes / size^2; 1.0 = perfectly even).
  double max_imbalance = 4.0;
};

/// Cosine search through inverted lists. Each partition (scope) is independent: below
/// `train_threshold` vectors it is one flat list searched exactly; at the threshold it trains a spherical
/// k-means quantiser on a sample of at most `max_train` of its vectors and moves every vector to the list of
/// its nearest centroid. A search probes, in each searched partition, the `nprobe` lists whose centroids are
/// closest to the query and scans their rows (L2-normalised, padded to 16 floats, one 64-byte-aligned block
/// per list) with the SIMD kernels of flat_index, so scores equal flat_index's bit for bit and probing every
/// list returns exactly flat_index's hits.
///
/// Why one quantiser per partition rather than global lists tagged by partition: a search names its
/// partitions, and a probed global list would make a small scope pay for the rows of every other scope in
/// it; per-partition lists scan only the searched scope, small scopes stay exact, and a scope's centroids
/// follow its own data.
///
/// Filters: a candidate bitmap with at most as many slots as the rows an unfiltered search would scan (a quarter
/// of a partition scanned whole) is scored exactly, slot by slot (as flat_index does): that scores no more rows
/// than the probe would. A denser one restricts which rows score (only candidate rows are read, gathered as
/// flat_index's sparse path does), and a partition then probes lists in centroid order until it has probed
/// nprobe lists AND scored at least max(k, nprobe x mean list size) candidates: as many rows as an unfiltered
/// probe of nprobe lists scores, so a filter keeping a fraction f of the rows probes about nprobe / f lists
/// (the filtered top k lie as far out as the unfiltered top k / f) at about the scoring cost of an unfiltered
/// search plus one bit test per row of the extra lists. It continues through every list if needed, so k hits
/// are returned whenever k candidates exist.
///
/// Retraining happens inside the add() that crosses the growth or imbalance bound (see ivf_index_options),
/// synchronously: not in the background, the add that triggers it waits. Peak memory during a training: the
/// partition's rows plus its largest old list (so twice its rows when training from the flat list), plus the
/// sample (max_train x stride floats). A growth retraining follows a doubling of the partition, so its cost is
/// amortised over the adds since the last one, like a vector's reallocation.
///
/// Restart without k-means: save_snapshot() / load_snapshot() keep a partition's centroids and list of every
/// vector; the snapshot is installed only when the partition holds exactly the (slot, vector) pairs it was
/// taken from (a fingerprint of them is checked), so one that does not match the store is rejected, not trusted.
///
/// Thread-safety: const members may run concurrently; mutations need exclusive access (basic_memory
/// provides it).
class ivf_index {
 public:
  static constexpr std::size_t row_align = 16;
  static_assert(row_align % simd::batch_width == 0 && simd::batch_width <= 32);

  /// @throws validation_error when the dimension or an option is 0.
  explicit ivf_index(std::size_t dimension, ivf_index_options options = {})
      : dim_(dimension), stride_((dimension + row_align - 1) / row_align * row_align), opt_(options) {
    if (dimension == 0) throw validation_error("ivf_index: dimension must be at least 1");
    const auto positive = [](std::size_t v, const char* name) {
      if (v == 0) throw validation_error(std::string("ivf_index: option ") + name + " must be at least 1, got 0");
    };
    positive(opt_.nlist, "nlist");
    positive(opt_.nprobe, "nprobe");
    positive(opt_.train_threshold, "train_threshold");
    positive(opt_.max_train, "max_train");
    positive(opt_.min_per_list, "min_per_list");
    positive(opt_.iterations, "iterations");
  }

  [[nodiscard]] std::size_t dimension() const noexcept { return dim_; }
  [[nodiscard]] std::size_t stride() const noexcept { return stride_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] const ivf_index_options& options() const noexcept { return opt_; }
  [[nodiscard]] bool contains(slot_id slot) const noexcept { return slot < where_.size() && where_[slot].used; }

  /// Whether `partition` has a trained quantiser (false: it is searched exactly).
  [[nodiscard]] bool trained(partition_id partition) const noexcept {
    return partition < parts_.size() && !parts_[partition].centroids.empty();
  }
  /// Number of lists of `partition` (1 when untrained or absent).
  [[nodiscard]] std::size_t list_count(partition_id partition) const noexcept {
    return partition < parts_.size() ? std::max<std::size_t>(1, parts_[partition].lists.size()) : 1;
  }
  /// nlist x sum of squared list sizes / size^2 of `partition`: 1.0 when its lists are even.
  [[nodiscard]] double imbalance(partition_id partition) const noexcept {
    if (partition >= parts_.size() || parts_[partition].size == 0) return 1.0;
    const auto& p = parts_[partition];
    return double(p.lists.size()) * double(p.sum_sq) / (double(p.size) * double(p.size));
  }

  /// Adds `vector` as `slot` in `partition`: to its nearest list when the partition is trained (O(nlist x d)),
  /// else to the flat list; may then train or retrain the partition (see the class comment).
  /// @throws dimension_mismatch, validation_error if the slot is taken.
  void add(slot_id slot, partition_id partition, std::span<const float> vector) {
    check_dimension(vector.size(), "ivf_index::add");
    if (contains(slot)) throw validation_error("ivf_index::add: slot " + std::to_string(slot) + " is in use");
    if (partition >= parts_.size()) parts_.resize(std::size_t{partition} + 1);
    auto& p = parts_[partition];
    if (p.lists.empty()) p.lists.resize(1);
    const auto n = normalized(vector);
    const auto list = nearest_list(p, n.data());
    if (slot >= where_.size()) where_.resize(std::size_t{slot} + 1);
    append(p, partition, list, slot, n.data());
    ++size_;
    if (p.centroids.empty() ? p.size >= opt_.train_threshold : retrain_due(p)) train(partition);
  }

  /// Replaces the vector of `slot`, moving it to its new nearest list if that changed. O(nlist x d).
  /// @throws dimension_mismatch, validation_error if the slot is absent.
  void update(slot_id slot, std::span<const float> vector) {
    check_dimension(vector.size(), "ivf_index::update");
    if (!contains(slot)) throw validation_error("ivf_index::update: no slot " + std::to_string(slot));
    const auto loc = where_[slot];
    auto& p = parts_[loc.partition];
    const auto n = normalized(vector);
    const auto list = nearest_list(p, n.data());
    if (list == loc.list) {
      std::copy(n.begin(), n.end(), p.lists[list].rows.begin() + std::ptrdiff_t(std::size_t{loc.row} * stride_));
      return;
    }
    erase(p, loc);
    append(p, loc.partition, list, slot, n.data());
  }

  /// Removes `slot` (its list's last row fills the hole): O(d). A no-op when absent.
  void remove(slot_id slot) noexcept {
    if (!contains(slot)) return;
    const auto loc = where_[slot];
    erase(parts_[loc.partition], loc);
    where_[slot] = location{};
    --size_;
  }

  /// Removes everything, trained quantisers included.
  void clear() noexcept {
    parts_.clear();
    where_.clear();
    size_ = 0;
  }

  /// (Re)trains `partition` now: spherical k-means on a fixed-seed sample of at most max_train of its
  /// vectors into min(nlist, max(1, size / min_per_list), sample size) centroids, then every vector moves to
  /// the list of its nearest centroid. A no-op for an empty partition.
  /// Complexity O(iterations x max_train x nlist x d + size x nlist x d).
  void train(partition_id partition) {
    if (partition >= parts_.size() || parts_[partition].size == 0) return;
    auto& p = parts_[partition];
    const std::size_t n = p.size;
    const std::size_t m = std::min(n, opt_.max_train);
    const std::size_t k = std::min({opt_.nlist, std::max<std::size_t>(1, n / opt_.min_per_list), m});
    // the sample: m distinct positions of the concatenated lists (partial Fisher-Yates), in increasing order
    std::vector<std::uint32_t> pos(n);
    std::iota(pos.begin(), pos.end(), 0u);
    detail::kmeans_rng g{opt_.seed};
    for (std::size_t i = 0; i < m; ++i) std::swap(pos[i], pos[i + g.below(n - i)]);
    pos.resize(m);
    std::sort(pos.begin(), pos.end());
    std::vector<float> sample(m * stride_);
    {
      std::size_t list = 0, first = 0;  // p.lists[list] holds positions [first, first + its size)
      for (std::size_t i = 0; i < m; ++i) {
        while (pos[i] >= first + p.lists[list].slots.size()) first += p.lists[list++].slots.size();
        std::copy_n(p.lists[list].rows.begin() + std::ptrdiff_t((pos[i] - first) * stride_), stride_,
                    sample.begin() + std::ptrdiff_t(i * stride_));
      }
    }
    std::vector<std::uint32_t>().swap(pos);
    const auto cent = detail::spherical_kmeans(sample.data(), m, stride_, dim_, k, opt_.iterations, opt_.seed + 1);
    std::vector<float>().swap(sample);

    auto old = std::move(p.lists);
    p.lists.assign(k, list_data{});
    p.centroids.assign(k * stride_, 0.0f);
    for (std::size_t j = 0; j < k; ++j)
      std::copy_n(cent.begin() + std::ptrdiff_t(j * dim_), dim_, p.centroids.begin() + std::ptrdiff_t(j * stride_));
    p.size = 0;
    p.sum_sq = 0;
    std::vector<std::uint32_t> to;
    for (auto& l : old) {
      const std::size_t rows = l.slots.size();
      to.resize(rows);
      detail::assign_nearest(l.rows.data(), rows, stride_, p.centroids.data(), k, stride_, dim_, to.data());
      for (std::size_t r = 0; r < rows; ++r) append(p, partition, to[r], l.slots[r], l.rows.data() + r * stride_);
      list_data().rows.swap(l.rows);  // release the old list's memory as soon as it is moved
    }
    p.trained_size = p.size;
  }

  /// The trained state of `partition` as bytes: its centroids, each vector's list, and a fingerprint of its
  /// (slot, vector) content. Native byte order (restore on the same architecture). Empty when the partition
  /// is untrained or absent. O(size x d).
  [[nodiscard]] std::string save_snapshot(partition_id partition) const {
    if (!trained(partition)) return {};
    const auto& p = parts_[partition];
    std::string out(snapshot_magic);
    const auto put = [&out](const auto& v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); };
    put(std::uint64_t{dim_});
    put(std::uint64_t{p.lists.size()});
    put(std::uint64_t{p.size});
    put(fingerprint(p));
    for (std::size_t j = 0; j < p.lists.size(); ++j)
      out.append(reinterpret_cast<const char*>(p.centroids.data() + j * stride_), dim_ * sizeof(float));
    for (std::size_t j = 0; j < p.lists.size(); ++j)
      for (const slot_id s : p.lists[j].slots) {
        put(std::uint32_t{s});
        put(static_cast<std::uint32_t>(j));
      }
    return out;
  }

  /// Installs a save_snapshot() of `partition` taken when it held exactly the vectors it holds now (same
  /// slots, same vectors: checked by the fingerprint), without k-means or nearest-centroid search: O(size x d).
  /// Returns false and changes nothing when the snapshot is malformed or does not match (the caller then
  /// trains); vectors added since the snapshot, a changed vector or another dimension all make it not match.
  bool load_snapshot(partition_id partition, std::string_view bytes) {
    if (partition >= parts_.size() || parts_[partition].size == 0) return false;
    auto& p = parts_[partition];
    std::size_t at = snapshot_magic.size();
    if (bytes.size() < at || bytes.substr(0, at) != snapshot_magic) return false;
    const auto get = [&](auto& v) {
      if (bytes.size() - at < sizeof v) return false;
      std::memcpy(&v, bytes.data() + at, sizeof v);
      at += sizeof v;
      return true;
    };
    std::uint64_t dim = 0, nlist = 0, count = 0, print = 0;
    if (!get(dim) || !get(nlist) || !get(count) || !get(print)) return false;
    if (dim != dim_ || nlist == 0 || nlist > p.size || count != p.size) return false;
    if ((bytes.size() - at) != nlist * dim_ * sizeof(float) + count * 2 * sizeof(std::uint32_t)) return false;
    if (print != fingerprint(p)) return false;
    std::vector<float, detail::aligned_allocator<float>> cent(nlist * stride_, 0.0f);
    for (std::size_t j = 0; j < nlist; ++j) {
      std::memcpy(cent.data() + j * stride_, bytes.data() + at, dim_ * sizeof(float));
      at += dim_ * sizeof(float);
    }
    std::vector<std::uint32_t> list_of(count);
    std::vector<slot_id> order(count);
    std::vector<unsigned char> seen(where_.size(), 0);
    for (std::size_t i = 0; i < count; ++i) {
      std::uint32_t s = 0, l = 0;
      (void)get(s);
      (void)get(l);
      if (l >= nlist || s >= where_.size() || !where_[s].used || where_[s].partition != partition || seen[s])
        return false;
      seen[s] = 1;
      order[i] = s;
      list_of[i] = l;
    }
    // validated: move every row to its recorded list, in the recorded order
    auto old = std::move(p.lists);
    p.lists.assign(nlist, list_data{});
    p.centroids = std::move(cent);
    p.size = 0;
    p.sum_sq = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const auto loc = where_[order[i]];
      append(p, partition, list_of[i], order[i], old[loc.list].rows.data() + std::size_t{loc.row} * stride_);
    }
    p.trained_size = p.size;
    return true;
  }

  /// The k vectors of `partitions` closest to `query` by cosine, best first (ties: lower slot first),
  /// probing options().nprobe lists per trained partition. Same contract as flat_index::search.
  /// @throws dimension_mismatch when the query's size differs from dimension().
  [[nodiscard]] std::vector<index_hit> search(std::span<const float> query, std::size_t k,
                                              std::span<const partition_id> partitions,
                                              const slot_bitmap* candidates = nullptr) const {
    return search(query, k, partitions, candidates, opt_.nprobe);
  }

  /// search() probing `nprobe` lists per trained partition (0: options().nprobe; >= nlist: exact).
  /// Complexity O(nlist x d + rows of the probed lists x d) per partition; see the class comment for filters.
  [[nodiscard]] std::vector<index_hit> search(std::span<const float> query, std::size_t k,
                                              std::span<const partition_id> partitions,
                                              const slot_bitmap* candidates, std::size_t nprobe) const {
    check_dimension(query.size(), "ivf_index::search");
    if (k == 0) return {};
    if (nprobe == 0) nprobe = opt_.nprobe;
    topk best(k);
    const auto q = normalized(query);
    std::size_t probed_rows = 0;  // rows an unfiltered probe would scan
    for (const partition_id pid : partitions) {
      if (pid >= parts_.size()) continue;
      const auto& p = parts_[pid];
      // a partition scanned whole: slot by slot pays below a quarter of its rows (flat_index's rule)
      probed_rows += p.centroids.empty() || nprobe >= p.lists.size() ? p.size / 4 : nprobe * p.size / p.lists.size();
    }
    if (candidates && candidates->count() <= probed_rows) {
      scan_sparse(q.data(), partitions, *candidates, best);
      return best.take_sorted();
    }
    for (const partition_id pid : partitions) {
      if (pid >= parts_.size()) continue;
      const auto& p = parts_[pid];
      if (p.centroids.empty() || nprobe >= p.lists.size()) {
        for (const auto& l : p.lists) scan_list(q.data(), l, candidates, best);
        continue;
      }
      const auto order = probe_order(p, q.data(), candidates ? p.lists.size() : nprobe);
      if (!candidates) {
        for (const auto& h : order) scan_list(q.data(), p.lists[h.slot], nullptr, best);
        continue;
      }
      const std::size_t want = std::max(k, nprobe * p.size / p.lists.size());
      std::size_t scored = 0, probed = 0;
      for (const auto& h : order) {
        if (probed >= nprobe && scored >= want) break;
        scored += scan_list(q.data(), p.lists[h.slot], candidates, best);
        ++probed;
      }
    }
    return best.take_sorted();
  }

 private:
  static constexpr std::string_view snapshot_magic{"engram-ivf-1\n"};

  struct list_data {
    std::vector<float, detail::aligned_allocator<float>> rows;  // slots.size() rows of stride_ floats
    std::vector<slot_id> slots;                                   // row -> slot
  };
  struct partition_data {
    std::vector<float, detail::aligned_allocator<float>> centroids;  // lists.size() x stride_; empty: untrained
    std::vector<list_data> lists;                                     // one list while untrained
    std::size_t size = 0;
    std::size_t sum_sq = 0;        // sum over lists of size^2
    std::size_t trained_size = 0;  // size after the last training
  };
  struct location {
    partition_id partition = 0;
    std::uint32_t list = 0;
    std::uint32_t row = 0;
    bool used = false;
  };

  /// Order-independent hash of the (slot, row) pairs of `p`.
  std::uint64_t fingerprint(const partition_data& p) const noexcept {
    std::uint64_t h = detail::mix64(std::uint64_t{dim_} ^ (std::uint64_t{p.size} << 32));
    for (const auto& l : p.lists)
      for (std::size_t r = 0; r < l.slots.size(); ++r) {
        std::uint64_t x = detail::mix64(std::uint64_t{l.slots[r]} + 1);
        const float* row = l.rows.data() + r * stride_;
        for (std::size_t i = 0; i < dim_; i += 2) {
          std::uint32_t a = 0, b = 0;
          std::memcpy(&a, row + i, sizeof a);
          if (i + 1 < dim_) std::memcpy(&b, row + i + 1, sizeof b);
          x = detail::mix64(x ^ ((std::uint64_t{b} << 32) | a));
        }
        h += x;
      }
    return h;
  }

  void check_dimension(std::size_t got, const char* where) const {
    if (got != dim_) throw dimension_mismatch(dim_, got, where);
  }

  bool retrain_due(const partition_data& p) const noexcept {
    if (opt_.retrain_growth <= 0.0) return false;
    if (double(p.size) >= opt_.retrain_growth * double(p.trained_size)) return true;
    return p.size * 10 >= p.trained_size * 11 &&
           double(p.lists.size()) * double(p.sum_sq) > opt_.max_imbalance * double(p.size) * double(p.size);
  }

  /// The list of the centroid with the largest dot product with the normalised `v` (0 when untrained).
  std::uint32_t nearest_list(const partition_data& p, const float* v) const {
    if (p.centroids.empty()) return 0;
    constexpr std::size_t W = simd::batch_width;
    const std::size_t n = p.lists.size();
    alignas(64) std::array<float, W> sc;
    std::uint32_t best = 0;
    float top = -std::numeric_limits<float>::infinity();
    for (std::size_t g = 0; g < n; g += W) {
      const std::size_t cnt = std::min(W, n - g);
      simd::dot_group(v, p.centroids.data() + g * stride_, cnt, stride_).store_aligned(sc.data());
      for (std::size_t r = 0; r < cnt; ++r)
        if (sc[r] > top) top = sc[r], best = static_cast<std::uint32_t>(g + r);
    }
    return best;
  }

  /// The `count` lists whose centroids score best against `q`, best first, as (list, score) hits.
  std::vector<index_hit> probe_order(const partition_data& p, const float* q, std::size_t count) const {
    constexpr std::size_t W = simd::batch_width;
    const std::size_t n = p.lists.size();
    topk best(std::min(count, n));
    alignas(64) std::array<float, W> sc;
    for (std::size_t g = 0; g < n; g += W) {
      const std::size_t cnt = std::min(W, n - g);
      simd::dot_group(q, p.centroids.data() + g * stride_, cnt, stride_).store_aligned(sc.data());
      for (std::size_t r = 0; r < cnt; ++r) best.push(static_cast<slot_id>(g + r), sc[r]);
    }
    return best.take_sorted();
  }

  void append(partition_data& p, partition_id pid, std::uint32_t list, slot_id slot, const float* row) {
    auto& l = p.lists[list];
    const auto r = static_cast<std::uint32_t>(l.slots.size());
    l.rows.insert(l.rows.end(), row, row + stride_);
    l.slots.push_back(slot);
    p.sum_sq += 2 * std::size_t{r} + 1;
    ++p.size;
    where_[slot] = location{pid, list, r, true};
  }

  void erase(partition_data& p, location loc) noexcept {
    auto& l = p.lists[loc.list];
    const auto last = static_cast<std::uint32_t>(l.slots.size() - 1);
    if (loc.row != last) {
      std::copy_n(l.rows.begin() + std::ptrdiff_t(std::size_t{last} * stride_), stride_,
                  l.rows.begin() + std::ptrdiff_t(std::size_t{loc.row} * stride_));
      l.slots[loc.row] = l.slots[last];
      where_[l.slots[loc.row]].row = loc.row;
    }
    l.slots.pop_back();
    l.rows.resize(l.rows.size() - stride_);
    p.sum_sq -= 2 * std::size_t{last} + 1;
    --p.size;
  }

  /// Scores the rows of `l` (those in `candidates` when given) into `best`; returns how many were scored.
  std::size_t scan_list(const float* q, const list_data& l, const slot_bitmap* candidates, topk& best) const {
    constexpr std::size_t W = simd::batch_width;
    const std::size_t n = l.slots.size();
    alignas(64) std::array<float, W> sc;
    if (!candidates) {
      for (std::size_t g = 0; g < n; g += W) {
        const std::size_t cnt = std::min(W, n - g);
        const auto s = simd::dot_group(q, l.rows.data() + g * stride_, cnt, stride_);
        if (!xsimd::any(s >= simd::float_batch(best.threshold()))) continue;
        s.store_aligned(sc.data());
        for (std::size_t r = 0; r < cnt; ++r) best.push(l.slots[g + r], sc[r]);
      }
      return n;
    }
    std::array<const float*, W> rows;
    std::array<slot_id, W> slots;
    std::size_t m = 0, scored = 0;
    const auto flush = [&] {
      const auto s = simd::dot_gathered(q, rows.data(), m, stride_);
      if (xsimd::any(s >= simd::float_batch(best.threshold()))) {
        s.store_aligned(sc.data());
        for (std::size_t r = 0; r < m; ++r) best.push(slots[r], sc[r]);
      }
      scored += m;
      m = 0;
    };
    for (std::size_t r = 0; r < n; ++r) {  // branch-free selection: most rows of a selective filter fail
      rows[m] = l.rows.data() + r * stride_;
      slots[m] = l.slots[r];
      m += candidates->test(l.slots[r]) ? 1 : 0;
      if (m == W) flush();
    }
    if (m) flush();
    return scored;
  }

  void scan_sparse(const float* q, std::span<const partition_id> partitions, const slot_bitmap& candidates,
                   topk& best) const {
    constexpr std::size_t W = simd::batch_width;
    std::vector<unsigned char> wanted(parts_.size(), 0);
    for (const partition_id pid : partitions)
      if (pid < parts_.size()) wanted[pid] = 1;
    std::array<const float*, W> rows;
    std::array<slot_id, W> slots;
    std::size_t n = 0;
    alignas(64) std::array<float, W> sc;
    const auto flush = [&] {
      const auto s = simd::dot_gathered(q, rows.data(), n, stride_);
      if (xsimd::any(s >= simd::float_batch(best.threshold()))) {
        s.store_aligned(sc.data());
        for (std::size_t r = 0; r < n; ++r) best.push(slots[r], sc[r]);
      }
      n = 0;
    };
    candidates.for_each([&](slot_id s) {
      if (s >= where_.size()) return;
      const auto loc = where_[s];
      if (!loc.used || !wanted[loc.partition]) return;
      rows[n] = parts_[loc.partition].lists[loc.list].rows.data() + std::size_t{loc.row} * stride_;
      slots[n] = s;
      if (++n == W) flush();
    });
    if (n) flush();
  }

  /// `v` scaled to unit length into a zero-padded row of stride_ floats (flat_index's normalisation, so
  /// scores agree bit for bit).
  std::vector<float, detail::aligned_allocator<float>> normalized(std::span<const float> v) const {
    std::vector<float, detail::aligned_allocator<float>> out(stride_, 0.0f);
    double sum = 0.0;
    for (const float x : v) sum += double(x) * double(x);
    const float inv = sum > 0.0 ? static_cast<float>(1.0 / std::sqrt(sum)) : 0.0f;
    for (std::size_t i = 0; i < dim_; ++i) out[i] = v[i] * inv;
    return out;
  }

  std::size_t dim_;
  std::size_t stride_;
  ivf_index_options opt_;
  std::size_t size_ = 0;
  std::vector<partition_data> parts_;  // indexed by partition id
  std::vector<location> where_;        // indexed by slot id
};

}  // namespace engram::inline v0
