#pragma once
/// @file examples/common/metrics.hpp
/// What GET /metrics reports: request counts, latency percentiles and histograms per route and status, and the
/// memory's own counters, as engram's JSON or in the Prometheus text exposition format (version 0.0.4).

#include <engram/error.hpp>
#include <engram/version.hpp>

#ifdef ENGRAM_APP_HTTP
#include <engram/extract/llm.hpp>
#endif

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <charconv>  // std::to_chars
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace engram_app {

/// The media type of the Prometheus text format.
inline constexpr const char* prometheus_content_type = "text/plain; version=0.0.4; charset=utf-8";

/// Whether a GET /metrics asks for the Prometheus text format: `?format=prometheus`, or (no format given) an
/// Accept header naming text/plain or OpenMetrics and not application/json. Anything else keeps the JSON, so
/// a plain `curl` and existing JSON users see what they always did.
/// @throws engram::validation_error for a format other than "json" or "prometheus".
inline bool wants_prometheus(std::string_view format, std::string_view accept) {
  if (format == "prometheus") return true;
  if (format == "json") return false;
  if (!format.empty())
    throw engram::validation_error("'format' must be json or prometheus, got '" + std::string(format) + "'");
  const bool text = accept.find("text/plain") != std::string_view::npos ||
                    accept.find("application/openmetrics-text") != std::string_view::npos;
  return text && accept.find("application/json") == std::string_view::npos;
}

/// Builds a Prometheus text exposition: families (# HELP, # TYPE) then their samples. Escapes help texts and
/// label values as the format requires. Not thread-safe; one per scrape.
class prometheus_text {
 public:
  using labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

  /// Starts the family `name` of `type` (counter, gauge, histogram); its samples must follow.
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    escape(help, false);
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }

  /// One sample `name{labels} value`; `extra` is one more label after `ls` (a histogram's `le`).
  void sample(std::string_view name, labels ls, double value, std::pair<std::string_view, std::string_view> extra = {}) {
    out_ += name;
    if (ls.size() || !extra.first.empty()) {
      char sep = '{';
      auto label = [&](std::string_view k, std::string_view v) {
        out_ += sep;
        out_ += k;
        out_ += "=\"";
        escape(v, true);
        out_ += '"';
        sep = ',';
      };
      for (const auto& [k, v] : ls) label(k, v);
      if (!extra.first.empty()) label(extra.first, extra.second);
      out_ += '}';
    }
    out_ += ' ';
    out_ += number(value);
    out_ += '\n';
  }

  /// A family of one unlabelled sample.
  void single(std::string_view name, std::string_view type, std::string_view help, double value) {
    family(name, type, help);
    sample(name, {}, value);
  }

  /// `v` as the format writes numbers: the shortest round-trip decimal (plain notation where it is short, so
  /// a bucket bound reads le="0.0005" as client libraries write it), +Inf, -Inf, NaN.
  static std::string number(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    std::array<char, 64> buf{};
    const auto a = std::abs(v);
    auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v,
                           a == 0 || (a >= 1e-6 && a < 1e15) ? std::chars_format::fixed : std::chars_format::general);
    if (r.ec != std::errc{}) r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
    return std::string(buf.data(), r.ptr);
  }

  [[nodiscard]] const std::string& str() const noexcept { return out_; }

 private:
  void escape(std::string_view s, bool label_value) {
    for (const char c : s) {
      if (c == '\\') out_ += "\\\\";
      else if (c == '\n') out_ += "\\n";
      else if (c == '"' && label_value) out_ += "\\\"";
      else out_ += c;
    }
  }

  std::string out_;
};

/// The samples of one histogram series `name` (its family already started): cumulative `_bucket`s per bound
/// and +Inf, `_sum` and `_count`. `buckets` holds counts per bound, not cumulative; its last is above every bound.
template <std::size_t Bounds, std::size_t Buckets>
void write_histogram(prometheus_text& out, const std::string& name, prometheus_text::labels ls,
                     const std::array<double, Bounds>& bounds, const std::array<std::uint64_t, Buckets>& buckets,
                     std::uint64_t count, double sum_seconds) {
  static_assert(Buckets == Bounds + 1);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < Bounds; ++i) {
    cumulative += buckets[i];
    out.sample(name + "_bucket", ls, double(cumulative), {"le", prometheus_text::number(bounds[i])});
  }
  out.sample(name + "_bucket", ls, double(count), {"le", "+Inf"});
  out.sample(name + "_sum", ls, sum_seconds);
  out.sample(name + "_count", ls, double(count));
}

/// Request counts, latency percentiles (JSON) and latency histograms (Prometheus) per route and status.
/// Thread-safe: record() and the readers may run at once.
class route_metrics {
 public:
  /// Upper bounds of the latency histogram's buckets, in seconds (+Inf is implied).
  static constexpr std::array<double, 14> bucket_bounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                           0.1,    0.25,  0.5,    1,     2.5,  5,     10};

  /// Records one request of `route` ("METHOD /path") that took `micros` and answered `status`.
  void record(const std::string& route, int status, double micros) {
    std::lock_guard lock(mtx_);
    auto& r = routes_[route];
    ++r.count;
    if (status >= 400) ++r.errors;
    r.window[r.next % window_size] = micros;
    ++r.next;
    auto& h = r.by_status[status];
    const double seconds = micros / 1e6;
    ++h.count;
    h.sum_seconds += seconds;
    // Buckets are stored per bound (not cumulative); the exposition sums them.
    const auto b = std::lower_bound(bucket_bounds.begin(), bucket_bounds.end(), seconds) - bucket_bounds.begin();
    ++h.buckets[std::size_t(b)];
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

  /// engram_http_requests_total and engram_http_request_duration_seconds, labelled method, route, status.
  void write_prometheus(prometheus_text& out) const {
    std::lock_guard lock(mtx_);
    out.family("engram_http_requests_total", "counter", "HTTP requests answered, by route and status.");
    each_series([&](auto& ls, const histogram& h) { out.sample("engram_http_requests_total", ls, double(h.count)); });
    out.family("engram_http_request_duration_seconds", "histogram",
               "Time from receiving a request to its answer, by route and status.");
    each_series([&](auto& ls, const histogram& h) {
      write_histogram(out, "engram_http_request_duration_seconds", ls, bucket_bounds, h.buckets, h.count, h.sum_seconds);
    });
  }

 private:
  static constexpr std::size_t window_size = 1024;
  struct histogram {
    std::uint64_t count = 0;
    double sum_seconds = 0;
    std::array<std::uint64_t, bucket_bounds.size() + 1> buckets{};  ///< the last: above every bound
  };
  struct route {
    std::size_t count = 0;
    std::size_t errors = 0;
    std::size_t next = 0;
    std::array<double, window_size> window{};
    std::map<int, histogram> by_status;
  };

  /// Calls `f(labels, histogram)` for every (route, status) seen; the caller holds the lock.
  template <class F>
  void each_series(F&& f) const {
    for (const auto& [name, r] : routes_) {
      const auto space = name.find(' ');
      const std::string_view method = space == std::string::npos ? std::string_view{} : std::string_view(name).substr(0, space);
      const std::string_view path = space == std::string::npos ? std::string_view(name) : std::string_view(name).substr(space + 1);
      for (const auto& [status, h] : r.by_status) {
        const auto code = std::to_string(status);
        const prometheus_text::labels ls = {{"method", method}, {"route", path}, {"status", code}};
        f(ls, h);
      }
    }
  }

  mutable std::mutex mtx_;
  std::map<std::string, route> routes_;
};

/// The memory's families: memories held (labelled with `store`, the kind of store), pending and failed async
/// adds, the store's write-path counters (file_store), and the LLM extractor's provider calls, unusable
/// replies and bad fact dates (when the memory's extractor is one). Each family appears only when the memory
/// has what it counts.
template <class Memory>
void write_memory_metrics(prometheus_text& out, Memory& memory, std::string_view store) {
  out.family("engram_info", "gauge", "engram's version; always 1.");
  out.sample("engram_info", {{"version", engram::version_string}}, 1);
  out.family("engram_memories", "gauge", "Memories held, by kind of store.");
  out.sample("engram_memories", {{"store", store}}, double(memory.size()));
  if constexpr (requires { memory.pending_adds(); }) {
    out.single("engram_pending_adds", "gauge", "add_async entries accepted and not yet processed.",
               double(memory.pending_adds()));
    out.single("engram_failed_adds", "gauge", "add_async entries that failed every attempt and wait for a retry.",
               double(memory.failed_adds().size()));
  }
  if constexpr (requires { memory.store().stats().syncs; }) {
    const auto s = memory.store().stats();
    out.single("engram_store_commits_total", "counter", "Entries appended to the store's log since it opened.",
               double(s.commits));
    out.single("engram_store_syncs_total", "counter",
               "fdatasync calls that made those entries durable (group commit shares one between writers).",
               double(s.syncs));
    out.single("engram_store_log_bytes", "gauge", "Current size of the store's log.", double(s.log_bytes));
    out.single("engram_store_compactions_total", "counter", "Snapshots written since the store opened.",
               double(s.compactions));
    out.single("engram_store_compacting", "gauge", "1 while the store writes a snapshot in the background.",
               s.compacting ? 1.0 : 0.0);
    out.family("engram_store_fsync_duration_seconds", "histogram",
               "Time each fdatasync of the store's log took (one per group commit).");
    const auto& h = s.sync_latency;
    write_histogram(out, "engram_store_fsync_duration_seconds", {}, h.bounds, h.buckets, h.count, h.sum_seconds);
  }
#ifdef ENGRAM_APP_HTTP
  if constexpr (requires { memory.extractor().template target<engram::llm_extractor>(); }) {
    if (const auto* llm = memory.extractor().template target<engram::llm_extractor>()) {
      const auto calls = llm->stats();
      const auto http = llm->transport().stats();
      const prometheus_text::labels ls = {{"provider", "llm_extractor"}};
      out.family("engram_provider_calls_total", "counter", "Calls made to a provider (retries not counted).");
      out.sample("engram_provider_calls_total", ls, double(calls.calls));
      out.family("engram_provider_http_requests_total", "counter", "HTTP attempts made to a provider, retries included.");
      out.sample("engram_provider_http_requests_total", ls, double(http.requests));
      out.family("engram_provider_retries_total", "counter", "HTTP attempts that followed a retryable failure.");
      out.sample("engram_provider_retries_total", ls, double(http.retries));
      out.family("engram_provider_errors_total", "counter", "Provider calls that failed after every retry.");
      out.sample("engram_provider_errors_total", ls, double(http.failures));
      out.family("engram_provider_unparseable_total", "counter", "Provider replies holding no usable JSON.");
      out.sample("engram_provider_unparseable_total", ls, double(calls.unparseable));
      out.family("engram_provider_bad_dates_total", "counter",
                 "Facts dated by the provider with something other than an ISO-8601 date no later than the "
                 "conversation: kept undated.");
      out.sample("engram_provider_bad_dates_total", ls, double(calls.bad_dates));
    }
  }
#endif
}

}  // namespace engram_app
