// A database outage seen by a memory over postgres_store, as engram-server sees one: the database is stopped
// under load, kept down, and started again. Every request answers (success or storage_error) within
// reconnect_timeout_ms plus one second however many requests queue, and the first request after the database
// is back succeeds, also when every pooled connection died meanwhile.
// Runs alone (its name starts with "restart": RUN_SERIAL): it stops the cluster the other postgres tests share.
#include <engram/engram.hpp>
#include <engram/store/postgres_store.hpp>

#include <catch2/catch.hpp>

#include "cluster_control.hpp"
#include "support/pg_test_support.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace engram;

namespace {
using node = basic_memory<hashing_embedder, flat_index, postgres_store, verbatim_extractor>;
using clock_type = std::chrono::steady_clock;

std::string fresh_schema(const char* name) {
  return pg_test::schema_for(std::string(name) + std::to_string(clock_type::now().time_since_epoch().count()));
}

/// One request as its caller saw it.
struct call {
  clock_type::time_point start, end;
  bool ok = false;
  std::string what;  // the error, when it failed
  std::string id;    // the memory added, when it succeeded
  [[nodiscard]] long long ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(end - start).count();
  }
};

/// Runs f() as one request: timed, storage errors kept, anything else counted as a wrong failure.
template <class F>
call timed(F&& f, std::atomic<int>& wrong) {
  call c;
  c.start = clock_type::now();
  try {
    c.id = f();
    c.ok = true;
  } catch (const storage_error& e) {
    c.what = e.what();
  } catch (const std::exception& e) {
    c.what = std::string("not a storage_error: ") + e.what();
    ++wrong;
  }
  c.end = clock_type::now();
  return c;
}
}  // namespace

TEST_CASE("restart_outage_postgres: in a 12 s outage every request answers within reconnect_timeout_ms + 1 s",
          "[postgres][restart][outage]") {
  constexpr int reconnect_ms = 2000;
  node m(hashing_embedder(64), postgres_store(pg_test::conninfo() + " application_name=engram_outage",
                                              {.schema = fresh_schema("outage"), .pool_size = 4,
                                               .reconnect_timeout_ms = reconnect_ms}));
  std::atomic<bool> stop{false};
  std::atomic<int> wrong{0};
  std::mutex mtx;
  std::vector<call> calls;  // every request of every thread (guarded by mtx)
  auto record_call = [&](call c) {
    const bool failed = !c.ok;
    {
      std::lock_guard lock(mtx);
      calls.push_back(std::move(c));
    }
    if (failed) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a client's pause, not a spin
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)  // 8 writers, more than the pool's connections: they queue for the pool and the lock
    threads.emplace_back([&, t] {
      for (int i = 0; !stop.load(); ++i)
        record_call(timed(
            [&] {
              const auto r = m.add("writer " + std::to_string(t) + " remembers fact " + std::to_string(i),
                                   user("w" + std::to_string(t)), {.infer = false});
              return r.results.size() == 1 ? r.results[0].id : std::string();
            },
            wrong));
    });
  threads.emplace_back([&] {  // a reader, and a health check (what GET /health asks)
    while (!stop.load()) {
      record_call(timed([&] { return m.search("fact", user("w1"), {.limit = 3}).empty() ? "" : "hit"; }, wrong));
      record_call(timed([&] { return m.store().ping(), std::string(); }, wrong));
    }
  });

  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  const auto down = clock_type::now();
  REQUIRE(pg_test::pg_ctl("stop") == 0);
  std::this_thread::sleep_for(std::chrono::seconds(12));
  REQUIRE(pg_test::pg_ctl("start") == 0);
  const auto back = clock_type::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  stop = true;
  for (auto& th : threads) th.join();

  CHECK(wrong.load() == 0);
  long long slowest = 0;
  int failed = 0, after = 0, failed_after = 0;
  std::string first_failure_after;
  for (const auto& c : calls) {
    slowest = std::max(slowest, c.ms());
    if (!c.ok) ++failed;
    if (c.start >= back) {
      ++after;
      if (!c.ok && failed_after++ == 0) first_failure_after = c.what;
    }
  }
  INFO(calls.size() << " requests, " << failed << " failed; the slowest answered after " << slowest
                    << " ms; down for "
                    << std::chrono::duration_cast<std::chrono::milliseconds>(back - down).count() << " ms");
  CHECK(failed > 0);                          // the outage was seen
  CHECK(slowest <= reconnect_ms + 1000);      // however many requests queued
  INFO("first failure after the database was back: " << first_failure_after);
  CHECK(after >= 9);                          // every thread made requests after the database was back...
  CHECK(failed_after == 0);                   // ...and they all succeeded, the first ones included

  for (const auto& c : calls)  // every acknowledged add is stored
    if (c.ok && !c.id.empty() && c.id != "hit") {
      INFO("acknowledged memory " << c.id);
      CHECK(m.get(c.id).has_value());
    }
}

TEST_CASE("restart_outage_postgres: the first request after a restart succeeds though every pooled connection died",
          "[postgres][restart][outage]") {
  constexpr int reconnect_ms = 1000;
  const std::string app = "engram_outage_pool";
  node m(hashing_embedder(64), postgres_store(pg_test::conninfo() + " application_name=" + app,
                                              {.schema = fresh_schema("outage_pool"), .pool_size = 8,
                                               .reconnect_timeout_ms = reconnect_ms}));
  m.add("a first memory", user("u"), {.infer = false});
  std::vector<std::thread> readers;  // parallel reads open the pool's connections
  for (int t = 0; t < 8; ++t)
    readers.emplace_back([&] {
      for (int i = 0; i < 30; ++i) (void)m.store().size();
    });
  for (auto& r : readers) r.join();
  const auto opened = pg_test::sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = '" + app + "'");
  INFO(opened << " connections open (pooled and LISTEN)");
  CHECK(std::stoi(opened) >= 3);

  REQUIRE(pg_test::pg_ctl("stop") == 0);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  REQUIRE(pg_test::pg_ctl("start") == 0);
  std::this_thread::sleep_for(std::chrono::seconds(1));

  std::atomic<int> wrong{0};
  const auto first = timed([&] { return m.add("added after the restart", user("u"), {.infer = false}).results.at(0).id; },
                           wrong);
  INFO("the first add after the restart: " << (first.ok ? "ok" : first.what) << " after " << first.ms() << " ms");
  CHECK(first.ok);
  CHECK(first.ms() <= reconnect_ms + 1000);
  CHECK(m.get_all(user("u")).size() == 2);
}
