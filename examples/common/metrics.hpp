#pragma once
/// @file examples/common/metrics.hpp
/// Request counts and latency percentiles per route, for GET /metrics. Thread-safe.

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace engram_app {

class route_metrics {
 public:
  /// Records one request of `route` that took `micros` and answered `status`.
  void record(const std::string& route, int status, double micros) {
    std::lock_guard lock(mtx_);
    auto& r = routes_[route];
    ++r.count;
    if (status >= 400) ++r.errors;
    r.window[r.next % window_size] = micros;
    ++r.next;
  }

  /// {"routes": {route: {"count","errors","p50_us","p95_us","p99_us"}}}; percentiles over the last 1024 requests.
  nlohmann::json snapshot() const {
    std::lock_guard lock(mtx_);
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [name, r] : routes_) {
      std::vector<double> v(r.window.begin(), r.window.begin() + std::ptrdiff_t(std::min(r.next, window_size)));
      std::sort(v.begin(), v.end());
      auto pct = [&](double p) { return v.empty() ? 0.0 : v[std::min(v.size() - 1, std::size_t(p * double(v.size())))]; };
      out[name] = {{"count", r.count}, {"errors", r.errors}, {"p50_us", pct(0.50)}, {"p95_us", pct(0.95)}, {"p99_us", pct(0.99)}};
    }
    return nlohmann::json{{"routes", out}};
  }

 private:
  static constexpr std::size_t window_size = 1024;
  struct route {
    std::size_t count = 0;
    std::size_t errors = 0;
    std::size_t next = 0;
    std::array<double, window_size> window{};
  };
  mutable std::mutex mtx_;
  std::map<std::string, route> routes_;
};

}  // namespace engram_app
