#pragma once
/// @file examples/common/files.hpp
/// The apps' own durable files beside the store (the journals of events and webhooks through journal.hpp,
/// exports): a whole file replaced atomically, bytes written in full, and a lock that keeps a second process
/// out. Errors are engram::storage_error naming the file and the system's reason.

#include <engram/error.hpp>

#include <cerrno>
#include <cstring>  // std::strerror
#include <filesystem>
#include <string>
#include <string_view>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace engram_app::files {

/// @throws engram::storage_error "`what`: the system's reason (errno)".
[[noreturn]] inline void fail(const std::string& what) { throw engram::storage_error(what + ": " + std::strerror(errno)); }

/// Writes all of `text` to `fd` (retrying short writes and EINTR). @throws engram::storage_error naming `path`.
inline void write_all(int fd, std::string_view text, const std::string& path) {
  for (std::size_t done = 0; done < text.size();) {
    const auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("cannot write " + path);
    done += static_cast<std::size_t>(n);
  }
}

/// fsyncs the directory holding `path`, so that a rename or an unlink in it survives a crash. Best effort: a
/// file system that cannot sync a directory is not an error.
inline void sync_parent(const std::string& path) {
  const auto dir = std::filesystem::path(path).parent_path().string();
  if (const int d = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); d >= 0) {
    (void)::fsync(d);
    ::close(d);
  }
}

/// Replaces `path` with `text` so that a crash leaves the old file or the new one, never a part: PATH.tmp is
/// written, fsynced and renamed over PATH, then the directory is fsynced. @throws engram::storage_error.
inline void replace(const std::string& path, std::string_view text) {
  const auto tmp = path + ".tmp";
  const int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0) fail("cannot create " + tmp);
  try {
    write_all(out, text, tmp);
    if (::fsync(out) != 0) fail("cannot sync " + tmp);
  } catch (...) {
    ::close(out);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(out);
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("cannot replace " + path);
  sync_parent(path);
}

/// An exclusive flock on the file `path` (created when missing), held while this object lives: one process
/// at a time uses what it guards.
class lock {
 public:
  /// @throws engram::storage_error: `busy` when another process holds the lock, else the system's reason.
  lock(const std::string& path, const std::string& busy) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) fail("cannot open " + path);
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const bool held = errno == EWOULDBLOCK;
      const int saved = errno;
      ::close(fd_);
      errno = saved;
      if (held) throw engram::storage_error(busy);
      fail("cannot lock " + path);
    }
  }
  ~lock() { ::close(fd_); }
  lock(const lock&) = delete;
  lock& operator=(const lock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace engram_app::files
