#include <engram/detail/crc32c.hpp>
#include <engram/store/file_store.hpp>
#include <engram/store/memory_store.hpp>
#include <engram/tools/reembed.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <fstream>
#include <mutex>
#include <numeric>
#include <tuple>

namespace store_test {
struct memory_kind {
  using store_type = engram::memory_store;
  static constexpr bool durable = false;
  static store_type open(const std::string&) { return {}; }
};
struct file_kind {
  using store_type = engram::file_store;
  static constexpr bool durable = true;
  static store_type open(const std::string& dir) { return store_type(dir); }
};
struct file_group_kind {
  using store_type = engram::file_store;
  static constexpr bool durable = true;
  static store_type open(const std::string& dir) {
    return store_type(dir, {.mode = engram::durability::group_commit, .compact_log_bytes = 4096});
  }
};
}  // namespace store_test

using store_kinds = std::tuple<store_test::memory_kind, store_test::file_kind, store_test::file_group_kind>;
using durable_store_kinds = std::tuple<store_test::file_kind, store_test::file_group_kind>;

#include "support/store_suite.hpp"

using namespace engram;
using namespace store_test;

namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// A store of `n` single-record entries; returns the log's bytes and the offset where each entry ends.
struct built_log {
  std::string bytes;
  std::vector<std::size_t> ends;  // ends[i]: log size after entry i
};
built_log build_log(const std::string& dir, int n) {
  built_log out;
  file_store s(dir, {.mode = durability::buffered});
  for (int i = 0; i < n; ++i) {
    write_batch w;
    w.upserts = {sample_record(i)};
    w.events = {sample_event(w.upserts[0], event_kind::add, 0)};
    s.apply(w);
    out.ends.push_back(s.stats().log_bytes);
  }
  out.bytes = read_bytes(dir + "/log.0");
  REQUIRE(out.bytes.size() == out.ends.back());
  return out;
}

/// Opens `dir` whose log is `bytes`, and checks that exactly the entries wholly before `cut` are there.
void expect_prefix(const std::string& dir, const std::string& bytes, const built_log& full, std::size_t intact,
                   bool damaged) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  write_bytes(dir + "/log.0", bytes);
  std::vector<std::string> warnings;
  file_store s(dir, {.on_warning = [&](const std::string& w) { warnings.push_back(w); }});
  INFO("log of " << bytes.size() << " bytes, " << intact << " intact entries");
  CHECK(s.recovery().log_entries == intact);
  CHECK(s.recovery().damaged() == damaged);
  CHECK(warnings.size() == (damaged ? 1u : 0u));
  CHECK(s.size() == intact);
  for (std::size_t i = 0; i < intact; ++i) CHECK(s.get("rec-" + std::to_string(i)) == sample_record(int(i)));
  if (damaged) {
    CHECK(s.recovery().discarded_bytes == bytes.size() - full.ends[intact - 1]);
    CHECK(read_bytes(s.recovery().preserved_as) == bytes.substr(full.ends[intact - 1]));
  }
  // Still usable: a new entry follows the intact ones and survives another reopen.
  write_batch w;
  w.upserts = {sample_record(1000)};
  s.apply(w);
  file_store again(std::move(s));
  (void)again;
}

}  // namespace

TEST_CASE("store: CRC-32C: known values, and the table and SSE4.2 kernels agree", "[store][file]") {
  const std::string check = "123456789";
  CHECK(detail::crc32c(check.data(), check.size()) == 0xE3069283u);
  CHECK(detail::crc32c(check.data(), 0) == 0u);
  const std::string zeros(32, '\0');
  CHECK(detail::crc32c(zeros.data(), zeros.size()) == 0x8A9136AAu);  // RFC 3720, B.4
  std::string bytes(300, '\0');
  std::uint32_t x = 7;
  for (auto& b : bytes) b = static_cast<char>((x = x * 1103515245u + 12345u) >> 16);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  for (std::size_t at = 0; at < 9; ++at)
    for (std::size_t n = 0; n + at <= bytes.size(); n += 7) {
      const auto expected = ~detail::crc32c_tables_update(~0u, p + at, n);
      CHECK(detail::crc32c(p + at, n) == expected);
      // extending in two pieces gives the checksum of the whole
      CHECK(detail::crc32c_extend(detail::crc32c(p + at, n / 2), p + at + n / 2, n - n / 2) == expected);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
      if (detail::crc32c_cpu_has_sse42()) CHECK(~detail::crc32c_sse42_update(~0u, p + at, n) == expected);
#endif
    }
}

TEST_CASE("store: a log cut at every byte of its last entries keeps the earlier ones", "[store][file]") {
  temp_dir dir;
  const auto full = build_log(dir.sub("src"), 6);
  const std::size_t from = full.ends[2];  // cut anywhere within the last three entries
  for (std::size_t cut = from; cut < full.bytes.size(); ++cut) {
    std::size_t intact = 0;
    while (intact < full.ends.size() && full.ends[intact] <= cut) ++intact;
    const bool at_boundary = full.ends[intact - 1] == cut;
    expect_prefix(dir.sub("cut"), full.bytes.substr(0, cut), full, intact, !at_boundary);
    {
      file_store reopened(dir.sub("cut"));
      CHECK(reopened.size() == intact + 1);
      CHECK_FALSE(reopened.recovery().damaged());
    }
  }
}

TEST_CASE("store: a flipped byte in an entry drops it and what follows, and is reported", "[store][file]") {
  temp_dir dir;
  const auto full = build_log(dir.sub("src"), 6);
  std::mt19937 rng(42);
  for (std::size_t pos = full.ends[2]; pos < full.bytes.size(); pos += 1 + rng() % 5) {
    std::string bytes = full.bytes;
    bytes[pos] = static_cast<char>(bytes[pos] ^ (1u << (rng() % 8)));
    std::size_t intact = 0;
    while (full.ends[intact] <= pos) ++intact;
    expect_prefix(dir.sub("flip"), bytes, full, intact, true);
  }
}

TEST_CASE("store: a second writer gets the lock error naming the holder; readers work", "[store][file]") {
  temp_dir dir;
  file_store writer(dir.sub("db"));
  write_batch w;
  w.upserts = {sample_record(1)};
  writer.apply(w);

  try {
    file_store second(dir.sub("db"));
    FAIL("expected storage_error");
  } catch (const storage_error& e) {
    CHECK(std::string(e.what()).find(std::to_string(::getpid())) != std::string::npos);
  }

  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int code = 0;
    try {
      file_store second(dir.sub("db"));
      code = 10;  // must not open
    } catch (const storage_error& e) {
      if (std::string(e.what()).find("process " + std::to_string(::getppid())) == std::string::npos) code = 11;
    } catch (...) {
      code = 12;
    }
    try {
      file_store reader(dir.sub("db"), {.read_only = true});
      if (reader.get("rec-1") != sample_record(1)) code = 20;
      try {
        reader.apply(w);
        code = 21;
      } catch (const storage_error& e) {
        if (std::string(e.what()).find("read-only") == std::string::npos) code = 22;
      }
    } catch (...) {
      code = 23;
    }
    ::_exit(code);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);

  // Once the writer is gone, another may open it.
  { file_store gone(std::move(writer)); }
  file_store next(dir.sub("db"));
  CHECK(next.size() == 1);
}

TEST_CASE("store: a read-only opener needs an existing directory and sees committed data", "[store][file]") {
  temp_dir dir;
  CHECK_THROWS_AS(file_store(dir.sub("missing"), {.read_only = true}), storage_error);
  // Compacts in the write whenever the log outgrew the snapshot, so that the reader opens after compactions.
  file_store writer(dir.sub("db"), {.compact_log_bytes = 1, .background_compaction = false});
  for (int i = 0; i < 5; ++i) {
    write_batch w;
    w.upserts = {sample_record(i)};
    writer.apply(w);
  }
  CHECK(writer.stats().compactions >= 2);  // whenever the log outgrew the snapshot
  file_store reader(dir.sub("db"), {.read_only = true});
  CHECK(all_records(reader) == all_records(writer));
  CHECK_THROWS_AS(reader.clear(), storage_error);
}

TEST_CASE("store: group commit shares fsyncs between concurrent writers and loses nothing", "[store][file]") {
  temp_dir dir;
  std::uint64_t commits = 0, syncs = 0;
  {
    file_store s(dir.sub("db"), {.mode = durability::group_commit});
    std::atomic<int> invisible{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < 25; ++i) {
          write_batch w;
          w.upserts = {sample_record(t * 1000 + i)};
          w.events = {sample_event(w.upserts[0], event_kind::add, 0)};
          s.apply(w);
          if (!s.get(w.upserts[0].id)) ++invisible;  // must be visible once apply returned
        }
      });
    for (auto& th : threads) th.join();
    CHECK(invisible == 0);
    const auto stats = s.stats();
    commits = stats.commits;
    syncs = stats.syncs;
    // every fdatasync is timed into the latency histogram, whichever path (leader or plain append) made it
    const auto& h = stats.sync_latency;
    CHECK(h.count == syncs);
    CHECK(std::accumulate(h.buckets.begin(), h.buckets.end(), std::uint64_t{0}) == syncs);
    CHECK(h.sum_seconds > 0);
  }
  CHECK(commits == 200);
  CHECK(syncs < commits);
  file_store s(dir.sub("db"));
  CHECK(s.size() == 200);
  CHECK(s.recovery().log_entries == 200);
}

TEST_CASE("store: files of another format version are refused with the versions named", "[store][file]") {
  temp_dir dir;
  { file_store s(dir.sub("db")); }
  auto bytes = read_bytes(dir.sub("db/log.0"));
  for (const std::uint32_t version : {file_store::format_version + 1, 0u}) {
    bytes[8] = static_cast<char>(version);
    write_bytes(dir.sub("db/log.0"), bytes);
    try {
      file_store s(dir.sub("db"));
      FAIL("expected storage_error");
    } catch (const storage_error& e) {
      const std::string msg = e.what();
      CHECK(msg.find("format version " + std::to_string(version)) != std::string::npos);
      CHECK(msg.find("reads versions " + std::to_string(file_store::oldest_format_version) + " to " +
                     std::to_string(file_store::format_version)) != std::string::npos);
      CHECK((msg.find("newer engram") != std::string::npos) == (version > file_store::format_version));
    }
  }
}

TEST_CASE("store: a log of the older format is read, and marked with the current one before it is appended to",
          "[store][file]") {
  temp_dir dir;
  {
    file_store s(dir.sub("db"));
    write_batch w;
    w.upserts = {sample_record(1)};
    s.apply(w);
  }
  auto bytes = read_bytes(dir.sub("db/log.0"));
  REQUIRE(static_cast<std::uint8_t>(bytes[8]) == file_store::format_version);
  bytes[8] = static_cast<char>(file_store::oldest_format_version);  // as the earlier engram wrote it
  write_bytes(dir.sub("db/log.0"), bytes);
  {
    file_store ro(dir.sub("db"), {.read_only = true});  // a reader changes nothing
    CHECK(ro.size() == 1);
  }
  CHECK(static_cast<std::uint8_t>(read_bytes(dir.sub("db/log.0"))[8]) == file_store::oldest_format_version);
  {
    file_store s(dir.sub("db"), {.mode = durability::group_commit});
    CHECK(s.size() == 1);
    write_batch w;
    w.upserts = {sample_record(2)};
    s.apply(w);
  }
  CHECK(static_cast<std::uint8_t>(read_bytes(dir.sub("db/log.0"))[8]) == file_store::format_version);
  file_store s(dir.sub("db"));
  CHECK(s.size() == 2);
}

TEST_CASE("store: a damaged snapshot is refused, not silently dropped", "[store][file]") {
  temp_dir dir;
  {
    file_store s(dir.sub("db"));
    write_batch w;
    w.upserts = {sample_record(1), sample_record(2)};
    s.apply(w);
    s.compact();
  }
  auto bytes = read_bytes(dir.sub("db/snapshot"));
  bytes[bytes.size() / 2] ^= 0x10;
  write_bytes(dir.sub("db/snapshot"), bytes);
  CHECK_THROWS_AS(file_store(dir.sub("db")), storage_error);
}

TEST_CASE("store: reembed switches a store to another embedder atomically", "[store][file]") {
  temp_dir dir;
  using mem_t = memory_over<file_store>;
  {
    mem_t m(hashing_embedder(64), file_store(dir.sub("db")));
    m.add("green tea every morning", user("a"), {.infer = false});
    m.add("a cat named Miso", user("a"), {.infer = false});
  }
  CHECK_THROWS_AS(mem_t(hashing_embedder(32), file_store(dir.sub("db"))), dimension_mismatch);
  {
    file_store s(dir.sub("db"));
    CHECK(reembed(s, hashing_embedder(32)) == 2);
    CHECK(s.identity() == store_identity{"hashing-v1", 32});
  }
  mem_t m(hashing_embedder(32), file_store(dir.sub("db")));
  const auto all = m.get_all(user("a"));
  REQUIRE(all.size() == 2);
  for (const auto& r : all) CHECK(r.embedding == hashing_embedder(32).embed(r.memory));
  CHECK(m.search("tea", user("a"), {.limit = 1}).front().record.memory == "green tea every morning");
}

TEST_CASE("store: readers see whole batches while writers commit and compact", "[store][file]") {
  temp_dir dir;
  file_store s(dir.sub("db"), {.mode = durability::group_commit, .compact_log_bytes = 2048});
  std::atomic<bool> stop{false};
  std::atomic<int> torn{0};
  std::thread reader([&] {
    while (!stop) {
      // Every batch upserts a pair; a reader must never see one of a pair without the other.
      std::set<std::string> ids;
      s.for_each([&](const record& r) { ids.insert(r.id); });
      for (const auto& id : ids)
        if (id.back() == 'a' && !ids.count(id.substr(0, id.size() - 1) + "b")) ++torn;
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t)
    writers.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        write_batch w;
        auto a = sample_record(t * 100 + i), b = a;
        a.id = "pair-" + std::to_string(t * 100 + i) + "a";
        b.id = "pair-" + std::to_string(t * 100 + i) + "b";
        w.upserts = {a, b};
        s.apply(w);
      }
    });
  for (auto& w : writers) w.join();
  stop = true;
  reader.join();
  CHECK(torn == 0);
  CHECK(s.size() == 160);
  s.wait_for_compaction();
  CHECK(s.stats().compactions > 0);
}

TEST_CASE("store: two-phase append and sync share fsyncs under the caller's own lock", "[store][file]") {
  temp_dir dir;
  {
    file_store s(dir.sub("db"), {.mode = durability::group_commit});
    std::mutex caller_lock;  // what basic_memory's write lock would be
    std::atomic<int> invisible{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < 25; ++i) {
          write_batch w;
          w.upserts = {sample_record(t * 1000 + i)};
          std::uint64_t ticket = 0;
          {
            std::lock_guard lock(caller_lock);
            ticket = s.append(w);
            if (!s.get(w.upserts[0].id)) ++invisible;
          }
          s.sync(ticket);
        }
      });
    for (auto& th : threads) th.join();
    CHECK(invisible == 0);
    CHECK(s.stats().commits == 200);
    CHECK(s.stats().syncs < 200);
    CHECK(s.stats().syncs > 0);
  }
  file_store s(dir.sub("db"));
  CHECK(s.size() == 200);
}

TEST_CASE("store: an intact entry that cannot be decoded refuses the open and changes nothing", "[store][file]") {
  temp_dir dir;
  const auto full = build_log(dir.sub("src"), 3);
  // Append an entry whose checksum is right but whose payload is no batch (as another format would be).
  const std::string payload = "\x7f" "not a batch of this format";
  std::string frame(8, '\0');
  const auto len = static_cast<std::uint32_t>(payload.size());
  for (int i = 0; i < 4; ++i) frame[std::size_t(i)] = static_cast<char>((len >> (8 * i)) & 0xFF);
  std::uint32_t crc = detail::crc32c(frame.data(), 4);
  crc = detail::crc32c_extend(crc, payload.data(), payload.size());
  for (int i = 0; i < 4; ++i) frame[std::size_t(4 + i)] = static_cast<char>((crc >> (8 * i)) & 0xFF);
  const std::string bytes = full.bytes + frame + payload;
  const auto d = dir.sub("bad");
  std::filesystem::create_directories(d);
  write_bytes(d + "/log.0", bytes);
  CHECK_THROWS_WITH(file_store(d), Catch::Contains("cannot be decoded"));
  CHECK(read_bytes(d + "/log.0") == bytes);  // nothing cut away
}

TEST_CASE("store: group commit preallocates the log with zeros; opening treats them as free space, not damage",
          "[store][file]") {
  temp_dir dir;
  const auto db = dir.sub("db");
  const auto log = db + "/log.0";
  std::uint64_t end = 0;
  {
    file_store s(db, {.mode = durability::group_commit});
    for (int i = 0; i < 5; ++i) {
      write_batch w;
      w.upserts = {sample_record(i)};
      s.apply(w);
    }
    end = s.stats().log_bytes;
  }
  auto bytes = read_bytes(log);
  REQUIRE(bytes.size() > end);  // zeros ahead of the entries
  CHECK(bytes.find_first_not_of('\0', end) == std::string::npos);
  {
    std::vector<std::string> warnings;
    file_store s(db, {.mode = durability::group_commit, .on_warning = [&](const std::string& w) { warnings.push_back(w); }});
    CHECK(warnings.empty());
    CHECK_FALSE(s.recovery().damaged());
    CHECK(s.recovery().log_entries == 5);
    CHECK(s.stats().log_bytes == end);
    write_batch w;
    w.upserts = {sample_record(5)};
    s.apply(w);  // follows the intact entries, inside the zeros
    end = s.stats().log_bytes;
  }
  {
    file_store s(db);  // another mode reads the same log
    CHECK(s.size() == 6);
    CHECK_FALSE(s.recovery().damaged());
  }
  // A torn entry inside the zeros (its first bytes written, the rest not) is damage, as at the end of a file.
  bytes = read_bytes(log);
  REQUIRE(bytes.size() > end + 40);
  for (std::size_t i = 0; i < 20; ++i) bytes[end + i] = bytes[24 + i];
  write_bytes(log, bytes);
  file_store s(db, {.on_warning = [](const std::string&) {}});
  CHECK(s.size() == 6);
  CHECK(s.recovery().damaged());
  CHECK(s.recovery().damage_offset == end);
  CHECK(s.recovery().discarded_bytes == bytes.size() - end);
}

TEST_CASE("store: SIGKILL while a compaction runs loses no acknowledged write", "[store][file][crash]") {
  // A child writes batches and compacts (a threshold of 1 byte, and in the write path an explicit compact()
  // after every second batch), reporting each batch once apply returned; the parent kills it at random moments.
  // Every reported record must be there after reopening, and the kills must land inside compactions (a
  // snapshot.tmp or a second log left behind) often enough to mean something. A background compaction starts
  // when the log has outgrown the snapshot, so that each round starts a store of its own there: its snapshot
  // stays small and compactions follow each other.
  const bool background = GENERATE(false, true);
  INFO((background ? "background compaction" : "compaction in the write path"));
  temp_dir dir;
  engram_test::kill_delays delays(Catch::rngSeed() + 29, std::chrono::microseconds(200), std::chrono::milliseconds(30));
  std::set<std::string> reported;
  int rounds = 0, mid_compaction = 0;
  for (; rounds < 200 && (rounds < 30 || mid_compaction < 5); ++rounds) {
    const auto db = background ? dir.sub("db" + std::to_string(rounds)) : dir.sub("db");
    if (background) reported.clear();
    const auto child = engram_test::run_and_kill(
        [&](const engram_test::child_channel& parent) {
          file_store s(db, {.compact_log_bytes = 1, .background_compaction = background});
          parent.ready();
          for (int i = 0;; ++i) {
            write_batch b;
            for (int j = 0; j < 8; ++j) {
              auto r = sample_record(j);
              r.id = "r" + std::to_string(rounds) + "-" + std::to_string(i) + "-" + std::to_string(j);
              r.memory = r.id + " " + std::string(160, 'x');
              b.upserts.push_back(std::move(r));
            }
            s.apply(b);
            parent.report("r" + std::to_string(rounds) + "-" + std::to_string(i));
            if (i % 2 && !background) s.compact();
          }
        },
        delays.next());
    REQUIRE(child.ready);
    REQUIRE(child.killed);  // still writing when killed (an exit means it failed)
    delays.observed(child);
    reported.insert(child.reported.begin(), child.reported.end());

    int logs = 0;
    bool tmp = false;
    for (const auto& e : std::filesystem::directory_iterator(db)) {
      const auto name = e.path().filename().string();
      logs += name.rfind("log.", 0) == 0;
      tmp = tmp || name == "snapshot.tmp";
    }
    mid_compaction += tmp || logs > 1;

    file_store s(db);
    INFO("round " << rounds << ", " << reported.size() << " batches acknowledged so far");
    for (const auto& tag : reported) {
      for (int j = 0; j < 8; ++j) {
        const auto id = tag + "-" + std::to_string(j);
        INFO(id);
        REQUIRE(s.get(id).has_value());
      }
    }
  }
  INFO(rounds << " rounds, " << mid_compaction << " killed inside a compaction");
  CHECK(mid_compaction >= 5);
  if (!background) CHECK(reported.size() >= 30);
}

namespace {

/// The entry kinds of the log or snapshot `file`, in order.
std::vector<int> kinds_of(const std::string& file) {
  namespace ff = detail::file_format;
  const auto bytes = read_bytes(file);
  std::vector<int> out;
  for (std::size_t pos = ff::header_size; pos < bytes.size();) {
    const auto f = ff::next_frame(bytes.data(), bytes.size(), pos);
    if (!f.problem.empty()) break;  // preallocated zeros
    out.push_back(static_cast<std::uint8_t>(f.payload[0]));
    pos += 8 + f.size;
  }
  return out;
}

/// Rewrites the log or snapshot `file`, whose scopes hold no tenant or extra keys, as format 7 wrote it: its
/// header's version 7, format 8's entries as the kinds they replace (records take the same bytes; owners,
/// pending adds and the identity are written without the keys).
void rewrite_as_format_7(const std::string& file) {
  namespace ff = detail::file_format;
  using detail::record_layout;
  using detail::scope_layout;
  const auto bytes = read_bytes(file);
  std::string out = bytes.substr(0, ff::header_size);
  out[ff::header_version_offset] = 7;
  for (std::size_t pos = ff::header_size; pos < bytes.size();) {
    const auto f = ff::next_frame(bytes.data(), bytes.size(), pos);
    if (!f.problem.empty()) {  // a log's preallocated zeros (format 7 had them too)
      REQUIRE(bytes.find_first_not_of('\0', pos) == std::string::npos);
      out += bytes.substr(pos);
      break;
    }
    const auto kind = static_cast<std::uint8_t>(f.payload[0]);
    detail::byte_reader r(f.payload + 1, f.size - 1, file);
    std::string p;
    detail::byte_writer w(p);
    if (kind == ff::kind_batch_scope_keys || kind == ff::kind_record_scope_keys) {
      w.u8(kind == ff::kind_batch_scope_keys ? ff::kind_batch_entities : ff::kind_record_entities);
      p.append(f.payload + 1, f.size - 1);
    } else if (kind == ff::kind_queued_batch_scope_keys) {
      auto b = detail::decode_batch(r, file, record_layout::with_scope_keys);
      detail::decode_queue_ops(r, b, file, scope_layout::with_keys);
      w.u8(ff::kind_queued_batch_entities);
      detail::encode_batch(w, b, record_layout::with_entities);
      detail::encode_queue_ops(w, b, scope_layout::ids);
    } else if (kind == ff::kind_owner_scope_keys) {
      const auto [id, owner] = detail::decode_owner(r, scope_layout::with_keys);
      w.u8(ff::kind_owner);
      detail::encode_owner(w, id, owner, scope_layout::ids);
    } else if (kind == ff::kind_pending_scope_keys) {
      w.u8(ff::kind_pending);
      detail::encode_pending(w, detail::decode_pending(r, file, scope_layout::with_keys), scope_layout::ids);
    } else if (kind == ff::kind_identity_scope_keys) {
      w.u8(ff::kind_identity);
      detail::encode_identity(w, detail::decode_identity(r, true), false);
    } else {
      REQUIRE(kind < ff::kind_batch_scope_keys);
      p.assign(f.payload, f.size);
    }
    out += ff::make_frame(p);
    pos += 8 + f.size;
  }
  write_bytes(file, out);
}

/// Everything a file_store holds: records, histories, pending adds, identity.
struct store_state {
  std::map<std::string, record> records;
  std::map<std::string, std::vector<history_event>> histories;
  std::vector<pending_add> pending;
  std::optional<store_identity> identity;
  friend bool operator==(const store_state&, const store_state&) = default;
};
store_state state_of(const file_store& s) {
  store_state out{all_records(s), {}, {}, s.identity()};
  s.for_each_history([&](const history_event& e) { out.histories[e.memory_id].push_back(e); });
  s.for_each_pending([&](const pending_add& p) { out.pending.push_back(p); });
  return out;
}

pending_add sample_pending(std::string id, scope owner) {
  return {std::move(id), std::move(owner), {{"user", "remember " + id, "Zo\xC3\xAB"}}, {{"infer", false}},
          "2024-05-01T12:00:00Z", 2};
}

/// Writes, in `dir`, records, histories (one of a deleted record), a pending add and an identity, all with
/// Mem0's keys only (no tenant or extra), and closes it.
void write_mem0_store(const std::string& dir) {
  file_store s(dir);
  s.bind({"hashing-v1", 8});
  write_batch b;
  for (const int i : {0, 1, 2, 5, 6}) {
    b.upserts.push_back(sample_record(i));
    REQUIRE(b.upserts.back().scope() == scope{b.upserts.back().user_id, b.upserts.back().agent_id,
                                              b.upserts.back().run_id});
    b.events.push_back(sample_event(b.upserts.back(), event_kind::add, 0));
  }
  s.apply(b);
  write_batch q;  // a queued add, and a delete (the deleted memory's history gets an owner)
  q.enqueued = {sample_pending("p-1", user("alice"))};
  q.erases = {"rec-2"};
  q.events = {sample_event(sample_record(2), event_kind::del, 1)};
  s.apply(q);
}

const std::string platform_keys = detail::describe_scope_keys<platform_scope_keys>();

/// `s` in project `project` of organisation acme, with app `app` when not empty.
scope in_acme(scope s, std::string_view project, std::string_view app = {}) {
  set_scope_key<platform_scope_keys>(s, "org_id", "acme");
  set_scope_key<platform_scope_keys>(s, "project_id", project);
  set_scope_key<platform_scope_keys>(s, "app_id", app);
  return s;
}

}  // namespace

TEST_CASE("store: a log of format 7 reads unchanged, is marked 8 before its first append, and then takes scope "
          "keys and a wider key set", "[store][file][scope_keys]") {
  namespace ff = detail::file_format;
  STATIC_REQUIRE(ff::version == 8);
  STATIC_REQUIRE(scope_keyed_store<file_store>);
  temp_dir dir;
  const auto db = dir.sub("db");
  write_mem0_store(db);
  const auto want = [&] { return state_of(file_store(db, {.read_only = true})); }();
  REQUIRE(want.records.size() == 4);
  REQUIRE(want.pending.size() == 1);
  rewrite_as_format_7(db + "/log.0");
  const auto old = read_bytes(db + "/log.0");
  REQUIRE(kinds_of(db + "/log.0") ==
          std::vector<int>{ff::kind_identity, ff::kind_batch_entities, ff::kind_queued_batch_entities});
  {
    file_store ro(db, {.read_only = true});
    CHECK(state_of(ro) == want);
    ro.bind({"hashing-v1", 8, platform_keys});  // a reader records a wider key set in memory only
    CHECK(ro.identity()->scope_keys == platform_keys);
  }
  CHECK(read_bytes(db + "/log.0") == old);
  auto r = sample_record(7);
  r.tenant = in_acme({}, "prod").tenant;
  r.extra = "app_id=mobile";
  {
    file_store s(db);
    CHECK(state_of(s) == want);
    CHECK(static_cast<std::uint8_t>(read_bytes(db + "/log.0")[ff::header_version_offset]) == 8);
    s.bind({"hashing-v1", 8});  // the same: nothing appended
    s.bind({"hashing-v1", 8, platform_keys});
    write_batch b;
    b.upserts = {r};
    b.enqueued = {sample_pending("p-2", in_acme(user("alice"), "prod", "mobile"))};
    s.apply(b);
  }
  CHECK(kinds_of(db + "/log.0") == std::vector<int>{ff::kind_identity, ff::kind_batch_entities,
                                                    ff::kind_queued_batch_entities, ff::kind_identity_scope_keys,
                                                    ff::kind_queued_batch_scope_keys});
  auto after = want;
  after.records[r.id] = r;
  after.pending.push_back(sample_pending("p-2", in_acme(user("alice"), "prod", "mobile")));
  after.identity->scope_keys = platform_keys;
  CHECK(state_of(file_store(db, {.read_only = true})) == after);
  // the wider key set is recorded: a memory of Mem0's keys is refused now
  CHECK_THROWS_AS(file_store(db).bind({"hashing-v1", 8}), validation_error);
}

TEST_CASE("store: a snapshot of format 7 (owners, pending adds and identity without scope keys) reads unchanged",
          "[store][file][scope_keys]") {
  namespace ff = detail::file_format;
  temp_dir dir;
  const auto db = dir.sub("db");
  write_mem0_store(db);
  file_store(db).compact();
  const auto want = state_of(file_store(db, {.read_only = true}));
  REQUIRE(kinds_of(db + "/snapshot") ==
          std::vector<int>{ff::kind_identity_scope_keys, ff::kind_sizes, ff::kind_record_scope_keys,
                           ff::kind_record_scope_keys, ff::kind_record_scope_keys, ff::kind_record_scope_keys,
                           ff::kind_event, ff::kind_event, ff::kind_event, ff::kind_event, ff::kind_event,
                           ff::kind_event, ff::kind_owner_scope_keys, ff::kind_pending_scope_keys, ff::kind_end});
  rewrite_as_format_7(db + "/snapshot");
  rewrite_as_format_7(db + "/log.1");
  REQUIRE(kinds_of(db + "/snapshot")[0] == ff::kind_identity);
  {
    file_store s(db, {.read_only = true});
    CHECK(s.recovery().snapshot_records == 4);
    CHECK(state_of(s) == want);
  }
  file_store s(db);
  CHECK(s.purge(user("bob")) == 2);  // rec-0, rec-6 and the history of rec-2, through its format-6 owner
  CHECK(s.history("rec-2").empty());
  CHECK(s.history("rec-1").size() == 1);
}

TEST_CASE("store: tenant and extra scope keys of records, pending adds and history owners survive compaction and "
          "reopening", "[store][file][scope_keys]") {
  namespace ff = detail::file_format;
  temp_dir dir;
  const auto db = dir.sub("db");
  const auto prod = in_acme(user("a"), "prod", "mobile"), staging = in_acme(user("a"), "staging");
  auto at = [&](int i, const scope& s) {
    auto r = sample_record(i);
    r.user_id = s.user_id;
    r.agent_id = s.agent_id;
    r.run_id = s.run_id;
    r.tenant = s.tenant;
    r.extra = s.extra;
    return r;
  };
  const auto kept = at(1, prod), gone = at(2, prod), other = at(5, staging), plain = at(6, user("a"));
  {
    file_store s(db);
    s.bind({"hashing-v1", 8, platform_keys});
    write_batch b;
    b.upserts = {kept, gone, other, plain};
    for (const auto& r : b.upserts) b.events.push_back(sample_event(r, event_kind::add, 0));
    b.enqueued = {sample_pending("p-1", prod), sample_pending("p-2", user("a"))};
    s.apply(b);
    write_batch d;
    d.erases = {gone.id};
    d.events = {sample_event(gone, event_kind::del, 1)};
    s.apply(d);
    s.compact();
  }
  CHECK(static_cast<std::uint8_t>(read_bytes(db + "/snapshot")[ff::header_version_offset]) == ff::version);
  const auto snap = read_bytes(db + "/snapshot");
  CHECK(snap.find("org_id=acme\nproject_id=prod") != std::string::npos);
  {
    file_store s(db, {.read_only = true});
    CHECK(s.recovery().snapshot_records == 3);
    CHECK(all_records(s) == std::map<std::string, record>{{kept.id, kept}, {other.id, other}, {plain.id, plain}});
    CHECK(s.identity()->scope_keys == platform_keys);
    std::vector<pending_add> pending;
    s.for_each_pending([&](const pending_add& p) { pending.push_back(p); });
    CHECK(pending == std::vector<pending_add>{sample_pending("p-1", prod), sample_pending("p-2", user("a"))});
    CHECK(s.history(gone.id).size() == 2);
  }
  {
    file_store s(db);
    // The owner of the deleted memory's history kept its tenant: a purge outside the project leaves it.
    CHECK(s.purge(user("a")) == 1);  // plain
    CHECK(s.history(gone.id).size() == 2);
    CHECK(s.purge(in_acme(user("a"), "staging")) == 1);  // other
    CHECK(s.history(gone.id).size() == 2);
    CHECK(s.purge(in_acme(user("a"), "prod")) == 1);  // kept, and the history of gone
    CHECK(s.history(gone.id).empty());
    CHECK(s.history(kept.id).empty());
  }
  file_store s(db, {.read_only = true});
  CHECK(s.size() == 0);
  CHECK(s.history(gone.id).empty());
  CHECK(s.history(other.id).empty());
  CHECK(s.identity()->scope_keys == platform_keys);
}

TEST_CASE("store: format 8's record bytes: unchanged without scope keys; bad keys or unknown flags are refused",
          "[store][file][scope_keys]") {
  using detail::record_layout;
  auto encode = [](const record& r, record_layout layout) {
    std::string out;
    detail::byte_writer w(out);
    detail::encode_record(w, r, layout);
    return out;
  };
  auto decode = [](const std::string& bytes, record_layout layout) {
    detail::byte_reader rd(bytes.data(), bytes.size(), "test");
    return detail::decode_record(rd, layout);
  };
  for (int i = 0; i < 12; ++i) {
    const auto r = sample_record(i);
    INFO("sample " << i);
    if (r.tenant.empty() && r.extra.empty()) {
      CHECK(encode(r, record_layout::with_scope_keys) == encode(r, record_layout::with_entities));
    } else {
      CHECK_THROWS_AS(encode(r, record_layout::with_entities), storage_error);
    }
    CHECK(decode(encode(r, record_layout::with_scope_keys), record_layout::with_scope_keys) == r);
  }
  auto r = sample_record(0);
  r.entities.reset();
  r.valid_from.reset();
  r.expiration_date.reset();
  r.immutable = false;
  r.tenant = "org_id=acme";
  const auto bytes = encode(r, record_layout::with_scope_keys);
  // format 7's layout does not know the tenant flag: refused, not misread
  CHECK_THROWS_WITH(decode(bytes, record_layout::with_entities), Catch::Contains("unknown record flags 32"));
  auto unknown = bytes;
  REQUIRE(static_cast<std::uint8_t>(unknown[unknown.size() - 1 - 4 - 11]) == 32);  // before the tenant string
  unknown[unknown.size() - 1 - 4 - 11] = static_cast<char>(0x80);
  CHECK_THROWS_WITH(decode(unknown, record_layout::with_scope_keys), Catch::Contains("unknown record flags 128"));
  r.tenant = "org_id";  // not key=value lines
  CHECK_THROWS_WITH(decode(encode(r, record_layout::with_scope_keys), record_layout::with_scope_keys),
                    Catch::Contains("stored scope is malformed"));
  r.tenant = "project_id=p\norg_id=acme";  // not sorted
  CHECK_THROWS_AS(decode(encode(r, record_layout::with_scope_keys), record_layout::with_scope_keys), storage_error);
  // an identity whose key set is no key set
  std::string id;
  detail::byte_writer wi(id);
  detail::encode_identity(wi, {"hashing-v1", 8, "org_id"});
  detail::byte_reader ri(id.data(), id.size(), "test");
  CHECK_THROWS_AS(detail::decode_identity(ri, true), storage_error);
  std::string s;
  detail::byte_writer ws(s);
  CHECK_THROWS_AS(detail::encode_scope(ws, in_acme(user("a"), "prod"), detail::scope_layout::ids), storage_error);
  CHECK_THROWS_AS(detail::encode_identity(ws, {"hashing-v1", 8, platform_keys}, false), storage_error);
}

TEST_CASE("store: a torn or corrupt entry of format 8 is dropped and reported; an intact undecodable one refused",
          "[store][file][scope_keys]") {
  namespace ff = detail::file_format;
  temp_dir dir;
  const auto src = dir.sub("src");
  auto r = sample_record(3);
  REQUIRE_FALSE(r.tenant.empty());
  {
    file_store s(src, {.mode = durability::buffered});
    s.bind({"hashing-v1", 8, platform_keys});
    write_batch b;
    b.upserts = {sample_record(0)};
    s.apply(b);
    b.upserts = {r};
    b.enqueued = {sample_pending("p-1", in_acme(user("a"), "prod"))};
    s.apply(b);
  }
  const auto bytes = read_bytes(src + "/log.0");
  REQUIRE(kinds_of(src + "/log.0").back() == ff::kind_queued_batch_scope_keys);
  const auto last = bytes.rfind("org_id=acme");  // inside the last entry
  for (const bool torn : {true, false}) {
    const auto d = dir.sub(torn ? "torn" : "flipped");
    std::filesystem::create_directories(d);
    auto damaged = torn ? bytes.substr(0, last) : bytes;
    if (!torn) damaged[last + 2] = 'X';  // a checksum mismatch
    write_bytes(d + "/log.0", damaged);
    std::vector<std::string> warnings;
    file_store s(d, {.on_warning = [&](const std::string& w) { warnings.push_back(w); }});
    CHECK(warnings.size() == 1);
    CHECK(s.recovery().damaged());
    CHECK(s.recovery().discarded_entries == 1);
    CHECK(s.size() == 1);
    CHECK_FALSE(s.get(r.id));
    CHECK(s.identity()->scope_keys == platform_keys);
  }
  // intact (its checksum matches) but its tenant is no key=value line: the open is refused, nothing cut
  auto bad = r;
  bad.tenant = "org_id";
  write_batch b;
  b.upserts = {bad};
  const auto d = dir.sub("bad");
  std::filesystem::create_directories(d);
  const auto with_bad = bytes + ff::make_frame(detail::batch_entry(b));
  write_bytes(d + "/log.0", with_bad);
  CHECK_THROWS_WITH(file_store(d), Catch::Contains("cannot be decoded") && Catch::Contains("malformed"));
  CHECK(read_bytes(d + "/log.0") == with_bad);
}

namespace {

/// The names in directory `dir` that start with `prefix`.
std::vector<std::string> files_starting(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const auto name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// A batch of `n` records numbered from `first`, each with its add event.
write_batch numbered_batch(int first, int n, std::size_t dim = 8) {
  write_batch w;
  for (int i = first; i < first + n; ++i) {
    w.upserts.push_back(sample_record(i, dim));
    w.events.push_back(sample_event(w.upserts.back(), event_kind::add, 0));
  }
  return w;
}

}  // namespace

TEST_CASE("store: a background compaction lets writes commit while it writes the snapshot", "[store][file]") {
  // A store large enough that writing its snapshot takes a while, and a writer that never stops: while the
  // store reports a compaction running, commits must go on (with the compaction in the write path they cannot:
  // the writer holds the lock while it writes the whole snapshot). Progress, not time, is what is checked.
  temp_dir dir;
  const auto db = dir.sub("db");
  {
    file_store s(db, {.mode = durability::buffered, .compact_log_bytes = ~std::uint64_t{0}});
    for (int i = 0; i < 20000; i += 500) s.apply(numbered_batch(i, 500, 256));
  }  // a log of 20,000 records and no snapshot: the first write compacts them
  file_store s(db, {.mode = durability::buffered, .compact_log_bytes = 1});
  std::atomic<bool> stop{false};
  std::atomic<int> next{100000};
  std::thread writer([&] {
    while (!stop) s.apply(numbered_batch(next.fetch_add(4), 4));
  });
  bool progressed = false;
  while (!progressed) {
    const auto a = s.stats();
    if (!a.compacting) {
      if (a.compactions > 0) break;  // over without a commit seen during it
      continue;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    const auto b = s.stats();
    progressed = b.compacting && b.compactions == a.compactions && b.commits > a.commits;  // during the same one
  }
  stop = true;
  writer.join();
  s.wait_for_compaction();
  CHECK(progressed);
  const auto written = next.load();
  CHECK(s.stats().compactions >= 1);
  CHECK(s.size() == std::size_t(20000 + (written - 100000)));
  // One snapshot and one log are left, and they hold everything.
  CHECK(files_starting(db, "log.").size() == 1);
  CHECK(files_starting(db, "snapshot") == std::vector<std::string>{"snapshot"});
  const auto before = all_records(s);
  { file_store gone(std::move(s)); }
  file_store after(db);
  CHECK(all_records(after) == before);
  CHECK(after.get("rec-100000").has_value());
  CHECK(after.get("rec-19999").has_value());
}

TEST_CASE("store: writes during a background compaction are in the new log, each once", "[store][file]") {
  // Many small writes from several threads with compactions running one after another; afterwards the store
  // reopens with every record and every history event exactly once, and readers never saw a batch in part.
  temp_dir dir;
  const auto db = dir.sub("db");
  std::vector<std::string> warnings;
  std::mutex wmtx;
  auto warn = [&](const std::string& w) {
    std::lock_guard lock(wmtx);
    warnings.push_back(w);
  };
  {
    file_store s(db, {.mode = durability::group_commit, .compact_log_bytes = 4096, .on_warning = warn});
    std::vector<std::thread> writers;
    for (int t = 0; t < 4; ++t)
      writers.emplace_back([&, t] {
        for (int i = 0; i < 150; ++i) s.apply(numbered_batch(t * 1000 + i * 2, 2));
      });
    for (auto& w : writers) w.join();
    s.wait_for_compaction();
    CHECK(s.stats().compactions >= 2);
    CHECK(s.size() == 1200);
  }
  file_store s(db, {.on_warning = warn});
  CHECK(s.size() == 1200);
  for (int t = 0; t < 4; ++t)
    for (int i = 0; i < 300; ++i) {
      INFO("record " << t * 1000 + i);
      REQUIRE(s.get("rec-" + std::to_string(t * 1000 + i)) == sample_record(t * 1000 + i));
      REQUIRE(s.history("rec-" + std::to_string(t * 1000 + i)).size() == 1);
    }
  CHECK(s.recovery().log_entries < 600);  // the snapshot holds most of them
  CHECK(warnings.empty());
}

TEST_CASE("store: a failed background compaction is a warning, loses nothing, and is tried again later",
          "[store][file]") {
  temp_dir dir;
  const auto db = dir.sub("db");
  std::filesystem::create_directories(db + "/snapshot.tmp/blocker");  // snapshot.tmp cannot be created
  std::vector<std::string> warnings;
  std::mutex wmtx;
  file_store s(db, {.compact_log_bytes = 2048, .on_warning = [&](const std::string& w) {
                      std::lock_guard lock(wmtx);
                      warnings.push_back(w);
                    }});
  int n = 0;
  auto write_until = [&](std::uint64_t compactions, std::size_t warning_count) {
    for (int i = 0; i < 2000; ++i) {
      s.apply(numbered_batch(n, 2));
      n += 2;
      s.wait_for_compaction();
      std::lock_guard lock(wmtx);
      if (s.stats().compactions >= compactions && warnings.size() >= warning_count) return;
    }
  };
  write_until(0, 1);
  {
    std::lock_guard lock(wmtx);
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("compaction failed (the log stays valid)") != std::string::npos);
  }
  const auto log_at_failure = s.stats().log_bytes;
  // Not tried again at every write: only once the log has grown by compact_log_bytes more.
  while (s.stats().log_bytes < log_at_failure + 2048) {
    s.apply(numbered_batch(n, 2));
    n += 2;
    s.wait_for_compaction();
  }
  CHECK(s.stats().compactions == 0);
  {
    std::lock_guard lock(wmtx);
    CHECK(warnings.size() <= 2);
  }
  CHECK(files_starting(db, "log.") == std::vector<std::string>{"log.0"});
  std::filesystem::remove_all(db + "/snapshot.tmp");
  write_until(1, 0);
  CHECK(s.stats().compactions == 1);
  CHECK(s.size() == std::size_t(n));
  { file_store gone(std::move(s)); }
  file_store again(db);
  CHECK(again.size() == std::size_t(n));
  for (int i = 0; i < n; ++i) REQUIRE(again.get("rec-" + std::to_string(i)).has_value());
}

TEST_CASE("store: purge and clear wait for a background compaction, which keeps no purged text", "[store][file]") {
  temp_dir dir;
  const auto db = dir.sub("db");
  file_store s(db, {.mode = durability::buffered, .compact_log_bytes = 1});
  for (int i = 0; i < 400; ++i) {
    auto b = numbered_batch(i, 1);
    b.upserts[0].user_id = i % 2 ? "keep" : "gone";
    b.upserts[0].tenant.clear();
    b.upserts[0].extra.clear();
    b.upserts[0].memory = (i % 2 ? "kept text " : "secret text ") + std::to_string(i);
    b.events[0] = sample_event(b.upserts[0], event_kind::add, 0);
    s.apply(b);
  }
  // A compaction is likely running now (every write starts one when none runs); purge must not race it.
  CHECK(s.purge(scope{"gone", "", ""}) == 200);
  s.wait_for_compaction();
  for (const auto& e : std::filesystem::directory_iterator(db)) {
    const auto bytes = read_bytes(e.path().string());
    INFO(e.path().filename().string());
    CHECK(bytes.find("secret text") == std::string::npos);
  }
  CHECK(s.size() == 200);
  s.clear();
  s.wait_for_compaction();
  CHECK(s.size() == 0);
  { file_store gone(std::move(s)); }
  file_store again(db);
  CHECK(again.size() == 0);
}
