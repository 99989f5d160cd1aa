// engram-requires: postgres
#pragma once
/// @file store/postgres/listen.hpp
/// postgres_store's change feed, as seen by a reader: the LISTEN connection that says when to look, and the
/// reading of the `changes` table that says what changed.

#include <engram/store/postgres/libpq.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include <poll.h>  // the LISTEN connection's wait

namespace engram::inline v0::detail {

/// A background thread LISTENing on one channel, on a connection of its own. Neither copyable nor movable
/// (the thread holds its address); stops and joins on destruction.
class pg_listener {
 public:
  /// Makes a new connection (not pooled, no prepared statements needed).
  using connect_fn = std::function<std::unique_ptr<pq_conn>()>;

  pg_listener() = default;
  pg_listener(const pg_listener&) = delete;
  pg_listener& operator=(const pg_listener&) = delete;
  ~pg_listener() { stop(); }

  /// Starts the thread unless it runs already. It calls `changed()` on every notification on `channel`, and
  /// after every (re)connection, since anything may have happened while it was not listening. Thread-safe.
  void start(connect_fn connect, std::string channel, std::string where, std::function<void()> changed) {
    std::lock_guard lock(mtx_);
    if (thread_.joinable()) return;
    connect_ = std::move(connect);
    channel_ = std::move(channel);
    where_ = std::move(where);
    changed_ = std::move(changed);
    thread_ = std::thread([this] { loop(); });
  }

  /// Stops and joins the thread, if any. Not concurrently with start().
  void stop() noexcept {
    if (!thread_.joinable()) return;
    stop_.store(true);
    thread_.join();
  }

 private:
  void loop() {
    while (!stop_.load()) {
      std::unique_ptr<pq_conn> c;
      try {
        c = connect_();
        c->exec("LISTEN \"" + channel_ + "\"", where_);
      } catch (const storage_error&) {
        for (int i = 0; i < 10 && !stop_.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      changed_();  // anything may have happened while not listening
      while (!stop_.load()) {
        pollfd pfd{PQsocket(c->get()), POLLIN, 0};
        if (::poll(&pfd, 1, 100) < 0) continue;
        if (!PQconsumeInput(c->get()) || PQstatus(c->get()) != CONNECTION_OK) break;
        bool any = false;
        while (PGnotify* n = PQnotifies(c->get())) {
          PQfreemem(n);
          any = true;
        }
        if (any) changed_();
      }
    }
  }

  std::mutex mtx_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  connect_fn connect_;
  std::string channel_;
  std::string where_;
  std::function<void()> changed_;
};

/// Calls f(memory_id) for each entry of the change feed after position `since` that another origin than
/// `origin` wrote, in commit order, fetched `page_size` at a time, and @returns the new position. When
/// entries after `since` were pruned, first calls f("*") (everything may have changed).
/// `read(g)` runs g(pq_conn&) on a connection with the prepared statements, retrying transient failures.
template <class Read, class F>
std::uint64_t pg_poll_feed(Read&& read, std::uint64_t since, const std::string& origin, int page_size,
                           const std::string& where, F& f) {
  auto pruned = read([&](pq_conn& c) { return c.run("get_meta", {pq_param::text("changes_pruned_through")}, false, where); });
  if (pruned.rows()) {
    const auto through = std::stoull(pruned.text(0, 0));
    if (since < through) {  // missed pruned entries: everything may have changed, once
      f(std::string("*"));
      since = through;  // else every later poll would report "*" again until a newer entry exists
    }
  }
  while (true) {
    auto r = read([&](pq_conn& c) {
      return c.run("changes_since", {pq_param::int8(static_cast<std::int64_t>(since)), pq_param::int8(page_size)},
                   true, where);
    });
    for (int i = 0; i < r.rows(); ++i) {
      since = static_cast<std::uint64_t>(r.integer(i, 0));
      if (r.view(i, 2) != origin) f(r.text(i, 1));
    }
    if (r.rows() < page_size) return since;
  }
}

}  // namespace engram::inline v0::detail
