// engram-requires: postgres
#pragma once
/// @file store/postgres/libpq.hpp
/// A thin RAII layer over libpq's C API for postgres_store: owned connections and results, parameters in
/// text or binary form, binary result decoding, and errors that carry the server's SQLSTATE.

#include <engram/error.hpp>

#include <libpq-fe.h>

#include <bit>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <poll.h>  // waits for a connection being made

namespace engram::inline v0 {

/// A storage_error raised by PostgreSQL (or by losing the connection to it). what() names the operation,
/// the SQLSTATE and the server's message; sqlstate() is the five-character code ("08006" when the connection
/// was lost or could not be made, since libpq then has no code from the server).
class postgres_error : public storage_error {
 public:
  postgres_error(const std::string& message, std::string sqlstate)
      : storage_error(message), sqlstate_(std::move(sqlstate)) {}
  [[nodiscard]] const std::string& sqlstate() const noexcept { return sqlstate_; }
  /// True for errors after which the same statement may succeed on a fresh connection: connection
  /// exceptions (class 08), shutdowns and restarts (57P01..57P03), serialization failures and deadlocks.
  [[nodiscard]] bool transient() const noexcept {
    return sqlstate_.starts_with("08") || sqlstate_ == "57P01" || sqlstate_ == "57P02" || sqlstate_ == "57P03" ||
           sqlstate_ == "40001" || sqlstate_ == "40P01";
  }
  /// True when the connection itself is gone (the statement's outcome on the server may be unknown).
  [[nodiscard]] bool connection_lost() const noexcept {
    return sqlstate_.starts_with("08") || sqlstate_ == "57P01" || sqlstate_ == "57P02" || sqlstate_ == "57P03";
  }

 private:
  std::string sqlstate_;
};

}  // namespace engram::inline v0

namespace engram::inline v0::detail {

/// The SQLSTATE libpq reports when the connection was lost without a server message.
inline constexpr const char* pq_connection_failure = "08006";

/// One parameter of a statement: NULL, text, or binary bytes (bytea, int8, timestamptz in network order).
struct pq_param {
  std::optional<std::string> value;
  bool binary = false;

  /// @throws validation_error for a NUL byte, which PostgreSQL text cannot hold (libpq would cut the value).
  static pq_param text(std::string_view v) {
    if (v.find('\0') != std::string_view::npos)
      throw validation_error("postgres: text value '" + std::string(v.substr(0, v.find('\0'))) +
                             "\\0...' contains a NUL byte, which PostgreSQL text cannot hold");
    return {std::string(v), false};
  }
  static pq_param null() { return {std::nullopt, false}; }
  static pq_param bytes(std::string v) { return {std::move(v), true}; }
  static pq_param int8(std::int64_t v) {
    std::string b(8, '\0');
    const auto u = static_cast<std::uint64_t>(v);
    for (int k = 0; k < 8; ++k) b[static_cast<std::size_t>(k)] = static_cast<char>((u >> (56 - 8 * k)) & 0xFF);
    return {std::move(b), true};
  }
  static pq_param opt_text(const std::optional<std::string>& v) { return v ? text(*v) : null(); }
};

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01), for binary timestamptz.
inline constexpr std::int64_t pq_epoch_offset_us = 946684800LL * 1000000LL;

/// An owned PGresult. Values are read by (row, column); binary results decode with int8()/timestamp_us().
class pq_result {
 public:
  pq_result() = default;
  explicit pq_result(PGresult* r) noexcept : r_(r) {}
  [[nodiscard]] PGresult* get() const noexcept { return r_.get(); }
  [[nodiscard]] int rows() const noexcept { return r_ ? PQntuples(r_.get()) : 0; }
  [[nodiscard]] bool is_null(int row, int col) const noexcept { return PQgetisnull(r_.get(), row, col) != 0; }
  [[nodiscard]] std::string_view view(int row, int col) const noexcept {
    return {PQgetvalue(r_.get(), row, col), static_cast<std::size_t>(PQgetlength(r_.get(), row, col))};
  }
  [[nodiscard]] std::string text(int row, int col) const { return std::string(view(row, col)); }
  [[nodiscard]] std::optional<std::string> opt_text(int row, int col) const {
    if (is_null(row, col)) return std::nullopt;
    return text(row, col);
  }
  /// A binary int8 (or int4 / bool, by length) column.
  [[nodiscard]] std::int64_t integer(int row, int col) const noexcept {
    const auto v = view(row, col);
    std::uint64_t u = 0;
    for (const char c : v) u = (u << 8) | static_cast<unsigned char>(c);
    if (v.size() == 4) return static_cast<std::int32_t>(static_cast<std::uint32_t>(u));
    return static_cast<std::int64_t>(u);
  }
  /// A binary timestamptz column, as microseconds since the Unix epoch.
  [[nodiscard]] std::int64_t timestamp_us(int row, int col) const noexcept {
    return integer(row, col) + pq_epoch_offset_us;
  }

 private:
  struct deleter {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
  };
  std::unique_ptr<PGresult, deleter> r_;
};

/// One owned connection. Not thread-safe: one thread uses it at a time (postgres_store's pool leases it).
class pq_conn {
 public:
  pq_conn() = default;

  /// Connects, giving up at `deadline` (also while the server's host does not answer at all).
  /// @throws postgres_error (08006 with libpq's message, or naming the time waited) when the server cannot be
  ///         reached in time.
  void connect(const std::string& conninfo, const std::string& where, std::chrono::steady_clock::time_point deadline) {
    const auto started = std::chrono::steady_clock::now();
    c_.reset(PQconnectStart(conninfo.c_str()));
    auto fail = [&](std::string msg) {
      c_.reset();
      trim(msg);
      throw postgres_error(where + ": cannot connect: SQLSTATE " + pq_connection_failure + ": " + msg,
                           pq_connection_failure);
    };
    if (!c_) fail("out of memory");
    // libpq's asynchronous connection: wait for the socket as PQconnectPoll asks, never past the deadline
    auto st = PQstatus(c_.get()) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK) {
      if (st == PGRES_POLLING_FAILED) fail(PQerrorMessage(c_.get()));
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd pfd{PQsocket(c_.get()), static_cast<short>(st == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0};
      const int n = left.count() > 0 ? ::poll(&pfd, 1, static_cast<int>(left.count())) : 0;
      if (n == 0)
        fail("no answer within " +
             std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                                  started).count()) + " ms");
      if (n < 0 && errno != EINTR) fail(std::string("poll: ") + std::strerror(errno));
      if (n > 0) st = PQconnectPoll(c_.get());
    }
  }
  /// False when an idle connection is known to be dead: the server closed it (a restart or shutdown
  /// terminates its sessions) or sent something while it was idle. Never blocks.
  [[nodiscard]] bool idle_alive() noexcept {
    if (!connected()) return false;
    pollfd pfd{PQsocket(c_.get()), POLLIN, 0};
    const int n = ::poll(&pfd, 1, 0);
    return n == 0;  // a pooled connection listens to nothing: what arrives is the server's goodbye (or EOF)
  }
  [[nodiscard]] bool connected() const noexcept { return c_ && PQstatus(c_.get()) == CONNECTION_OK; }
  void close() noexcept { c_.reset(); }
  [[nodiscard]] PGconn* get() const noexcept { return c_.get(); }

  /// Runs one or more statements without parameters. @throws postgres_error naming `what`.
  pq_result exec(const std::string& sql, const std::string& where) {
    return check(PQexec(c_.get(), sql.c_str()), where, sql);
  }

  /// Prepares `sql` under `name` on this connection.
  void prepare(const char* name, const std::string& sql, const std::string& where) {
    check(PQprepare(c_.get(), name, sql.c_str(), 0, nullptr), where, sql);
  }

  /// Runs the prepared statement `name` with `params`; results in binary form when `binary_result`.
  pq_result run(const char* name, const std::vector<pq_param>& params, bool binary_result,
                const std::string& where) {
    std::vector<const char*> values(params.size());
    std::vector<int> lengths(params.size()), formats(params.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
      values[i] = params[i].value ? params[i].value->data() : nullptr;
      lengths[i] = params[i].value ? static_cast<int>(params[i].value->size()) : 0;
      formats[i] = params[i].binary ? 1 : 0;
    }
    return check(PQexecPrepared(c_.get(), name, static_cast<int>(params.size()), values.data(), lengths.data(),
                                formats.data(), binary_result ? 1 : 0),
                 where, name);
  }

 private:
  static void trim(std::string& s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  }

  pq_result check(PGresult* raw, const std::string& where, std::string_view what) {
    pq_result r(raw);
    const auto st = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
    const char* code = raw ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
    std::string sqlstate = code ? code : "";
    std::string msg = raw ? PQresultErrorMessage(raw) : "";
    if (msg.empty()) msg = PQerrorMessage(c_.get());
    trim(msg);
    if (sqlstate.empty() || PQstatus(c_.get()) != CONNECTION_OK) {
      if (PQstatus(c_.get()) != CONNECTION_OK && !sqlstate.starts_with("57P")) sqlstate = pq_connection_failure;
      if (sqlstate.empty()) sqlstate = "XX000";
    }
    std::string shown(what.substr(0, 60));
    throw postgres_error(where + ": " + shown + (what.size() > 60 ? "...: " : ": ") + "SQLSTATE " + sqlstate +
                             ": " + msg,
                         sqlstate);
  }

  struct deleter {
    void operator()(PGconn* c) const noexcept { PQfinish(c); }
  };
  std::unique_ptr<PGconn, deleter> c_;
};

/// Little-endian float32 bytes of a vector (the bytea form of an embedding).
inline std::string pq_floats_to_bytes(const std::vector<float>& v) {
  std::string blob(v.size() * sizeof(float), '\0');
  if constexpr (std::endian::native == std::endian::little) {
    if (!blob.empty()) std::memcpy(blob.data(), v.data(), blob.size());
  } else {
    for (std::size_t i = 0; i < v.size(); ++i) {
      const auto u = std::bit_cast<std::uint32_t>(v[i]);
      for (std::size_t k = 0; k < 4; ++k) blob[4 * i + k] = static_cast<char>((u >> (8 * k)) & 0xFF);
    }
  }
  return blob;
}

/// The inverse of pq_floats_to_bytes.
inline std::vector<float> pq_bytes_to_floats(std::string_view b) {
  std::vector<float> v(b.size() / sizeof(float));
  if constexpr (std::endian::native == std::endian::little) {
    if (!v.empty()) std::memcpy(v.data(), b.data(), v.size() * sizeof(float));
  } else {
    for (std::size_t i = 0; i < v.size(); ++i) {
      std::uint32_t u = 0;
      for (int k = 3; k >= 0; --k) u = (u << 8) | static_cast<unsigned char>(b[4 * i + static_cast<std::size_t>(k)]);
      v[i] = std::bit_cast<float>(u);
    }
  }
  return v;
}

}  // namespace engram::inline v0::detail
