// Purge (basic_memory::purge): a scope's memories and their history are erased for good, in memory_store and
// file_store, also the history of its memories deleted before the purge; the other scopes stay whole, and no file
// of a file_store's directory keeps the text.
#include <engram/engram.hpp>
#include <engram/store/file_store.hpp>

#include "support/purge_support.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>

using namespace engram;
using engram_test::temp_dir;
using purge_test::check_deleted_purged;
using purge_test::check_purged;
using purge_test::files_holding;
using purge_test::plant;
using purge_test::plant_deleted;

namespace {
using file_memory = basic_memory<hashing_embedder, flat_index, file_store, verbatim_extractor>;
const std::string secret = "zq-unique-4711-purge";

/// Writes `bytes` over `file`.
void overwrite(const std::string& file, const std::string& bytes) {
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
}

/// Makes the files of `dir` what a format-5 engram wrote: the header's version 5, in the snapshot no owner
/// entries (format 6's only addition), the current record kinds as format 5's (records without entities or
/// scope keys, as an add writes them, take the same bytes in both), and pending adds and the identity without
/// format 8's scope keys.
void downgrade_to_format_5(const std::string& dir) {
  namespace ff = detail::file_format;
  using detail::scope_layout;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    if (name != "snapshot" && name.rfind("log.", 0) != 0) continue;
    std::ifstream in(e.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string out = bytes.substr(0, ff::header_size);
    out[ff::header_version_offset] = 5;
    for (std::size_t pos = ff::header_size; pos < bytes.size();) {
      const auto f = ff::next_frame(bytes.data(), bytes.size(), pos);
      if (!f.problem.empty()) {  // a log's preallocated zeros
        out += bytes.substr(pos);
        break;
      }
      pos += 8 + f.size;
      const auto kind = static_cast<std::uint8_t>(f.payload[0]);
      if (name == "snapshot" && (kind == ff::kind_owner || kind == ff::kind_owner_scope_keys)) continue;
      detail::byte_reader r(f.payload + 1, f.size - 1, name);
      std::string p;
      detail::byte_writer w(p);
      if (kind == ff::kind_queued_batch_scope_keys) {
        auto b = detail::decode_batch(r, name, detail::record_layout::with_scope_keys);
        detail::decode_queue_ops(r, b, name, scope_layout::with_keys);
        w.u8(ff::kind_queued_batch_validity);
        detail::encode_batch(w, b, detail::record_layout::with_validity);
        detail::encode_queue_ops(w, b, scope_layout::ids);
      } else if (kind == ff::kind_pending_scope_keys) {
        w.u8(ff::kind_pending);
        detail::encode_pending(w, detail::decode_pending(r, name, scope_layout::with_keys), scope_layout::ids);
      } else if (kind == ff::kind_identity_scope_keys) {
        w.u8(ff::kind_identity);
        detail::encode_identity(w, detail::decode_identity(r, true), false);
      } else {
        const auto old_kind = kind == ff::kind_batch_scope_keys || kind == ff::kind_batch_entities
                                  ? ff::kind_batch_validity
                              : kind == ff::kind_record_scope_keys || kind == ff::kind_record_entities
                                  ? ff::kind_record_validity
                                  : kind;
        p = static_cast<char>(old_kind) + std::string(f.payload + 1, f.size - 1);
      }
      out += ff::make_frame(p);
    }
    overwrite(e.path().string(), out);
  }
}

/// plant() and plant_deleted() in the file_store in `dir`, closed on return.
std::pair<purge_test::planted, purge_test::deleted> plant_closed(const std::string& dir) {
  file_memory m(hashing_embedder(), file_store{dir});
  auto p = plant(m, secret);
  return {std::move(p), plant_deleted(m, secret)};
}

/// Compacts the file_store in `dir` (closed), so that its snapshot holds every history.
void compact_closed(const std::string& dir) { file_store(dir).compact(); }
}  // namespace

TEST_CASE("purge: memory_store erases the scope's memories and history", "[purge]") {
  memory m;
  const auto p = plant(m, secret);
  CHECK(m.purge(user("alice")) == 3);
  check_purged(m, p);
  CHECK(m.purge(user("alice")) == 0);
  CHECK(m.search("passport", user("alice")).empty());
  CHECK_THROWS_AS(m.purge(scope{}), validation_error);
}

TEST_CASE("purge: an agent scope takes only that agent's memories", "[purge]") {
  memory m;
  const auto p = plant(m, secret);
  CHECK(m.purge(scope{"", "planner", ""}) == 1);
  CHECK_FALSE(m.get(p.alice[1]));
  CHECK(m.get(p.alice[0]));
  CHECK(m.history(p.alice[1]).empty());
  CHECK(m.history(p.alice[0]).size() == 2);
}

TEST_CASE("purge: memory_store also erases the history of the scope's memories deleted before", "[purge]") {
  memory m;
  const auto p = plant(m, secret);
  const auto d = plant_deleted(m, secret);
  CHECK(m.purge(user("alice")) == 3);
  check_purged(m, p);
  check_deleted_purged(m, d);
}

TEST_CASE("purge: an agent scope takes only that agent's deleted memories' history", "[purge]") {
  memory m;
  const auto p = plant(m, secret);
  m.delete_memory(p.alice[0]);
  m.delete_memory(p.alice[1]);  // alice's memory under agent planner
  CHECK(m.purge(scope{"", "planner", ""}) == 0);
  CHECK(m.history(p.alice[1]).empty());
  CHECK(m.history(p.alice[0]).size() == 3);  // ADD, UPDATE, DELETE
  CHECK(m.get(p.alice[2]));
}

TEST_CASE("purge: plain delete and delete_all keep history", "[purge]") {
  memory m;
  const auto p = plant(m, secret);
  m.delete_all(user("bob"));
  CHECK(m.history(p.bob.front()).size() == 3);
}

TEST_CASE("purge: file_store leaves no file holding the text, before and after reopening", "[purge]") {
  purge_test::planted p;
  for (const auto mode : {durability::fsync, durability::group_commit}) {
    temp_dir d;
    {
      file_memory m(hashing_embedder(), file_store(d.path, {.mode = mode}));
      p = plant(m, secret);
      REQUIRE_FALSE(files_holding(d.path, secret).empty());
      CHECK(m.purge(user("alice")) == 3);
      check_purged(m, p);
      CHECK(files_holding(d.path, secret).empty());
      m.add("carol was here", user("carol"));
    }
    CHECK(files_holding(d.path, secret).empty());
    file_memory m(hashing_embedder(), file_store(d.path));
    check_purged(m, p);
    CHECK(m.get_all(user("carol")).size() == 1);
  }
}

TEST_CASE("purge: file_store removes damaged log tails, which may hold the text", "[purge]") {
  temp_dir d;
  {
    file_memory m(hashing_embedder(), file_store(d.path));
    m.add("bob is fine", user("bob"));
  }
  {
    std::ofstream(d.sub("damaged.1.100"), std::ios::binary) << "torn bytes " << secret;
  }
  file_memory m(hashing_embedder(), file_store(d.path));
  CHECK(m.purge(user("alice")) == 0);
  CHECK(files_holding(d.path, secret).empty());
  CHECK(m.get_all(user("bob")).size() == 1);
}

TEST_CASE("purge: file_store erases the history of memories deleted before, after reopening or compacting",
          "[purge]") {
  // purged after reopening (the owners come from the log's replay), or after a compaction between the deletes and
  // the purge (they go through the snapshot)
  for (const bool compacted : {false, true}) {
    INFO("compacted " << compacted);
    temp_dir dir;
    const auto [p, d] = plant_closed(dir.path);
    if (compacted) compact_closed(dir.path);
    {
      file_memory m(hashing_embedder(), file_store(dir.path));
      CHECK(m.purge(user("alice")) == 3);
      check_purged(m, p);
      check_deleted_purged(m, d);
      CHECK(files_holding(dir.path, secret).empty());
      CHECK(m.purge(scope{"", "planner", ""}) == 0);
    }
    CHECK(files_holding(dir.path, secret).empty());
    file_memory m(hashing_embedder(), file_store(dir.path));
    check_purged(m, p);
    check_deleted_purged(m, d);
  }
}

TEST_CASE("purge: file_store, in the session that deleted the memories", "[purge]") {
  temp_dir dir;
  file_memory m(hashing_embedder(), file_store(dir.path));
  const auto p = plant(m, secret);
  const auto d = plant_deleted(m, secret);
  CHECK(m.purge(user("alice")) == 3);
  check_purged(m, p);
  check_deleted_purged(m, d);
  CHECK(files_holding(dir.path, secret).empty());
}

TEST_CASE("purge: file_store keeps the owners of deleted memories through a purge of another scope", "[purge]") {
  temp_dir dir;
  {
    file_memory m(hashing_embedder(), file_store(dir.path));
    plant(m, secret);
    const auto d = plant_deleted(m, secret);
    CHECK(m.purge(user("carol")) == 0);  // rewrites the snapshot: the owners must survive it
    CHECK(m.history(d.alice[0]).size() == 2);
  }
  file_memory m(hashing_embedder(), file_store(dir.path));
  CHECK(m.purge(user("alice")) == 3);
  CHECK(files_holding(dir.path, secret).empty());
}

TEST_CASE("purge: file_store directories of format 5 open; their logs' deletes are purged", "[purge]") {
  SECTION("deleted in the log: its replay learns the owners") {
    temp_dir dir;
    const auto d = plant_closed(dir.path).second;
    downgrade_to_format_5(dir.path);
    file_memory m(hashing_embedder(), file_store(dir.path));
    CHECK(m.purge(user("alice")) == 3);
    check_deleted_purged(m, d);
    CHECK(files_holding(dir.path, secret).empty());
  }
  SECTION("deleted before a format-5 snapshot: the owners are unknown, that history stays (the documented limit)") {
    temp_dir dir;
    const auto [p, d] = plant_closed(dir.path);
    compact_closed(dir.path);
    downgrade_to_format_5(dir.path);
    file_memory m(hashing_embedder(), file_store(dir.path));
    CHECK(m.purge(user("alice")) == 3);
    check_purged(m, p);
    for (const auto& id : d.alice) CHECK(m.history(id).size() == 2);
    CHECK(m.history(d.bob).size() == 2);
    CHECK(files_holding(dir.path, "my passport number").empty());
    CHECK_FALSE(files_holding(dir.path, "a deleted note about " + secret).empty());
  }
}

TEST_CASE("purge: a store without the capability is refused at compile time", "[purge]") {
  STATIC_REQUIRE(purging_store<memory_store>);
  STATIC_REQUIRE(purging_store<file_store>);
}
