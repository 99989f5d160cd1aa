#include <engram/engram.hpp>

#include <catch2/catch.hpp>
#include "temp_dir.hpp"

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
