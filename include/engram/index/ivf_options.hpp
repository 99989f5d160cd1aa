#pragma once
/// @file index/ivf_options.hpp
/// The options and counters of ivf_index (index/ivf.hpp), apart so that code configuring an index needs
/// neither its lists nor its trainer.

#include <engram/index/executor.hpp>

#include <cstddef>
#include <cstdint>

namespace engram::inline v0 {

/// Options of ivf_index. Every member has a default, so designated initialisers may name any subset.
struct ivf_index_options {
  /// Inverted lists per trained partition (fewer when the partition holds < nlist * min_per_list vectors).
  std::size_t nlist = 1024;
  /// Lists probed per partition by search() (search()'s `nprobe` argument overrides it).
  std::size_t nprobe = 16;
  /// A partition trains itself when an add brings it to this many vectors; below it, it is searched exactly.
  std::size_t train_threshold = 65536;
  /// At most this many vectors (a fixed-seed sample) train the k-means: 256 per list at the default nlist,
  /// FAISS's sample size (a partition trained at the default train_threshold uses all of its vectors).
  std::size_t max_train = 262144;
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
  /// Where the parts of a training (k-means rounds, assignment of the rows) and of one large search (the
  /// probed lists, parallel_min_bytes of rows per part) run; default: the calling thread. Must outlive the
  /// index. Results are the same whatever the executor.
  executor_ref executor{};
  /// An unfiltered search is split over the executor only when each part gets at least this many bytes of rows.
  std::size_t parallel_min_bytes = std::size_t{2} << 20;
};

/// Counters of an ivf_index since it was built.
struct ivf_index_stats {
  std::size_t trainings = 0;           ///< k-means runs started (synchronous and background)
  std::size_t snapshots_loaded = 0;    ///< partitions restored from a snapshot without k-means
  std::size_t snapshots_rejected = 0;  ///< snapshots (or parts of one) refused as malformed or not matching
};

}  // namespace engram::inline v0
