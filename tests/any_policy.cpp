// any_embedder and any_extractor: policies chosen at run time behind one type.
#include <engram/embed/any_embedder.hpp>
#include <engram/engram.hpp>
#include <engram/extract/any_extractor.hpp>

#include <catch2/catch.hpp>
#include "support/temp_dir.hpp"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace engram;

namespace {

/// The minimal embedder: dimension() and embed() only. Counts its calls.
struct bare_embedder {
  std::shared_ptr<std::atomic<int>> calls = std::make_shared<std::atomic<int>>(0);
  std::size_t dimension() const { return 8; }
  std::vector<float> embed(std::string_view text) const {
    ++*calls;
    std::vector<float> v(8, 0.0f);
    v[text.size() % 8] = 1.0f;
    return v;
  }
};

/// An embedder with its own name and batch call (counted apart from embed()).
struct batching_embedder {
  std::shared_ptr<std::atomic<int>> batches = std::make_shared<std::atomic<int>>(0);
  hashing_embedder inner{32};
  std::size_t dimension() const { return 32; }
  std::string name() const { return "batching-test"; }
  std::vector<float> embed(std::string_view text) const { return inner.embed(text); }
  std::vector<std::vector<float>> embed_batch(std::span<const std::string> texts) const {
    ++*batches;
    return inner.embed_batch(texts);
  }
};

/// A move-only embedder that fails, as an HTTP embedder does when its server is down.
struct failing_embedder {
  std::unique_ptr<int> move_only = std::make_unique<int>(0);
  std::size_t dimension() const { return 16; }
  std::vector<float> embed(std::string_view) const { throw provider_error("failing_embedder: server down", 0); }
};

/// Decides by a script: every fact about "moved" updates the first neighbour; others are added.
struct scripted_extractor {
  int extracted = 0;  // mutated through the wrapper: decide/extract are non-const here
  std::vector<fact> extract(std::span<const message> messages, const extraction_context&) {
    ++extracted;
    std::vector<fact> out;
    for (const auto& m : messages) out.push_back({"fact: " + m.content, m.role, m.name, nlohmann::json::object()});
    return out;
  }
  std::vector<memory_action> decide(std::span<const fact> facts, std::span<const std::vector<existing_memory>> near,
                                    const extraction_context&) {
    std::vector<memory_action> out;
    for (std::size_t i = 0; i < facts.size(); ++i) {
      if (facts[i].text.find("moved") != std::string::npos && !near[i].empty())
        out.push_back({event_kind::update, facts[i].text, near[i].front().id, i});
      else
        out.push_back({event_kind::add, facts[i].text, {}, i});
    }
    return out;
  }
};

using engram_test::temp_dir;

using runtime_memory = basic_memory<any_embedder, flat_index, memory_store, any_extractor>;
using runtime_file_memory = basic_memory<any_embedder, flat_index, file_store, any_extractor>;

}  // namespace

static_assert(embedder<any_embedder>);
static_assert(fact_extractor<any_extractor>);
static_assert(!std::is_copy_constructible_v<any_embedder> && std::is_nothrow_move_constructible_v<any_embedder>);

TEST_CASE("any_policy: a default any_embedder is the hashing embedder", "[any_policy]") {
  const any_embedder e;
  const hashing_embedder h;
  CHECK(e.dimension() == h.dimension());
  CHECK(e.name() == h.name());
  CHECK(e.embed("I keep bees") == h.embed("I keep bees"));
  const std::vector<std::string> texts{"one", "two"};
  CHECK(e.embed_batch(texts) == h.embed_batch(texts));
  REQUIRE(e.target<hashing_embedder>() != nullptr);
  CHECK(e.target<hashing_embedder>()->dimension() == 384);
  CHECK(e.target<bare_embedder>() == nullptr);
}

TEST_CASE("any_policy: any_embedder keeps the wrapped name and batching, with basic_memory's fallbacks",
          "[any_policy]") {
  bare_embedder bare;
  const auto bare_calls = bare.calls;
  const any_embedder a(bare);
  CHECK(a.name() == "custom");  // the name basic_memory records for an embedder without name()
  CHECK(a.dimension() == 8);
  const std::vector<std::string> texts{"a", "bb", "ccc"};
  const auto vs = a.embed_batch(texts);  // no embed_batch of its own: one embed() per text
  REQUIRE(vs.size() == 3);
  CHECK(vs[1] == bare.embed("bb"));
  CHECK(*bare_calls == 4);

  batching_embedder batching;
  const auto batches = batching.batches;
  const any_embedder b(std::move(batching));
  CHECK(b.name() == "batching-test");
  CHECK(b.dimension() == 32);
  CHECK(b.embed_batch(texts) == hashing_embedder(32).embed_batch(texts));
  CHECK(*batches == 1);  // forwarded as one batch
  REQUIRE(b.target<batching_embedder>() != nullptr);

  any_embedder moved = any_embedder(failing_embedder{});  // move-only types are held
  CHECK_THROWS_AS(moved.embed("x"), provider_error);
}

TEST_CASE("any_policy: a memory composed at run time adds, searches and updates through the wrapped policies",
          "[any_policy]") {
  scripted_extractor script;
  runtime_memory mem(any_embedder(hashing_embedder(64)), memory_store{}, any_extractor(std::move(script)));
  CHECK(mem.embedder().dimension() == 64);
  const auto added = mem.add("I live in Lisbon", user("alice"));
  REQUIRE(added.results.size() == 1);
  CHECK(added.results[0].memory == "fact: I live in Lisbon");  // the wrapped extractor's fact, not verbatim

  const auto moved = mem.add("I moved from Lisbon to Porto", user("alice"));
  REQUIRE(moved.results.size() == 1);
  CHECK(moved.results[0].event == event_kind::update);
  CHECK(moved.results[0].id == added.results[0].id);
  const auto hits = mem.search("Porto", user("alice"));
  REQUIRE(hits.size() == 1);
  CHECK(hits[0].record.memory == "fact: I moved from Lisbon to Porto");

  // infer = false bypasses the extractor, as with any other Extractor
  mem.add("plain text", user("alice"), {.infer = false});
  CHECK(mem.get_all(user("alice")).size() == 2);

  // Default-constructed: the offline composition (hashing-v1, verbatim)
  runtime_memory offline;
  CHECK(offline.embedder().name() == "hashing-v1");
  CHECK(offline.add("as said", user("bob")).results.at(0).memory == "as said");
}

TEST_CASE("any_policy: a provider failure through the wrapper stores nothing", "[any_policy]") {
  runtime_memory mem(any_embedder(failing_embedder{}), memory_store{}, any_extractor{});
  CHECK_THROWS_AS(mem.add("lost?", user("alice")), provider_error);
  CHECK(mem.get_all(all_scopes).empty());
}

TEST_CASE("any_policy: a durable store refuses another wrapped embedder by name and by dimension", "[any_policy]") {
  temp_dir dir;
  {
    runtime_file_memory mem(any_embedder(hashing_embedder{}), file_store(dir.path), any_extractor{});
    mem.add("I keep bees", user("alice"));
  }
  // Same identity through the wrapper: opens and finds it.
  {
    runtime_file_memory mem(any_embedder(hashing_embedder{}), file_store(dir.path), any_extractor{});
    CHECK(mem.search("bees", user("alice")).size() == 1);
  }
  CHECK_THROWS_AS(runtime_file_memory(any_embedder(hashing_embedder(128)), file_store(dir.path), any_extractor{}),
                  dimension_mismatch);
  struct renamed : hashing_embedder {
    std::string name() const { return "renamed-v1"; }
  };
  try {
    runtime_file_memory mem(any_embedder(renamed()), file_store(dir.path), any_extractor{});
    FAIL("opened a store of hashing-v1 with renamed-v1");
  } catch (const validation_error& e) {
    CHECK(std::string(e.what()).find("renamed-v1") != std::string::npos);
    CHECK(std::string(e.what()).find("hashing-v1") != std::string::npos);
  }
  // Nothing was lost by the refusals.
  runtime_file_memory mem(any_embedder{}, file_store(dir.path), any_extractor{});
  CHECK(mem.get_all(user("alice")).size() == 1);
}

TEST_CASE("any_policy: concurrent searches and adds through the wrappers", "[any_policy]") {
  runtime_memory mem;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        mem.add("note " + std::to_string(t) + "-" + std::to_string(i), user("u" + std::to_string(t)));
        (void)mem.search("note", user("u" + std::to_string(t)), {.limit = 3});
      }
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) CHECK(mem.get_all(user("u" + std::to_string(t)), {.limit = 0}).size() == 50);
}
