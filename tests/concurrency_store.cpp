#include <engram/engram.hpp>

#include <catch2/catch.hpp>
#include "support/temp_dir.hpp"

#include <atomic>
#include <filesystem>
#include <thread>

using namespace engram;

namespace {
using engram_test::temp_dir;
}  // namespace

TEST_CASE("concurrency: writers share fsyncs through the file store; readers never see another scope",
          "[concurrency][store]") {
  const auto mode = GENERATE(durability::fsync, durability::group_commit);
  temp_dir dir;
  constexpr int writers = 4, per_writer = 40;
  {
    persistent_memory mem(hashing_embedder{}, file_store(dir.path, {.mode = mode}));
    std::atomic<int> wrong{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < writers; ++t)
      pool.emplace_back([&, t] {
        const auto who = "w" + std::to_string(t);
        for (int i = 0; i < per_writer; ++i) {
          const auto id = mem.add("entry " + std::to_string(i) + " of " + who, user(who)).results.at(0).id;
          if (i % 8 == 0) mem.update(id, "changed entry " + std::to_string(i) + " of " + who);
          if (i % 13 == 0) mem.delete_memory(id);
          for (const auto& h : mem.search("entry of " + who, user(who), {.limit = 3}))
            if (h.record.user_id != who) ++wrong;
        }
      });
    std::thread reader([&] {
      for (int i = 0; i < 50; ++i) (void)mem.get_all(all_scopes, {.limit = 0});
    });
    for (auto& th : pool) th.join();
    reader.join();
    CHECK(wrong == 0);
  }
  // every acknowledged change survived the close
  persistent_memory again(hashing_embedder{}, file_store(dir.path));
  const int deleted_each = (per_writer + 12) / 13;
  CHECK(again.size() == std::size_t(writers * (per_writer - deleted_each)));
}

TEST_CASE("concurrency: searches write access counts while other threads add, update and delete",
          "[concurrency][access]") {
  engram_test::temp_dir dir;
  memory_config cfg;
  cfg.access_flush_interval = std::chrono::milliseconds{0};  // every search writes its hits
  using file_memory = basic_memory<hashing_embedder, flat_index, file_store, verbatim_extractor>;
  std::atomic<std::uint64_t> hits{0};
  {
    file_memory mem(hashing_embedder(64), flat_index(64),
                    file_store(dir.sub("db"), {.mode = durability::group_commit}), verbatim_extractor(), cfg);
    for (int i = 0; i < 40; ++i) mem.add("garden note " + std::to_string(i), user("u"), {.infer = false});
    std::atomic<bool> done{false};
    std::vector<std::thread> pool;
    for (int t = 0; t < 2; ++t)
      pool.emplace_back([&] {
        while (!done)
          hits += mem.search("garden note", user("u"), {.limit = 5, .weights = {.access = 0.5f}}).size();
      });
    pool.emplace_back([&] {
      for (int i = 0; i < 60; ++i) {
        const auto all = mem.get_all(user("u"), {.limit = 3});
        if (all.size() < 3) break;
        mem.update(all[0].id, "garden note updated " + std::to_string(i));
        mem.delete_memory(all[1].id);
        mem.add("garden note added " + std::to_string(i), user("u"), {.infer = false});
        if (i % 20 == 0) mem.flush_access_counts();
      }
      done = true;
    });
    for (auto& th : pool) th.join();
    mem.flush_access_counts();
  }
  file_store s(dir.sub("db"), {.read_only = true});
  std::uint64_t counted = 0;
  std::size_t counted_ids = 0;
  s.for_each_access_count(scope{}, [&](const std::string& id, std::uint32_t n) {
    CHECK(s.get(id).has_value());  // never a count without its memory
    counted += n;
    ++counted_ids;
  });
  CHECK(counted > 0);
  CHECK(counted <= hits.load());  // hits of deleted memories are dropped, none invented
  CHECK(counted_ids <= s.size());
}

TEST_CASE("concurrency: background compactions run while memories are added, searched, purged and compacted",
          "[concurrency][store]") {
  // A small compaction threshold starts compactions one after another on the store's own thread, while adds
  // and searches go on, purges wait for them, and the store is closed with one perhaps running. Under TSan this checks the compaction's thread against the write path.
  temp_dir dir;
  constexpr int writers = 3, per_writer = 60;
  std::uint64_t compactions = 0;
  {
    persistent_memory mem(hashing_embedder{},
                          file_store(dir.path, {.mode = durability::group_commit, .compact_log_bytes = 8192}));
    std::atomic<int> wrong{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < writers; ++t)
      pool.emplace_back([&, t] {
        const auto who = "w" + std::to_string(t);
        for (int i = 0; i < per_writer; ++i) {
          (void)mem.add("note " + std::to_string(i) + " of " + who, user(who));
          for (const auto& h : mem.search("note of " + who, user(who), {.limit = 3}))
            if (h.record.user_id != who) ++wrong;
        }
      });
    std::thread admin([&] {
      for (int round = 0; round < 3; ++round) {
        for (int i = 0; i < 5; ++i) (void)mem.add("temporary " + std::to_string(i), user("gone"));
        CHECK(mem.purge(user("gone")) == 5);
      }
    });
    for (auto& th : pool) th.join();
    admin.join();
    CHECK(wrong == 0);
    compactions = mem.store().stats().compactions;
  }
  CHECK(compactions > 3);  // the purges' own and at least one in the background
  persistent_memory again(hashing_embedder{}, file_store(dir.path));
  CHECK(again.size() == std::size_t(writers * per_writer));
}
