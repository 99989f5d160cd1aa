// A bounded load run against a live engram-server: C clients send searches (and a share of adds) for T
// seconds; prints requests/s and client-side p50/p95/p99 and the slowest request, then the server's own per-route percentiles.
//   bench_server_load PORT [--clients 16] [--seconds 20] [--users 1000] [--add-percent 10]
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

using nlohmann::json;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PORT [--clients N] [--seconds S] [--users U] [--add-percent P]\n", argv[0]);
    return 2;
  }
  const int port = std::stoi(argv[1]);
  int clients = 16, seconds = 20, users = 1000, add_percent = 10;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const int v = std::stoi(argv[i + 1]);
    if (a == "--clients") clients = v;
    else if (a == "--seconds") seconds = v;
    else if (a == "--users") users = v;
    else if (a == "--add-percent") add_percent = v;
  }
  static const char* words[] = {"coffee", "travel", "garden", "meeting", "python", "piano", "allergy", "dog",
                                "budget", "flight", "recipe", "doctor", "birthday", "project", "music", "book"};
  std::mutex mtx;
  std::vector<double> search_us, add_us;
  std::atomic<long> errors{0};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  std::vector<std::thread> pool;
  for (int c = 0; c < clients; ++c)
    pool.emplace_back([&, c] {
      httplib::Client cli("127.0.0.1", port);
      cli.set_keep_alive(true);
      cli.set_tcp_nodelay(true);
      std::mt19937 g(unsigned(c) + 1);
      std::vector<double> s_local, a_local;
      while (std::chrono::steady_clock::now() < deadline) {
        const auto user = "user" + std::to_string(g() % unsigned(users));
        const bool add = int(g() % 100) < add_percent;
        const std::string text = std::string(words[g() % 16]) + " " + words[g() % 16] + " " + std::to_string(g() % 1000);
        const auto t0 = std::chrono::steady_clock::now();
        auto r = add ? cli.Post("/memories", json{{"messages", "note about " + text}, {"user_id", user}}.dump(), "application/json")
                     : cli.Post("/search", json{{"query", text}, {"user_id", user}, {"top_k", 5}}.dump(), "application/json");
        const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
        if (!r || r->status != 200) {
          ++errors;
          continue;
        }
        (add ? a_local : s_local).push_back(us);
      }
      std::lock_guard lock(mtx);
      search_us.insert(search_us.end(), s_local.begin(), s_local.end());
      add_us.insert(add_us.end(), a_local.begin(), a_local.end());
    });
  for (auto& t : pool) t.join();
  auto report = [&](const char* what, std::vector<double>& v) {
    std::sort(v.begin(), v.end());
    auto pct = [&](double p) { return v.empty() ? 0.0 : v[std::min(v.size() - 1, std::size_t(p * double(v.size())))] / 1000.0; };
    std::printf("%-7s %8zu requests  %8.0f req/s   client p50 %6.2f ms  p95 %6.2f ms  p99 %6.2f ms  max %7.2f ms\n",
                what, v.size(), double(v.size()) / seconds, pct(0.50), pct(0.95), pct(0.99),
                v.empty() ? 0.0 : v.back() / 1000.0);
  };
  std::printf("%d clients, %d s, %d users, %d%% adds; errors: %ld\n", clients, seconds, users, add_percent, errors.load());
  report("search", search_us);
  report("add", add_us);
  httplib::Client cli("127.0.0.1", port);
  if (auto r = cli.Get("/metrics"); r && r->status == 200) {
    const auto m = json::parse(r->body);
    for (const char* route : {"POST /search", "POST /memories"})
      if (m["routes"].contains(route)) {
        const auto& x = m["routes"][route];
        std::printf("server-side %-15s p50 %6.3f ms  p95 %6.3f ms  p99 %6.3f ms (last 1024 requests)\n", route,
                    x["p50_us"].get<double>() / 1000, x["p95_us"].get<double>() / 1000, x["p99_us"].get<double>() / 1000);
      }
    std::printf("memories held: %zu\n", m["memories"].get<std::size_t>());
  }
  return errors.load() == 0 ? 0 : 1;
}
