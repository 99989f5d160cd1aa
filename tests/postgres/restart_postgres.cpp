// PostgreSQL restarted (pg_ctl restart -m fast), or crashed (stop -m immediate), while a store is writing: writes
// wait and reconnect, or fail
// with a transient postgres_error; every acknowledged write is there afterwards, exactly once.
// Runs alone (RUN_SERIAL): it restarts the cluster the other postgres tests share.
#include <engram/store/postgres_store.hpp>

#include <catch2/catch.hpp>

#include "cluster_control.hpp"
#include "support/pg_test_support.hpp"

#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

using namespace engram;

namespace {
record make_record(int i) {
  record r;
  r.id = "r-" + std::to_string(i);
  r.memory = "fact " + std::to_string(i);
  r.hash = "h" + std::to_string(i);
  r.user_id = "u" + std::to_string(i % 7);
  r.created_at = r.updated_at = timestamp{std::chrono::microseconds{1700000000000000LL + i}};
  r.embedding = {float(i), 1.0f, 2.0f};
  return r;
}

int restart_cluster() { return pg_test::pg_ctl("restart"); }
}  // namespace

TEST_CASE("restart_postgres: a server restart under load loses no acknowledged write", "[postgres][restart]") {
  const auto schema = pg_test::schema_for("restart" + std::to_string(::getpid()));
  postgres_store s(pg_test::conninfo(), {.schema = schema, .pool_size = 3, .reconnect_timeout_ms = 300});
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, wrong_errors{0};
  std::vector<std::set<int>> acked(3);
  std::vector<std::thread> writers;
  for (int t = 0; t < 3; ++t)
    writers.emplace_back([&, t] {
      for (int i = t; !stop.load(); i += 3) {
        write_batch w;
        w.upserts = {make_record(i)};
        w.events = {history_event{"e-" + std::to_string(i), "r-" + std::to_string(i), std::nullopt,
                                  "fact " + std::to_string(i), event_kind::add, timestamp{}, std::nullopt, false, "", ""}};
        try {
          s.apply(w);
          acked[std::size_t(t)].insert(i);
        } catch (const postgres_error& e) {
          ++failures;  // the server was down longer than reconnect_timeout_ms: a clean, typed failure
          if (!e.transient()) ++wrong_errors;
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  REQUIRE(restart_cluster() == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stop = true;
  for (auto& w : writers) w.join();
  INFO(failures.load() << " writes failed while the server was down");
  CHECK(wrong_errors.load() == 0);
  std::size_t n = 0;
  for (const auto& a : acked) {
    n += a.size();
    for (const int i : a) {
      INFO("acknowledged write " << i);
      CHECK(s.get("r-" + std::to_string(i)) == make_record(i));
      CHECK(s.history("r-" + std::to_string(i)).size() == 1);  // applied exactly once, retries included
    }
  }
  CHECK(n > 10);
  write_batch after;  // and the store works normally afterwards
  after.upserts = {make_record(100000)};
  s.apply(after);
  CHECK(s.get("r-100000").has_value());
}

TEST_CASE("restart_postgres: a crash of the server (immediate stop) loses no write whose grouped commit was synced",
          "[postgres][restart]") {
  const auto schema = pg_test::schema_for("crash" + std::to_string(::getpid()));
  // The fixture's cluster runs with synchronous_commit = off (tests/CMakeLists.txt: ENGRAM_PG_FSYNC=off), and a
  // flush commits with the session's setting: these sessions ask for on (fsync stays off: a process crash is
  // survived, not a machine crash).
  postgres_store s(pg_test::conninfo() + " options='-c synchronous_commit=on'",
                   {.schema = schema, .pool_size = 4, .reconnect_timeout_ms = 300});
  const auto position = s.change_position();
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, lost{0}, wrong_errors{0};
  std::vector<std::set<int>> acked(3);
  std::vector<std::thread> writers;
  for (int t = 0; t < 3; ++t)
    writers.emplace_back([&, t] {
      for (int i = 200000 + t; !stop.load(); i += 3) {
        write_batch w;
        w.upserts = {make_record(i)};
        w.events = {history_event{"e-" + std::to_string(i), "r-" + std::to_string(i), std::nullopt,
                                  "fact " + std::to_string(i), event_kind::add, timestamp{}, std::nullopt, false, "", ""}};
        try {
          s.sync(s.append(w));  // as a memory commits: append under its lock, sync after
          acked[std::size_t(t)].insert(i);
        } catch (const postgres_error& e) {
          ++failures;
          if (!e.transient()) ++wrong_errors;
          if (e.sqlstate() == "08007") {
            ++lost;
            try {  // as a memory's next catch-up: take the lost records, after which syncs succeed again
              s.poll_changes(position, [](const std::string&) {});
            } catch (const postgres_error&) {
            }
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  REQUIRE(pg_test::pg_ctl("stop", "immediate") == 0);
  REQUIRE(pg_test::pg_ctl("start") == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stop = true;
  for (auto& w : writers) w.join();
  INFO(failures.load() << " writes failed around the crash, " << lost.load() << " of them with 08007");
  CHECK(wrong_errors.load() == 0);
  std::size_t n = 0;
  for (const auto& a : acked) {
    n += a.size();
    for (const int i : a) {
      INFO("synced write " << i);
      CHECK(s.get("r-" + std::to_string(i)) == make_record(i));
      CHECK(s.history("r-" + std::to_string(i)).size() == 1);
    }
  }
  CHECK(n > 10);
  s.poll_changes(position, [](const std::string&) {});
  write_batch after;  // and the store works normally afterwards
  after.upserts = {make_record(300000)};
  s.sync(s.append(after));
  CHECK(s.get("r-300000").has_value());
}
