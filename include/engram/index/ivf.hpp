#pragma once
/// @file index/ivf.hpp
/// Approximate vector search with inverted lists (IVF), one coarse quantiser per scope partition.

#include <engram/detail/aligned_allocator.hpp>
#include <engram/detail/crc32c.hpp>
#include <engram/detail/fnv.hpp>
#include <engram/index/row_scan.hpp>
#include <engram/error.hpp>
#include <engram/index/bitmap.hpp>
#include <engram/index/kmeans.hpp>
#include <engram/index/topk.hpp>
#include <engram/simd/rows.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>  // std::memcpy
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
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
  /// true: the trainings add() triggers run on a background thread while searches use the current lists;
  /// false: inside the add() that triggers them.
  bool background = true;
};

/// Counters of an ivf_index since it was built.
struct ivf_index_stats {
  std::size_t trainings = 0;           ///< k-means runs started (synchronous and background)
  std::size_t snapshots_loaded = 0;    ///< partitions restored from a snapshot without k-means
  std::size_t snapshots_rejected = 0;  ///< snapshots (or parts of one) refused as malformed or not matching
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
/// Training and retraining: the add() that brings a partition to train_threshold, or past the growth or
/// imbalance bound (see ivf_index_options), starts a training of that partition. It copies a fixed-seed
/// sample of at most max_train rows (inside that add: O(max_train x d)); with `background` set, a worker
/// thread then runs the k-means on the sample, assigns every row of the partition to the new centroids (it
/// copies the rows a few thousand slots at a time under a shared lock, so adds wait at most one chunk), and
/// finally, under the index's exclusive lock, replaces the partition's centroids and lists: the rows that
/// were added, updated or removed since the training started are taken out of the new lists and the live
/// ones placed by their current vectors (O(size + changed x nlist x d)), so no change made meanwhile is lost.
/// Until then, searches and changes use the old lists (or the exact flat list before the first training).
/// Given the same data and seed, a background training ends in exactly the lists a synchronous one builds.
/// Memory cost of a training, on top of the index: the sample (max_train x stride floats, freed after the
/// k-means) and a second copy of the partition's rows (size x (stride floats + a slot)) plus one slot per
/// change made meanwhile, until the swap frees the old lists; at 1M rows of d = 384 that is 1.5 GB + 100 MB.
/// One worker thread per index runs the trainings one at a time; wait_idle() waits for them; the destructor
/// cancels a running training (the k-means stops at its next round) and joins the worker. A growth
/// retraining follows a doubling of the partition, so its cost is amortised over the adds since the last one.
///
/// Restart without k-means: save_snapshot() / load_snapshot() keep a partition's centroids and list of every
/// vector; the snapshot is installed only when the partition holds exactly the (slot, vector) pairs it was
/// taken from (a fingerprint of them is checked), so one that does not match the store is rejected, not trusted.
/// save_snapshots() / load_snapshots() do the same for every trained partition at once, naming vectors by a
/// caller's key (a memory id) instead of a slot, so slots and partitions may be numbered differently after
/// a restart.
///
/// Thread-safety: const members may run concurrently with each other; mutations need exclusive access
/// against every other call (basic_memory provides it). The background worker synchronises with both
/// through the index's own reader-writer lock: searches take it shared, mutations and the swap exclusive.
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

  /// Takes over `other`'s vectors and quantisers. A training `other` was running is cancelled and started
  /// again here if still due. `other` is left empty.
  ivf_index(ivf_index&& other) : dim_(other.dim_), stride_(other.stride_), opt_(other.opt_) {
    other.stop_worker();
    std::unique_lock lock(other.mtx_);
    take(other);
  }
  ivf_index& operator=(ivf_index&& other) {
    if (this == &other) return *this;
    stop_worker();
    other.stop_worker();
    std::scoped_lock lock(mtx_, other.mtx_);
    dim_ = other.dim_;
    stride_ = other.stride_;
    opt_ = other.opt_;
    take(other);
    return *this;
  }
  ivf_index(const ivf_index&) = delete;
  ivf_index& operator=(const ivf_index&) = delete;

  /// Cancels a running training and joins the worker.
  ~ivf_index() { stop_worker(); }

  [[nodiscard]] std::size_t dimension() const noexcept { return dim_; }
  [[nodiscard]] std::size_t stride() const noexcept { return stride_; }
  [[nodiscard]] std::size_t size() const noexcept {
    const auto lock = read_lock();
    return size_;
  }
  [[nodiscard]] const ivf_index_options& options() const noexcept { return opt_; }
  [[nodiscard]] bool contains(slot_id slot) const noexcept {
    const auto lock = read_lock();
    return has(slot);
  }

  /// Whether `partition` has a trained quantiser (false: it is searched exactly).
  [[nodiscard]] bool trained(partition_id partition) const noexcept {
    const auto lock = read_lock();
    return partition < parts_.size() && !parts_[partition].centroids.empty();
  }
  /// Whether a training of `partition` has started and not yet been installed or cancelled.
  [[nodiscard]] bool training(partition_id partition) const noexcept {
    const auto lock = read_lock();
    return job_for(partition) != nullptr;
  }
  /// Number of lists of `partition` (1 when untrained or absent).
  [[nodiscard]] std::size_t list_count(partition_id partition) const noexcept {
    const auto lock = read_lock();
    return partition < parts_.size() ? std::max<std::size_t>(1, parts_[partition].lists.size()) : 1;
  }
  /// The slots of each list of `partition`, list by list, each in row order (empty when absent).
  [[nodiscard]] std::vector<std::vector<slot_id>> list_slots(partition_id partition) const {
    const auto lock = read_lock();
    std::vector<std::vector<slot_id>> out;
    if (partition < parts_.size())
      for (const auto& l : parts_[partition].lists) out.push_back(l.slots);
    return out;
  }
  /// nlist x sum of squared list sizes / size^2 of `partition`: 1.0 when its lists are even.
  [[nodiscard]] double imbalance(partition_id partition) const noexcept {
    const auto lock = read_lock();
    if (partition >= parts_.size() || parts_[partition].size == 0) return 1.0;
    const auto& p = parts_[partition];
    return double(p.lists.size()) * double(p.sum_sq) / (double(p.size) * double(p.size));
  }
  /// A number that changes whenever the content or the lists change (adds, updates, removes, trainings
  /// installed, snapshots loaded): a saved snapshot is still current while it has not changed.
  [[nodiscard]] std::uint64_t version() const noexcept {
    const auto lock = read_lock();
    return version_;
  }
  /// Counters since construction (trainings started, snapshots loaded and rejected).
  [[nodiscard]] ivf_index_stats stats() const noexcept {
    const auto lock = read_lock();
    auto s = stats_;
    s.trainings = trainings_.load(std::memory_order_relaxed);
    return s;
  }

  /// Blocks until no training is queued or running (every started training is installed or cancelled).
  /// Thread-safe; for tests, benchmarks and shutdown.
  void wait_idle() const {
    std::unique_lock lock(qmtx_);
    qcv_.wait(lock, [&] { return queue_.empty() && !busy_; });
  }

  /// true: add() starts no training (the partitions due are remembered); false: the due ones start now.
  /// For bulk loading before load_snapshots(), so a restart runs no k-means it would throw away.
  void hold_training(bool hold) {
    const auto lock = write_lock();
    held_ = hold;
    if (!hold)
      for (std::size_t pid = 0; pid < parts_.size(); ++pid) start_if_due(static_cast<partition_id>(pid));
  }

  /// Adds `vector` as `slot` in `partition`: to its nearest list when the partition is trained (O(nlist x d)),
  /// else to the flat list; may then start a training (see the class comment).
  /// @throws dimension_mismatch, validation_error if the slot is taken.
  void add(slot_id slot, partition_id partition, std::span<const float> vector) {
    check_dimension(vector.size(), "ivf_index::add");
    const auto n = normalized(vector);
    const auto lock = write_lock();
    if (has(slot)) throw validation_error("ivf_index::add: slot " + std::to_string(slot) + " is in use");
    if (partition >= parts_.size()) parts_.resize(std::size_t{partition} + 1);
    auto& p = parts_[partition];
    if (p.lists.empty()) p.lists.resize(1);
    const auto list = nearest_list(p, n.data());
    if (slot >= where_.size()) where_.resize(std::size_t{slot} + 1);
    append(p, partition, list, slot, n.data());
    ++size_;
    ++version_;
    journal(partition, slot);
    start_if_due(partition);
  }

  /// Replaces the vector of `slot`, moving it to its new nearest list if that changed. O(nlist x d).
  /// @throws dimension_mismatch, validation_error if the slot is absent.
  void update(slot_id slot, std::span<const float> vector) {
    check_dimension(vector.size(), "ivf_index::update");
    const auto n = normalized(vector);
    const auto lock = write_lock();
    if (!has(slot)) throw validation_error("ivf_index::update: no slot " + std::to_string(slot));
    const auto loc = where_[slot];
    auto& p = parts_[loc.partition];
    journal(loc.partition, slot);
    ++version_;
    const auto list = nearest_list(p, n.data());
    if (list == loc.list) {
      std::copy(n.begin(), n.end(), p.lists[list].rows.begin() + std::ptrdiff_t(std::size_t{loc.row} * stride_));
      return;
    }
    erase(p, loc);
    append(p, loc.partition, list, slot, n.data());
  }

  /// Removes `slot` (its list's last row fills the hole): O(d). A no-op when absent.
  void remove(slot_id slot) {
    const auto lock = write_lock();
    if (!has(slot)) return;
    const auto loc = where_[slot];
    journal(loc.partition, slot);
    ++version_;
    erase(parts_[loc.partition], loc);
    where_[slot] = location{};
    --size_;
  }

  /// Removes everything, trained quantisers included; cancels the trainings not yet installed.
  void clear() {
    const auto lock = write_lock();
    while (!jobs_.empty()) cancel(jobs_.back()->partition);
    parts_.clear();
    where_.clear();
    size_ = 0;
    ++version_;
  }

  /// (Re)trains `partition` now, in the calling thread (a training of it in progress is cancelled first):
  /// spherical k-means on a fixed-seed sample of at most max_train of its vectors into
  /// min(nlist, max(1, size / min_per_list), sample size) centroids, then every vector moves to the list of
  /// its nearest centroid. A no-op for an empty partition.
  /// Complexity O(iterations x max_train x nlist x d + size x nlist x d).
  void train(partition_id partition) {
    const auto lock = write_lock();
    cancel(partition);
    if (partition >= parts_.size() || parts_[partition].size == 0) return;
    auto j = prepare(partition);
    run_kmeans(*j);
    assign_rows(*j, false);
    install(*j);
  }

  /// The trained state of `partition` as bytes: its centroids, each vector's list, and a fingerprint of its
  /// (slot, vector) content. Native byte order (restore on the same architecture). Empty when the partition
  /// is untrained or absent. O(size x d).
  [[nodiscard]] std::string save_snapshot(partition_id partition) const {
    const auto lock = read_lock();
    return save_partition(partition, nullptr);
  }

  /// Installs a save_snapshot() of `partition` taken when it held exactly the vectors it holds now (same
  /// slots, same vectors: checked by the fingerprint), without k-means or nearest-centroid search: O(size x d).
  /// Returns false and changes nothing when the snapshot is malformed or does not match (the caller then
  /// trains); vectors added since the snapshot, a changed vector or another dimension all make it not match.
  /// A training of the partition in progress is cancelled when the snapshot is installed.
  bool load_snapshot(partition_id partition, std::string_view bytes) {
    const auto lock = write_lock();
    return load_partition(partition, bytes, nullptr);
  }

  /// Every trained partition's snapshot in one blob, each vector named by `key_of(slot)` (a memory id, say)
  /// instead of its slot. Partitions whose training is in progress are saved with their current lists.
  /// O(size x d) plus the keys' bytes.
  [[nodiscard]] std::string save_snapshots(const std::function<std::string(slot_id)>& key_of) const {
    const auto lock = read_lock();
    std::string out(set_magic);
    std::vector<std::string> parts;
    for (std::size_t pid = 0; pid < parts_.size(); ++pid) {
      auto s = save_partition(static_cast<partition_id>(pid), &key_of);
      if (!s.empty()) parts.push_back(std::move(s));
    }
    put(out, std::uint64_t{parts.size()});
    for (const auto& s : parts) {
      put(out, std::uint64_t{s.size()});
      out += s;
    }
    return out;
  }

  /// Installs the parts of a save_snapshots() blob that match: each part names its vectors by key;
  /// `slot_of(key)` gives the slot now holding that key (std::nullopt: none). A part is installed in the
  /// partition holding its vectors when that partition holds exactly them, with the same vectors; any other
  /// part (malformed, stale, or for a partition trained meanwhile) is rejected and counted in
  /// stats().snapshots_rejected, and its partition keeps its state (the caller's trainings rebuild it).
  /// @returns how many partitions were restored. O(size x d) plus one slot_of per vector.
  std::size_t load_snapshots(std::string_view bytes,
                             const std::function<std::optional<slot_id>(std::string_view)>& slot_of) {
    const auto lock = write_lock();
    std::size_t at = set_magic.size(), restored = 0;
    std::uint64_t count = 0;
    if (bytes.substr(0, at) != set_magic || !get(bytes, at, count)) {
      ++stats_.snapshots_rejected;
      return 0;
    }
    for (std::uint64_t i = 0; i < count; ++i) {
      std::uint64_t len = 0;
      if (!get(bytes, at, len) || bytes.size() - at < len) {
        ++stats_.snapshots_rejected;
        return restored;
      }
      restored += load_partition(std::nullopt, bytes.substr(at, len), &slot_of) ? 1 : 0;
      at += len;
    }
    return restored;
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
    const auto lock = read_lock();
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
  static constexpr std::string_view keyed_magic{"engram-ivf-keyed-1\n"};
  static constexpr std::string_view set_magic{"engram-ivf-set-1\n"};
  /// Slots per chunk a background training copies under the shared lock.
  static constexpr std::size_t chunk_slots = 8192;

  using float_vector = std::vector<float, detail::aligned_allocator<float>>;
  using key_function = std::function<std::string(slot_id)>;
  using slot_function = std::function<std::optional<slot_id>(std::string_view)>;

  struct list_data {
    float_vector rows;           // slots.size() rows of stride_ floats
    std::vector<slot_id> slots;  // row -> slot
  };
  struct partition_data {
    float_vector centroids;        // lists.size() x stride_; empty: untrained
    std::vector<list_data> lists;  // one list while untrained
    std::size_t size = 0;
    std::size_t sum_sq = 0;        // sum over lists of size^2
    std::size_t trained_size = 0;  // size after the last training
    bool due = false;              // a training was due while held_
  };
  struct location {
    partition_id partition = 0;
    std::uint32_t list = 0;
    std::uint32_t row = 0;
    bool used = false;
  };
  /// One training, from its sample to its installed lists.
  struct job {
    partition_id partition = 0;
    std::size_t k = 0;
    float_vector sample;              // m rows of stride_ floats, freed after the k-means
    std::size_t m = 0;
    float_vector centroids;           // k x stride_
    std::vector<list_data> lists;     // the partition's rows, assigned to the new centroids
    std::vector<slot_id> changed;     // slots of the partition changed since the sample (guarded by mtx_)
    std::atomic<bool> cancelled{false};
  };

  // ---- guarded by mtx_ (the caller's exclusive access is not enough: the worker reads and swaps) ----------

  /// mtx_ shared / exclusive, both through gate_: a writer holds the gate while it waits, so new readers
  /// queue behind it and a steady stream of searches cannot starve a swap (glibc's rwlock prefers readers).
  [[nodiscard]] std::shared_lock<std::shared_mutex> read_lock() const {
    std::lock_guard g(gate_);
    return std::shared_lock(mtx_);
  }
  [[nodiscard]] std::unique_lock<std::shared_mutex> write_lock() const {
    std::lock_guard g(gate_);
    return std::unique_lock(mtx_);
  }

  bool has(slot_id slot) const noexcept { return slot < where_.size() && where_[slot].used; }

  job* job_for(partition_id pid) const noexcept {
    for (const auto& j : jobs_)
      if (j->partition == pid) return j.get();
    return nullptr;
  }

  /// Records that `slot` of `pid` changed, for the training of `pid` in progress.
  void journal(partition_id pid, slot_id slot) {
    if (auto* j = job_for(pid)) j->changed.push_back(slot);
  }

  /// Cancels the training of `pid` that has not been installed (its worker discards its work).
  void cancel(partition_id pid) noexcept {
    for (auto it = jobs_.begin(); it != jobs_.end(); ++it)
      if ((*it)->partition == pid) {
        (*it)->cancelled.store(true, std::memory_order_relaxed);
        jobs_.erase(it);
        return;
      }
  }

  bool training_due(const partition_data& p) const noexcept {
    if (p.size == 0) return false;
    if (p.centroids.empty()) return p.size >= opt_.train_threshold;
    if (opt_.retrain_growth <= 0.0) return false;
    if (double(p.size) >= opt_.retrain_growth * double(p.trained_size)) return true;
    return p.size * 10 >= p.trained_size * 11 &&
           double(p.lists.size()) * double(p.sum_sq) > opt_.max_imbalance * double(p.size) * double(p.size);
  }

  /// Starts a training of `pid` when one is due and none is in progress: in the background or right here.
  void start_if_due(partition_id pid) {
    auto& p = parts_[pid];
    if (job_for(pid) || !(p.due || training_due(p))) return;
    if (held_) {
      p.due = true;
      return;
    }
    p.due = false;
    auto j = prepare(pid);
    if (!opt_.background) {
      run_kmeans(*j);
      assign_rows(*j, false);
      install(*j);
      return;
    }
    jobs_.push_back(j);
    {
      std::lock_guard q(qmtx_);
      if (!worker_.joinable()) {
        stopping_ = false;
        worker_ = std::thread([this] { work(); });
      }
      queue_.push_back(std::move(j));
    }
    qcv_.notify_all();
  }

  /// A new training of `pid` with its sample: m distinct positions of the concatenated lists drawn by a
  /// partial Fisher-Yates shuffle with the seed, in increasing order. O(size + max_train x d).
  std::shared_ptr<job> prepare(partition_id pid) {
    const auto& p = parts_[pid];
    auto j = std::make_shared<job>();
    j->partition = pid;
    const std::size_t n = p.size;
    j->m = std::min(n, opt_.max_train);
    j->k = std::min({opt_.nlist, std::max<std::size_t>(1, n / opt_.min_per_list), j->m});
    std::vector<std::uint32_t> pos(n);
    std::iota(pos.begin(), pos.end(), 0u);
    detail::kmeans_rng g{opt_.seed};
    for (std::size_t i = 0; i < j->m; ++i) std::swap(pos[i], pos[i + g.below(n - i)]);
    pos.resize(j->m);
    std::sort(pos.begin(), pos.end());
    j->sample.resize(j->m * stride_);
    std::size_t list = 0, first = 0;  // p.lists[list] holds positions [first, first + its size)
    for (std::size_t i = 0; i < j->m; ++i) {
      while (pos[i] >= first + p.lists[list].slots.size()) first += p.lists[list++].slots.size();
      std::copy_n(p.lists[list].rows.begin() + std::ptrdiff_t((pos[i] - first) * stride_), stride_,
                  j->sample.begin() + std::ptrdiff_t(i * stride_));
    }
    trainings_.fetch_add(1, std::memory_order_relaxed);
    return j;
  }

  // ---- the training steps (run_kmeans and assign_rows(locking = true) need no lock held) -------------------

  void run_kmeans(job& j) const {
    const auto cent = detail::spherical_kmeans(j.sample.data(), j.m, stride_, dim_, j.k, opt_.iterations,
                                               opt_.seed + 1, &j.cancelled);
    float_vector().swap(j.sample);
    if (cent.empty()) return;  // cancelled
    j.centroids.assign(j.k * stride_, 0.0f);
    for (std::size_t c = 0; c < j.k; ++c)
      std::copy_n(cent.begin() + std::ptrdiff_t(c * dim_), dim_, j.centroids.begin() + std::ptrdiff_t(c * stride_));
  }

  /// Assigns every row of the partition to its nearest new centroid, in slot order, copying the rows into
  /// j.lists. With `locking`, each chunk of slots is read under the shared lock (the caller holds none);
  /// without, the caller holds the lock.
  void assign_rows(job& j, bool locking) const {
    if (j.centroids.empty()) return;
    j.lists.assign(j.k, list_data{});
    float_vector buf;
    std::vector<slot_id> slots;
    std::vector<std::uint32_t> to;
    for (std::size_t s0 = 0;; s0 += chunk_slots) {
      if (j.cancelled.load(std::memory_order_relaxed)) return;
      buf.clear();
      slots.clear();
      {
        std::shared_lock<std::shared_mutex> lock;
        if (locking) lock = read_lock();
        if (s0 >= where_.size()) break;
        const std::size_t s1 = std::min(where_.size(), s0 + chunk_slots);
        for (std::size_t s = s0; s < s1; ++s) {
          const auto loc = where_[s];
          if (!loc.used || loc.partition != j.partition) continue;
          const float* row = parts_[loc.partition].lists[loc.list].rows.data() + std::size_t{loc.row} * stride_;
          buf.insert(buf.end(), row, row + stride_);
          slots.push_back(static_cast<slot_id>(s));
        }
      }
      to.resize(slots.size());
      detail::assign_nearest(buf.data(), slots.size(), stride_, j.centroids.data(), j.k, stride_, dim_, to.data());
      for (std::size_t r = 0; r < slots.size(); ++r) {
        auto& l = j.lists[to[r]];
        l.rows.insert(l.rows.end(), buf.data() + r * stride_, buf.data() + (r + 1) * stride_);
        l.slots.push_back(slots[r]);
      }
    }
  }

  /// Replaces the partition's centroids and lists by the job's (the caller holds mtx_ exclusively): the
  /// slots changed since the job started leave the new lists and the live ones are placed by their current
  /// rows. The old lists are freed. O(size + changed x nlist x d).
  void install(job& j) {
    auto& p = parts_[j.partition];
    std::vector<slot_id> changed = std::move(j.changed);
    std::sort(changed.begin(), changed.end());
    changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
    if (!changed.empty())
      for (auto& l : j.lists) {
        std::size_t w = 0;
        for (std::size_t r = 0; r < l.slots.size(); ++r) {
          if (std::binary_search(changed.begin(), changed.end(), l.slots[r])) continue;
          if (w != r) {
            std::copy_n(l.rows.begin() + std::ptrdiff_t(r * stride_), stride_, l.rows.begin() + std::ptrdiff_t(w * stride_));
            l.slots[w] = l.slots[r];
          }
          ++w;
        }
        l.slots.resize(w);
        l.rows.resize(w * stride_);
      }
    ++version_;
    auto old = std::move(p.lists);
    p.lists = std::move(j.lists);
    p.centroids = std::move(j.centroids);
    p.size = 0;
    p.sum_sq = 0;
    for (std::size_t li = 0; li < p.lists.size(); ++li) {
      const auto& l = p.lists[li];
      for (std::size_t r = 0; r < l.slots.size(); ++r)
        where_[l.slots[r]] = location{j.partition, static_cast<std::uint32_t>(li), static_cast<std::uint32_t>(r), true};
      p.size += l.slots.size();
      p.sum_sq += l.slots.size() * l.slots.size();
    }
    for (const slot_id s : changed) {  // live changed slots still point into `old`
      if (!has(s) || where_[s].partition != j.partition) continue;
      const auto loc = where_[s];
      const float* row = old[loc.list].rows.data() + std::size_t{loc.row} * stride_;
      append(p, j.partition, nearest_list(p, row), s, row);
    }
    p.trained_size = p.size;
  }

  // ---- the background worker -------------------------------------------------------------------------------

  void work() {
    for (;;) {
      std::shared_ptr<job> j;
      {
        std::unique_lock q(qmtx_);
        qcv_.wait(q, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        j = std::move(queue_.front());
        queue_.pop_front();
        busy_ = true;
      }
      try {
        run_kmeans(*j);
        assign_rows(*j, true);
        const auto lock = write_lock();
        if (!j->cancelled.load(std::memory_order_relaxed) && !j->centroids.empty()) install(*j);
        if (auto* mine = job_for(j->partition); mine == j.get()) cancel(j->partition);
      } catch (...) {  // out of memory: the partition keeps its lists; a later add retries the training
        const auto lock = write_lock();
        if (job_for(j->partition) == j.get()) cancel(j->partition);
      }
      j.reset();
      {
        std::lock_guard q(qmtx_);
        busy_ = false;
      }
      qcv_.notify_all();
    }
  }

  /// Cancels every training and joins the worker (no lock held by the caller).
  void stop_worker() noexcept {
    {
      const auto lock = write_lock();
      for (auto& j : jobs_) j->cancelled.store(true, std::memory_order_relaxed);
      jobs_.clear();
    }
    {
      std::lock_guard q(qmtx_);
      stopping_ = true;
      queue_.clear();
    }
    qcv_.notify_all();
    if (worker_.joinable()) worker_.join();
    {
      std::lock_guard q(qmtx_);
      busy_ = false;
      stopping_ = false;
    }
    qcv_.notify_all();
  }

  /// Moves `o`'s content here (both locked, o's worker stopped), then restarts the trainings still due.
  void take(ivf_index& o) {
    size_ = std::exchange(o.size_, 0);
    version_ = o.version_ + 1;
    ++o.version_;
    parts_ = std::move(o.parts_);
    where_ = std::move(o.where_);
    o.parts_.clear();
    o.where_.clear();
    stats_ = o.stats_;
    trainings_.store(o.trainings_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    held_ = o.held_;
    for (std::size_t pid = 0; pid < parts_.size(); ++pid)
      if (!parts_[pid].lists.empty()) start_if_due(static_cast<partition_id>(pid));
  }

  // ---- snapshots -------------------------------------------------------------------------------------------

  template <class T>
  static void put(std::string& out, const T& v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  template <class T>
  static bool get(std::string_view bytes, std::size_t& at, T& v) {
    if (at > bytes.size() || bytes.size() - at < sizeof v) return false;
    std::memcpy(&v, bytes.data() + at, sizeof v);
    at += sizeof v;
    return true;
  }

  /// Hash of one (key, row): summed over a partition's rows, an order-independent fingerprint of its content.
  std::uint64_t row_hash(std::uint64_t key, const float* row) const noexcept {
    std::uint64_t x = detail::mix64(key);
    for (std::size_t i = 0; i < dim_; i += 2) {
      std::uint32_t a = 0, b = 0;
      std::memcpy(&a, row + i, sizeof a);
      if (i + 1 < dim_) std::memcpy(&b, row + i + 1, sizeof b);
      x = detail::mix64(x ^ ((std::uint64_t{b} << 32) | a));
    }
    return x;
  }
  static std::uint64_t slot_key(slot_id s) noexcept { return std::uint64_t{s} + 1; }
  static std::uint64_t string_key(std::string_view k) noexcept { return detail::fnv1a64(k); }

  /// The snapshot of `pid` (caller holds mtx_): slot-keyed, or keyed by `key_of` when given. Empty when untrained.
  std::string save_partition(partition_id pid, const key_function* key_of) const {
    if (pid >= parts_.size() || parts_[pid].centroids.empty()) return {};
    const auto& p = parts_[pid];
    std::string out(key_of ? keyed_magic : snapshot_magic);
    std::vector<std::string> keys;
    std::uint64_t print = detail::mix64(std::uint64_t{dim_} ^ (std::uint64_t{p.size} << 32));
    for (const auto& l : p.lists)
      for (std::size_t r = 0; r < l.slots.size(); ++r) {
        if (key_of) keys.push_back((*key_of)(l.slots[r]));
        print += row_hash(key_of ? string_key(keys.back()) : slot_key(l.slots[r]), l.rows.data() + r * stride_);
      }
    put(out, std::uint64_t{dim_});
    put(out, std::uint64_t{p.lists.size()});
    put(out, std::uint64_t{p.size});
    put(out, print);
    for (std::size_t j = 0; j < p.lists.size(); ++j)
      out.append(reinterpret_cast<const char*>(p.centroids.data() + j * stride_), dim_ * sizeof(float));
    std::size_t i = 0;
    for (std::size_t j = 0; j < p.lists.size(); ++j)
      for (const slot_id s : p.lists[j].slots) {  // slot-keyed: (slot, list); keyed: (list, key size, key)
        if (key_of) {
          const auto& k = keys[i++];
          put(out, static_cast<std::uint32_t>(j));
          put(out, static_cast<std::uint32_t>(k.size()));
          out += k;
        } else {
          put(out, std::uint32_t{s});
          put(out, static_cast<std::uint32_t>(j));
        }
      }
    put(out, detail::crc32c(out.data(), out.size()));  // covers the centroids, which the fingerprint does not
    return out;
  }

  /// Installs one partition snapshot (caller holds mtx_ exclusively). Slot-keyed: into `want`; keyed: into
  /// the partition holding the keys' slots. Counts the outcome in stats_. @returns whether it was installed.
  bool load_partition(std::optional<partition_id> want, std::string_view bytes, const slot_function* slot_of) {
    const bool ok = try_load_partition(want, bytes, slot_of);
    ++(ok ? stats_.snapshots_loaded : stats_.snapshots_rejected);
    return ok;
  }

  bool try_load_partition(std::optional<partition_id> want, std::string_view bytes, const slot_function* slot_of) {
    const auto magic = slot_of ? keyed_magic : snapshot_magic;
    std::size_t at = magic.size();
    std::uint32_t crc = 0;
    if (bytes.substr(0, at) != magic || bytes.size() < at + sizeof crc) return false;
    std::memcpy(&crc, bytes.data() + bytes.size() - sizeof crc, sizeof crc);
    bytes.remove_suffix(sizeof crc);
    if (crc != detail::crc32c(bytes.data(), bytes.size())) return false;
    std::uint64_t dim = 0, nlist = 0, count = 0, print = 0;
    if (!get(bytes, at, dim) || !get(bytes, at, nlist) || !get(bytes, at, count) || !get(bytes, at, print)) return false;
    if (dim != dim_ || nlist == 0 || count == 0 || count > size_ || nlist > count) return false;
    if (bytes.size() - at < nlist * dim_ * sizeof(float)) return false;
    float_vector cent(nlist * stride_, 0.0f);
    for (std::size_t j = 0; j < nlist; ++j) {
      std::memcpy(cent.data() + j * stride_, bytes.data() + at, dim_ * sizeof(float));
      at += dim_ * sizeof(float);
    }
    std::vector<std::uint32_t> list_of(count);
    std::vector<slot_id> order(count);
    std::uint64_t got_print = 0;
    std::vector<unsigned char> seen(where_.size(), 0);
    std::optional<partition_id> pid = want;
    for (std::size_t i = 0; i < count; ++i) {
      std::uint32_t l = 0;
      std::uint64_t key = 0;
      slot_id s = 0;
      if (slot_of) {
        std::uint32_t len = 0;
        if (!get(bytes, at, l) || !get(bytes, at, len) || bytes.size() - at < len) return false;
        const auto name = bytes.substr(at, len);
        at += len;
        const auto found = (*slot_of)(name);
        if (!found) return false;
        s = *found;
        key = string_key(name);
      } else {
        if (!get(bytes, at, s) || !get(bytes, at, l)) return false;
        key = slot_key(s);
      }
      if (l >= nlist || !has(s) || seen[s]) return false;
      if (!pid) pid = where_[s].partition;
      if (where_[s].partition != *pid) return false;
      seen[s] = 1;
      order[i] = s;
      list_of[i] = l;
      const auto loc = where_[s];
      got_print += row_hash(key, parts_[loc.partition].lists[loc.list].rows.data() + std::size_t{loc.row} * stride_);
    }
    if (at != bytes.size() || !pid || *pid >= parts_.size()) return false;
    auto& p = parts_[*pid];
    if (count != p.size) return false;
    if (print != got_print + detail::mix64(std::uint64_t{dim_} ^ (std::uint64_t{p.size} << 32))) return false;
    // validated: move every row to its recorded list, in the recorded order
    cancel(*pid);
    ++version_;
    auto old = std::move(p.lists);
    p.lists.assign(nlist, list_data{});
    p.centroids = std::move(cent);
    p.size = 0;
    p.sum_sq = 0;
    p.due = false;
    for (std::size_t i = 0; i < count; ++i) {
      const auto loc = where_[order[i]];
      append(p, *pid, list_of[i], order[i], old[loc.list].rows.data() + std::size_t{loc.row} * stride_);
    }
    p.trained_size = p.size;
    return true;
  }

  // ---- lists -----------------------------------------------------------------------------------------------

  void check_dimension(std::size_t got, const char* where) const {
    if (got != dim_) throw dimension_mismatch(dim_, got, where);
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
    if (!candidates) {
      alignas(64) std::array<float, W> sc;
      for (std::size_t g = 0; g < n; g += W) {
        const std::size_t cnt = std::min(W, n - g);
        const auto s = simd::dot_group(q, l.rows.data() + g * stride_, cnt, stride_);
        if (!xsimd::any(s >= simd::float_batch(best.threshold()))) continue;
        s.store_aligned(sc.data());
        for (std::size_t r = 0; r < cnt; ++r) best.push(l.slots[g + r], sc[r]);
      }
      return n;
    }
    detail::gathered_scorer scorer(q, stride_, best);
    for (std::size_t r = 0; r < n; ++r) scorer.offer(l.rows.data() + r * stride_, l.slots[r], candidates->test(l.slots[r]));
    return scorer.finish();
  }

  void scan_sparse(const float* q, std::span<const partition_id> partitions, const slot_bitmap& candidates,
                   topk& best) const {
    std::vector<unsigned char> wanted(parts_.size(), 0);
    for (const partition_id pid : partitions)
      if (pid < parts_.size()) wanted[pid] = 1;
    detail::scan_candidates(q, stride_, candidates, [&](slot_id s) -> const float* {
      if (s >= where_.size()) return nullptr;
      const auto loc = where_[s];
      if (!loc.used || !wanted[loc.partition]) return nullptr;
      return parts_[loc.partition].lists[loc.list].rows.data() + std::size_t{loc.row} * stride_;
    }, best);
  }

  /// `v` scaled to unit length into a zero-padded row of stride_ floats (flat_index's normalisation, so
  /// scores agree bit for bit).
  float_vector normalized(std::span<const float> v) const {
    float_vector out(stride_);
    detail::normalize_row(out.data(), v, stride_);
    return out;
  }

  std::size_t dim_;
  std::size_t stride_;
  ivf_index_options opt_;
  mutable std::mutex gate_;        // see read_lock()
  mutable std::shared_mutex mtx_;  // guards everything below up to trainings_
  std::size_t size_ = 0;
  std::uint64_t version_ = 0;
  std::vector<partition_data> parts_;  // indexed by partition id
  std::vector<location> where_;        // indexed by slot id
  std::vector<std::shared_ptr<job>> jobs_;  // trainings started and not yet installed or cancelled
  bool held_ = false;                       // hold_training(true)
  ivf_index_stats stats_{};
  std::atomic<std::size_t> trainings_{0};

  mutable std::mutex qmtx_;  // guards queue_, busy_, stopping_ and the start of worker_; taken after mtx_, never before
  mutable std::condition_variable qcv_;
  std::deque<std::shared_ptr<job>> queue_;
  bool busy_ = false;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace engram::inline v0
