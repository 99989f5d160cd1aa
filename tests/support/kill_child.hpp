#pragma once
/// @file tests/support/kill_child.hpp
/// For crash tests: runs work in a forked child and kills it with SIGKILL at a chosen moment.

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace engram_test {

/// The child's end of the pipe: ready() once set up (the kill is timed from it), report(line) for each
/// step done (e.g. a write acknowledged), which the parent reads back after the kill.
class child_channel {
 public:
  explicit child_channel(int fd) : fd_(fd) {}
  void ready() const { send("R"); }
  void report(const std::string& line) const { send(line + "\n"); }

 private:
  void send(const std::string& s) const {
    if (::write(fd_, s.data(), s.size()) != static_cast<ssize_t>(s.size())) ::_exit(4);
  }
  int fd_;
};

/// What a killed child had said.
struct killed_child {
  bool ready = false;                 ///< it called ready() before it died
  bool killed = false;                ///< SIGKILL ended it (an exit means it failed: 3 an exception, 4 the pipe)
  int exit_code = -1;                 ///< when it exited instead
  std::vector<std::string> reported;  ///< its report() lines, in order
};

/// Forks; the child runs work(const child_channel&) in a new thread (fork copies per-thread state such as the
/// uuid generator, so a fresh thread keeps ids unique), exits 3 if it throws and 5 if it returns. The parent
/// waits for ready(), waits `delay`, kills the child with SIGKILL and reads what it reported.
template <class Work>
killed_child run_and_kill(Work&& work, std::chrono::microseconds delay) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::close(fds[0]);
    std::thread([&] {
      try {
        work(child_channel(fds[1]));
      } catch (...) {
        ::_exit(3);
      }
    }).join();
    ::_exit(5);
  }
  ::close(fds[1]);
  killed_child out;
  char first = 0;
  out.ready = ::read(fds[0], &first, 1) == 1 && first == 'R';
  if (out.ready) std::this_thread::sleep_for(delay);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  out.killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  if (WIFEXITED(status)) out.exit_code = WEXITSTATUS(status);
  std::string got;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) got.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  std::istringstream lines(got);
  for (std::string line; std::getline(lines, line);) out.reported.push_back(line);
  return out;
}

/// Random kill delays for a series of rounds, drawn uniformly from [min, max). After a round in which the child
/// reported nothing (the kill landed before its first step: a slow machine, a sanitizer, a busy disk), max
/// doubles, up to `cap`; after one in which it reported more than 32 steps, it halves, down to the max first
/// given. The kills keep landing at random moments, after some progress often enough for the test to mean
/// something however slow one step is here, and the rounds stay short.
class kill_delays {
 public:
  kill_delays(std::uint32_t seed, std::chrono::microseconds min, std::chrono::microseconds max,
              std::chrono::microseconds cap = std::chrono::seconds(2))
      : rng_(seed), min_(min), max_(max), first_max_(max), cap_(cap) {}

  [[nodiscard]] std::chrono::microseconds next() {
    return std::chrono::microseconds(
        std::uniform_int_distribution<std::int64_t>(min_.count(), std::max(min_.count(), max_.count() - 1))(rng_));
  }

  /// Tells what the round's child reported.
  void observed(const killed_child& c) {
    if (c.reported.empty()) max_ = std::min(max_ * 2, cap_);
    if (c.reported.size() > 32) max_ = std::max(max_ / 2, first_max_);
  }

 private:
  std::mt19937 rng_;
  std::chrono::microseconds min_, max_, first_max_, cap_;
};

}  // namespace engram_test
