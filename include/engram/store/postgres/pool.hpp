// engram-requires: postgres
#pragma once
/// @file store/postgres/pool.hpp
/// postgres_store's connections: set up (timeout, search path, prepared statements), pooled, and retried
/// after transient failures.

#include <engram/store/postgres/libpq.hpp>
#include <engram/store/postgres/options.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>  // std::invoke_result_t
#include <utility>
#include <vector>

namespace engram::inline v0::detail {

/// Runs f(), retrying transient failures (a dropped connection, a restart) with a growing pause until
/// `timeout_ms` has passed.
template <class F>
std::invoke_result_t<F&> pg_retrying(int timeout_ms, F&& f) {
  using clock = std::chrono::steady_clock;
  const auto deadline = clock::now() + std::chrono::milliseconds(timeout_ms);
  auto pause = std::chrono::milliseconds(20);
  while (true) {
    try {
      return f();
    } catch (const postgres_error& e) {
      if (!e.transient() || clock::now() + pause > deadline) throw;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
}

inline void pg_quiet(void*, const char*) noexcept {}  // notices (e.g. "already exists, skipping") are dropped

/// Up to `options.pool_size` connections, opened on demand. Thread-safe; neither copyable nor movable (a
/// lease and the LISTEN thread hold its address).
class pg_pool {
 public:
  /// Prepares the statements every pooled connection needs; `where` names the store in errors.
  using prepare_fn = void (*)(pq_conn&, const std::string& where);

  pg_pool(std::string conninfo, postgres_store_options options, std::string where, prepare_fn prepare)
      : conninfo_(std::move(conninfo)), options_(std::move(options)), where_(std::move(where)), prepare_(prepare) {}
  pg_pool(const pg_pool&) = delete;
  pg_pool& operator=(const pg_pool&) = delete;

  [[nodiscard]] const postgres_store_options& options() const noexcept { return options_; }
  [[nodiscard]] const std::string& where() const noexcept { return where_; }

  /// A new connection outside the pool, set up: statement timeout, search path, and the prepared statements
  /// when `prepare_statements`.
  [[nodiscard]] std::unique_ptr<pq_conn> connect(bool prepare_statements = true) const {
    auto c = std::make_unique<pq_conn>();
    c->connect(conninfo_, where_);
    PQsetNoticeProcessor(c->get(), &pg_quiet, nullptr);
    c->exec("SET statement_timeout = " + std::to_string(options_.statement_timeout_ms) +
                "; SET search_path TO \"" + options_.schema + "\"",
            where_);
    if (prepare_statements) prepare_(*c, where_);
    return c;
  }

  /// A connection leased from the pool; returned on destruction, or discarded when broken or left inside a
  /// transaction.
  class lease {
   public:
    lease(pg_pool& pool, std::unique_ptr<pq_conn> c) : pool_(&pool), c_(std::move(c)) {}
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    ~lease() {
      std::lock_guard lock(pool_->mtx_);
      if (c_ && c_->connected() && PQtransactionStatus(c_->get()) == PQTRANS_IDLE) {
        pool_->idle_.push_back(std::move(c_));
      } else {
        --pool_->open_count_;
      }
      pool_->cv_.notify_one();
    }
    pq_conn& operator*() const noexcept { return *c_; }

   private:
    pg_pool* pool_;
    std::unique_ptr<pq_conn> c_;
  };

  /// An idle connection, else a new one while fewer than pool_size are open, else waits for one.
  [[nodiscard]] lease acquire() {
    std::unique_lock lock(mtx_);
    cv_.wait(lock, [&] { return !idle_.empty() || open_count_ < options_.pool_size; });
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return lease(*this, std::move(c));
    }
    ++open_count_;
    lock.unlock();
    try {
      return lease(*this, connect());
    } catch (...) {
      lock.lock();
      --open_count_;
      cv_.notify_one();
      throw;
    }
  }

  /// pg_retrying with reconnect_timeout_ms.
  template <class F>
  std::invoke_result_t<F&> retrying(F&& f) const {
    return pg_retrying(options_.reconnect_timeout_ms, f);
  }

  /// Runs f on a pooled connection, retrying transient failures on another one. For reads, and for writes
  /// made idempotent by the caller.
  template <class F>
  std::invoke_result_t<F&, pq_conn&> with_retry(F&& f) {
    return retrying([&]() -> std::invoke_result_t<F&, pq_conn&> {
      auto l = acquire();
      return f(*l);
    });
  }

 private:
  std::string conninfo_;
  postgres_store_options options_;
  std::string where_;
  prepare_fn prepare_;
  std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<pq_conn>> idle_;
  std::size_t open_count_ = 0;
};

}  // namespace engram::inline v0::detail
