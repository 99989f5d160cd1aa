#include <engram/engram.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

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

namespace {
/// Holds `m` shared and starts a writer on it; returns once the writer waits.
std::thread waiting_writer(detail::rw_mutex& m, std::atomic<bool>& wrote) {
  std::thread writer([&] {
    m.lock();
    wrote = true;
    m.unlock();
  });
  for (int i = 0; i < 10000 && m.waiting_writers() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(m.waiting_writers() == 1);
  return writer;
}
}  // namespace

TEST_CASE("concurrency: the memory's lock lets searches in while a writer waits, for its patience only", "[concurrency]") {
  // A search holds the lock shared while an add waits for it. New searches still enter for a while (parking
  // them all for every add costs more than the add); past the patience they queue behind the add, so a steady
  // stream of searches cannot starve it (glibc's std::shared_mutex would let them in for as long as they come).
  detail::rw_mutex m(std::chrono::seconds(1));
  m.lock_shared();
  std::atomic<bool> wrote{false};
  const auto before_writer = std::chrono::steady_clock::now();  // the writer's patience starts after this
  auto writer = waiting_writer(m, wrote);
  int entered = 0;
  bool refused = false;
  for (int i = 0; i < 10000 && !refused; ++i) {  // until the patience is over (at most ~10 s)
    if (m.try_lock_shared()) {
      ++entered;
      m.unlock_shared();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    } else {
      refused = true;
    }
  }
  CHECK(refused);
  CHECK(std::chrono::steady_clock::now() - before_writer >= std::chrono::seconds(1));
  CHECK(entered > 0);
  CHECK_FALSE(wrote);
  m.unlock_shared();
  writer.join();
  CHECK(wrote);
  CHECK(m.try_lock_shared());  // readers enter again once the writer is done
  CHECK_FALSE(m.try_lock());
  m.unlock_shared();
  CHECK(m.try_lock());
  CHECK_FALSE(m.try_lock_shared());
  m.unlock();
}

TEST_CASE("concurrency: with no patience the memory's lock stops new searches as soon as a writer waits", "[concurrency]") {
  detail::rw_mutex m(std::chrono::microseconds(0));
  m.lock_shared();
  std::atomic<bool> wrote{false};
  auto writer = waiting_writer(m, wrote);
  CHECK_FALSE(m.try_lock_shared());
  CHECK_FALSE(wrote);
  m.unlock_shared();
  writer.join();
  CHECK(wrote);
}

TEST_CASE("concurrency: the memory's lock says whether anyone waits for it (a writer, or a reader held back)",
          "[concurrency]") {
  detail::rw_mutex m;
  CHECK_FALSE(m.contended());
  m.lock();
  CHECK_FALSE(m.contended());  // held, nobody waiting
  std::atomic<bool> read{false};
  std::thread reader([&] {
    m.lock_shared();
    read = true;
    m.unlock_shared();
  });
  for (int i = 0; i < 10000 && !m.contended(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(m.contended());
  CHECK_FALSE(read);
  m.unlock();
  reader.join();
  CHECK(read);
  CHECK_FALSE(m.contended());
  m.lock_shared();  // a writer waiting behind a reader
  std::atomic<bool> wrote{false};
  auto writer = waiting_writer(m, wrote);
  CHECK(m.contended());
  m.unlock_shared();
  writer.join();
  CHECK_FALSE(m.contended());
}

TEST_CASE("concurrency: writers and readers through the memory's lock, many at once", "[concurrency]") {
  // every writer gets in while 6 readers keep the lock busy, and no reader ever sees a write half done
  detail::rw_mutex m;
  long a = 0, b = 0;
  std::atomic<bool> stop{false};
  std::atomic<long> torn{0}, reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 6; ++r)
    readers.emplace_back([&] {
      while (!stop) {
        std::shared_lock l(m);
        if (a != b) ++torn;
        ++reads;
      }
    });
  std::vector<std::thread> writers;
  for (int w = 0; w < 3; ++w)
    writers.emplace_back([&] {
      for (int i = 0; i < 300; ++i) {
        std::unique_lock l(m);
        ++a;
        ++b;
      }
    });
  for (auto& t : writers) t.join();
  stop = true;
  for (auto& t : readers) t.join();
  CHECK(a == 900);
  CHECK(b == 900);
  CHECK(torn == 0);
  CHECK(reads > 0);
}
