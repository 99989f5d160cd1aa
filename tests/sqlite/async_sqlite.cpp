#include "support/async_test_support.hpp"

#include <engram/store/sqlite_store.hpp>

#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <chrono>
#include <memory>
#include <thread>

#include <string>

using namespace engram;
using namespace async_test;

TEST_CASE("async_sqlite: add_async over sqlite_store: kept in the pending table, resumed on open", "[async_sqlite]") {
  temp_dir dir;
  const auto db = dir.sub("memory.db");
  {
    test_extractor x;
    x.control->close_gate();
    auto cfg = fast_retries(3, 1);
    cfg.async.max_batch = 1;
    auto mem = std::make_unique<async_memory<sqlite_store>>(hashing_embedder(32), sqlite_store(db), x, cfg);
    (void)mem->add_async("first", user("s"));
    (void)mem->add_async("second", user("s"));
    CHECK(pending_of(mem->store()).size() == 2);
    {
      sqlite_store reader(db, {.read_only = true});  // another connection sees the committed queue
      CHECK(pending_of(reader).size() == 2);
    }
    std::thread destroy([&] { mem.reset(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    x.control->open_gate();
    destroy.join();
  }
  test_extractor x;
  async_memory<sqlite_store> mem(hashing_embedder(32), sqlite_store(db), x, fast_retries());
  REQUIRE(mem.flush().ok());
  CHECK(mem.get_all(user("s")).size() == 2);
  CHECK(pending_of(mem.store()).empty());
}

TEST_CASE("async_sqlite: a database made before the pending table existed opens read-only and writable",
          "[async_sqlite]") {
  temp_dir dir;
  const auto db = dir.sub("old.db");
  {
    sqlite_store s(db);
    write_batch w;
    w.enqueued.push_back(pending_add{"p1", user("o"), {{"user", "hello", ""}}, nlohmann::json::object(), "", 0});
    s.apply(w);
  }
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &raw) == SQLITE_OK);
  REQUIRE(sqlite3_exec(raw, "DROP TABLE pending", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(raw);
  {
    sqlite_store reader(db, {.read_only = true});
    CHECK(pending_of(reader).empty());
  }
  sqlite_store s(db);  // the table is created
  CHECK(pending_of(s).empty());
  write_batch w;
  w.enqueued.push_back(pending_add{"p2", user("o"), {{"user", "again", "n"}}, {{"infer", false}}, "t", 2});
  s.apply(w);
  const auto q = pending_of(s);
  REQUIRE(q.size() == 1);
  CHECK(q[0] == w.enqueued[0]);
}
