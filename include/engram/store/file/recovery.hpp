#pragma once
/// @file store/file/recovery.hpp
/// Opening a file_store directory: replays the snapshot, then the log, into file_contents.
///
/// A torn or corrupt log entry (and everything after it) is discarded, never half-applied; the damage is
/// counted in the recovery_report and announced through a callback, and a writer keeps the dropped bytes in
/// `damaged.G.N` and truncates the log. A damaged snapshot is refused with storage_error (it was fsync'd before
/// it became visible, so damage there is not a crash artefact). A snapshot's record entries of kind 9 keep
/// their vector in the mapped file (file_contents::snapshot_map), read in place.

#include <engram/error.hpp>
#include <engram/store/file/contents.hpp>
#include <engram/store/file/format.hpp>
#include <engram/store/file/options.hpp>
#include <engram/store/file/posix_file.hpp>
#include <engram/store/file/record_codec.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace engram::inline v0::detail {

/// Where replaying a directory's files left off.
struct replayed_files {
  std::uint64_t generation = 0;                      ///< of the snapshot (0 without one) and of its log
  std::uint64_t snapshot_bytes = 0;                  ///< size of the snapshot, 0 without one
  std::uint64_t log_end = file_format::header_size;  ///< where the log's intact entries end
};

/// The generation of the snapshot in `dir`; 0 when there is none or its header cannot be read.
inline std::uint64_t snapshot_generation(const std::string& dir) {
  const auto sp = file_format::path(dir, "snapshot");
  if (!file_exists(sp)) return 0;
  try {
    char h[file_format::header_size];
    const auto fd = open_file(sp, O_RDONLY);
    const auto got = ::pread(fd.get(), h, file_format::header_size, 0);
    return file_format::read_header(h, got < 0 ? 0 : static_cast<std::size_t>(got), file_format::snap_magic, sp);
  } catch (const storage_error&) {
    return 0;
  }
}

/// Removes what interrupted compactions and blob writes left in `dir`, a writer's directory at generation
/// `gen`: other generations' logs, `snapshot.tmp`, blobs' `.tmp` files (none of them is ever read).
inline void remove_leftovers(const std::string& dir, std::uint64_t gen) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const auto name = entry.path().filename().string();
    const bool stale_log = name.rfind("log.", 0) == 0 && name != "log." + std::to_string(gen);
    const bool stale_blob = name.rfind("blob.", 0) == 0 && name.ends_with(".tmp");
    if (stale_log || stale_blob || name == "snapshot.tmp") fs::remove(entry.path(), ec);
  }
}

/// Replays the files of one directory into `into` (which starts empty), counting in `report`.
class file_replay {
 public:
  file_replay(std::string dir, bool read_only, file_contents& into, recovery_report& report)
      : dir_(std::move(dir)), read_only_(read_only), c_(into), report_(report) {}

  /// Replays snapshot + log; calls warn(const std::string&) once when the log's tail was damaged.
  /// @throws storage_error for a damaged snapshot, a log of another generation, or an intact entry that cannot
  ///         be decoded (nothing is changed on disk then).
  template <class Warn>
  replayed_files run(Warn&& warn) {
    replayed_files out;
    load_snapshot(out);
    report_.generation = out.generation;
    load_log(out, warn);
    return out;
  }

  /// Replays the log only up to byte `end` (an entry boundary): the state a background compaction writes out
  /// while the log grows past it.
  void limit_log(std::uint64_t end) noexcept { log_limit_ = end; }

 private:
  using entry_list = std::vector<std::pair<const char*, std::size_t>>;
  /// The part of a mapped log that is replayed.
  struct byte_range {
    const char* bytes;
    std::size_t length;
    [[nodiscard]] const char* data() const noexcept { return bytes; }
    [[nodiscard]] std::size_t size() const noexcept { return length; }
  };

  void load_snapshot(replayed_files& out) {
    namespace ff = file_format;
    const auto sp = ff::path(dir_, "snapshot");
    if (!file_exists(sp)) return;
    auto map = std::make_shared<const mapped_file>(sp);
    const auto& f = *map;
    out.generation = ff::read_header(f.data(), f.size(), ff::snap_magic, sp);
    size_hint_limit_ = f.size() / 64;
    out.snapshot_bytes = f.size();
    // First every checksum is checked and the entries sorted out (identity and sizes applied at once); then
    // records and history events, which fill separate maps, are decoded side by side.
    entry_list records, events, access, owners;
    std::size_t pos = ff::header_size;
    bool ended = false;
    while (pos < f.size() && !ended) {
      auto fr = ff::next_frame(f.data(), f.size(), pos);
      if (!fr.problem.empty())
        throw storage_error("file_store: snapshot '" + sp + "' is damaged at offset " + std::to_string(pos) + " (" +
                            fr.problem + "); restore it from a backup or an export");
      const auto kind = static_cast<std::uint8_t>(fr.payload[0]);
      if (kind == ff::kind_end) {
        byte_reader r(fr.payload + 1, fr.size - 1, sp);
        const auto nr = r.u64(), ne = r.u64();
        if (nr != records.size() || ne != events.size())
          throw storage_error("file_store: snapshot '" + sp + "' is inconsistent: it announces " +
                              std::to_string(nr) + " records and " + std::to_string(ne) + " events, holds " +
                              std::to_string(records.size()) + " and " + std::to_string(events.size()));
        ended = true;
      } else if (kind == ff::kind_record || kind == ff::kind_record_aligned || kind == ff::kind_record_flags ||
                 kind == ff::kind_record_validity || kind == ff::kind_record_entities ||
                 kind == ff::kind_record_scope_keys) {
        if (kind != ff::kind_record) c_.snapshot_map = map;  // records will point into it
        records.emplace_back(fr.payload, fr.size);
      } else if (kind == ff::kind_event) {
        events.emplace_back(fr.payload, fr.size);
      } else if (kind == ff::kind_access) {
        access.emplace_back(fr.payload, fr.size);
      } else if (kind == ff::kind_owner || kind == ff::kind_owner_scope_keys) {
        owners.emplace_back(fr.payload, fr.size);
      } else {
        apply_payload(fr.payload, fr.size, true, sp);
      }
      pos += 8 + fr.size;
    }
    if (!ended) throw storage_error("file_store: snapshot '" + sp + "' is truncated (no end entry)");
    if (c_.snapshot_map == map) map->advise_normal();  // kept: get() reads vectors from it at random
    auto apply_all = [&](const entry_list& entries) {
      for (const auto& [data, size] : entries) apply_payload(data, size, true, sp);
    };
    constexpr std::size_t parallel_from = 20000;  // entries; below, a thread costs more than it saves
    if (records.size() + events.size() >= parallel_from && std::thread::hardware_concurrency() > 1) {
      std::exception_ptr failed;
      std::thread other([&] {
        try {
          apply_all(events);  // the table's histories and report_.snapshot_events only
        } catch (...) {
          failed = std::current_exception();
        }
      });
      try {
        apply_all(records);  // the table's records and report_.snapshot_records
      } catch (...) {
        other.join();
        throw;
      }
      other.join();
      if (failed) std::rethrow_exception(failed);
    } else {
      apply_all(records);
      apply_all(events);
    }
    apply_all(access);  // counts of the records just read
    apply_all(owners);  // of the histories just read
  }

  template <class Warn>
  void load_log(replayed_files& out, Warn& warn) {
    namespace ff = file_format;
    const auto lp = ff::log_path(dir_, out.generation);
    out.log_end = ff::header_size;
    if (!file_exists(lp)) return;
    const mapped_file map(lp);
    const byte_range f{map.data(), static_cast<std::size_t>(std::min<std::uint64_t>(map.size(), log_limit_))};
    const auto gen = ff::read_header(f.data(), f.size(), ff::log_magic, lp);
    if (gen != out.generation)
      throw storage_error("file_store: '" + lp + "' belongs to generation " + std::to_string(gen) + ", expected " +
                          std::to_string(out.generation));
    std::size_t pos = ff::header_size;
    std::string problem;
    out.log_end = f.size();
    while (pos < f.size()) {
      auto fr = ff::next_frame(f.data(), f.size(), pos);
      if (!fr.problem.empty() && std::all_of(f.data() + pos, f.data() + f.size(), [](char c) { return c == 0; })) {
        out.log_end = pos;  // zeros preallocated by a fsync mode: free space, not damage
        break;
      }
      if (fr.problem.empty()) {
        try {
          apply_payload(fr.payload, fr.size, false, lp);
        } catch (const storage_error& e) {
          // The checksum matched, so these are the bytes that were written: not a torn write but another
          // format or a bug. Refuse to open rather than cut committed entries away.
          throw storage_error(std::string("file_store: '") + lp + "': an intact entry at offset " +
                              std::to_string(pos) + " cannot be decoded (written by another engram version?): " +
                              e.what() + "; nothing was changed");
        }
      }
      if (!fr.problem.empty()) {
        problem = fr.problem;
        break;
      }
      ++report_.log_entries;
      pos += 8 + fr.size;
    }
    if (problem.empty()) return;

    // Damage: drop everything from `pos` on. Count the frames that still parse after it, for the report.
    auto& rep = report_;
    out.log_end = pos;
    rep.damage_offset = pos;
    rep.discarded_bytes = f.size() - pos;
    rep.damage = problem;
    rep.discarded_entries = 1;
    {
      std::size_t q = pos;
      auto fr = ff::next_frame(f.data(), f.size(), q);
      std::size_t skip = fr.problem.empty() ? fr.size : 0;
      if (!fr.problem.empty() && f.size() - q >= 8) {
        byte_reader r(f.data() + q, 4, lp);
        const auto len = r.u32();
        if (len > 0 && len <= f.size() - q - 8) skip = len;
      }
      if (skip > 0) {
        q += 8 + skip;
        while (q < f.size()) {
          auto g = ff::next_frame(f.data(), f.size(), q);
          if (!g.problem.empty()) break;
          ++rep.discarded_entries;
          q += 8 + g.size;
        }
      }
    }
    if (!read_only_) {
      rep.preserved_as = ff::path(dir_, "damaged." + std::to_string(out.generation) + "." + std::to_string(pos));
      {
        auto dst = open_file(rep.preserved_as, O_WRONLY | O_CREAT | O_TRUNC);
        write_all(dst.get(), f.data() + pos, f.size() - pos, rep.preserved_as);
        sync_data(dst.get(), rep.preserved_as);
      }
      auto fd = open_file(lp, O_RDWR);
      if (::ftruncate(fd.get(), static_cast<off_t>(pos)) != 0) throw_errno("cannot truncate", lp);
      sync_data(fd.get(), lp);
    }
    warn("file_store: '" + lp + "': " + problem + " at offset " + std::to_string(pos) + "; discarded " +
         std::to_string(rep.discarded_bytes) + " bytes (" + std::to_string(rep.discarded_entries) +
         " entries) after " + std::to_string(rep.log_entries) + " intact entries" +
         (rep.preserved_as.empty() ? std::string() : "; the bytes are kept in '" + rep.preserved_as + "'"));
  }

  /// The record layout of an entry of kind `kind`: that of the format that added the kind.
  static record_layout layout_of(std::uint8_t kind) noexcept {
    namespace ff = file_format;
    if (kind == ff::kind_batch || kind == ff::kind_queued_batch || kind == ff::kind_record ||
        kind == ff::kind_record_aligned)
      return record_layout::v1;
    if (kind == ff::kind_batch_flags || kind == ff::kind_queued_batch_flags || kind == ff::kind_record_flags)
      return record_layout::with_flags;
    if (kind == ff::kind_batch_validity || kind == ff::kind_queued_batch_validity || kind == ff::kind_record_validity)
      return record_layout::with_validity;
    if (kind == ff::kind_batch_entities || kind == ff::kind_queued_batch_entities || kind == ff::kind_record_entities)
      return record_layout::with_entities;
    return record_layout::with_scope_keys;
  }

  /// The scope layout of the owners and pending adds in an entry of kind `kind`: with keys in format 8's kinds.
  static scope_layout scope_layout_of(std::uint8_t kind) noexcept {
    namespace ff = file_format;
    return kind == ff::kind_queued_batch_scope_keys || kind == ff::kind_owner_scope_keys ||
                   kind == ff::kind_pending_scope_keys
               ? scope_layout::with_keys
               : scope_layout::ids;
  }

  /// Applies one entry. Snapshot entries (`in_snapshot`) and log entries are of different kinds.
  void apply_payload(const char* data, std::size_t size, bool in_snapshot, const std::string& file) {
    namespace ff = file_format;
    byte_reader r(data, size, file);
    const auto kind = r.u8();
    switch (kind) {
      case ff::kind_batch:
      case ff::kind_batch_flags:
      case ff::kind_batch_validity:
      case ff::kind_batch_entities:
      case ff::kind_batch_scope_keys: {
        if (in_snapshot) break;
        auto b = decode_batch(r, file, layout_of(kind));
        // (decoded whole before anything is applied)
        // Replay moves the decoded records and events (vectors included) instead of copying them; the rest of
        // the batch is applied as any batch.
        c_.table.apply(std::move(b));
        b.upserts.clear();
        b.erases.clear();
        b.events.clear();
        c_.apply(b);
        return;
      }
      case ff::kind_queued_batch:
      case ff::kind_queued_batch_flags:
      case ff::kind_queued_batch_validity:
      case ff::kind_queued_batch_entities:
      case ff::kind_queued_batch_scope_keys: {
        if (in_snapshot) break;
        auto b = decode_batch(r, file, layout_of(kind));
        decode_queue_ops(r, b, file, scope_layout_of(kind));
        c_.apply(b);
        return;
      }
      case ff::kind_access: {  // log: increments; snapshot: the counts (applied after the records)
        const auto n = r.u32();
        for (std::uint32_t i = 0; i < n; ++i) {
          const auto id = r.str();
          c_.table.add_access(id, r.u32());
        }
        return;
      }
      case ff::kind_pending:
      case ff::kind_pending_scope_keys: {
        if (!in_snapshot) break;
        c_.queued_adds.apply({decode_pending(r, file, scope_layout_of(kind))}, {});
        return;
      }
      case ff::kind_identity:
      case ff::kind_identity_scope_keys: {
        c_.identity = decode_identity(r, kind == ff::kind_identity_scope_keys);
        return;
      }
      case ff::kind_record: {
        if (!in_snapshot) break;
        c_.table.upsert(decode_record(r, record_layout::v1));
        ++report_.snapshot_records;
        return;
      }
      case ff::kind_record_aligned:
      case ff::kind_record_flags:
      case ff::kind_record_validity:
      case ff::kind_record_entities:
      case ff::kind_record_scope_keys: {  // the vector stays in the mapped snapshot (c_.snapshot_map)
        if (!in_snapshot) break;
        auto [rec, vector] = decode_record_aligned(r, layout_of(kind));
        c_.table.upsert_external(std::move(rec), vector);
        ++report_.snapshot_records;
        return;
      }
      case ff::kind_sizes: {
        if (!in_snapshot) break;
        const auto nr = r.u64(), nh = r.u64();
        // A hint only: bounded by what the file could hold (a record entry takes more than 64 bytes).
        c_.table.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(nr, size_hint_limit_)),
                         static_cast<std::size_t>(std::min<std::uint64_t>(nh, size_hint_limit_)));
        return;
      }
      case ff::kind_event: {
        if (!in_snapshot) break;
        c_.table.append(decode_event(r, file));
        ++report_.snapshot_events;
        return;
      }
      case ff::kind_owner:
      case ff::kind_owner_scope_keys: {
        if (!in_snapshot) break;
        const auto [id, owner] = decode_owner(r, scope_layout_of(kind));
        c_.table.set_owner(id, owner);
        return;
      }
      default: break;
    }
    throw storage_error("file_store: '" + file + "': unexpected entry kind " + std::to_string(kind));
  }

  std::string dir_;
  bool read_only_;
  file_contents& c_;
  recovery_report& report_;
  std::uint64_t size_hint_limit_ = 0;  // bound on the map sizes a snapshot may ask for
  std::uint64_t log_limit_ = ~std::uint64_t{0};  // limit_log
};

}  // namespace engram::inline v0::detail
