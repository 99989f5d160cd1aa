#pragma once
/// @file store/file/lock.hpp
/// An exclusive advisory lock (flock) on a directory's LOCK file, holding the owner's pid so that a refused
/// opener can say who holds it. flock locks belong to the open file description: a second open in the same
/// process conflicts too. Released when the object is destroyed (or the process dies).

#include <engram/store/file/posix_file.hpp>
#include <engram/error.hpp>

#include <cerrno>
#include <string>

#include <sys/file.h>
#include <unistd.h>

namespace engram::inline v0::detail {

class dir_lock {
 public:
  dir_lock() = default;
  /// Takes the lock on `dir`/LOCK. @throws storage_error naming the holder's pid when another holds it.
  explicit dir_lock(const std::string& dir, std::string_view who) {
    const std::string path = dir + "/LOCK";
    fd_ = open_file(path, O_RDWR | O_CREAT);
    while (::flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EINTR) continue;
      if (errno != EWOULDBLOCK) throw_errno("cannot lock", path);
      char buf[32] = {};
      const ssize_t n = ::pread(fd_.get(), buf, sizeof buf - 1, 0);
      std::string holder = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string("unknown");
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
      const bool self = holder == std::to_string(::getpid());
      throw storage_error(std::string(who) + ": '" + dir + "' is locked by another writer (process " + holder +
                          (self ? ", this process" : "") +
                          "); only one writer may open it: stop that writer or open read-only");
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_.get(), 0) != 0) throw_errno("cannot write", path);
    pwrite_all(fd_.get(), pid.data(), pid.size(), 0, path);
  }

 private:
  unique_fd fd_;
};

}  // namespace engram::inline v0::detail
