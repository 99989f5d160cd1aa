// sqlite_store's two-phase commit: COMMIT under the caller's lock, the WAL's fdatasync after it, shared by
// concurrent writers (store/sqlite/wal_sync.hpp), and a memory over it that commits under its write lock and waits
// for the disk after releasing it.
#include "support/temp_dir.hpp"

#include <engram/engram.hpp>
#include <engram/store/sqlite_store.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

using namespace engram;

namespace sqlite_two_phase {

write_batch one_record(int i) {
  record r;
  r.id = "rec-" + std::to_string(i);
  r.memory = "fact " + std::to_string(i);
  r.hash = std::to_string(i);
  r.user_id = "u" + std::to_string(i % 3);
  r.embedding = std::vector<float>(4, static_cast<float>(i));
  r.created_at = r.updated_at = utc_now();
  write_batch b;
  b.upserts.push_back(std::move(r));
  return b;
}

}  // namespace sqlite_two_phase

TEST_CASE("concurrency_sqlite: append commits without waiting for the disk; one sync covers every earlier commit",
          "[sqlite][durability]") {
  engram_test::temp_dir dir;
  const auto db = dir.sub("m.db");
  {
    sqlite_store s(db);
    const auto opened = s.wal_syncs();
    CHECK(opened == 1);  // the schema, made durable once on open
    std::vector<std::uint64_t> tickets;
    for (int i = 0; i < 10; ++i) tickets.push_back(s.append(sqlite_two_phase::one_record(i)));
    CHECK(s.wal_syncs() == opened);  // committed (other connections see it) but not synced
    for (std::size_t i = 1; i < tickets.size(); ++i) CHECK(tickets[i] > tickets[i - 1]);
    {
      sqlite_store reader(db, {.read_only = true});
      CHECK(reader.size() == 10);
    }
    s.sync(tickets.back());
    CHECK(s.wal_syncs() == opened + 1);
    s.sync(tickets.front());  // covered by the sync of a later ticket
    s.sync(tickets[4]);
    CHECK(s.wal_syncs() == opened + 1);
    s.apply(sqlite_two_phase::one_record(10));  // apply = append + sync
    CHECK(s.wal_syncs() == opened + 2);
    CHECK(s.append(write_batch{}) == 0);  // nothing to commit, nothing to wait for
  }
  sqlite_store again(db);
  CHECK(again.size() == 11);
}

TEST_CASE("concurrency_sqlite: synchronous NORMAL and OFF leave durability to SQLite: no sync of the store's own",
          "[sqlite][durability]") {
  engram_test::temp_dir dir;
  for (const char* mode : {"NORMAL", "OFF"}) {
    INFO(mode);
    sqlite_store s(dir.sub(std::string(mode) + ".db"), {.synchronous = mode});
    const auto t = s.append(sqlite_two_phase::one_record(1));
    CHECK(t == 0);
    s.sync(t);
    s.apply(sqlite_two_phase::one_record(2));
    CHECK(s.wal_syncs() == 0);
    CHECK(s.size() == 2);
  }
}

TEST_CASE("concurrency_sqlite: writers share fdatasyncs while readers search; every add is kept", "[sqlite][memory]") {
  engram_test::temp_dir dir;
  const auto db = dir.sub("m.db");
  constexpr int writers = 4, per_writer = 25;
  std::uint64_t syncs = 0;
  {
    memory_config config;
    config.access_flush_interval = std::chrono::hours(1);  // the searches' access counts: written at the end only
    basic_memory<hashing_embedder, flat_index, sqlite_store, verbatim_extractor> mem(
        hashing_embedder(32), sqlite_store(db), verbatim_extractor(), config);
    std::atomic<int> written{0}, wrong_scope{0};
    std::atomic<bool> done{false};
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w)
      threads.emplace_back([&, w] {
        for (int i = 0; i < per_writer; ++i) {
          mem.add("writer " + std::to_string(w) + " noted fact number " + std::to_string(i),
                  user("w" + std::to_string(w)), {.infer = false});
          ++written;
        }
      });
    for (int r = 0; r < 2; ++r)
      threads.emplace_back([&, r] {
        while (!done.load()) {
          const auto who = "w" + std::to_string(r);
          for (const auto& hit : mem.search("fact number", user(who), {.limit = 5}))
            if (hit.record.user_id != who) ++wrong_scope;
        }
      });
    for (int w = 0; w < writers; ++w) threads[static_cast<std::size_t>(w)].join();
    done = true;
    for (std::size_t t = writers; t < threads.size(); ++t) threads[t].join();
    CHECK(written == writers * per_writer);
    CHECK(wrong_scope == 0);
    CHECK(mem.size() == writers * per_writer);
    syncs = mem.store().wal_syncs();
  }
  // each fdatasync covers at least one commit not yet durable (a reader's wait may make it instead of the add's
  // writer): never more than one per add, and the open's
  CHECK(syncs >= 2);
  CHECK(syncs <= writers * per_writer + 1);
  sqlite_store again(db, {.read_only = true});
  CHECK(again.size() == writers * per_writer);
}
