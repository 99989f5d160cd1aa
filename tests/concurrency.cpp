#include <engram/engram.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>

using namespace engram;

TEST_CASE("concurrency: threads adding and searching different scopes", "[concurrency]") {
  memory mem;
  constexpr int threads = 4;
  constexpr int per_thread = 60;
  std::atomic<int> wrong_scope{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      const auto who = "user-" + std::to_string(t);
      for (int i = 0; i < per_thread; ++i) {
        mem.add("fact number " + std::to_string(i) + " about " + who, user(who));
        for (const auto& h : mem.search("fact about " + who, user(who), {.limit = 5}))
          if (h.record.user_id != who) ++wrong_scope;
        if (i % 10 == 0) (void)mem.get_all(user(who));
        if (i % 15 == 0) {
          auto all = mem.get_all(user(who), {.limit = 1});
          if (!all.empty()) mem.update(all.front().id, "updated fact " + std::to_string(i) + " about " + who);
        }
      }
    });
  for (auto& th : pool) th.join();
  CHECK(wrong_scope == 0);
  CHECK(mem.size() == threads * per_thread);
  for (int t = 0; t < threads; ++t) CHECK(mem.get_all(user("user-" + std::to_string(t)), {.limit = 0}).size() == per_thread);
}

TEST_CASE("concurrency: the same fact added from many threads is stored once", "[concurrency]") {
  memory mem;
  std::vector<std::thread> pool;
  for (int t = 0; t < 4; ++t)
    pool.emplace_back([&] {
      for (int i = 0; i < 20; ++i) mem.add("shared fact " + std::to_string(i % 5), user("same"));
    });
  for (auto& th : pool) th.join();
  CHECK(mem.get_all(user("same")).size() == 5);
}

#if defined(__GLIBC__)
TEST_CASE("concurrency: the memory's lock lets a waiting writer in before new readers", "[concurrency]") {
  // A search holds the lock shared while an add waits for it: new searches must queue behind the add (a
  // reader-preferring lock, glibc's std::shared_mutex, would let them in ahead of it for as long as they come).
  detail::rw_mutex m;
  m.lock_shared();
  std::atomic<bool> wrote{false};
  std::thread writer([&] {
    m.lock();
    wrote = true;
    m.unlock();
  });
  bool refused = false;
  for (int i = 0; i < 10000 && !refused; ++i) {  // until the writer is waiting (at most ~10 s)
    if (m.try_lock_shared()) {
      m.unlock_shared();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    } else {
      refused = true;
    }
  }
  CHECK(refused);
  CHECK_FALSE(wrote);
  m.unlock_shared();
  writer.join();
  CHECK(wrote);
  CHECK(m.try_lock_shared());  // readers enter again once the writer is done
  m.unlock_shared();
}
#endif
