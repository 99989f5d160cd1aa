// engram-requires: sqlite
#pragma once
/// @file store/sqlite/wal_sync.hpp
/// sqlite_store's durability with synchronous=FULL, done by the store itself so that it can happen outside the
/// connection's lock: the connection runs with synchronous=NORMAL (in WAL mode a COMMIT then writes its frames to
/// the WAL without an fsync; checkpoints still sync the WAL before copying it and the database after), and a
/// commit is made durable by an fdatasync of the WAL file, which is what FULL would have done inside COMMIT.
/// Commits count tickets; sync(ticket) returns once an fdatasync that began after that commit has completed.
/// Concurrent syncs share one fdatasync: one caller flushes everything committed so far while the others wait
/// for it, and the connection keeps taking commits meanwhile.
///
/// A failed fdatasync leaves the state of the disk unknown (the kernel may have dropped the dirty pages), so
/// after one every commit and sync is refused, naming the first failure: the store must be reopened.

#include <engram/error.hpp>
#include <engram/store/file/posix_file.hpp>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <utility>

namespace engram::inline v0::detail {

class sqlite_wal_sync {
 public:
  /// For the database file `db_path` (its WAL is `db_path` + "-wal", as SQLite's unix VFS names it).
  explicit sqlite_wal_sync(std::string db_path) : wal_(std::move(db_path) + "-wal") {}

  /// Notes a commit that has returned: @returns its ticket. Called under the connection's lock.
  std::uint64_t committed() noexcept { return committed_.fetch_add(1, std::memory_order_acq_rel) + 1; }

  /// Throws when an earlier fdatasync failed. Called before a commit, under the connection's lock.
  void check() const {
    if (failed_.load(std::memory_order_acquire)) {
      std::lock_guard lock(mtx_);
      throw refusal();
    }
  }

  /// Returns once the commit with `ticket` (and every earlier one) is durable. Without a lock when it already is.
  /// @throws storage_error when the fdatasync fails (then, and from then on).
  void sync(std::uint64_t ticket) const {
    if (durable_.load(std::memory_order_acquire) >= ticket) return;
    std::lock_guard lock(mtx_);
    if (durable_.load(std::memory_order_acquire) >= ticket) return;  // a sync that ran meanwhile covered it
    if (!failure_.empty()) throw refusal();
    const auto target = committed_.load(std::memory_order_acquire);  // written before this flush begins
    try {
      if (!fd_) {
        // The WAL exists while a connection is open (checkpoints truncate it, never remove it). Its directory
        // entry may be new: made durable once, as SQLite does for a file it creates.
        fd_ = open_file(wal_, O_RDONLY);
        const auto dir = std::filesystem::path(wal_).parent_path();
        sync_dir(dir.empty() ? std::string(".") : dir.string());
      }
      sync_data(fd_.get(), wal_);
    } catch (const std::exception& e) {
      failure_ = e.what();
      failed_.store(true, std::memory_order_release);
      throw;
    }
    ++syncs_;
    durable_.store(target, std::memory_order_release);
  }

  /// fdatasync calls made so far.
  [[nodiscard]] std::uint64_t syncs() const {
    std::lock_guard lock(mtx_);
    return syncs_;
  }

 private:
  storage_error refusal() const {  // under mtx_
    return storage_error("sqlite_store: writes refused after a failed fsync of '" + wal_ + "' (" + failure_ +
                         "): reopen the store");
  }

  std::string wal_;
  std::atomic<std::uint64_t> committed_{0};
  mutable std::atomic<std::uint64_t> durable_{0};
  mutable std::atomic<bool> failed_{false};
  mutable std::mutex mtx_;  // one fdatasync at a time; guards fd_, failure_, syncs_
  mutable unique_fd fd_;
  mutable std::string failure_;
  mutable std::uint64_t syncs_ = 0;
};

}  // namespace engram::inline v0::detail
