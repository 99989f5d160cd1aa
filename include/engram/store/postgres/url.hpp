// engram-requires: postgres
#pragma once
/// @file store/postgres/url.hpp
/// postgres:// URLs as given to `engram-server --store`: libpq's part and engram's own parameters.

#include <engram/error.hpp>
#include <engram/store/postgres/options.hpp>

#include <cstddef>
#include <stdexcept>  // std::stoi's errors
#include <string>
#include <string_view>

namespace engram::inline v0 {

/// A libpq connection URL plus engram's own settings, as given to `engram-server --store postgres://...`.
struct postgres_location {
  std::string conninfo;             ///< the URL without engram's parameters: what libpq connects with
  postgres_store_options options;   ///< with schema, pool_size and the timeouts taken from the URL
  std::string shard;                ///< `shard=NAME`: the database's name on a sharded store's ring (or empty)
};

/// Splits `postgres://user@host:port/db?schema=s&pool=8&statement_timeout_ms=5000&sslmode=...` (or
/// `postgresql://`) into libpq's URL and postgres_store_options: the parameters `schema`, `pool`,
/// `statement_timeout_ms`, `reconnect_timeout_ms`, `group_commit` (1/0/true/false) and `shard` are engram's and are removed; every other
/// parameter is left for libpq.
/// @throws validation_error for another scheme or a bad value, naming it.
inline postgres_location parse_postgres_url(std::string_view url) {
  postgres_location out;
  if (!url.starts_with("postgres://") && !url.starts_with("postgresql://"))
    throw validation_error("postgres store: '" + std::string(url) + "' is not a postgres:// or postgresql:// URL");
  const auto q = url.find('?');
  out.conninfo = std::string(url.substr(0, q));
  if (q == std::string_view::npos) return out;
  std::string rest;
  auto query = url.substr(q + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto eq = item.find('=');
    const auto key = item.substr(0, eq);
    const std::string value(eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1));
    auto number = [&](int lo) {
      std::size_t used = 0;
      int v = 0;
      try {
        v = std::stoi(value, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != value.size() || v < lo)
        throw validation_error("postgres store URL: " + std::string(key) + "='" + value + "' is not an integer >= " +
                               std::to_string(lo));
      return v;
    };
    if (key == "schema") {
      out.options.schema = value;
    } else if (key == "pool") {
      out.options.pool_size = static_cast<std::size_t>(number(1));
    } else if (key == "statement_timeout_ms") {
      out.options.statement_timeout_ms = number(0);
    } else if (key == "reconnect_timeout_ms") {
      out.options.reconnect_timeout_ms = number(0);
    } else if (key == "group_commit") {
      if (value != "0" && value != "1" && value != "true" && value != "false")
        throw validation_error("postgres store URL: group_commit='" + value + "' is not 1, 0, true or false");
      out.options.group_commit = value == "1" || value == "true";
    } else if (key == "shard") {
      out.shard = value;
    } else if (!item.empty()) {
      rest += (rest.empty() ? "?" : "&") + std::string(item);
    }
  }
  out.conninfo += rest;
  return out;
}

}  // namespace engram::inline v0
