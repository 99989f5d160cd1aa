// Reads answer only what is durable: a change staged by a writer that is still waiting for its store's sync is
// not answered by a read of its partition until the sync returns (memory/commit.hpp), while reads of other
// partitions go on. The store here is a memory_store whose second commit phase the test holds and releases.
#include <engram/engram.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

using namespace engram;

namespace durable_reads {  // named: the unity build shares one translation unit among test files

/// The durability the test controls: while held, appended batches are not durable until release().
struct durability_gate {
  std::mutex m;
  std::condition_variable cv;
  std::uint64_t appended = 0, durable = 0;
  bool holding = false;

  std::uint64_t append() {
    std::lock_guard lock(m);
    ++appended;
    if (!holding) durable = appended;
    cv.notify_all();
    return appended;
  }
  void sync(std::uint64_t ticket) {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return durable >= ticket; });
  }
  void hold() {
    std::lock_guard lock(m);
    holding = true;
  }
  void release() {
    std::lock_guard lock(m);
    holding = false;
    durable = appended;
    cv.notify_all();
  }
  /// Waits until `n` batches were appended in all.
  void wait_appended(std::uint64_t n) {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return appended >= n; });
  }
};

/// memory_store with a two-phase commit whose sync waits for the gate.
class gated_store : public memory_store {
 public:
  explicit gated_store(std::shared_ptr<durability_gate> g) : gate_(std::move(g)) {}
  std::uint64_t append(const write_batch& b) {
    apply(b);
    return gate_->append();
  }
  void sync(std::uint64_t ticket) const { gate_->sync(ticket); }

 private:
  std::shared_ptr<durability_gate> gate_;
};
static_assert(two_phase_store<gated_store>);

using gated_memory = basic_memory<hashing_embedder, flat_index, gated_store, verbatim_extractor>;

template <class T>
bool answers_within(std::future<T>& f, std::chrono::milliseconds d) {
  return f.wait_for(d) == std::future_status::ready;
}

bool mentions(const std::vector<search_hit>& hits, std::string_view text) {
  for (const auto& h : hits)
    if (h.record.memory == text) return true;
  return false;
}

}  // namespace durable_reads

using namespace durable_reads;

TEST_CASE("concurrency: a read of a partition waits for the durability of a change staged in it",
          "[concurrency][commit]") {
  auto gate = std::make_shared<durability_gate>();
  gated_memory mem(hashing_embedder{}, gated_store(gate));
  const auto tea = mem.add("Alice drinks green tea", user("alice"), {.infer = false}).results.at(0).id;
  (void)mem.add("Bob plays chess", user("bob"), {.infer = false});
  const auto before = gate->appended;

  SECTION("an add") {
    gate->hold();
    auto writer = std::async(std::launch::async, [&] {
      return mem.add("Alice drinks black coffee", user("alice"), {.infer = false});
    });
    gate->wait_appended(before + 1);  // staged, waiting for its sync (the write lock is released)
    auto alice = std::async(std::launch::async, [&] { return mem.search("coffee", user("alice")); });
    auto alice_all = std::async(std::launch::async, [&] { return mem.get_all(user("alice")); });
    auto alice_get = std::async(std::launch::async, [&] { return mem.get(tea); });
    auto count = std::async(std::launch::async, [&] { return mem.size(); });
    auto bob = std::async(std::launch::async, [&] { return mem.search("chess", user("bob")); });
    CHECK(answers_within(bob, std::chrono::seconds(30)));  // another partition: nothing to wait for
    CHECK(mentions(bob.get(), "Bob plays chess"));
    CHECK_FALSE(answers_within(alice, std::chrono::milliseconds(300)));
    CHECK_FALSE(answers_within(alice_all, std::chrono::milliseconds(1)));
    CHECK_FALSE(answers_within(alice_get, std::chrono::milliseconds(1)));
    CHECK_FALSE(answers_within(count, std::chrono::milliseconds(1)));
    CHECK_FALSE(answers_within(writer, std::chrono::milliseconds(1)));
    gate->release();
    CHECK(mentions(alice.get(), "Alice drinks black coffee"));
    CHECK(alice_all.get().size() == 2);
    CHECK(alice_get.get().has_value());
    CHECK(count.get() == 3);
    CHECK(writer.get().results.size() == 1);
  }

  SECTION("a delete") {
    gate->hold();
    auto writer = std::async(std::launch::async, [&] { mem.delete_memory(tea); });
    gate->wait_appended(before + 1);
    auto alice = std::async(std::launch::async, [&] { return mem.search("tea", user("alice")); });
    auto history = std::async(std::launch::async, [&] { return mem.history(tea); });
    CHECK_FALSE(answers_within(alice, std::chrono::milliseconds(300)));
    CHECK_FALSE(answers_within(history, std::chrono::milliseconds(1)));
    gate->release();
    CHECK(alice.get().empty());
    CHECK(history.get().size() == 2);  // ADD, DELETE
    writer.get();
  }

  SECTION("a scope's first memory") {
    gate->hold();
    auto writer = std::async(std::launch::async, [&] {
      return mem.add("Carol keeps bees", user("carol"), {.infer = false});
    });
    gate->wait_appended(before + 1);
    auto carol = std::async(std::launch::async, [&] { return mem.get_all(user("carol")); });
    auto bob = std::async(std::launch::async, [&] { return mem.get_all(user("bob")); });
    CHECK(answers_within(bob, std::chrono::seconds(30)));
    CHECK_FALSE(answers_within(carol, std::chrono::milliseconds(300)));
    gate->release();
    CHECK(carol.get().size() == 1);
    CHECK(writer.get().results.size() == 1);
  }

  SECTION("nothing in flight: reads of a partition whose changes are durable answer at once") {
    gate->hold();  // nothing appended while held
    auto alice = std::async(std::launch::async, [&] { return mem.search("tea", user("alice")); });
    CHECK(answers_within(alice, std::chrono::seconds(30)));
    CHECK(mentions(alice.get(), "Alice drinks green tea"));
    gate->release();
  }
}
