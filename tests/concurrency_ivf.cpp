#include <engram/embed/hashing.hpp>
#include <engram/extract/verbatim.hpp>
#include <engram/index/ivf.hpp>
#include <engram/memory.hpp>
#include <engram/store/memory_store.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

using namespace engram;

TEST_CASE("concurrency: an ivf_index memory trains and retrains while threads add and search", "[concurrency]") {
  using ivf_memory = basic_memory<hashing_embedder, ivf_index, memory_store, verbatim_extractor>;
  ivf_memory mem(hashing_embedder{64},
                 ivf_index(64, ivf_index_options{.nlist = 8, .nprobe = 2, .train_threshold = 40, .max_train = 200,
                                                 .min_per_list = 4, .iterations = 4, .seed = 3, .retrain_growth = 2.0,
                                                 .max_imbalance = 4.0}),
                 memory_store{}, verbatim_extractor{});
  constexpr int threads = 4;
  constexpr int per_thread = 50;
  std::atomic<int> wrong_scope{0}, empty{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      const auto who = "user-" + std::to_string(t % 2);  // two scopes shared by two threads each
      for (int i = 0; i < per_thread; ++i) {
        mem.add("note " + std::to_string(t) + "-" + std::to_string(i) + " for " + who, user(who));
        const auto hits = mem.search("note for " + who, user(who), {.limit = 5});
        if (hits.empty()) ++empty;
        for (const auto& h : hits)
          if (h.record.user_id != who) ++wrong_scope;
      }
    });
  for (auto& th : pool) th.join();
  CHECK(wrong_scope == 0);
  CHECK(empty == 0);
  CHECK(mem.get_all(user("user-0"), {.limit = 1000}).size() == 2 * per_thread);
}
