#pragma once
/// @file store/file/posix_file.hpp
/// Thin POSIX file helpers for the durable stores: an owning descriptor, whole writes, fsync of files and
/// directories, atomic replace. Every failure is a storage_error naming the path and the system's reason.

#include <engram/error.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace engram::inline v0::detail {

[[noreturn]] inline void throw_errno(std::string_view what, const std::string& path, int err = errno) {
  throw storage_error(std::string(what) + " '" + path + "': " + std::strerror(err));
}

/// An owned file descriptor (closed on destruction). Movable.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  [[nodiscard]] int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

inline unique_fd open_file(const std::string& path, int flags, mode_t mode = 0644) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) throw_errno("cannot open", path);
  return unique_fd(fd);
}

/// Writes all of `data` at `offset` (retrying short writes and EINTR).
inline void pwrite_all(int fd, const char* data, std::size_t n, off_t offset, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, data, n, offset);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot write", path);
    }
    data += w;
    n -= static_cast<std::size_t>(w);
    offset += w;
  }
}

inline void write_all(int fd, const char* data, std::size_t n, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw_errno("cannot write", path);
    }
    data += w;
    n -= static_cast<std::size_t>(w);
  }
}

/// Flushes the file's data (and the metadata needed to read it back) to stable storage.
inline void sync_data(int fd, const std::string& path) {
  while (::fdatasync(fd) != 0) {
    if (errno != EINTR) throw_errno("cannot fsync", path);
  }
}

/// Makes a directory's entries (created, renamed, removed files) durable.
inline void sync_dir(const std::string& dir) {
  auto fd = open_file(dir, O_RDONLY | O_DIRECTORY);
  while (::fsync(fd.get()) != 0) {
    if (errno != EINTR) throw_errno("cannot fsync directory", dir);
  }
}

inline bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

/// Writes back bytes [offset, offset + n) of `fd` as they are written rather than all at a final fsync, and
/// waits for the range written before it (`previous` bytes ending at `offset`): a large file written this way
/// keeps few dirty pages, so the fdatasyncs of other files (a log's commits) do not queue behind all of it.
/// Linux only (elsewhere nothing); best effort, the caller's fsync is what makes the file durable.
inline void write_behind(int fd, std::uint64_t offset, std::uint64_t n, std::uint64_t previous) noexcept {
#ifdef __linux__
  ::sync_file_range(fd, static_cast<off_t>(offset), static_cast<off_t>(n), SYNC_FILE_RANGE_WRITE);
  if (previous)
    ::sync_file_range(fd, static_cast<off_t>(offset - previous), static_cast<off_t>(previous),
                      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
#else
  (void)fd, (void)offset, (void)n, (void)previous;
#endif
}

inline std::size_t file_size(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno("cannot stat", path);
  return static_cast<std::size_t>(st.st_size);
}

/// A read-only mapping of a whole file (empty files map to an empty view).
class mapped_file {
 public:
  explicit mapped_file(const std::string& path) {
    auto fd = open_file(path, O_RDONLY);
    size_ = file_size(fd.get(), path);
    if (size_ == 0) return;
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd.get(), 0);
    if (p == MAP_FAILED) throw_errno("cannot map", path);
    ::madvise(p, size_, MADV_SEQUENTIAL);
    data_ = static_cast<const char*>(p);
  }
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  ~mapped_file() {
    if (data_) ::munmap(const_cast<char*>(data_), size_);
  }
  [[nodiscard]] const char* data() const noexcept { return data_; }
  /// Drops the sequential-read hint given at mapping: for a mapping kept to read from at random afterwards.
  void advise_normal() const noexcept {
    if (data_) ::madvise(const_cast<char*>(data_), size_, MADV_NORMAL);
  }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  const char* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace engram::inline v0::detail
