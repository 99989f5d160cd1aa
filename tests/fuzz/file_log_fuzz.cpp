// libFuzzer target for file_store's reader (built and run by scripts/fuzz.sh, not by CMake): each input becomes
// a data directory holding one log (or one snapshot) made of entries the fuzzer chooses, then file_store opens it.
//
// The input is a mode byte followed by chunks. A chunk appends to the file either a real entry payload (taken
// from a store written at start-up: batches with records, metadata, history and pending adds, identities,
// access counts; and the snapshot's entry kinds) with one byte changed, or cut short, or bytes of the input,
// each framed with a correct checksum so that the decoders see them; or raw bytes (torn and corrupt frames).
//
// Opening must either succeed or throw storage_error (a damaged snapshot, an intact entry that does not decode);
// anything else traps. When a writer opened it, the damage it reported is gone on the next open, the records
// are the same, and the store still takes a write that survives a reopen.
#include <engram/engram.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace ff = engram::detail::file_format;

using payload_list = std::vector<std::string>;

/// The payloads of every entry of `file` (a log or a snapshot written by file_store).
payload_list payloads_of(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  payload_list out;
  std::size_t pos = ff::header_size;
  while (pos < bytes.size()) {
    const auto fr = ff::next_frame(bytes.data(), bytes.size(), pos);
    if (!fr.problem.empty()) break;  // the preallocated zeros of the log's tail
    out.emplace_back(fr.payload, fr.size);
    pos += 8 + fr.size;
  }
  return out;
}

engram::record sample_record(int i) {
  engram::record r;
  r.id = "00000000-0000-4000-8000-00000000000" + std::to_string(i);
  r.memory = "fact number " + std::to_string(i) + " \xC3\xA9t\xC3\xA9";
  r.hash = "h" + std::to_string(i);
  r.metadata = {{"topic", "t" + std::to_string(i)}, {"n", i}, {"nested", {{"a", {1, 2.5, nullptr, true}}}}};
  r.user_id = "alice";
  r.agent_id = i % 2 ? "helper" : "";
  r.run_id = i % 3 ? "" : "run-1";
  r.actor_id = "Al";
  r.role = "user";
  r.created_at = engram::timestamp(std::chrono::microseconds(1'700'000'000'000'000LL + i));
  r.updated_at = r.created_at;
  r.embedding = {0.25f * static_cast<float>(i), -1.0f, 0.5f, 3.0f};
  if (i % 2) r.expiration_date = "2031-01-0" + std::to_string(1 + i % 9);
  return r;
}

struct references {
  payload_list log;       // entries of a log: batches (plain and with queue changes), identity, access counts
  payload_list snapshot;  // entries of a snapshot: identity, sizes, records, events, access, pending, end
};

/// Writes a small store with every kind of entry and keeps the payloads of its log and of its snapshot.
references make_references() {
  const auto dir = fs::temp_directory_path() / ("engram-log-fuzz-ref-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  references refs;
  {
    engram::file_store s(dir, {.mode = engram::durability::buffered});
    s.bind({"hashing-v1", 4, "tenant=org_id,project_id;extra=app_id"});  // format 8's identity, with a key set
    for (int i = 0; i < 3; ++i) {
      engram::write_batch b;
      b.upserts.push_back(sample_record(i));
      if (i > 0) {  // scope keys beyond Mem0's (the erased record's owner keeps them in the snapshot)
        b.upserts.back().tenant = "org_id=acme\nproject_id=p" + std::to_string(i);
        b.upserts.back().extra = "app_id=web";
      }
      engram::history_event e;
      e.id = "e" + std::to_string(i);
      e.memory_id = b.upserts.back().id;
      e.new_memory = b.upserts.back().memory;
      e.created_at = b.upserts.back().created_at;
      b.events.push_back(e);
      s.apply(b);
    }
    engram::write_batch queued;
    queued.enqueued.push_back({"p1", {"alice", "", "", "org_id=acme", "app_id=web"}, {{"user", "I live in Porto", "Al"}}, {{"infer", false}},
                               "2026-01-01T00:00:00Z", 1});
    queued.erases.push_back(sample_record(2).id);
    s.apply(queued);
    const std::vector<engram::access_increment> inc{{sample_record(0).id, {"alice", "", ""}, 3}};
    s.add_access(inc);
    refs.log = payloads_of(dir / "log.0");
    s.compact();
    refs.snapshot = payloads_of(dir / "snapshot");
  }
  fs::remove_all(dir);
  if (refs.log.empty() || refs.snapshot.empty()) std::abort();  // the reference store did not write
  return refs;
}

/// Reads the input from front to back; past its end every read is 0.
class cursor {
 public:
  cursor(const std::uint8_t* d, std::size_t n) : d_(d), n_(n) {}
  [[nodiscard]] bool done() const { return i_ >= n_; }
  std::uint8_t byte() { return i_ < n_ ? d_[i_++] : 0; }
  std::string bytes(std::size_t n) {
    n = std::min(n, n_ - std::min(i_, n_));
    std::string s(reinterpret_cast<const char*>(d_ + i_), n);
    i_ += n;
    return s;
  }

 private:
  const std::uint8_t* d_;
  std::size_t n_, i_ = 0;
};

/// Every record of a store, for comparing two openings.
std::vector<engram::record> records_of(const engram::file_store& s) {
  std::vector<engram::record> out;
  s.for_each([&](const engram::record& r) { out.push_back(r); });
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const references refs = make_references();
  static const fs::path dir = fs::temp_directory_path() / ("engram-log-fuzz-" + std::to_string(::getpid()));
  if (size == 0) return 0;
  cursor in(data, size);
  const auto mode = in.byte();
  const bool snapshot = mode & 1;
  const auto& pool = snapshot ? refs.snapshot : refs.log;

  std::string file = snapshot ? ff::header(ff::snap_magic, 1) : ff::header(ff::log_magic, 0);
  for (int chunks = 0; !in.done() && chunks < 64; ++chunks) {
    const auto ctl = in.byte();
    switch (ctl % 4) {
      case 0: {  // a real payload, one byte changed
        std::string p = pool[in.byte() % pool.size()];
        const std::size_t at = (std::size_t{in.byte()} << 8 | in.byte()) % p.size();
        p[at] = static_cast<char>(p[at] ^ in.byte());
        file += ff::make_frame(p);
        break;
      }
      case 1: {  // a real payload cut short (or whole)
        const std::string& p = pool[in.byte() % pool.size()];
        const std::size_t keep = 1 + (std::size_t{in.byte()} << 8 | in.byte()) % p.size();
        file += ff::make_frame(p.substr(0, keep));
        break;
      }
      case 2: {  // a payload of the input's bytes: the first is the entry kind
        const auto p = in.bytes(1 + in.byte());
        file += ff::make_frame(p);
        break;
      }
      default: {  // raw bytes: torn entries, wrong checksums, zeros
        file += in.bytes(in.byte());
        break;
      }
    }
  }

  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    std::ofstream out(dir / (snapshot ? "snapshot" : "log.0"), std::ios::binary);
    out.write(file.data(), static_cast<std::streamsize>(file.size()));
  }
  const auto quiet = [](const std::string&) {};
  try {
    if (mode & 2) {  // a reader first: it must not change the files
      engram::file_store reader(dir, {.read_only = true, .on_warning = quiet});
      (void)records_of(reader);
    }
    std::vector<engram::record> before;
    {
      engram::file_store writer(dir, {.mode = engram::durability::buffered, .on_warning = quiet});
      before = records_of(writer);
    }
    {
      engram::file_store again(dir, {.mode = engram::durability::buffered, .on_warning = quiet});
      check(!again.recovery().damaged());  // the writer cut the damaged tail away
      check(records_of(again) == before);
      engram::write_batch b;
      b.upserts.push_back(sample_record(7));
      again.apply(b);
    }
    engram::file_store last(dir, {.read_only = true, .on_warning = quiet});
    check(!last.recovery().damaged() && last.get(sample_record(7).id).has_value());
  } catch (const engram::storage_error&) {
    // refused clearly: a damaged snapshot, or an intact entry that does not decode
  }
  fs::remove_all(dir);
  return 0;
}
