#pragma once
/// @file examples/common/journal.hpp
/// An append-only JSON Lines file that one process owns: the durable part of engram-server's events
/// (events.hpp) and webhooks (webhooks.hpp). Each owner keeps its state in memory; the journal only appends
/// lines (fsynced when asked), reads them back on start (skipping a line that is not JSON: the last one cut
/// short by a crash), and is rewritten whole when its owner compacts it (PATH.tmp, fsync, rename, fsync of the
/// directory). The owner decides what a line means and when to compact (lines() says how many it holds).
///
/// One process at a time: the journal holds an flock on PATH.lock while open. Not thread-safe: the owner
/// serialises calls (it holds its own mutex around them).

#include <engram/error.hpp>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace engram_app {

class jsonl_journal {
 public:
  /// No file: every call does nothing (the owner keeps its state in memory only).
  jsonl_journal() = default;

  /// Opens the journal at `path`, creating its directory, and locks it. `name` names it in errors ("events
  /// journal"); `busy_hint` ends the error when another process holds the lock (what to do about it).
  /// @throws engram::storage_error when it cannot be locked or another process uses it.
  jsonl_journal(std::string path, std::string name, const std::string& busy_hint)
      : path_(std::move(path)), name_(std::move(name)) {
    if (path_.empty()) return;
    const auto parent = std::filesystem::path(path_).parent_path();
    std::error_code ec;
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    lock_fd_ = ::open((path_ + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd_ < 0) fail("cannot open " + path_ + ".lock");
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
      const bool busy = errno == EWOULDBLOCK;
      ::close(lock_fd_);
      lock_fd_ = -1;
      if (busy)
        throw engram::storage_error(name_ + " '" + path_ + "' is in use by another process (it holds " + path_ +
                                    ".lock): " + busy_hint);
      fail("cannot lock " + path_ + ".lock");
    }
  }

  ~jsonl_journal() { close_fds(); }
  jsonl_journal(jsonl_journal&& o) noexcept { *this = std::move(o); }
  jsonl_journal& operator=(jsonl_journal&& o) noexcept {
    if (this != &o) {
      close_fds();
      path_ = std::move(o.path_);
      name_ = std::move(o.name_);
      fd_ = std::exchange(o.fd_, -1);
      lock_fd_ = std::exchange(o.lock_fd_, -1);
      lines_ = o.lines_;
    }
    return *this;
  }

  /// Calls `line(json)` for each line of the file that parses as JSON, in order; `line` returns false for
  /// one it does not accept. @returns the lines skipped (not JSON, or not accepted).
  template <class F>
  std::size_t load(F&& line) const {
    if (path_.empty()) return 0;
    std::ifstream in(path_, std::ios::binary);
    std::size_t skipped = 0;
    for (std::string text; in && std::getline(in, text);) {
      if (text.empty()) continue;
      auto j = nlohmann::json::parse(text, nullptr, false);
      if (j.is_discarded() || !line(std::move(j))) ++skipped;
    }
    return skipped;
  }

  /// Appends `j` as one line, fsynced (fdatasync) before returning when `durable`. Reopens the file by
  /// rewriting it from `current` (a callable returning the owner's compacted text) when an earlier failure
  /// left it closed. @throws engram::storage_error.
  template <class Current>
  void append(const nlohmann::json& j, bool durable, Current&& current) {
    if (path_.empty()) return;
    if (fd_ < 0) rewrite(current());
    write_all(fd_, dump(j) + '\n');
    if (durable && ::fdatasync(fd_) != 0) fail("cannot sync " + path_);
    ++lines_;
  }

  /// Makes everything appended so far durable. @throws engram::storage_error.
  void sync() {
    if (fd_ >= 0 && ::fdatasync(fd_) != 0) fail("cannot sync " + path_);
  }

  /// Replaces the file by `text` (whole lines), then appends after them. @throws engram::storage_error.
  void rewrite(const std::string& text) {
    if (path_.empty()) return;
    const auto tmp = path_ + ".tmp";
    const int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) fail("cannot create " + tmp);
    try {
      write_all(out, text);
      if (::fsync(out) != 0) fail("cannot sync " + tmp);
    } catch (...) {
      ::close(out);
      throw;
    }
    ::close(out);
    if (::rename(tmp.c_str(), path_.c_str()) != 0) fail("cannot replace " + path_);
    const auto dir = std::filesystem::path(path_).parent_path().string();
    if (const int d = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); d >= 0) {
      (void)::fsync(d);
      ::close(d);
    }
    if (fd_ >= 0) ::close(fd_);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd_ < 0) fail("cannot open " + path_);
    lines_ = 0;
    for (const char c : text) lines_ += c == '\n';
  }

  /// `j` as a journal line's text (invalid UTF-8 replaced, never thrown on).
  static std::string dump(const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }

  /// Lines in the file since it was last rewritten (an owner compacts when these outgrow its state).
  [[nodiscard]] std::size_t lines() const noexcept { return lines_; }
  /// The file's path; empty: none.
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw engram::storage_error(name_ + ": " + what + ": " + std::strerror(errno));
  }

  void write_all(int fd, const std::string& text) const {
    for (std::size_t done = 0; done < text.size();) {
      const auto n = ::write(fd, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail("cannot write");
      done += static_cast<std::size_t>(n);
    }
  }

  void close_fds() noexcept {
    if (fd_ >= 0) ::close(fd_);
    if (lock_fd_ >= 0) ::close(lock_fd_);
    fd_ = lock_fd_ = -1;
  }

  std::string path_, name_;
  int fd_ = -1, lock_fd_ = -1;
  std::size_t lines_ = 0;
};

}  // namespace engram_app
