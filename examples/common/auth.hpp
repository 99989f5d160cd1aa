#pragma once
/// @file examples/common/auth.hpp
/// API keys for engram-server: loaded from a file, checked per request, with a per-key rate limit.
///
/// Key file: one key per line, `KEY ROLE [USER_ID] [org=ORG project=PROJECT]`, ROLE is `admin` or `user`; a
/// `user` key must name the user it is bound to. `org=` and `project=` (both or neither) bind the key to a
/// project: every request with it is confined to that project's memories, whatever it names (an admin key too).
/// An admin key bound to no project is server-wide: it may name any project. Blank lines and lines starting with
/// `#` are ignored.

#include "service.hpp"

#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>

namespace engram_app {

struct api_key {
  std::string key;
  principal who;
};

/// Reads a key file. @throws engram::validation_error naming the line that is wrong.
inline std::map<std::string, principal> load_keys(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw engram::validation_error("cannot read key file '" + path + "'");
  std::map<std::string, principal> keys;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    std::istringstream ls(line);
    std::string key, role, user, word;
    if (!(ls >> key) || key[0] == '#') continue;
    const std::string where = path + ":" + std::to_string(n) + ": ";
    if (!(ls >> role) || (role != "admin" && role != "user"))
      throw engram::validation_error(where + "expected `KEY admin|user [USER_ID] [org=ORG project=PROJECT]`");
    principal who{"", "", role == "admin"};
    while (ls >> word) {
      auto bind = [&](std::string_view prefix, std::string& to) {
        if (word.rfind(prefix, 0) != 0) return false;
        if (!to.empty()) throw engram::validation_error(where + "'" + std::string(prefix) + "' is given twice");
        to = word.substr(prefix.size());
        if (to.empty()) throw engram::validation_error(where + "'" + std::string(prefix) + "' needs a value");
        engram::detail::validate_scope_id(prefix.substr(0, prefix.size() - 1) == "org" ? "org_id" : "project_id", to,
                                          where + "key");
        return true;
      };
      if (bind("org=", who.org_id) || bind("project=", who.project_id)) continue;
      if (!who.bound_user_id.empty() || !who.org_id.empty() || !who.project_id.empty())
        throw engram::validation_error(where + "unexpected '" + word + "'");
      who.bound_user_id = user = word;
    }
    if (who.org_id.empty() != who.project_id.empty())
      throw engram::validation_error(where + "'org=' and 'project=' bind a key to a project together: give both");
    if (role == "user" && user.empty()) throw engram::validation_error(where + "a user key must name its user id");
    if (key.size() < 16) throw engram::validation_error(where + "keys must be at least 16 characters");
    who.name = role + ":" + (user.empty() ? key.substr(0, 4) : user) +
               (who.project_id.empty() ? "" : "@" + who.org_id + "/" + who.project_id);
    if (!keys.emplace(key, who).second) throw engram::validation_error(where + "duplicate key");
  }
  if (keys.empty()) throw engram::validation_error("key file '" + path + "' holds no key");
  return keys;
}

/// The key in `Authorization: Token KEY` (Mem0's form) or `Authorization: Bearer KEY`; empty when absent.
inline std::string key_from_header(const std::string& header) {
  for (const char* scheme : {"Token ", "Bearer ", "token ", "bearer "}) {
    const std::string s(scheme);
    if (header.rfind(s, 0) == 0) return header.substr(s.size());
  }
  return {};
}

/// A token bucket per key: `rate` requests per second on average, bursts up to `rate`. 0 disables it.
class rate_limiter {
 public:
  explicit rate_limiter(double rate) : rate_(rate) {}
  bool allow(const std::string& key) {
    if (rate_ <= 0) return true;
    std::lock_guard lock(mtx_);
    const auto now = std::chrono::steady_clock::now();
    auto [it, fresh] = buckets_.try_emplace(key, bucket{rate_, now});
    auto& b = it->second;
    if (!fresh) {
      b.tokens = std::min(rate_, b.tokens + rate_ * std::chrono::duration<double>(now - b.last).count());
      b.last = now;
    }
    if (b.tokens < 1.0) return false;
    b.tokens -= 1.0;
    return true;
  }

 private:
  struct bucket {
    double tokens;
    std::chrono::steady_clock::time_point last;
  };
  double rate_;
  std::mutex mtx_;
  std::map<std::string, bucket> buckets_;
};

}  // namespace engram_app
