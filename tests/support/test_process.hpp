#pragma once
/// @file tests/support/test_process.hpp
/// For the MCP tests: a child process with pipes on its stdin and stdout.

#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <stdexcept>
#include <string>
#include <vector>

namespace engram_test {

/// Runs `argv` with its stdin and stdout on pipes. The destructor closes stdin, sends `stop_signal` (when
/// not 0) and reaps the child. Not thread-safe.
class child_process {
 public:
  explicit child_process(std::vector<std::string> argv, int stop_signal = 0) : stop_signal_(stop_signal) {
    // built before fork: the child of a threaded process must not allocate (another thread may have held the
    // allocator's lock when it was forked)
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);  // a test that dies leaves no server behind
      dup2(in[0], STDIN_FILENO);
      dup2(out[1], STDOUT_FILENO);
      for (int fd : {in[0], in[1], out[0], out[1]}) close(fd);
      execv(args[0], args.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_ = in[1];
    from_ = out[0];
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  ~child_process() {
    if (pid_ > 0) {
      if (stop_signal_) kill(pid_, stop_signal_);
      (void)finish();
    }
    if (from_ >= 0) close(from_);
  }

  /// Closes the child's stdin and waits for it; its exit status, or -1 if a signal ended it. Calling it
  /// again returns the same status.
  int finish() {
    if (to_ >= 0) close(to_);
    to_ = -1;
    if (pid_ > 0) {
      int st = 0;
      waitpid(pid_, &st, 0);
      pid_ = -1;
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }
    return status_;
  }

  /// Writes all of `text` to the child's stdin.
  void write_all(const std::string& text) {
    for (std::size_t done = 0; done < text.size();) {
      const auto n = write(to_, text.data() + done, text.size() - done);
      if (n <= 0) throw std::runtime_error("write to the child failed");
      done += std::size_t(n);
    }
  }

  /// The next line of the child's stdout, without the newline. @throws std::runtime_error after
  /// `timeout_ms` of silence or at end of output.
  std::string read_line(int timeout_ms = 10000) {
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        auto line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      pollfd p{from_, POLLIN, 0};
      if (poll(&p, 1, timeout_ms) != 1) throw std::runtime_error("no output from the child in time");
      char chunk[65536];
      const auto n = read(from_, chunk, sizeof chunk);
      if (n <= 0) throw std::runtime_error("the child closed its output");
      buf_.append(chunk, std::size_t(n));
    }
  }

 private:
  pid_t pid_ = -1;
  int stop_signal_ = 0;
  int status_ = -1;
  int to_ = -1, from_ = -1;
  std::string buf_;
};

}  // namespace engram_test
