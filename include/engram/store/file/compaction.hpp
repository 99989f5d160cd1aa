#pragma once
/// @file store/file/compaction.hpp
/// file_store's background compaction (file_store_options::background_compaction): the snapshot of generation
/// G+1 is built from the files alone, snapshot G and log G up to the byte where the compaction began (the cut),
/// which no write changes any more, so no lock of the store is held while it is written. Writes go on appending
/// to log G meanwhile. The store then copies log G's entries past the cut into a new log G+1, and only the
/// last of them, the fsync of log G+1 and the rename of the snapshot happen under its write lock.
///
/// Crash safety is that of a compaction in the write path: until the rename, snapshot G + log G hold every
/// entry (snapshot.tmp and log G+1 are leftovers the next open removes); after it, snapshot G+1 holds the state
/// at the cut and log G+1 every entry after it. The files are those of any other compaction, so an older engram
/// reads them.

#include <engram/error.hpp>
#include <engram/store/file/contents.hpp>
#include <engram/store/file/format.hpp>
#include <engram/store/file/options.hpp>
#include <engram/store/file/posix_file.hpp>
#include <engram/store/file/recovery.hpp>
#include <engram/store/file/snapshot.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <unistd.h>

namespace engram::inline v0::detail {

/// Writes `snapshot.tmp` in `dir` (fsync'd): the state of snapshot `gen` and log `gen` up to byte `cut`, as
/// the snapshot of generation gen+1. Reads the files only. @throws storage_error on an I/O error, a damaged
/// entry before the cut, or when the directory's snapshot is no longer of generation `gen`.
inline void write_compacted_snapshot(const std::string& dir, std::uint64_t gen, std::uint64_t cut) {
  file_contents state;
  recovery_report report;
  file_replay replay(dir, true, state, report);
  replay.limit_log(cut);
  const auto got = replay.run([](const std::string& problem) {
    throw storage_error("compaction: the log is damaged before the entries it compacts: " + problem);
  });
  if (got.generation != gen)
    throw storage_error("compaction: the snapshot is of generation " + std::to_string(got.generation) +
                        ", expected " + std::to_string(gen));
  if (got.log_end != cut)
    throw storage_error("compaction: the log's entries end at " + std::to_string(got.log_end) + ", expected " +
                        std::to_string(cut));
  snapshot_writer out(file_format::path(dir, "snapshot.tmp"), gen + 1);
  write_snapshot_entries(out, state, nullptr, std::nullopt, false);
  out.finish();
}

/// Copies bytes [from, to) of file `src` to file `dst` at offset `at` (both named `path` in errors).
/// @returns the offset after them.
inline std::uint64_t copy_bytes(int src, int dst, std::uint64_t from, std::uint64_t to, std::uint64_t at,
                                const std::string& path) {
  std::vector<char> buf(std::size_t{1} << 20);
  std::uint64_t previous = 0;  // bytes of the block copied last
  while (from < to) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), to - from));
    const auto got = ::pread(src, buf.data(), want, static_cast<off_t>(from));
    if (got < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot read", path);
    }
    if (got == 0) throw storage_error("file_store: '" + path + "' ended before offset " + std::to_string(to));
    pwrite_all(dst, buf.data(), static_cast<std::size_t>(got), static_cast<off_t>(at), path);
    write_behind(dst, at, static_cast<std::uint64_t>(got), previous);
    previous = static_cast<std::uint64_t>(got);
    from += static_cast<std::uint64_t>(got);
    at += static_cast<std::uint64_t>(got);
  }
  return at;
}

/// The thread of one background compaction at a time. start() and wait() are thread-safe; the destructor
/// waits for the thread.
class compaction_thread {
 public:
  compaction_thread() = default;
  compaction_thread(const compaction_thread&) = delete;
  compaction_thread& operator=(const compaction_thread&) = delete;
  ~compaction_thread() { wait(); }

  /// Whether a compaction started and has not finished.
  [[nodiscard]] bool running() const noexcept { return running_.load(std::memory_order_acquire); }

  /// Runs job() on a new thread (after the previous one, which has finished, is joined). Call when !running().
  template <class Job>
  void start(Job job) {
    std::lock_guard lock(mtx_);
    if (thread_.joinable()) thread_.join();
    running_.store(true, std::memory_order_release);
    try {
      thread_ = std::thread([this, job = std::move(job)]() mutable {
        job();  // noexcept: the job reports its own failures
        running_.store(false, std::memory_order_release);
      });
    } catch (...) {
      running_.store(false, std::memory_order_release);
      throw;
    }
  }

  /// Returns once no compaction runs. Must not be called with a lock the job takes.
  void wait() {
    std::lock_guard lock(mtx_);
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mtx_;  // guards thread_
  std::thread thread_;
  std::atomic<bool> running_{false};
};

}  // namespace engram::inline v0::detail
