#pragma once
/// @file index/ivf.hpp
/// Approximate vector search with inverted lists (IVF), one coarse quantiser per scope partition.

#include <engram/error.hpp>
#include <engram/ids.hpp>
#include <engram/index/bitmap.hpp>
#include <engram/index/ivf_options.hpp>
#include <engram/index/ivf_snapshot.hpp>
#include <engram/index/ivf_trainer.hpp>
#include <engram/index/row_scan.hpp>
#include <engram/index/topk.hpp>
#include <engram/simd/rows.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace engram::inline v0 {

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
/// are returned whenever k candidates exist. The lists an unfiltered search scans (and a partition scanned
/// whole) are cut into parts over options().executor when large; the hits equal the serial scan's.
///
/// Training and retraining: the add() that brings a partition to train_threshold, or past the growth or
/// imbalance bound (see ivf_index_options), starts a training of that partition: with `background` set, on
/// one worker thread per index while searches and changes use the old lists; no change made meanwhile is
/// lost, and the lists equal a synchronous training's. wait_idle() waits for the trainings; the destructor
/// cancels a running one and joins the worker. Steps, costs and memory: index/ivf_trainer.hpp.
///
/// Restart without k-means: save_snapshot() / load_snapshot() keep a partition's centroids and list of every
/// vector, installed only when the partition holds exactly the (slot, vector) pairs it was taken from (a
/// fingerprint is checked); save_snapshots() / load_snapshots() do it for every trained partition, naming
/// vectors by a caller's key (a memory id), so slots and partitions may be numbered otherwise after a restart.
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
  void wait_idle() const { worker_.wait_idle(); }

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
    const auto list = p.nearest_list(n.data(), stride_);
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
    const auto list = p.nearest_list(n.data(), stride_);
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
    trainer().run_kmeans(*j);
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
    std::vector<std::string> parts;
    for (std::size_t pid = 0; pid < parts_.size(); ++pid) {
      auto s = save_partition(static_cast<partition_id>(pid), &key_of);
      if (!s.empty()) parts.push_back(std::move(s));
    }
    return detail::ivf_encode_set(parts);
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
    const auto set = detail::ivf_decode_set(bytes);
    std::size_t restored = 0;
    for (const auto part : set.parts) restored += load_partition(std::nullopt, part, &slot_of) ? 1 : 0;
    if (!set.intact) ++stats_.snapshots_rejected;
    return restored;
  }

  /// Runs later trainings and searches on `executor` (see ivf_index_options::executor). Like a mutation; a
  /// training already running keeps the executor it started with.
  void set_executor(executor_ref executor) {
    const auto lock = write_lock();
    opt_.executor = executor;
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
      probed_rows += parts_[pid].sparse_bound(nprobe);
    }
    if (candidates && candidates->count() <= probed_rows) {
      scan_sparse(q.data(), partitions, *candidates, best);
      return best.take_sorted();
    }
    std::vector<const list_data*> whole;  // lists scanned whole, over the executor when large
    for (const partition_id pid : partitions) {
      if (pid >= parts_.size()) continue;
      const auto& p = parts_[pid];
      if (p.centroids.empty() || nprobe >= p.lists.size()) {
        for (const auto& l : p.lists) whole.push_back(&l);
        continue;
      }
      if (candidates) {
        p.probe_filtered(q.data(), stride_, *candidates, nprobe, k, best);
        continue;
      }
      for (const auto& h : p.probe_order(q.data(), nprobe, stride_)) whole.push_back(&p.lists[h.slot]);
    }
    for (const auto& h : detail::scan_lists(q.data(), stride_, whole, candidates, k, opt_.executor,
                                            opt_.parallel_min_bytes))
      best.push(h.slot, h.score);
    return best.take_sorted();
  }

 private:
  /// Slots per chunk a background training copies under the shared lock.
  static constexpr std::size_t chunk_slots = 8192;

  using float_vector = detail::ivf_floats;
  using list_data = detail::ivf_list;
  using job = detail::ivf_training;
  using key_function = std::function<std::string(slot_id)>;
  using slot_function = std::function<std::optional<slot_id>(std::string_view)>;

  using partition_data = detail::ivf_partition;
  struct location {
    partition_id partition = 0;
    std::uint32_t list = 0;
    std::uint32_t row = 0;
    bool used = false;
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

  /// Starts a training of `pid` when one is due and none is in progress: in the background or right here.
  void start_if_due(partition_id pid) {
    auto& p = parts_[pid];
    if (job_for(pid) || !(p.due || trainer().due(p, opt_.train_threshold, opt_.retrain_growth, opt_.max_imbalance))) return;
    if (held_) {
      p.due = true;
      return;
    }
    p.due = false;
    auto j = prepare(pid);
    if (!opt_.background) {
      trainer().run_kmeans(*j);
      assign_rows(*j, false);
      install(*j);
      return;
    }
    jobs_.push_back(j);
    worker_.push(std::move(j));
  }

  /// The training steps for the current options.
  detail::ivf_trainer trainer() const noexcept {
    return {dim_, stride_, opt_.nlist, opt_.max_train, opt_.min_per_list, opt_.iterations, opt_.seed,
            opt_.executor};
  }

  /// A new training of `pid` with its sample (see ivf_trainer::prepare), counted in stats().
  std::shared_ptr<job> prepare(partition_id pid) {
    auto j = trainer().prepare(pid, parts_[pid].lists, parts_[pid].size);
    trainings_.fetch_add(1, std::memory_order_relaxed);
    return j;
  }

  // ---- the training steps (assign_rows(locking = true) needs no lock held) ----------------------------------

  /// Assigns every row of the partition to its nearest new centroid (ivf_trainer::assign_rows). With
  /// `locking`, each chunk of slots is read under the shared lock (the caller holds none); without, the
  /// caller holds the lock.
  void assign_rows(job& j, bool locking) const {
    trainer().assign_rows(j, chunk_slots, [&](std::size_t s0, std::size_t s1, float_vector& buf, std::vector<slot_id>& slots) {
      std::shared_lock<std::shared_mutex> lock;
      if (locking) lock = read_lock();
      if (s0 >= where_.size()) return false;
      s1 = std::min(where_.size(), s1);
      for (std::size_t s = s0; s < s1; ++s) {
        const auto loc = where_[s];
        if (!loc.used || loc.partition != j.partition) continue;
        const float* row = parts_[loc.partition].lists[loc.list].rows.data() + std::size_t{loc.row} * stride_;
        buf.insert(buf.end(), row, row + stride_);
        slots.push_back(static_cast<slot_id>(s));
      }
      return true;
    });
  }

  /// Replaces the partition's centroids and lists by the job's (the caller holds mtx_ exclusively): the
  /// slots changed since the job started leave the new lists and the live ones are placed by their current
  /// rows. The old lists are freed. O(size + changed x nlist x d).
  void install(job& j) {
    auto& p = parts_[j.partition];
    const auto changed = trainer().drop_changed(j);
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
      append(p, j.partition, p.nearest_list(row, stride_), s, row);
    }
    p.trained_size = p.size;
  }

  // ---- the background worker -------------------------------------------------------------------------------

  /// Runs one training on the worker thread: k-means and assignment without the lock, the swap under it.
  void run_background(job& j) noexcept {
    try {
      trainer().run_kmeans(j);
      assign_rows(j, true);
      const auto lock = write_lock();
      if (!j.cancelled.load(std::memory_order_relaxed) && !j.centroids.empty()) install(j);
      if (auto* mine = job_for(j.partition); mine == &j) cancel(j.partition);
    } catch (...) {  // out of memory: the partition keeps its lists; a later add retries the training
      const auto lock = write_lock();
      if (job_for(j.partition) == &j) cancel(j.partition);
    }
  }

  /// Cancels every training and joins the worker (no lock held by the caller).
  void stop_worker() noexcept {
    {
      const auto lock = write_lock();
      for (auto& j : jobs_) j->cancelled.store(true, std::memory_order_relaxed);
      jobs_.clear();
    }
    worker_.stop();
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

  /// The snapshot of `pid` (caller holds mtx_): slot-keyed, or keyed by `key_of` when given. Empty when untrained.
  std::string save_partition(partition_id pid, const key_function* key_of) const {
    if (pid >= parts_.size() || parts_[pid].centroids.empty()) return {};
    const auto& p = parts_[pid];
    return detail::ivf_encode_partition(p.lists, p.centroids.data(), p.size, dim_, stride_, key_of);
  }

  /// Installs one partition snapshot (caller holds mtx_ exclusively). Slot-keyed: into `want`; keyed: into
  /// the partition holding the keys' slots. Counts the outcome in stats_. @returns whether it was installed.
  bool load_partition(std::optional<partition_id> want, std::string_view bytes, const slot_function* slot_of) {
    const bool ok = try_load_partition(want, bytes, slot_of);
    ++(ok ? stats_.snapshots_loaded : stats_.snapshots_rejected);
    return ok;
  }

  /// Decodes a snapshot, checks it against the content (detail::ivf_match_snapshot) and only then moves every
  /// row to its recorded list.
  bool try_load_partition(std::optional<partition_id> want, std::string_view bytes, const slot_function* slot_of) {
    auto snap = detail::ivf_decode_partition(bytes, slot_of != nullptr, dim_, stride_, size_);
    if (!snap) return false;
    const auto match = detail::ivf_match_snapshot(*snap, want, slot_of, where_.size(), dim_,
        [&](slot_id s) -> std::optional<std::pair<partition_id, const float*>> {
          if (!has(s)) return std::nullopt;
          const auto loc = where_[s];
          return std::pair{loc.partition, parts_[loc.partition].lists[loc.list].rows.data() + std::size_t{loc.row} * stride_};
        },
        [&](partition_id pid) { return pid < parts_.size() ? parts_[pid].size : std::size_t{0}; });
    if (!match) return false;
    const auto pid = match->partition;
    const auto& order = match->slots;
    const std::size_t count = order.size();
    auto& p = parts_[pid];
    // validated: move every row to its recorded list, in the recorded order
    cancel(pid);
    ++version_;
    auto old = std::move(p.lists);
    p.lists.assign(snap->nlist, list_data{});
    p.centroids = std::move(snap->centroids);
    p.size = 0;
    p.sum_sq = 0;
    p.due = false;
    for (std::size_t i = 0; i < count; ++i) {
      const auto loc = where_[order[i]];
      append(p, pid, snap->entries[i].list, order[i], old[loc.list].rows.data() + std::size_t{loc.row} * stride_);
    }
    p.trained_size = p.size;
    return true;
  }

  // ---- lists -----------------------------------------------------------------------------------------------

  void check_dimension(std::size_t got, const char* where) const {
    if (got != dim_) throw dimension_mismatch(dim_, got, where);
  }

  /// Appends `row` as `slot` to `list` of `p` (partition `pid`) and records where it went.
  void append(partition_data& p, partition_id pid, std::uint32_t list, slot_id slot, const float* row) {
    where_[slot] = location{pid, list, p.append(list, slot, row, stride_), true};
  }

  /// Removes the row at `loc` from `p`; the row moved into its place gets its new location.
  void erase(partition_data& p, location loc) noexcept {
    if (const auto moved = p.erase(loc.list, loc.row, stride_)) where_[*moved].row = loc.row;
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

  // runs the background trainings; its queue's mutex is taken after mtx_, never before
  detail::ivf_worker worker_{[this](job& j) { run_background(j); }};
};

}  // namespace engram::inline v0
