#pragma once
/// @file store/file/options.hpp
/// The vocabulary of file_store's interface: when a write is durable, how a store is opened, what opening
/// found, and the write path's counters.

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <string>

namespace engram::inline v0 {

/// When a file_store write is durable.
enum class durability {
  /// Each apply writes its entry and calls fdatasync before returning: a returned apply survives a process
  /// crash, a kernel crash and a power loss (as far as the device honours flushes). Writers are serialised.
  /// The log is extended in steps of zeros (written and flushed with the commit that needs them), so that a
  /// commit overwrites allocated blocks and its fdatasync flushes data only, not a file-size change too (on
  /// ext4 that is a journal commit: about a second device flush). Opening treats an all-zero tail as free space.
  fsync,
  /// Same promise as `fsync` for every caller: apply returns only after an fdatasync that covers its entry.
  /// Concurrent appliers are batched: one leader writes every waiting entry in one write and one fdatasync,
  /// so N concurrent commits cost about one flush. Changes become visible to readers when durable.
  /// When several writers were active at the end of the previous flush, the leader first waits (at most half
  /// that flush's duration, and 2 ms) for as many to have queued: without it, writers returning from one flush
  /// miss the next, and the batches alternate between two halves of them. The log is preallocated as in `fsync`.
  group_commit,
  /// The entry is written to the OS (write(2)) but not flushed: a returned apply survives a crash of the
  /// process, not of the machine. For caches and tests.
  buffered,
};

/// Options of file_store. Designated initializers: `file_store(dir, {.mode = durability::group_commit})`.
struct file_store_options {
  durability mode = durability::fsync;
  /// Open without the lock, for reading what the writer has committed so far; every write is refused.
  bool read_only = false;
  /// Compact when the log is larger than both this and the last snapshot.
  std::uint64_t compact_log_bytes = 64ull << 20;
  /// Compact on a thread of the store's own, while writes go on (store/file/compaction.hpp): the snapshot is
  /// built from the files, and writers wait only for the switch to the new files (the entries appended
  /// meanwhile copied into the new log, two fsyncs). One at a time; file_store::wait_for_compaction() waits for
  /// it, and the store's destructor does. It costs memory while it runs: the records are decoded a second time
  /// beside the store's own copy (vectors of a snapshot excepted, read in place), about as much heap as the
  /// store holds (156 MB at 100k records of bench_store's shape). false: the write that finds the log too large
  /// compacts from the store's own copy, holding the write lock while it writes the whole snapshot.
  bool background_compaction = true;
  /// Receives recovery and compaction warnings (from a compaction's thread too); empty: they go to stderr.
  std::function<void(const std::string&)> on_warning = {};
};

/// What opening found. Damage is never silent: it is counted here and announced through on_warning.
struct recovery_report {
  std::uint64_t generation = 0;           ///< snapshot/log generation opened
  std::uint64_t snapshot_records = 0;     ///< records read from the snapshot
  std::uint64_t snapshot_events = 0;      ///< history events read from the snapshot
  std::uint64_t log_entries = 0;          ///< log entries replayed
  std::uint64_t discarded_entries = 0;    ///< damaged entries dropped (the bad one and what followed it)
  std::uint64_t discarded_bytes = 0;      ///< bytes of log dropped
  std::uint64_t damage_offset = 0;        ///< log offset of the first damaged byte, when damaged()
  std::string damage;                     ///< what was wrong, empty when nothing was
  std::string preserved_as;               ///< file the dropped bytes were copied to (writer only)
  [[nodiscard]] bool damaged() const noexcept { return discarded_bytes > 0; }
};

/// How long the log's fdatasync calls took: a histogram over fixed bounds (seconds), for monitoring a disk.
struct sync_latency_histogram {
  /// Upper bounds of the buckets, in seconds; the last bucket holds what took longer than every bound.
  static constexpr std::array<double, 12> bounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                    0.01,   0.025,   0.05,   0.1,   0.25,   1};
  std::array<std::uint64_t, bounds.size() + 1> buckets{};  ///< calls per bucket (not cumulative)
  std::uint64_t count = 0;                                 ///< calls timed
  double sum_seconds = 0;                                  ///< their total time

  void record(double seconds) noexcept {
    ++buckets[static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin())];
    ++count;
    sum_seconds += seconds;
  }
};

/// Counters of the write path, to see group commit at work.
struct file_store_stats {
  std::uint64_t commits = 0;      ///< entries appended
  std::uint64_t syncs = 0;        ///< fdatasync calls made for them
  std::uint64_t log_bytes = 0;    ///< current log size
  std::uint64_t compactions = 0;  ///< snapshots written since open
  bool compacting = false;        ///< a background compaction is running
  sync_latency_histogram sync_latency{};  ///< how long those fdatasync calls took
};

}  // namespace engram::inline v0
