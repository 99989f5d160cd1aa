// basic_memory over file_store + ivf_index: the index snapshot is saved beside the records and restored on
// open, so a reopen runs no k-means; a snapshot that does not match is rejected and rebuilt.
#include <engram/embed/hashing.hpp>
#include <engram/extract/verbatim.hpp>
#include <engram/index/ivf.hpp>
#include <engram/memory.hpp>
#include <engram/store/file_store.hpp>
#include <engram/store/memory_store.hpp>

#include <catch2/catch.hpp>
#include "support/temp_dir.hpp"

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <stdlib.h>  // mkdtemp

using namespace engram;

namespace {

using ivf_memory = basic_memory<hashing_embedder, ivf_index, file_store, verbatim_extractor>;

using engram_test::temp_dir;

constexpr std::size_t dim = 64;

ivf_memory open_memory(const std::string& dir) {
  return ivf_memory(hashing_embedder{dim},
                    ivf_index(dim, ivf_index_options{.nlist = 8, .nprobe = 2, .train_threshold = 120, .max_train = 500,
                                                     .min_per_list = 8, .iterations = 8, .seed = 9,
                                                     .retrain_growth = 0.0, .max_imbalance = 4.0, .background = true}),
                    file_store(dir, {.mode = durability::buffered}), verbatim_extractor{});
}

const std::vector<std::string> queries{"topic 3 detail", "note about topic 17", "alpha beta gamma", "item 42"};

/// (id, score) of the hits of every query, in order.
std::vector<std::pair<std::string, float>> answers(const ivf_memory& mem) {
  std::vector<std::pair<std::string, float>> out;
  for (const auto& q : queries)
    for (const auto& h : mem.search(q, user("alice"), {.limit = 10, .mode = search_mode::semantic}))
      out.emplace_back(h.record.id, h.score);
  return out;
}

void fill(ivf_memory& mem, int from, int to) {
  for (int i = from; i < to; ++i)
    mem.add("note about topic " + std::to_string(i % 40) + " item " + std::to_string(i) + " word" +
                std::to_string(i * 7 % 13),
            user("alice"), {.infer = false});
  mem.add("something bob said", user("bob"), {.infer = false});  // a small, untrained scope
}

}  // namespace

TEST_CASE("ivf_persist: a reopen restores the quantiser without k-means and answers the same", "[ivf]") {
  temp_dir dir;
  std::vector<std::pair<std::string, float>> before;
  {
    auto mem = open_memory(dir.path);
    fill(mem, 0, 300);
    mem.index().wait_idle();
    REQUIRE(mem.index().stats().trainings == 1);
    before = answers(mem);
    REQUIRE(before.size() == 40);
  }  // the destructor saves the snapshot
  REQUIRE(std::filesystem::exists(dir.path + "/blob.index"));
  {
    auto mem = open_memory(dir.path);
    mem.index().wait_idle();
    CHECK(mem.index().stats().trainings == 0);  // no k-means
    CHECK(mem.index().stats().snapshots_loaded == 1);
    CHECK(mem.index().stats().snapshots_rejected == 0);
    CHECK(answers(mem) == before);
    CHECK_FALSE(mem.save_index_snapshot());  // unchanged since restored: nothing to write
  }
}

TEST_CASE("ivf_persist: a corrupt or stale snapshot is rejected and the index rebuilt", "[ivf]") {
  temp_dir dir;
  const auto blob = dir.path + "/blob.index";
  {
    auto mem = open_memory(dir.path);
    fill(mem, 0, 300);
    mem.index().wait_idle();
  }
  REQUIRE(std::filesystem::exists(blob));
  const auto old_blob = dir.path + "/old-blob";
  std::filesystem::copy_file(blob, old_blob);
  {  // corrupt: one byte in the middle flipped
    std::fstream f(blob, std::ios::in | std::ios::out | std::ios::binary);
    const auto size = std::filesystem::file_size(blob);
    f.seekg(std::streamoff(size / 2));
    char c = 0;
    f.get(c);
    f.seekp(std::streamoff(size / 2));
    f.put(char(c ^ 0x21));
  }
  {
    auto mem = open_memory(dir.path);
    mem.index().wait_idle();
    CHECK(mem.index().stats().snapshots_rejected == 1);
    CHECK(mem.index().stats().snapshots_loaded == 0);
    CHECK(mem.index().stats().trainings == 1);  // rebuilt
    CHECK(answers(mem).size() == 40);
    fill(mem, 300, 320);  // and the store moves on: the saved snapshot becomes stale
  }  // saves a fresh snapshot of the rebuilt index
  {
    auto mem = open_memory(dir.path);
    mem.index().wait_idle();
    CHECK(mem.index().stats().snapshots_loaded == 1);
    CHECK(mem.index().stats().trainings == 0);
  }
  std::filesystem::copy_file(old_blob, blob, std::filesystem::copy_options::overwrite_existing);
  {  // a snapshot of 300 memories for a scope that now holds 320
    auto mem = open_memory(dir.path);
    mem.index().wait_idle();
    CHECK(mem.index().stats().snapshots_rejected == 1);
    CHECK(mem.index().stats().trainings == 1);
    CHECK(answers(mem).size() == 40);
  }
}

TEST_CASE("ivf_persist: file_store keeps named blobs atomically; bad names are refused", "[ivf]") {
  temp_dir dir;
  {
    file_store st(dir.path);
    CHECK_FALSE(st.get_blob("x").has_value());
    st.put_blob("x", std::string("a\0b", 3));
    st.put_blob("x", "second");
    CHECK(st.get_blob("x") == std::optional<std::string>("second"));
    st.put_blob("empty", "");
    CHECK(st.get_blob("empty") == std::optional<std::string>(""));
    CHECK_THROWS_AS(st.put_blob("../evil", "x"), validation_error);
    CHECK_THROWS_AS(st.put_blob("", "x"), validation_error);
    CHECK_THROWS_AS((void)st.get_blob("a/b"), validation_error);
  }
  {
    std::ofstream(dir.path + "/blob.x.tmp") << "half of a blob write a crash interrupted";
    file_store ro(dir.path, {.read_only = true});  // a reader leaves the writer's files alone
  }
  CHECK(std::filesystem::exists(dir.path + "/blob.x.tmp"));
  { file_store st(dir.path); }  // the next writer removes the leftover; the blob itself is untouched
  CHECK_FALSE(std::filesystem::exists(dir.path + "/blob.x.tmp"));
  file_store ro(dir.path, {.read_only = true});
  CHECK(ro.get_blob("x") == std::optional<std::string>("second"));
  CHECK_THROWS_AS(ro.put_blob("x", "y"), storage_error);
  // a memory over a store without blobs works as before, with nothing saved
  basic_memory<hashing_embedder, ivf_index, memory_store, verbatim_extractor> mem(
      hashing_embedder{dim}, ivf_index(dim), memory_store{}, verbatim_extractor{});
  mem.add("hello", user("a"), {.infer = false});
  CHECK_FALSE(mem.save_index_snapshot());
}

TEST_CASE("ivf_persist: an unreadable snapshot does not stop the memory from opening", "[ivf]") {
  temp_dir dir;
  {
    auto mem = open_memory(dir.path);
    fill(mem, 0, 200);
  }
  std::filesystem::remove(dir.path + "/blob.index");
  std::filesystem::create_directory(dir.path + "/blob.index");  // exists, cannot be read (nor replaced)
  {
    auto mem = open_memory(dir.path);
    mem.index().wait_idle();
    CHECK(mem.index().stats().trainings == 1);
    CHECK(answers(mem).size() == 40);
    CHECK_THROWS_AS(mem.save_index_snapshot(), storage_error);  // the explicit call reports; the destructor swallows
  }
}
