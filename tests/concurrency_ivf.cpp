#include <engram/embed/hashing.hpp>
#include <engram/extract/verbatim.hpp>
#include <engram/index/ivf.hpp>
#include <engram/memory.hpp>
#include <engram/store/memory_store.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <shared_mutex>
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

TEST_CASE("concurrency: searches answer while an ivf_index trains in the background, then see the new lists",
          "[concurrency]") {
  constexpr std::size_t d = 16;
  ivf_index ivf(d, ivf_index_options{.nlist = 16, .nprobe = 16, .train_threshold = 500, .max_train = 1000,
                                     .min_per_list = 8, .iterations = 20, .seed = 5, .retrain_growth = 1.5,
                                     .max_imbalance = 4.0, .background = true});
  std::shared_mutex mtx;  // what basic_memory does: searches shared, changes exclusive
  std::mt19937 g(1);
  std::normal_distribution<float> n;
  const auto vec = [&] {
    std::vector<float> v(d);
    for (auto& x : v) x = n(g);
    return v;
  };
  const std::vector<partition_id> p0{0};
  std::atomic<bool> done{false};
  std::atomic<int> short_answers{0}, searches{0}, during_training{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t)
    readers.emplace_back([&, t] {
      std::vector<float> q(d, 0.0f);
      q[std::size_t(t)] = 1.0f;
      while (!done.load()) {
        std::shared_lock lock(mtx);
        const auto size = ivf.size();
        const bool training = ivf.training(0);
        // nprobe = nlist: every row is scanned, so k hits whenever k rows exist, whatever lists serve
        const auto hits = ivf.search(q, 10, p0);
        if (hits.size() != std::min<std::size_t>(10, size)) ++short_answers;
        ++searches;
        if (training) ++during_training;
        lock.unlock();
        std::this_thread::sleep_for(std::chrono::microseconds(50));  // glibc's rwlock prefers readers: let the writer in
      }
    });
  for (slot_id s = 0; s < 4000; ++s) {
    if (s == 700) ivf.wait_idle();  // the first training is installed: the next growth starts a retraining
    std::unique_lock lock(mtx);
    ivf.add(s, 0, vec());
    if (s % 5 == 4) ivf.remove(s - 2);
    if (s % 7 == 6) ivf.update(s - 1, vec());
  }
  ivf.wait_idle();
  done = true;
  for (auto& th : readers) th.join();
  INFO(searches << " searches, " << during_training << " during a training");
  CHECK(short_answers == 0);
  CHECK(ivf.trained(0));
  CHECK(ivf.stats().trainings >= 2);  // the first training and at least one retraining
  CHECK(ivf.size() == 4000 - 4000 / 5);
}
