#pragma once
/// @file store/file/log.hpp
/// The log a file_store appends to: creating one, upgrading an older one's header, and appending entries at
/// its logical end (ahead of preallocated zeros), keeping count of what is durable.

#include <engram/error.hpp>
#include <engram/store/file/format.hpp>
#include <engram/store/file/options.hpp>  // sync_latency_histogram
#include <engram/store/file/posix_file.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

#include <unistd.h>

namespace engram::inline v0::detail {

/// Creates an empty log of generation `gen` in `dir`, durably: written as `log.tmp`, fsync'd, renamed.
inline void create_log(const std::string& dir, std::uint64_t gen) {
  const auto tmp = file_format::path(dir, "log.tmp");
  {
    auto fd = open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC);
    const auto h = file_format::header(file_format::log_magic, gen);
    write_all(fd.get(), h.data(), h.size(), tmp);
    sync_data(fd.get(), tmp);
  }
  if (std::rename(tmp.c_str(), file_format::log_path(dir, gen).c_str()) != 0) throw_errno("cannot rename", tmp);
  sync_dir(dir);
}

/// A log of an older format that this engram will append to is marked with the current format first, so
/// that an older engram refuses it by its version instead of misreading what is appended (a group-commit
/// log's preallocated zeros, say). The snapshot keeps its version until the next compaction rewrites it.
inline void upgrade_log_header(int fd, const std::string& lp) {
  namespace ff = file_format;
  char h[ff::header_size];
  const auto got = ::pread(fd, h, ff::header_size, 0);
  if (got != static_cast<ssize_t>(ff::header_size)) return;  // replay has checked it; nothing to upgrade
  const auto version = byte_reader(h + ff::header_version_offset, 4, lp).u32();
  if (version >= ff::version) return;
  std::string v;
  byte_writer(v).u32(ff::version);
  pwrite_all(fd, v.data(), v.size(), ff::header_version_offset, lp);
  sync_data(fd, lp);
}

/// The open log: appends at its logical end, preallocating zeros ahead when asked (see durability::fsync),
/// and refuses appends after a failure that left the file's state unknown. Not thread-safe (the store's
/// write lock guards it) except durable() and mark_durable().
class log_appender {
 public:
  /// Bytes of zeros a preallocating log is extended by at a time.
  static constexpr std::uint64_t step = 1u << 20;

  /// Takes over log `fd` at `path` in store directory `dir`, its entries ending at `end` (found by replay).
  void open(unique_fd fd, std::string path, const std::string& dir, std::uint64_t end, bool preallocate) {
    fd_ = std::move(fd);
    path_ = std::move(path);
    dir_ = dir;
    preallocate_ = preallocate;
    alloc_ = file_size(fd_.get(), path_);
    size_ = std::min(end, alloc_);
  }

  /// Switches to the new log `fd` at `path`, its entries ending at `end` (after a compaction: an empty log, or
  /// one holding the entries appended during a background compaction): everything appended so far is in the
  /// fsync'd snapshot and that fsync'd log, so it is durable.
  void restart(unique_fd fd, std::string path, std::uint64_t end = file_format::header_size) {
    fd_ = std::move(fd);
    path_ = std::move(path);
    size_ = alloc_ = end;
    mark_durable(appended_);
  }

  /// Appends `bytes` (`entries` entries) at the log's end; with `sync`, fdatasyncs.
  /// @throws storage_error on an I/O error (the bytes are cut off again) or after an earlier failure.
  void append(const std::string& bytes, bool sync, std::uint64_t entries = 1) {
    if (!failed_.empty())
      throw storage_error("file_store: '" + dir_ + "' refuses writes after an earlier failure (" + failed_ +
                          "); reopen it");
    try {
      if (preallocate_ && size_ + bytes.size() > alloc_) {
        // Zeros ahead of the entries, made durable by this commit's fdatasync (see durability::fsync).
        const auto want = (size_ + bytes.size() + step - 1) / step * step;
        const std::string zeros(static_cast<std::size_t>(want - alloc_), '\0');
        pwrite_all(fd_.get(), zeros.data(), zeros.size(), static_cast<off_t>(alloc_), path_);
        alloc_ = want;
      }
      pwrite_all(fd_.get(), bytes.data(), bytes.size(), static_cast<off_t>(size_), path_);
    } catch (const storage_error&) {
      // Cut off whatever part was written so the next entry follows intact ones.
      if (::ftruncate(fd_.get(), static_cast<off_t>(size_)) != 0) failed_ = "write failed";
      alloc_ = size_;
      throw;
    }
    if (sync) {
      const auto start = std::chrono::steady_clock::now();
      try {
        sync_data(fd_.get(), path_);
      } catch (const storage_error& e) {
        failed_ = e.what();  // after a failed fsync the page cache state is unknown: stop writing
        throw;
      }
      count_sync(std::chrono::steady_clock::now() - start);
    }
    size_ += bytes.size();
    appended_ += bytes.size();
    if (sync) mark_durable(appended_);
    commits_ += entries;
  }

  /// A second descriptor of the log, to fdatasync it without the write lock (a compaction may replace it).
  [[nodiscard]] unique_fd dup() const {
    unique_fd fd(::dup(fd_.get()));
    if (!fd) throw_errno("cannot dup", path_);
    return fd;
  }

  /// Records that the bytes appended up to `upto` are durable. Thread-safe.
  void mark_durable(std::uint64_t upto) noexcept {
    for (auto cur = durable_.load(); cur < upto && !durable_.compare_exchange_weak(cur, upto);) {
    }
  }
  /// Bytes appended since open known durable. Thread-safe.
  [[nodiscard]] std::uint64_t durable() const noexcept { return durable_.load(); }
  /// Bytes appended since open (a ticket of file_store::append).
  [[nodiscard]] std::uint64_t appended() const noexcept { return appended_; }

  /// Refuses further appends, saying why (a failure left the files unlike the store's state).
  void fail(std::string why) { failed_ = std::move(why); }
  /// Whether appends are refused after a failure.
  [[nodiscard]] bool failed() const noexcept { return !failed_.empty(); }
  /// Counts an fdatasync (made by append, or through dup()) that took `took`.
  void count_sync(std::chrono::steady_clock::duration took) noexcept {
    ++syncs_;
    sync_latency_.record(std::chrono::duration<double>(took).count());
  }

  [[nodiscard]] std::uint64_t size() const noexcept { return size_; }
  [[nodiscard]] std::uint64_t commits() const noexcept { return commits_; }
  [[nodiscard]] std::uint64_t syncs() const noexcept { return syncs_; }
  [[nodiscard]] const sync_latency_histogram& sync_latency() const noexcept { return sync_latency_; }

 private:
  unique_fd fd_;
  std::string path_;
  std::string dir_;
  bool preallocate_ = false;
  std::uint64_t size_ = 0;   // bytes of entries (the log's logical end)
  std::uint64_t alloc_ = 0;  // size of the file: size_ plus preallocated zeros
  std::uint64_t appended_ = 0;
  std::atomic<std::uint64_t> durable_{0};
  std::string failed_;  // non-empty after a failure: appends are refused
  std::uint64_t commits_ = 0, syncs_ = 0;
  sync_latency_histogram sync_latency_{};
};

}  // namespace engram::inline v0::detail
