// fake-provider: the loopback OpenAI-compatible test server (tests/support/fake_server.hpp) as a process, for shell tests.
//
//   fake-provider [--dimension N] [--chat FILE] [--log FILE]
//
// Listens on 127.0.0.1, a free port, and prints that port on the first line of stdout. Serves /v1/embeddings
// and /api/embed (computed embeddings: hashing_embedder of N dimensions, default 64) and
// /v1/chat/completions (the non-empty lines of FILE as the message contents of successive replies; a line
// `!STATUS`, e.g. `!503`, is a failed reply with that HTTP status; 400 once they are used up). On SIGTERM or SIGINT it writes to the log file one line per path, "PATH COUNT", and the
// body of each chat request ("CHAT JSON"), and each distinct Authorization header ("AUTH VALUE"), then exits 0.
#include "support/fake_server.hpp"

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <pthread.h>
#include <string>

int main(int argc, char** argv) {
  std::size_t dimension = 64;
  std::string chat_file, log_file;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) {
      std::cerr << "fake-provider: " << a << " needs a value\n";
      return 2;
    }
    if (a == "--dimension") dimension = std::stoul(argv[++i]);
    else if (a == "--chat") chat_file = argv[++i];
    else if (a == "--log") log_file = argv[++i];
    else {
      std::cerr << "fake-provider: unknown option " << a << '\n';
      return 2;
    }
  }
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);  // before the server's threads start: they inherit the mask

  engram_test::fake_server server(dimension);
  if (!chat_file.empty()) {
    std::ifstream in(chat_file);
    if (!in) {
      std::cerr << "fake-provider: cannot read " << chat_file << '\n';
      return 2;
    }
    for (std::string line; std::getline(in, line);)
      if (line.size() > 1 && line[0] == '!')
        server.push("/v1/chat/completions", engram_test::reply{std::stoi(line.substr(1)), R"({"error": {"message": "scripted failure"}})"});
      else if (!line.empty())
        server.push_chat(line);
  }
  std::cout << server.port() << std::endl;

  int sig = 0;
  sigwait(&stop, &sig);
  if (!log_file.empty()) {
    std::ofstream log(log_file);
    std::map<std::string, std::size_t> counts;
    for (const auto& r : server.requests()) ++counts[r.path];
    for (const auto& [path, n] : counts) log << path << ' ' << n << '\n';
    for (const auto& r : server.requests("/v1/chat/completions")) log << "CHAT " << r.body.dump() << '\n';
    std::map<std::string, std::size_t> keys;  // the Authorization headers seen, each once
    for (const auto& r : server.requests()) ++keys[r.authorization];
    for (const auto& [auth, n] : keys) log << "AUTH " << auth << '\n';
  }
  return 0;
}
