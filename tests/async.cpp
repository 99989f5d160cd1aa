#include "support/async_test_support.hpp"
#include "support/kill_child.hpp"

#include <engram/engram.hpp>
#include <engram/store/file_store.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <csignal>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

using namespace engram;
using namespace async_test;
using namespace std::chrono_literals;

namespace {

std::multiset<std::string> texts_of(const std::vector<record>& rs) {
  std::multiset<std::string> out;
  for (const auto& r : rs) out.insert(r.memory);
  return out;
}

using volatile_memory = async_memory<memory_store>;
using durable_memory = async_memory<file_store>;

}  // namespace

TEST_CASE("async: add_async returns before extraction; flush waits for it", "[async]") {
  test_extractor x;
  x.control->close_gate();
  volatile_memory mem(hashing_embedder(64), memory_store{}, x, fast_retries());
  const auto id = mem.add_async("I keep bees on the roof", user("alice"), {.metadata = {{"src", "chat"}}});
  CHECK_FALSE(id.empty());
  // The entry is in the store's queue; no memory exists yet, the extractor is (at most) waiting at the gate.
  const auto queued = pending_of(mem.store());
  REQUIRE(queued.size() == 1);
  CHECK(queued[0].id == id);
  CHECK(queued[0].owner == user("alice"));
  REQUIRE(queued[0].messages.size() == 1);
  CHECK(queued[0].messages[0].content == "I keep bees on the roof");
  CHECK(queued[0].attempts == 0);
  CHECK(mem.size() == 0);
  CHECK(mem.pending_adds() == 1);
  CHECK(x.control->call_count() == 0);

  x.control->open_gate();
  const auto done = mem.flush();
  CHECK(done.ok());
  CHECK(mem.pending_adds() == 0);
  CHECK(pending_of(mem.store()).empty());
  const auto all = mem.get_all(user("alice"));
  REQUIRE(all.size() == 1);
  CHECK(all[0].memory == "I keep bees on the roof");
  CHECK(all[0].metadata == nlohmann::json{{"src", "chat"}});
  CHECK(x.control->call_count() == 1);
  CHECK(mem.flush().ok());  // nothing left: returns at once
}

TEST_CASE("async: entries of a scope keep their order and are batched; scopes stay apart", "[async]") {
  test_extractor x;
  x.control->close_gate();
  auto cfg = fast_retries();
  cfg.async.max_batch = 4;
  volatile_memory mem(hashing_embedder(64), memory_store{}, x, cfg);
  std::map<std::string, std::vector<std::string>> said;
  for (int i = 0; i < 12; ++i) {
    const std::string who = i % 3 == 0 ? "carol" : (i % 3 == 1 ? "dave" : "erin");
    const std::string text = who + " fact number " + std::to_string(i);
    said[who].push_back(text);
    (void)mem.add_async(text, user(who));
  }
  // Different options never share an add.
  (void)mem.add_async("carol dated fact", user("carol"), {.expiration_date = std::string("2099-01-01")});
  said["carol"].push_back("carol dated fact");
  x.control->open_gate();
  REQUIRE(mem.flush().ok());
  for (const auto& [who, texts] : said) {
    const auto all = mem.get_all(user(who));
    CHECK(texts_of(all) == std::multiset<std::string>(texts.begin(), texts.end()));
  }
  CHECK(mem.get_all(user("carol"), {.limit = 0}).size() == 5);
  // Each extract call saw one scope's messages, in the order they were accepted, at most 4 entries.
  std::size_t seen = 0;
  for (const auto& call : x.control->calls) {
    REQUIRE_FALSE(call.empty());
    CHECK(call.size() <= 4);
    const auto who = call[0].substr(0, call[0].find(' '));
    const auto& order = said[who];
    auto at = std::find(order.begin(), order.end(), call[0]);
    REQUIRE(at != order.end());
    for (const auto& t : call) {
      CHECK(at != order.end());
      if (at == order.end()) break;
      CHECK(*at == t);
      ++at;
    }
    seen += call.size();
    if (std::find(call.begin(), call.end(), "carol dated fact") != call.end()) CHECK(call.size() == 1);
  }
  CHECK(seen == 13);
  CHECK(x.control->calls.size() < 13);  // the entries waiting behind the gate were merged
}

TEST_CASE("async: add_async validates like add and stores nothing for bad input", "[async]") {
  volatile_memory mem(hashing_embedder(64), memory_store{}, test_extractor{}, fast_retries());
  CHECK_THROWS_AS(mem.add_async("x", scope{}), validation_error);
  CHECK_THROWS_AS(mem.add_async("x", user("a"), {.metadata = {{"user_id", "b"}}}), validation_error);
  CHECK_THROWS_AS(mem.add_async("x", user("a"), {.expiration_date = std::string("tomorrow")}), validation_error);
  CHECK_THROWS_AS(mem.add_async(std::string("\xff\xfe"), user("a")), validation_error);
  CHECK(pending_of(mem.store()).empty());
  CHECK(mem.pending_adds() == 0);

  memory_config bad;
  bad.async.workers = 0;
  volatile_memory none(hashing_embedder(64), memory_store{}, test_extractor{}, bad);
  CHECK_THROWS_AS(none.add_async("x", user("a")), validation_error);
  CHECK(pending_of(none.store()).empty());
}

TEST_CASE("async: nothing worth remembering still leaves the queue", "[async]") {
  volatile_memory mem(hashing_embedder(64), memory_store{}, test_extractor{}, fast_retries());
  const std::vector<message> only_system = {{"system", "be brief", ""}};
  (void)mem.add_async(only_system, user("a"));
  REQUIRE(mem.flush().ok());
  CHECK(pending_of(mem.store()).empty());
  CHECK(mem.size() == 0);
}

TEST_CASE("async: a failing provider is retried with backoff, then succeeds", "[async]") {
  temp_dir dir;
  test_extractor x;
  x.control->fail_next = 2;
  durable_memory mem(hashing_embedder(64), file_store(dir.sub("db")), x, fast_retries(5));
  (void)mem.add_async("I speak Portuguese", user("ana"));
  REQUIRE(mem.flush().ok());
  CHECK(x.control->call_count() == 3);
  REQUIRE(mem.get_all(user("ana")).size() == 1);
  CHECK(pending_of(mem.store()).empty());
}

TEST_CASE("async: a provider failing forever: the entry is kept as failed, reported, the store otherwise unchanged",
          "[async]") {
  temp_dir dir;
  const auto db = dir.sub("db");
  std::string failed_id;
  {
    test_extractor x;
    durable_memory mem(hashing_embedder(64), file_store(db), x, fast_retries(3));
    mem.add("an earlier memory", user("bo"), {.infer = false});
    x.control->fail_next = -1;
    failed_id = mem.add_async("I moved to Porto", user("bo"));
    const auto done = mem.flush();
    REQUIRE(done.failed.size() == 1);
    CHECK_FALSE(done.ok());
    CHECK(done.failed[0].id == failed_id);
    CHECK(done.failed[0].scope == user("bo"));
    CHECK(done.failed[0].attempts == 3);
    CHECK(done.failed[0].error.find("HTTP 503") != std::string::npos);
    CHECK(x.control->call_count() == 3);
    CHECK(mem.failed_adds() == done.failed);
    CHECK(mem.pending_adds() == 0);
    CHECK(texts_of(mem.get_all(user("bo"))) == std::multiset<std::string>{"an earlier memory"});
    const auto q = pending_of(mem.store());
    REQUIRE(q.size() == 1);
    CHECK(q[0].attempts == 3);
    CHECK(q[0].messages.at(0).content == "I moved to Porto");
  }
  {  // reopened: the failed entry is listed, not processed again
    test_extractor x;
    durable_memory mem(hashing_embedder(64), file_store(db), x, fast_retries(3));
    CHECK(mem.flush().failed.size() == 1);
    REQUIRE(mem.failed_adds().size() == 1);
    CHECK(mem.failed_adds()[0].id == failed_id);
    CHECK(mem.failed_adds()[0].error.find("HTTP 503") != std::string::npos);  // the error is stored with it
    CHECK(x.control->call_count() == 0);
    CHECK(mem.size() == 1);
    // the provider is back: retry_failed queues it with fresh attempts
    CHECK(mem.retry_failed() == 1);
    REQUIRE(mem.flush().ok());
    CHECK(texts_of(mem.get_all(user("bo"))) == std::multiset<std::string>{"an earlier memory", "I moved to Porto"});
    CHECK(pending_of(mem.store()).empty());
  }
  {  // discard_failed drops an entry for good
    test_extractor x;
    x.control->fail_next = -1;
    durable_memory mem(hashing_embedder(64), file_store(db), x, fast_retries(1));
    const auto id = mem.add_async("never mind", user("bo"));
    REQUIRE(mem.flush().failed.size() == 1);
    CHECK_FALSE(mem.discard_failed("no-such-id"));
    CHECK(mem.discard_failed(id));
    CHECK(mem.flush().ok());
    CHECK(pending_of(mem.store()).empty());
    CHECK(mem.size() == 2);
  }
}

TEST_CASE("async: destroyed while working: the running add finishes, the rest waits in the store", "[async]") {
  temp_dir dir;
  const auto db = dir.sub("db");
  {
    test_extractor x;
    x.control->close_gate();
    auto cfg = fast_retries(3, 1);
    cfg.async.max_batch = 1;
    auto mem = std::make_unique<durable_memory>(hashing_embedder(64), file_store(db), x, cfg);
    (void)mem->add_async("first thing", user("cy"));
    while (x.control->entered.load() == 0) std::this_thread::sleep_for(1ms);  // the worker holds it
    (void)mem->add_async("second thing", user("cy"));
    (void)mem->add_async("third thing", user("cy"));
    std::thread destroy([&] { mem.reset(); });
    std::this_thread::sleep_for(50ms);
    x.control->open_gate();
    destroy.join();
  }
  test_extractor x;
  durable_memory mem(hashing_embedder(64), file_store(db), x, fast_retries());
  REQUIRE(mem.flush().ok());
  CHECK(texts_of(mem.get_all(user("cy"))) ==
        std::multiset<std::string>{"first thing", "second thing", "third thing"});
  for (const auto& r : mem.get_all(user("cy"))) CHECK(mem.history(r.id).size() == 1);
  CHECK(pending_of(mem.store()).empty());
}

TEST_CASE("async: killed with SIGKILL before processing, resumed on open and processed exactly once",
          "[async][crash]") {
  temp_dir dir;
  const auto db = dir.sub("db");
  const auto child = engram_test::run_and_kill(
      [&](const engram_test::child_channel& parent) {
        test_extractor x;
        x.control->close_gate();  // extraction never completes in the child
        durable_memory mem(hashing_embedder(64), file_store(db), x, fast_retries());
        (void)mem.add_async("alpha fact", user("kim"));
        (void)mem.add_async("beta fact", user("kim"));
        (void)mem.add_async("gamma fact", user("lee"));
        while (x.control->entered.load() < 1) std::this_thread::sleep_for(1ms);
        parent.ready();
        for (;;) std::this_thread::sleep_for(1s);
      },
      0us);
  REQUIRE(child.ready);
  REQUIRE(child.killed);

  {
    file_store s(db);
    CHECK(pending_of(s).size() == 3);
    CHECK(s.size() == 0);
  }
  {
    test_extractor x;
    durable_memory mem(hashing_embedder(64), file_store(db), x, fast_retries());
    REQUIRE(mem.flush().ok());
    CHECK(texts_of(mem.get_all(user("kim"))) == std::multiset<std::string>{"alpha fact", "beta fact"});
    CHECK(texts_of(mem.get_all(user("lee"))) == std::multiset<std::string>{"gamma fact"});
    CHECK(pending_of(mem.store()).empty());
  }
  test_extractor x;
  durable_memory mem(hashing_embedder(64), file_store(db), x, fast_retries());
  CHECK(mem.flush().ok());
  CHECK(x.control->call_count() == 0);  // nothing is processed twice
  CHECK(mem.size() == 3);
  for (const auto& r : mem.get_all(all_scopes)) {
    const auto h = mem.history(r.id);
    REQUIRE(h.size() == 1);
    CHECK(h[0].event == event_kind::add);
  }
}

TEST_CASE("async: the queue survives compaction and reset keeps accepted work", "[async]") {
  temp_dir dir;
  const auto db = dir.sub("db");
  {
    test_extractor x;
    x.control->close_gate();
    auto cfg = fast_retries(3, 1);
    durable_memory mem(hashing_embedder(64), file_store(db), x, cfg);
    (void)mem.add_async("held back", user("zoe"));
    (void)mem.add_async("held back too", user("zoe"));
    mem.reset();  // clears memories, not the queue
    // a compaction writes the queue into the snapshot
    const_cast<file_store&>(mem.store()).compact();
    CHECK(pending_of(mem.store()).size() == 2);
    x.control->open_gate();
    REQUIRE(mem.flush().ok());
    CHECK(mem.size() == 2);
  }
  file_store s(db);
  CHECK(pending_of(s).empty());
  CHECK(s.size() == 2);
}

TEST_CASE("async: backpressure: add_async blocks while the in-memory queue is full", "[async]") {
  test_extractor x;
  x.control->close_gate();
  auto cfg = fast_retries(3, 1);
  cfg.async.queue_capacity = 2;
  cfg.async.max_batch = 1;
  volatile_memory mem(hashing_embedder(64), memory_store{}, x, cfg);
  (void)mem.add_async("one", user("q"));
  while (x.control->entered.load() == 0) std::this_thread::sleep_for(1ms);  // taken by the worker
  (void)mem.add_async("two", user("q"));
  (void)mem.add_async("three", user("q"));  // the queue now holds 2
  std::atomic<bool> returned{false};
  std::thread t([&] {
    (void)mem.add_async("four", user("q"));
    returned = true;
  });
  std::this_thread::sleep_for(100ms);
  CHECK_FALSE(returned.load());
  CHECK(pending_of(mem.store()).size() == 3);  // the blocked call stored nothing yet
  x.control->open_gate();
  t.join();
  CHECK(returned.load());
  REQUIRE(mem.flush().ok());
  CHECK(mem.size() == 4);
}

TEST_CASE("async: file_store writes queue changes as entries of their own kind, other batches as plain batches",
          "[async]") {
  temp_dir dir;
  const auto db = dir.sub("db");
  // The kinds (first payload byte) of the log entries, in order.
  auto kinds = [&] {
    std::vector<int> out;
    std::FILE* f = std::fopen((db + "/log.0").c_str(), "rb");
    REQUIRE(f != nullptr);
    std::string bytes;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) bytes.append(buf, n);
    std::fclose(f);
    for (std::size_t pos = 24; pos + 9 <= bytes.size();) {
      const auto len = std::uint32_t(std::uint8_t(bytes[pos])) | std::uint32_t(std::uint8_t(bytes[pos + 1])) << 8 |
                       std::uint32_t(std::uint8_t(bytes[pos + 2])) << 16 | std::uint32_t(std::uint8_t(bytes[pos + 3])) << 24;
      if (len == 0) break;  // the log's preallocated zeros: free space
      out.push_back(std::uint8_t(bytes[pos + 8]));
      pos += 8 + len;
    }
    return out;
  };
  {
    test_extractor x;
    durable_memory mem(hashing_embedder(16), file_store(db), x, fast_retries());
    mem.add("a plain add", user("u"), {.infer = false});
    using namespace engram::detail::file_format;
    // identity (format 8's kind; 2 before), batch (format 8's kind; 18 in format 7, 14 in formats 5-6, 11 in
    // format 4, 1 before)
    CHECK(kinds() == std::vector<int>{kind_identity_scope_keys, kind_batch_scope_keys});
    (void)mem.add_async("a queued add", user("u"));
    REQUIRE(mem.flush().ok());
    // enqueue; the add with its dequeue (19 in format 7, 15 in formats 5-6, 12 in format 4, 7 before)
    CHECK(kinds() == std::vector<int>{kind_identity_scope_keys, kind_batch_scope_keys, kind_queued_batch_scope_keys,
                                      kind_queued_batch_scope_keys});
  }
  file_store s(db);
  CHECK(s.size() == 2);
  CHECK(pending_of(s).empty());
}

namespace {

/// What the progress callbacks of async_options were told, in call order (they run on worker threads).
struct progress_log {
  std::mutex mtx;
  std::vector<std::string> started;        ///< on_started ids, one per attempt
  std::vector<async_outcome> processed;    ///< on_processed outcomes
  std::vector<std::string> order;          ///< "start:ID" / "done:ID", interleaved as called
  std::set<std::thread::id> threads;       ///< the threads that called

  void hook(async_options& o) {
    o.on_started = [this](const std::string& id) {
      std::lock_guard lock(mtx);
      started.push_back(id);
      order.push_back("start:" + id);
      threads.insert(std::this_thread::get_id());
    };
    o.on_processed = [this](const async_outcome& out) {
      std::lock_guard lock(mtx);
      processed.push_back(out);
      order.push_back("done:" + out.id);
      threads.insert(std::this_thread::get_id());
    };
  }
  std::size_t starts_of(const std::string& id) {
    std::lock_guard lock(mtx);
    return std::size_t(std::count(started.begin(), started.end(), id));
  }
  std::vector<async_outcome> outcomes_of(const std::string& id) {
    std::lock_guard lock(mtx);
    std::vector<async_outcome> out;
    for (const auto& o : processed)
      if (o.id == id) out.push_back(o);
    return out;
  }
};

}  // namespace

TEST_CASE("async: on_started and on_processed report each entry from a worker, before flush returns", "[async]") {
  test_extractor x;
  x.control->close_gate();
  progress_log log;
  auto cfg = fast_retries();
  cfg.async.max_batch = 1;
  log.hook(cfg.async);
  volatile_memory* self = nullptr;
  std::vector<std::string> seen_while_reporting;  // memories found by get() inside on_processed
  auto reported = cfg.async.on_processed;
  cfg.async.on_processed = [&](const async_outcome& o) {
    for (const auto& e : o.result.results)
      if (auto r = self->get(e.id)) seen_while_reporting.push_back(r->memory);  // one worker: no race
    reported(o);
  };
  cfg.async.workers = 1;
  volatile_memory mem(hashing_embedder(64), memory_store{}, x, cfg);
  self = &mem;
  const auto a = mem.add_async("I keep bees on the roof", user("alice"), {.metadata = {{"src", "chat"}}});
  const auto b = mem.add_async("I grow tomatoes", user("alice"));
  const auto c = mem.add_async("Rex is my dog", user("bob"));
  while (x.control->entered.load() == 0) std::this_thread::sleep_for(1ms);
  CHECK(log.starts_of(a) == 1);  // started before extraction, reported nothing yet
  CHECK(log.outcomes_of(a).empty());
  x.control->open_gate();
  REQUIRE(mem.flush().ok());
  // every outcome is in by the time flush returns
  for (const auto& [id, text, who] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {a, "I keep bees on the roof", "alice"}, {b, "I grow tomatoes", "alice"}, {c, "Rex is my dog", "bob"}}) {
    INFO(text);
    CHECK(log.starts_of(id) == 1);
    const auto outs = log.outcomes_of(id);
    REQUIRE(outs.size() == 1);
    const auto& o = outs[0];
    CHECK(o.succeeded);
    CHECK(o.error.empty());
    CHECK(o.attempts == 1);
    CHECK(o.scope == user(who));
    CHECK(o.batch == std::vector<std::string>{id});
    REQUIRE(o.result.results.size() == 1);
    CHECK(o.result.results[0].event == event_kind::add);
    CHECK(o.result.results[0].memory == text);
    const auto stored = mem.get(o.result.results[0].id);
    REQUIRE(stored);
    CHECK(stored->memory == text);
  }
  CHECK(seen_while_reporting.size() == 3);  // committed and readable when reported
  // start precedes done for each entry; alice's two entries are reported in the order accepted
  const auto pos = [&](const std::string& s) { return std::find(log.order.begin(), log.order.end(), s) - log.order.begin(); };
  for (const auto& id : {a, b, c}) CHECK(pos("start:" + id) < pos("done:" + id));
  CHECK(pos("done:" + a) < pos("start:" + b));
  CHECK(log.threads.size() == 1);
  CHECK(log.threads.count(std::this_thread::get_id()) == 0);  // never the caller's thread
}

TEST_CASE("async: on_processed reports a failure once, after the last attempt; on_started every attempt", "[async]") {
  test_extractor x;
  progress_log log;
  auto cfg = fast_retries(3);
  log.hook(cfg.async);
  volatile_memory mem(hashing_embedder(64), memory_store{}, x, cfg);
  x.control->fail_next = 2;  // two failures, then it works
  const auto ok = mem.add_async("I speak Portuguese", user("ana"));
  REQUIRE(mem.flush().ok());
  CHECK(log.starts_of(ok) == 3);
  auto outs = log.outcomes_of(ok);
  REQUIRE(outs.size() == 1);
  CHECK(outs[0].succeeded);
  CHECK(outs[0].attempts == 3);
  REQUIRE(outs[0].result.results.size() == 1);
  CHECK(outs[0].result.results[0].memory == "I speak Portuguese");

  x.control->fail_next = -1;  // down for good
  const auto bad = mem.add_async("I moved to Porto", user("ana"));
  const auto done = mem.flush();
  REQUIRE(done.failed.size() == 1);
  CHECK(log.starts_of(bad) == 3);
  outs = log.outcomes_of(bad);
  REQUIRE(outs.size() == 1);
  CHECK_FALSE(outs[0].succeeded);
  CHECK(outs[0].attempts == 3);
  CHECK(outs[0].error == done.failed[0].error);
  CHECK(outs[0].error.find("HTTP 503") != std::string::npos);
  CHECK(outs[0].result.results.empty());
  CHECK(outs[0].scope == user("ana"));

  // retry_failed: a fresh set of attempts, reported again once it is final
  x.control->fail_next = 0;
  CHECK(mem.retry_failed() == 1);
  REQUIRE(mem.flush().ok());
  CHECK(log.starts_of(bad) == 4);
  outs = log.outcomes_of(bad);
  REQUIRE(outs.size() == 2);
  CHECK(outs[1].succeeded);
  CHECK(outs[1].attempts == 1);
}

TEST_CASE("async: entries merged into one add are each reported with that add's result", "[async]") {
  test_extractor x;
  x.control->close_gate();
  progress_log log;
  auto cfg = fast_retries(3, 1);
  cfg.async.max_batch = 8;
  log.hook(cfg.async);
  volatile_memory mem(hashing_embedder(64), memory_store{}, x, cfg);
  const auto first = mem.add_async("first fact", user("cy"));
  while (x.control->entered.load() == 0) std::this_thread::sleep_for(1ms);  // the worker holds the first
  const auto second = mem.add_async("second fact", user("cy"));
  const auto third = mem.add_async("third fact", user("cy"));
  x.control->open_gate();
  REQUIRE(mem.flush().ok());
  REQUIRE(x.control->call_count() == 2);  // the two waiting entries shared one extraction
  const auto o2 = log.outcomes_of(second), o3 = log.outcomes_of(third);
  REQUIRE(o2.size() == 1);
  REQUIRE(o3.size() == 1);
  CHECK(o2[0].batch == std::vector<std::string>{second, third});
  CHECK(o3[0].batch == o2[0].batch);
  REQUIRE(o2[0].result.results.size() == 2);
  CHECK(o2[0].result.results == o3[0].result.results);
  CHECK(log.outcomes_of(first).at(0).batch == std::vector<std::string>{first});
  CHECK(log.outcomes_of(first).at(0).result.results.at(0).memory == "first fact");
}

TEST_CASE("async: a throwing callback changes no outcome; entries resumed on open are reported", "[async]") {
  temp_dir dir;
  const auto db = dir.sub("db");
  {
    test_extractor x;
    auto cfg = fast_retries();
    std::atomic<int> calls{0};
    cfg.async.on_started = [&](const std::string&) {
      ++calls;
      throw std::runtime_error("callback failure");
    };
    cfg.async.on_processed = [&](const async_outcome&) {
      ++calls;
      throw 42;  // not even an exception type
    };
    durable_memory mem(hashing_embedder(64), file_store(db), x, cfg);
    (void)mem.add_async("still stored", user("dee"));
    (void)mem.add_async("stored too", user("dee"));
    REQUIRE(mem.flush().ok());
    CHECK(calls.load() == 4);
    CHECK(texts_of(mem.get_all(user("dee"))) == std::multiset<std::string>{"still stored", "stored too"});
    CHECK(mem.failed_adds().empty());
  }
  // An entry left in the store's queue (by a process that died) is reported by the memory that resumes it.
  {
    file_store s(db);
    write_batch b;
    b.enqueued.push_back(pending_add{"resumed-entry-1", user("dee"), {{"user", "left in the queue", ""}},
                                     nlohmann::json{{"metadata", nlohmann::json::object()}, {"infer", true}},
                                     "2025-01-01T00:00:00Z", 0});
    s.apply(b);
  }
  test_extractor x;
  progress_log log;
  auto cfg = fast_retries();
  log.hook(cfg.async);
  durable_memory mem(hashing_embedder(64), file_store(db), x, cfg);
  REQUIRE(mem.flush().ok());
  CHECK(log.starts_of("resumed-entry-1") == 1);
  const auto outs = log.outcomes_of("resumed-entry-1");
  REQUIRE(outs.size() == 1);
  CHECK(outs[0].succeeded);
  REQUIRE(outs[0].result.results.size() == 1);
  CHECK(outs[0].result.results[0].memory == "left in the queue");
  CHECK(mem.get(outs[0].result.results[0].id).has_value());
}
