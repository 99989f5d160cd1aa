#pragma once
/// @file examples/common/journal.hpp
/// An append-only JSON Lines file that one process owns: the durable part of engram-server's events
/// (events.hpp) and webhooks (webhooks.hpp). Each owner keeps its state in memory; the journal only appends
/// lines (fsynced when asked), reads them back on start (skipping a line that is not JSON: the last one cut
/// short by a crash), and is rewritten whole when its owner compacts it (files::replace: PATH.tmp, fsync,
/// rename, fsync of the directory). The owner decides what a line means and when to compact (lines() says how
/// many it holds).
///
/// One process at a time: the journal holds an flock on PATH.lock while open (files::lock). Not thread-safe: the owner
/// serialises calls (it holds its own mutex around them).

#include "files.hpp"

#include <engram/error.hpp>
#include <engram/json_dump.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <utility>

#include <fcntl.h>
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
    lock_ = std::make_unique<files::lock>(path_ + ".lock", name_ + " '" + path_ + "' is in use by another process "
                                          "(it holds " + path_ + ".lock): " + busy_hint);
  }

  ~jsonl_journal() { close_fds(); }
  jsonl_journal(jsonl_journal&& o) noexcept { *this = std::move(o); }
  jsonl_journal& operator=(jsonl_journal&& o) noexcept {
    if (this != &o) {
      close_fds();
      path_ = std::move(o.path_);
      name_ = std::move(o.name_);
      lock_ = std::move(o.lock_);
      fd_ = std::exchange(o.fd_, -1);
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
    files::write_all(fd_, dump(j) + '\n', path_);
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
    files::replace(path_, text);
    if (fd_ >= 0) ::close(fd_);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd_ < 0) fail("cannot open " + path_);
    lines_ = 0;
    for (const char c : text) lines_ += c == '\n';
  }

  /// `j` as a journal line's text (invalid UTF-8 replaced, never thrown on).
  static std::string dump(const nlohmann::json& j) {
    return engram::dump_json(j);
  }

  /// Lines in the file since it was last rewritten (an owner compacts when these outgrow its state).
  [[nodiscard]] std::size_t lines() const noexcept { return lines_; }
  /// The file's path; empty: none.
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  [[noreturn]] void fail(const std::string& what) const { files::fail(name_ + ": " + what); }

  void close_fds() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    lock_.reset();
  }

  std::string path_, name_;
  std::unique_ptr<files::lock> lock_;  // held while the journal is open
  int fd_ = -1;
  std::size_t lines_ = 0;
};

}  // namespace engram_app
