#pragma once
/// @file examples/common/request_log.hpp
/// engram-server's request log: one line per request on stderr (text, or JSON with `--log-format json`), with
/// the time, a request id (the client's `X-Request-Id` when it sent a sane one, a fresh one otherwise; sent back
/// in the answer's `X-Request-Id`), the method, route and path, status, latency, the API key's name (never the
/// key), the scope the request named, and the request body only with `--log-bodies`. Provider failures and
/// recoveries get a line of their own. Every value is escaped: a user id holding a newline or a terminal
/// escape cannot forge a line.

#include "provider_settings.hpp"  // settings_error

#include <engram/extract/llm.hpp>
#include <engram/json.hpp>  // engram::printable
#include <engram/json_dump.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace engram_app {

enum class log_format { text, json, off };

/// `--log-format`'s value. @throws settings_error for anything but text, json or off.
inline log_format parse_log_format(std::string_view s) {
  if (s == "text") return log_format::text;
  if (s == "json") return log_format::json;
  if (s == "off") return log_format::off;
  throw settings_error("--log-format expects text, json or off, got '" + engram::printable(s) + "'");
}

/// What one request learned on its way through the server, for its log line. One per worker thread:
/// cpp-httplib runs a request's pre-routing handler, route and logger on the same thread, one request at a time.
struct request_context {
  std::string id;
  std::chrono::steady_clock::time_point start{};
  bool started = false;  ///< false for answers given before routing (413 on Content-Length)
  std::string route;     ///< the route's name, e.g. "GET /v1/memories/{id}/"; empty when no route matched
  std::string key_name;  ///< the API key's name (auth.hpp), never the key
  nlohmann::json scope = nlohmann::json::object();
};

/// The context of the request this thread is serving.
inline request_context& current_request() {
  thread_local request_context ctx;
  return ctx;
}

namespace detail {
/// A client's id is kept when it is 1 to 128 characters of [A-Za-z0-9._:-] (what tracing systems send):
/// anything else could inject text into logs or headers, and gets a fresh id instead.
inline bool sane_request_id(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (const char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == ':' || c == '-'))
      return false;
  return true;
}

inline std::string utc_now_iso8601() {
  const auto now = std::chrono::system_clock::now();
  const auto t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 96> buf{};  // room for any int the compiler imagines in each field
  std::snprintf(buf.data(), buf.size(), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf.data();
}

/// At most 128 bytes of a logged value: a scope value may be as long as a request allows.
inline std::string clipped(std::string_view s) { return std::string(s.substr(0, 128)) + (s.size() > 128 ? "..." : ""); }
}  // namespace detail

/// A fresh request id: 32 hex digits from a per-thread generator seeded from the system's entropy.
inline std::string new_request_id() {
  thread_local std::mt19937_64 gen{(std::uint64_t{std::random_device{}()} << 32) ^ std::random_device{}()};
  static constexpr char hex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (int half = 0; half < 2; ++half) {
    auto v = gen();
    for (int i = 0; i < 16; ++i, v >>= 4) id[static_cast<std::size_t>(half * 16 + i)] = hex[v & 15];
  }
  return id;
}

/// The id of a request whose `X-Request-Id` header is `incoming`: that one when it is sane, a fresh one otherwise.
inline std::string request_id_for(std::string_view incoming) {
  return detail::sane_request_id(incoming) ? std::string(incoming) : new_request_id();
}

/// The scope keys a request named (in its body or query, or at the top of its `filters` as the Platform's
/// search and listing send them), for the log: strings only, clipped.
inline void note_scope(const nlohmann::json& fields) {
  if (!fields.is_object()) return;
  auto& scope = current_request().scope;
  for (const char* key : {"user_id", "agent_id", "run_id", "app_id"})
    if (const auto it = fields.find(key); it != fields.end() && it->is_string())
      scope[key] = detail::clipped(it->get_ref<const std::string&>());
  if (const auto f = fields.find("filters"); f != fields.end() && f->is_object() && !f->contains("filters"))
    note_scope(*f);
}

/// One request's line, as the logger writes it.
struct request_line {
  std::string method;
  std::string path;  ///< the path asked for (ids included), without the query string
  int status = 0;
  std::string body;  ///< the request body, written only with `--log-bodies`
};

/// Writes the server's log lines to a stream (stderr), one whole line per write so that lines from
/// concurrent requests never interleave.
class request_logger {
 public:
  request_logger(log_format format, bool bodies, std::ostream& out = std::cerr)
      : format_(format), bodies_(bodies), out_(out) {}

  [[nodiscard]] bool enabled() const { return format_ != log_format::off; }

  /// The line of the request this thread just answered; resets the thread's context.
  void request(const request_line& r) {
    auto& ctx = current_request();
    if (enabled()) {
      const double ms =
          ctx.started ? std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - ctx.start).count() : 0.0;
      nlohmann::ordered_json j{{"time", detail::utc_now_iso8601()},
                       {"request_id", ctx.id},
                       {"method", r.method},
                       {"route", ctx.route.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(ctx.route)},
                       {"path", detail::clipped(r.path)},
                       {"status", r.status},
                       {"latency_ms", std::round(ms * 1000) / 1000},
                       {"key", ctx.key_name.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(ctx.key_name)},
                       {"scope", ctx.scope}};
      if (bodies_ && !r.body.empty()) j["body"] = r.body.substr(0, max_logged_body) + (r.body.size() > max_logged_body ? "..." : "");
      write(j);
    }
    ctx = request_context{};
  }

  /// A line about something other than a request (`event` names it: provider_failure, provider_recovered).
  void event(std::string_view name, const nlohmann::json& fields) {
    if (!enabled()) return;
    nlohmann::ordered_json j{{"time", detail::utc_now_iso8601()}, {"event", name}};
    for (const auto& [k, v] : fields.items()) j[k] = v;
    write(j);
  }

 private:
  static constexpr std::size_t max_logged_body = 4096;  ///< bytes of a body `--log-bodies` writes

  void write(const nlohmann::ordered_json& j) {
    std::string line;
    if (format_ == log_format::json) {
      line = engram::dump_json(j);
    } else {
      // time, then `key=value` pairs; strings through printable() so control characters show as escapes
      line = j["time"].get<std::string>();
      for (const auto& [k, v] : j.items()) {
        if (k == "time" || v.is_null() || (v.is_object() && v.empty())) continue;
        line += ' ';
        line += k;
        line += '=';
        if (v.is_string()) line += text_value(v.get_ref<const std::string&>());
        else if (v.is_object()) {
          bool first = true;
          for (const auto& [sk, sv] : v.items()) {
            line += first ? "" : ",";
            line += sk + ":" + text_value(sv.is_string() ? sv.get<std::string>() : sv.dump());
            first = false;
          }
        } else line += v.dump();
      }
    }
    line += '\n';
    std::lock_guard lock(mtx_);
    out_ << line << std::flush;
  }

  /// A value in the text format: as it is when it is plain; JSON-quoted (control characters escaped) when it
  /// holds a space, quote, comma, '=' or anything printable() would escape, so the line still splits into its
  /// pairs; C1 controls and invalid UTF-8, which JSON leaves alone, as printable() writes them.
  static std::string text_value(const std::string& s) {
    const auto plain = engram::printable(s);
    if (!s.empty() && plain == s && s.find_first_of(" \",=") == std::string::npos) return s;
    return engram::printable(engram::dump_json(nlohmann::json(s)));
  }

  log_format format_;
  bool bodies_;
  std::ostream& out_;
  std::mutex mtx_;
};

/// Watches a memory's LLM provider between requests and logs the moment it starts failing and the moment it
/// answers again (a failure is a call that failed after every retry; a recovery, a call answered after one),
/// whichever order the checks of concurrent requests run in.
class provider_watch {
 public:
  /// Call after each request; cheap when the memory has no HTTP provider.
  template <class Memory>
  void check(Memory& memory, request_logger& log) {
#ifdef ENGRAM_APP_HTTP
    if constexpr (requires { memory.extractor().template target<engram::llm_extractor>(); }) {
      const auto* llm = memory.extractor().template target<engram::llm_extractor>();
      if (llm == nullptr) return;
      const auto s = llm->transport().stats();
      std::lock_guard lock(mtx_);
      // In this order, so that a failure and the recovery that followed it before this check both get a line.
      if (s.failures > failures_ && !failing_) {
        log.event("provider_failure", {{"provider", "llm_extractor"}, {"failures", s.failures}});
        failing_ = true;
      }
      if (failing_ && s.consecutive_failures == 0) {
        log.event("provider_recovered", {{"provider", "llm_extractor"}, {"failures", s.failures}});
        failing_ = false;
      }
      failures_ = s.failures;
    }
#else
    (void)memory;
    (void)log;
#endif
  }

 private:
  std::mutex mtx_;
  std::uint64_t failures_ = 0;
  bool failing_ = false;
};

}  // namespace engram_app
