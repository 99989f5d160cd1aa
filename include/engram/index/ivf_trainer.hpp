#pragma once
/// @file index/ivf_trainer.hpp
/// The training of one ivf_index partition, step by step (fixed-seed sample, spherical k-means, assignment of
/// every row to the new centroids, removal of the rows changed meanwhile), and the worker thread that runs
/// trainings one at a time. Parts of ivf_index: they take plain data and callables, never the index, and lock
/// nothing of it themselves.
///
/// When: the add() that brings a partition to train_threshold, or past the growth or
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

#include <engram/ids.hpp>
#include <engram/index/ivf_lists.hpp>
#include <engram/index/kmeans.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <numeric>  // std::iota
#include <span>
#include <thread>
#include <utility>
#include <vector>

namespace engram::inline v0::detail {

/// One training, from its sample to its new lists.
struct ivf_training {
  partition_id partition = 0;
  std::size_t k = 0;
  ivf_floats sample;               // m rows of stride floats, freed after the k-means
  std::size_t m = 0;
  ivf_floats centroids;            // k x stride; empty: cancelled
  std::vector<ivf_list> lists;     // the partition's rows, assigned to the new centroids
  std::vector<slot_id> changed;    // slots of the partition changed since the sample (guarded by the index's lock)
  std::atomic<bool> cancelled{false};
};

/// The training steps of ivf_index for one set of options. A value: cheap to make and copy.
struct ivf_trainer {
  std::size_t dim;
  std::size_t stride;
  std::size_t nlist;
  std::size_t max_train;
  std::size_t min_per_list;
  std::size_t iterations;
  std::uint64_t seed;
  executor_ref executor{};  // runs the k-means' and the assignment's parts

  /// Whether partition `p` is due a training: untrained and at `train_threshold` vectors; trained and grown to
  /// `retrain_growth` times its size at the last training, or grown by 10% with an imbalance factor above
  /// `max_imbalance` (retrain_growth <= 0: never retrained).
  static bool due(const ivf_partition& p, std::size_t train_threshold, double retrain_growth,
                  double max_imbalance) noexcept {
    if (p.size == 0) return false;
    if (p.centroids.empty()) return p.size >= train_threshold;
    if (retrain_growth <= 0.0) return false;
    if (double(p.size) >= retrain_growth * double(p.trained_size)) return true;
    return p.size * 10 >= p.trained_size * 11 &&
           double(p.lists.size()) * double(p.sum_sq) > max_imbalance * double(p.size) * double(p.size);
  }

  /// A new training of partition `pid` (`lists`, `size` rows in all) with its sample: m = min(size, max_train)
  /// distinct positions of the concatenated lists drawn by a partial Fisher-Yates shuffle with the seed, in
  /// increasing order, into k = min(nlist, max(1, size / min_per_list), m) centroids. O(size + m x d).
  [[nodiscard]] std::shared_ptr<ivf_training> prepare(partition_id pid, std::span<const ivf_list> lists,
                                                      std::size_t size) const {
    auto j = std::make_shared<ivf_training>();
    j->partition = pid;
    const std::size_t n = size;
    j->m = std::min(n, max_train);
    j->k = std::min({nlist, std::max<std::size_t>(1, n / min_per_list), j->m});
    std::vector<std::uint32_t> pos(n);
    std::iota(pos.begin(), pos.end(), 0u);
    kmeans_rng g{seed};
    for (std::size_t i = 0; i < j->m; ++i) std::swap(pos[i], pos[i + g.below(n - i)]);
    pos.resize(j->m);
    std::sort(pos.begin(), pos.end());
    j->sample.resize(j->m * stride);
    std::size_t list = 0, first = 0;  // lists[list] holds positions [first, first + its size)
    for (std::size_t i = 0; i < j->m; ++i) {
      while (pos[i] >= first + lists[list].slots.size()) first += lists[list++].slots.size();
      std::copy_n(lists[list].rows.begin() + std::ptrdiff_t((pos[i] - first) * stride), stride,
                  j->sample.begin() + std::ptrdiff_t(i * stride));
    }
    return j;
  }

  /// The k-means on the sample (freed after) into j.centroids, padded to stride; left empty when cancelled.
  /// Needs no lock: it reads only the job.
  void run_kmeans(ivf_training& j) const {
    const auto cent = spherical_kmeans(j.sample.data(), j.m, stride, dim, j.k, iterations, seed + 1, &j.cancelled,
                                       executor);
    ivf_floats().swap(j.sample);
    if (cent.empty()) return;  // cancelled
    j.centroids.assign(j.k * stride, 0.0f);
    for (std::size_t c = 0; c < j.k; ++c)
      std::copy_n(cent.begin() + std::ptrdiff_t(c * dim), dim, j.centroids.begin() + std::ptrdiff_t(c * stride));
  }

  /// Assigns every row of the partition to its nearest new centroid, in slot order, copying the rows into
  /// j.lists. `read(s0, s1, rows, slots)` appends the rows and slots of the partition's slots in [s0, s1) and
  /// returns false when s0 is past the last slot; it takes whatever lock it needs, one chunk at a time.
  template <class ReadChunk>
  void assign_rows(ivf_training& j, std::size_t chunk_slots, ReadChunk&& read) const {
    if (j.centroids.empty()) return;
    j.lists.assign(j.k, ivf_list{});
    ivf_floats buf;
    std::vector<slot_id> slots;
    std::vector<std::uint32_t> to;
    for (std::size_t s0 = 0;; s0 += chunk_slots) {
      if (j.cancelled.load(std::memory_order_relaxed)) return;
      buf.clear();
      slots.clear();
      if (!read(s0, s0 + chunk_slots, buf, slots)) break;
      to.resize(slots.size());
      assign_nearest(buf.data(), slots.size(), stride, j.centroids.data(), j.k, stride, dim, to.data(), executor);
      for (std::size_t r = 0; r < slots.size(); ++r) {
        auto& l = j.lists[to[r]];
        l.rows.insert(l.rows.end(), buf.data() + r * stride, buf.data() + (r + 1) * stride);
        l.slots.push_back(slots[r]);
      }
    }
  }

  /// Takes the slots changed since the job started out of its new lists (their current rows are placed by the
  /// caller) and returns them, sorted and distinct. O(rows x log changed).
  std::vector<slot_id> drop_changed(ivf_training& j) const {
    std::vector<slot_id> changed = std::move(j.changed);
    std::sort(changed.begin(), changed.end());
    changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
    if (changed.empty()) return changed;
    for (auto& l : j.lists) {
      std::size_t w = 0;
      for (std::size_t r = 0; r < l.slots.size(); ++r) {
        if (std::binary_search(changed.begin(), changed.end(), l.slots[r])) continue;
        if (w != r) {
          std::copy_n(l.rows.begin() + std::ptrdiff_t(r * stride), stride, l.rows.begin() + std::ptrdiff_t(w * stride));
          l.slots[w] = l.slots[r];
        }
        ++w;
      }
      l.slots.resize(w);
      l.rows.resize(w * stride);
    }
    return changed;
  }
};

/// One thread that runs queued trainings one at a time through the callable it was made with (which must not
/// throw). The thread starts with the first push. Lock order: the queue's mutex is taken after the index's
/// lock, never before, and is not held while a training runs.
class ivf_worker {
 public:
  using run_function = std::function<void(ivf_training&)>;

  explicit ivf_worker(run_function run) : run_(std::move(run)) {}
  ivf_worker(const ivf_worker&) = delete;
  ivf_worker& operator=(const ivf_worker&) = delete;
  ~ivf_worker() { stop(); }

  /// Queues `j`, starting the thread when it is not running.
  void push(std::shared_ptr<ivf_training> j) {
    {
      std::lock_guard q(mtx_);
      if (!thread_.joinable()) {
        stopping_ = false;
        thread_ = std::thread([this] { loop(); });
      }
      queue_.push_back(std::move(j));
    }
    cv_.notify_all();
  }

  /// Blocks until no training is queued or running. Thread-safe.
  void wait_idle() const {
    std::unique_lock lock(mtx_);
    cv_.wait(lock, [&] { return queue_.empty() && !busy_; });
  }

  /// Drops the queued trainings and joins the thread after the running one returns (cancel it first to make
  /// that quick). A later push() starts it again.
  void stop() noexcept {
    {
      std::lock_guard q(mtx_);
      stopping_ = true;
      queue_.clear();
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    {
      std::lock_guard q(mtx_);
      busy_ = false;
      stopping_ = false;
    }
    cv_.notify_all();
  }

 private:
  void loop() {
    for (;;) {
      std::shared_ptr<ivf_training> j;
      {
        std::unique_lock q(mtx_);
        cv_.wait(q, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        j = std::move(queue_.front());
        queue_.pop_front();
        busy_ = true;
      }
      run_(*j);
      j.reset();
      {
        std::lock_guard q(mtx_);
        busy_ = false;
      }
      cv_.notify_all();
    }
  }

  run_function run_;
  mutable std::mutex mtx_;  // guards queue_, busy_, stopping_ and the start of thread_
  mutable std::condition_variable cv_;
  std::deque<std::shared_ptr<ivf_training>> queue_;
  bool busy_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace engram::inline v0::detail
