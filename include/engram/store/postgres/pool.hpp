// engram-requires: postgres
#pragma once
/// @file store/postgres/pool.hpp
/// postgres_store's connections: set up (timeout, search path, prepared statements), pooled, and retried
/// after transient failures within a deadline per operation.

#include <engram/store/postgres/libpq.hpp>
#include <engram/store/postgres/options.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>  // std::invoke_result_t, std::is_void_v
#include <utility>
#include <vector>

namespace engram::inline v0::detail {

using pg_clock = std::chrono::steady_clock;

/// The least time one attempt gets for its waits (a free connection, a new one), even at or past its operation's
/// deadline, so that an operation always tries once: when the database is refused outright that takes
/// microseconds.
inline constexpr std::chrono::milliseconds pg_min_attempt_wait{500};

inline void pg_quiet(void*, const char*) noexcept {}  // notices (e.g. "already exists, skipping") are dropped

/// Up to `options.pool_size` connections, opened on demand, and the retries of the operations run on them.
/// Thread-safe; neither copyable nor movable (a lease and the LISTEN thread hold its address).
///
/// Outages: every operation has a deadline, `reconnect_timeout_ms` after it starts; its waits (for a free
/// connection, for a connection being made, between retries) end there. The first transient failure starts an
/// outage that all operations share: while it lasts, an operation's deadline is the outage's start plus
/// `reconnect_timeout_ms` (or now, once that has passed: one attempt, then the error). So callers queued behind
/// one another (a memory's write lock) do not each wait a full timeout. A success ends the outage.
/// Connections that were idle when the server went away are dropped together, not retried one at a time.
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
  /// when `prepare_statements`. Connecting gives up at `deadline`; by default, reconnect_timeout_ms (at least
  /// pg_min_attempt_wait) from now.
  [[nodiscard]] std::unique_ptr<pq_conn> connect(bool prepare_statements = true,
                                                 std::optional<pg_clock::time_point> deadline = std::nullopt) const {
    const auto now = pg_clock::now();
    auto c = std::make_unique<pq_conn>();
    c->connect(conninfo_, where_,
               deadline.value_or(now + std::max<pg_clock::duration>(
                                           std::chrono::milliseconds(options_.reconnect_timeout_ms),
                                           pg_min_attempt_wait)));
    PQsetNoticeProcessor(c->get(), &pg_quiet, nullptr);
    c->exec("SET statement_timeout = " + std::to_string(options_.statement_timeout_ms) +
                "; SET search_path TO \"" + options_.schema + "\"",
            where_);
    if (prepare_statements) prepare_(*c, where_);
    return c;
  }

  /// A connection leased from the pool; returned on destruction, or discarded when broken, left inside a
  /// transaction, or older than a connection found dead.
  class lease {
   public:
    lease(pg_pool& pool, std::unique_ptr<pq_conn> c, std::uint64_t epoch, bool reused)
        : pool_(&pool), c_(std::move(c)), epoch_(epoch), reused_(reused) {}
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    ~lease() {
      std::lock_guard lock(pool_->mtx_);
      if (c_ && c_->connected() && PQtransactionStatus(c_->get()) == PQTRANS_IDLE && epoch_ > pool_->dead_through_) {
        pool_->idle_.push_back({std::move(c_), epoch_});
      } else {
        --pool_->open_count_;
      }
      pool_->cv_.notify_one();
    }
    pq_conn& operator*() const noexcept { return *c_; }
    /// The pool's epoch when the connection was made (see drop_idle_through).
    [[nodiscard]] std::uint64_t epoch() const noexcept { return epoch_; }
    /// Whether the connection had been idle in the pool (it may have died there unnoticed).
    [[nodiscard]] bool reused() const noexcept { return reused_; }

   private:
    pg_pool* pool_;
    std::unique_ptr<pq_conn> c_;
    std::uint64_t epoch_;
    bool reused_;
  };

  /// An idle connection that still looks alive, else a new one while fewer than pool_size are open, else
  /// waits for one until `deadline`. Idle connections found dead are dropped with every older one.
  /// @throws postgres_error (SQLSTATE 53300) when none was free by the deadline; postgres_error from connecting.
  [[nodiscard]] lease acquire(pg_clock::time_point deadline) {
    std::unique_lock lock(mtx_);
    while (true) {
      if (!cv_.wait_until(lock, deadline, [&] { return !idle_.empty() || open_count_ < options_.pool_size; }))
        throw postgres_error(where_ + ": no pooled connection came free before the operation's deadline (pool_size " +
                                 std::to_string(options_.pool_size) + ", reconnect_timeout_ms " +
                                 std::to_string(options_.reconnect_timeout_ms) + ")",
                             "53300");
      if (idle_.empty()) break;
      auto entry = std::move(idle_.back());
      idle_.pop_back();
      lock.unlock();
      const bool alive = entry.c->idle_alive();  // a poll, outside the lock
      if (alive) return lease(*this, std::move(entry.c), entry.epoch, true);
      entry.c.reset();
      lock.lock();
      --open_count_;
      drop_idle_through_locked(entry.epoch);
    }
    ++open_count_;
    const auto epoch = epoch_;
    lock.unlock();
    try {
      return lease(*this, connect(true, deadline), epoch, false);
    } catch (...) {
      lock.lock();
      --open_count_;
      cv_.notify_one();
      throw;
    }
  }

  /// Drops every idle connection made in epoch `epoch` or before (one of them was found dead: the server
  /// restarted or went away since), and starts a new epoch for the connections made from now on.
  void drop_idle_through(std::uint64_t epoch) {
    std::lock_guard lock(mtx_);
    drop_idle_through_locked(epoch);
  }

  /// The deadline of an operation starting now (see the class comment).
  [[nodiscard]] pg_clock::time_point operation_deadline() const noexcept {
    const auto now = pg_clock::now();
    const auto window = std::chrono::milliseconds(options_.reconnect_timeout_ms);
    const auto since = down_since_.load(std::memory_order_acquire);
    if (since == 0) return now + window;
    return std::max(now, pg_clock::time_point(pg_clock::duration(since)) + window);
  }

  /// Runs f(), retrying transient failures (a dropped connection, a restart) with a growing pause until the
  /// operation's deadline.
  template <class F>
  std::invoke_result_t<F&> retrying(F&& f) {
    return run([&](pg_clock::time_point, std::optional<std::uint64_t>&) { return f(); });
  }

  /// Runs f on a pooled connection, retrying transient failures on another one until the operation's
  /// deadline; a failure on a connection that had sat idle is retried at once on a new one. For reads, and for
  /// writes made idempotent by the caller.
  template <class F>
  std::invoke_result_t<F&, pq_conn&> with_retry(F&& f) {
    return run([&](pg_clock::time_point deadline, std::optional<std::uint64_t>& stale_epoch) {
      auto l = acquire(deadline);
      if (l.reused()) stale_epoch = l.epoch();
      return f(*l);
    });
  }

 private:
  struct idle_conn {
    std::unique_ptr<pq_conn> c;
    std::uint64_t epoch;
  };

  void drop_idle_through_locked(std::uint64_t epoch) {
    dead_through_ = std::max(dead_through_, epoch);
    epoch_ = std::max(epoch_, dead_through_ + 1);
    const auto before = idle_.size();
    std::erase_if(idle_, [&](const idle_conn& i) { return i.epoch <= dead_through_; });
    open_count_ -= before - idle_.size();
    cv_.notify_all();
  }

  /// The retry loop. attempt(deadline, stale_epoch) waits no later than `deadline` (the operation's, or
  /// pg_min_attempt_wait from now if later) and sets stale_epoch to the epoch of a reused connection it
  /// ran on, so that losing it is retried at once (those connections are dropped: each such retry uses up
  /// older connections, so there are only ever a few).
  template <class Attempt>
  auto run(Attempt&& attempt) -> std::invoke_result_t<Attempt&, pg_clock::time_point, std::optional<std::uint64_t>&> {
    using result = std::invoke_result_t<Attempt&, pg_clock::time_point, std::optional<std::uint64_t>&>;
    const auto deadline = operation_deadline();
    auto pause = std::chrono::milliseconds(20);
    while (true) {
      std::optional<std::uint64_t> stale_epoch;
      const auto waits_until = std::max(deadline, pg_clock::now() + pg_min_attempt_wait);
      try {
        if constexpr (std::is_void_v<result>) {
          attempt(waits_until, stale_epoch);
          down_since_.store(0, std::memory_order_release);
          return;
        } else {
          result r = attempt(waits_until, stale_epoch);
          down_since_.store(0, std::memory_order_release);
          return r;
        }
      } catch (const postgres_error& e) {
        if (!e.transient()) throw;
        if (e.connection_lost() && stale_epoch) {
          drop_idle_through(*stale_epoch);
          continue;  // the server went away while it sat idle; says nothing of the server now
        }
        std::int64_t none = 0;
        down_since_.compare_exchange_strong(none, pg_clock::now().time_since_epoch().count(),
                                            std::memory_order_acq_rel);
        const auto now = pg_clock::now();
        if (now >= deadline) throw;
        std::this_thread::sleep_for(std::min<pg_clock::duration>(pause, deadline - now));
        pause = std::min(pause * 2, std::chrono::milliseconds(500));
      }
    }
  }

  std::string conninfo_;
  postgres_store_options options_;
  std::string where_;
  prepare_fn prepare_;
  std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<idle_conn> idle_;
  std::size_t open_count_ = 0;
  std::uint64_t epoch_ = 1;         // of the connections made now (guarded by mtx_)
  std::uint64_t dead_through_ = 0;  // connections of this epoch or older are not kept (guarded by mtx_)
  std::atomic<std::int64_t> down_since_{0};  // steady_clock ticks at the outage's first failure; 0: none
};

}  // namespace engram::inline v0::detail
