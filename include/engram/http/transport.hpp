// engram-requires: http
#pragma once
/// @file http/transport.hpp
/// JSON over HTTP(S) to an OpenAI-compatible server: API key, timeouts, retries with backoff, typed errors.

#include <engram/error.hpp>
#include <engram/json_dump.hpp>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace engram::inline v0 {

/// Where and how to reach a server. Every member has a default; set what differs.
struct http_options {
  /// Scheme, host, optional port and path prefix, e.g. "https://api.openai.com/v1" or
  /// "http://localhost:11434/v1". Request paths are appended to it.
  std::string base_url = "https://api.openai.com/v1";
  /// Sent as "Authorization: Bearer <key>". Empty: the environment variable OPENAI_API_KEY (read once, at
  /// construction) when `use_env_api_key`; no Authorization header when both are empty (Ollama, vLLM).
  std::string api_key{};
  bool use_env_api_key = true;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds read_timeout{120'000};  ///< per read; a chat completion may take a while
  /// Retries after the first attempt, on 408, 409, 429, 5xx, connection failures and timeouts.
  unsigned max_retries = 3;
  std::chrono::milliseconds initial_backoff{500};  ///< doubled per retry, with jitter
  std::chrono::milliseconds max_backoff{8'000};
  /// A server's Retry-After (or retry-after-ms) is obeyed when at most this long; longer ones fall back to
  /// the computed backoff, so a misbehaving server cannot park a caller for an hour.
  std::chrono::milliseconds max_retry_after{60'000};
  /// Extra request headers, e.g. an organisation header.
  std::vector<std::pair<std::string, std::string>> headers{};
  /// Azure OpenAI: when set, every request carries the query parameter `api-version=<this>` (e.g.
  /// "2024-10-21"); base_url is then "https://<resource>.openai.azure.com/openai/deployments/<deployment>".
  std::string api_version{};
  /// true: the key is sent as "api-key: <key>" (Azure OpenAI) instead of "Authorization: Bearer <key>".
  bool api_key_header = false;
};

/// Counters of one transport (shared by its moved-to instance). Read with http_transport::stats().
struct transport_stats {
  std::uint64_t requests = 0;  ///< HTTP attempts made, retries included
  std::uint64_t retries = 0;   ///< attempts that followed a retryable failure
  std::uint64_t failures = 0;  ///< calls that ended in provider_error
  std::uint64_t consecutive_failures = 0;  ///< failures since the last call answered (0: the provider answers)
};

namespace detail {

/// "https://host:port/prefix/" -> {"https://host:port", "/prefix"}. @throws validation_error.
inline std::pair<std::string, std::string> split_base_url(std::string_view url) {
  const auto scheme_end = url.find("://");
  const std::string_view scheme = scheme_end == std::string_view::npos ? std::string_view{} : url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https")
    throw validation_error("http: base_url '" + std::string(url) +
                           "' must start with http:// or https:// (e.g. http://localhost:11434/v1)");
  const auto host_begin = scheme_end + 3;
  auto path_begin = url.find('/', host_begin);
  if (path_begin == std::string_view::npos) path_begin = url.size();
  if (path_begin == host_begin) throw validation_error("http: base_url '" + std::string(url) + "' names no host");
  std::string prefix(url.substr(path_begin));
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  return {std::string(url.substr(0, path_begin)), std::move(prefix)};
}

/// The first `n` bytes of `body`, cut at a UTF-8 boundary, with an ellipsis when cut.
inline std::string excerpt(std::string_view body, std::size_t n = 300) {
  if (body.size() <= n) return std::string(body);
  while (n > 0 && (static_cast<unsigned char>(body[n]) & 0xC0) == 0x80) --n;
  return std::string(body.substr(0, n)) + "...";
}

/// Reads an HTTP-date (RFC 7231 section 7.1.1.1): the IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", and the
/// obsolete forms a recipient must also accept, RFC 850 "Sunday, 06-Nov-94 08:49:37 GMT" (two-digit years
/// below 70 are 20xx) and asctime "Sun Nov  6 08:49:37 1994". @returns nothing for anything else.
inline std::optional<std::chrono::sys_seconds> parse_http_date(std::string_view s) {
  using namespace std::chrono;
  constexpr std::string_view months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  auto month_of = [&](std::string_view m) {
    for (unsigned i = 0; i < 12; ++i)
      if (months[i] == m) return i + 1;
    return 0u;
  };
  auto num = [](std::string_view t, int& out) {
    while (!t.empty() && t.front() == ' ') t.remove_prefix(1);  // asctime pads the day with a space
    if (t.empty()) return false;
    out = 0;
    for (const char c : t) {
      if (c < '0' || c > '9') return false;
      out = out * 10 + (c - '0');
    }
    return true;
  };
  int day_n = 0, year_n = 0;
  unsigned month_n = 0;
  std::string_view clock;
  if (s.size() == 29 && s.substr(3, 2) == ", " && s.substr(25) == " GMT" && s[7] == ' ' && s[11] == ' ' &&
      s[16] == ' ') {  // IMF-fixdate
    if (!num(s.substr(5, 2), day_n) || !num(s.substr(12, 4), year_n)) return std::nullopt;
    month_n = month_of(s.substr(8, 3));
    clock = s.substr(17, 8);
  } else if (const auto comma = s.find(", "); comma != std::string_view::npos && comma < 10 &&
                                               s.size() == comma + 2 + 22 && s.substr(s.size() - 4) == " GMT") {
    const auto r = s.substr(comma + 2);  // RFC 850: "06-Nov-94 08:49:37 GMT"
    if (r[2] != '-' || r[6] != '-' || r[9] != ' ' || !num(r.substr(0, 2), day_n) || !num(r.substr(7, 2), year_n))
      return std::nullopt;
    year_n += year_n < 70 ? 2000 : 1900;
    month_n = month_of(r.substr(3, 3));
    clock = r.substr(10, 8);
  } else if (s.size() == 24 && s[3] == ' ' && s[7] == ' ' && s[10] == ' ' && s[19] == ' ') {  // asctime
    if (!num(s.substr(8, 2), day_n) || !num(s.substr(20, 4), year_n)) return std::nullopt;
    month_n = month_of(s.substr(4, 3));
    clock = s.substr(11, 8);
  } else {
    return std::nullopt;
  }
  int hh = 0, mm = 0, ss = 0;
  if (clock.size() != 8 || clock[2] != ':' || clock[5] != ':' || !num(clock.substr(0, 2), hh) ||
      !num(clock.substr(3, 2), mm) || !num(clock.substr(6, 2), ss) || hh > 23 || mm > 59 || ss > 60)
    return std::nullopt;
  const year_month_day ymd{year{year_n}, month{month_n}, day{static_cast<unsigned>(day_n)}};
  if (!ymd.ok()) return std::nullopt;
  return sys_days{ymd} + hours{hh} + minutes{mm} + seconds{ss};
}

/// A delay the server asked for: `retry-after-ms` (milliseconds), or `Retry-After` as seconds or as an
/// HTTP-date (the time until then, as of `now`; a date in the past means no wait).
inline std::optional<std::chrono::milliseconds> retry_after(
    const httplib::Response& r, std::chrono::system_clock::time_point now = std::chrono::system_clock::now()) {
  auto number = [](const std::string& s) -> std::optional<double> {
    if (s.empty()) return std::nullopt;
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (end == s.c_str() || *end != '\0' || !(v >= 0.0) || v > 1e9) return std::nullopt;
    return v;
  };
  if (auto ms = number(r.get_header_value("retry-after-ms")))
    return std::chrono::milliseconds(static_cast<std::int64_t>(*ms));
  const auto value = r.get_header_value("Retry-After");
  if (auto s = number(value)) return std::chrono::milliseconds(static_cast<std::int64_t>(*s * 1000.0));
  if (auto when = parse_http_date(value)) {
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(*when - now);
    return wait.count() > 0 ? wait : std::chrono::milliseconds(0);
  }
  return std::nullopt;
}

/// `v` percent-encoded for a URL query (RFC 3986 unreserved characters kept).
inline std::string query_encode(std::string_view v) {
  constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : v) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out.push_back(ch);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

inline std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace detail

/// Posts JSON to paths under a base URL and returns the parsed JSON reply.
///
/// Retries 408, 409, 429, 5xx, connection failures and timeouts up to `max_retries` times, waiting
/// `initial_backoff * 2^attempt` (capped at `max_backoff`) scaled by a random factor in [0.5, 1], or what
/// the server's Retry-After says (seconds or an HTTP-date). Other statuses fail at once. Failure is a provider_error carrying the
/// status (0 when no response arrived) and the start of the body.
///
/// Thread-safe: concurrent calls each use their own connection (idle connections are pooled and kept
/// alive). Movable, not copyable; a moved-from transport must not be used.
class http_transport {
 public:
  /// @throws validation_error for a base_url that is not http(s)://host[:port][/prefix].
  explicit http_transport(http_options options = {}) : opts_(std::move(options)) {
    auto [origin, prefix] = detail::split_base_url(opts_.base_url);
    origin_ = std::move(origin);
    prefix_ = std::move(prefix);
    if (opts_.api_key.empty() && opts_.use_env_api_key)
      if (const char* k = std::getenv("OPENAI_API_KEY")) opts_.api_key = k;
    for (const auto& [k, v] : opts_.headers) headers_.emplace(k, v);
    if (!opts_.api_key.empty()) {
      if (opts_.api_key_header)
        headers_.emplace("api-key", opts_.api_key);
      else
        headers_.emplace("Authorization", "Bearer " + opts_.api_key);
    }
    shared_->jitter_seed.store(
        detail::splitmix64(static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count())));
  }

  http_transport(http_transport&&) noexcept = default;
  http_transport& operator=(http_transport&&) noexcept = default;

  /// POSTs `body` to base_url + `path` and parses the 2xx reply as JSON.
  /// @throws provider_error after the retries, for a non-retryable status, or for a reply that is not JSON.
  [[nodiscard]] nlohmann::json post_json(std::string_view path, const nlohmann::json& body) const {
    std::string full_path = prefix_ + std::string(path);
    if (!opts_.api_version.empty())
      full_path += (path.find('?') == std::string_view::npos ? "?api-version=" : "&api-version=") +
                   detail::query_encode(opts_.api_version);
    const std::string payload = engram::dump_json(body);
    const std::string what = "POST " + origin_ + full_path;
    for (unsigned attempt = 0;; ++attempt) {
      auto client = acquire();
      ++shared_->requests;
      if (attempt > 0) ++shared_->retries;
      auto res = client->Post(full_path, headers_, payload, "application/json");
      std::optional<std::chrono::milliseconds> asked;
      int status = 0;
      std::string failure;
      if (!res) {
        failure = what + " failed: " + describe(res.error());
        if (!transient(res.error())) fail(failure, 0, {});
      } else {
        status = res->status;
        if (status >= 200 && status < 300) {
          release(std::move(client));
          auto parsed = nlohmann::json::parse(res->body, nullptr, false);
          if (parsed.is_discarded()) fail(what + ": the reply is not JSON", status, res->body);
          shared_->consecutive_failures = 0;
          return parsed;
        }
        const bool retryable = status == 408 || status == 409 || status == 429 || status >= 500;
        if (!retryable || attempt >= opts_.max_retries)
          fail(what + " returned HTTP " + std::to_string(status) +
                   (attempt > 0 ? " after " + std::to_string(attempt + 1) + " attempts" : std::string()),
               status, res->body);
        asked = detail::retry_after(*res);
        release(std::move(client));
      }
      if (!res && attempt >= opts_.max_retries)
        fail(failure + " after " + std::to_string(attempt + 1) + " attempt(s)", 0, {});
      std::this_thread::sleep_for(delay(attempt, asked));
    }
  }

  /// What this transport has done so far.
  [[nodiscard]] transport_stats stats() const noexcept {
    return {shared_->requests.load(), shared_->retries.load(), shared_->failures.load(),
            shared_->consecutive_failures.load()};
  }

  [[nodiscard]] const http_options& options() const noexcept { return opts_; }
  /// "scheme://host:port" of the base URL.
  [[nodiscard]] const std::string& origin() const noexcept { return origin_; }

 private:
  struct shared_state {
    std::mutex mtx;
    std::vector<std::unique_ptr<httplib::Client>> idle;
    std::atomic<std::uint64_t> requests{0}, retries{0}, failures{0}, consecutive_failures{0}, jitter_seed{0};
  };

  std::unique_ptr<httplib::Client> acquire() const {
    {
      std::lock_guard lock(shared_->mtx);
      if (!shared_->idle.empty()) {
        auto c = std::move(shared_->idle.back());
        shared_->idle.pop_back();
        return c;
      }
    }
    auto c = std::make_unique<httplib::Client>(origin_);
    c->set_connection_timeout(opts_.connect_timeout);
    c->set_read_timeout(opts_.read_timeout);
    c->set_write_timeout(opts_.read_timeout);
    c->set_keep_alive(true);
    c->set_tcp_nodelay(true);  // a request is written in two parts: no Nagle delay between them
    return c;
  }

  static std::string describe(httplib::Error e) {
    using E = httplib::Error;
    switch (e) {
      case E::Connection: return "could not connect";
      case E::ConnectionTimeout: return "connection timed out";
      case E::Read: return "no complete reply (read timeout or connection closed)";
      case E::Write: return "could not send the request";
      case E::SSLServerVerification: return "the server's TLS certificate was not accepted";
      default: return "HTTP client error '" + httplib::to_string(e) + "'";
    }
  }

  /// Connection trouble worth another try; certificate and configuration errors are not.
  static bool transient(httplib::Error e) noexcept {
    using E = httplib::Error;
    return e == E::Connection || e == E::ConnectionTimeout || e == E::Read || e == E::Write || e == E::SSLConnection ||
           e == E::Unknown;
  }

  void release(std::unique_ptr<httplib::Client> c) const {
    std::lock_guard lock(shared_->mtx);
    if (shared_->idle.size() < 16) shared_->idle.push_back(std::move(c));
  }

  [[noreturn]] void fail(const std::string& message, int status, std::string_view body) const {
    ++shared_->failures;
    ++shared_->consecutive_failures;
    const auto ex = detail::excerpt(body);
    throw provider_error(ex.empty() ? message : message + ": " + ex, status, ex);
  }

  std::chrono::milliseconds delay(unsigned attempt, std::optional<std::chrono::milliseconds> asked) const {
    if (asked && *asked <= opts_.max_retry_after) return *asked;
    const auto cap = static_cast<double>(opts_.max_backoff.count());
    const double base = std::min(cap, static_cast<double>(opts_.initial_backoff.count()) *
                                          static_cast<double>(std::uint64_t{1} << std::min(attempt, 30u)));
    const auto r = detail::splitmix64(shared_->jitter_seed.fetch_add(0x9E3779B97F4A7C15ull));
    const double factor = 0.5 + 0.5 * static_cast<double>(r >> 11) / static_cast<double>(std::uint64_t{1} << 53);
    return std::chrono::milliseconds(static_cast<std::int64_t>(base * factor));
  }

  http_options opts_;
  std::string origin_;
  std::string prefix_;
  httplib::Headers headers_;
  std::unique_ptr<shared_state> shared_ = std::make_unique<shared_state>();
};

}  // namespace engram::inline v0
