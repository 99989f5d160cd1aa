#pragma once
/// @file store/file/snapshot.hpp
/// Writing a file_store snapshot (compaction): the header, one entry per record, history event, history owner,
/// block of access counts and pending add, then an end entry counting the records and events.
///
/// Record entries are of kind 23 (format 8's kind 9): the vector 4-byte aligned in the file, so that opening reads it in place.
/// Entries are buffered and written in blocks of about 4 MiB. A compaction (write_generation) writes
/// `snapshot.tmp`, fsyncs it, renames it over `snapshot`, fsyncs the directory, and only then does the store
/// remove the old log.

#include <engram/async/pending_list.hpp>
#include <engram/store/file/contents.hpp>
#include <engram/store/file/format.hpp>
#include <engram/store/file/log.hpp>
#include <engram/store/file/posix_file.hpp>
#include <engram/store/file/record_codec.hpp>
#include <engram/write_batch.hpp>

#include <algorithm>  // std::find_if
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace engram::inline v0::detail {

/// One snapshot file being written. Not thread-safe.
class snapshot_writer {
 public:
  /// Creates (or truncates) `path` and starts it with the header of generation `gen`.
  snapshot_writer(std::string path, std::uint64_t gen)
      : path_(std::move(path)),
        fd_(open_file(path_, O_WRONLY | O_CREAT | O_TRUNC)),
        buf_(file_format::header(file_format::snap_magic, gen)) {}

  /// Appends one entry: encode(byte_writer&) writes its payload, kind first.
  template <class Encode>
  void put(Encode&& encode) {
    payload_.clear();
    payload_at_ = written_ + buf_.size() + 8;
    byte_writer w(payload_);
    encode(w);
    buf_ += file_format::make_frame(payload_);
    flush(false);
  }

  /// A record with `vector` (not r.embedding) as its vector.
  void record_entry(const record& r, std::span<const float> vector) {
    put([&](byte_writer& w) {
      w.u8(file_format::kind_record_scope_keys);
      encode_record_aligned(w, r, vector, payload_at_);
    });
    ++records_;
  }

  void event_entry(const history_event& e) {
    put([&](byte_writer& w) {
      w.u8(file_format::kind_event);
      encode_event(w, e);
    });
    ++events_;
  }

  /// The owner scope of the history of `memory_id`.
  void owner_entry(std::string_view memory_id, const scope& owner) {
    put([&](byte_writer& w) {
      w.u8(file_format::kind_owner_scope_keys);
      encode_owner(w, memory_id, owner);
    });
  }

  /// Writes the end entry and fsyncs the file.
  void finish() {
    put([&](byte_writer& w) {
      w.u8(file_format::kind_end);
      w.u64(records_);
      w.u64(events_);
    });
    flush(true);
    sync_data(fd_.get(), path_);
  }

 private:
  void flush(bool force) {
    if (buf_.size() >= (4u << 20) || (force && !buf_.empty())) {
      write_all(fd_.get(), buf_.data(), buf_.size(), path_);
      write_behind(fd_.get(), written_, buf_.size(), last_block_);
      last_block_ = buf_.size();
      written_ += buf_.size();
      buf_.clear();
    }
  }

  std::string path_;
  unique_fd fd_;
  std::string buf_;
  std::string payload_;
  std::uint64_t written_ = 0;     // bytes of the file before buf_
  std::uint64_t last_block_ = 0;  // bytes of the block written last (write_behind)
  std::uint64_t payload_at_ = 0;  // file offset of the payload being encoded
  std::uint64_t records_ = 0, events_ = 0;
};

/// Writes the owners of `table`'s histories, and those of the records `extra` (when not null) erases: their
/// scope in `table`, else in extra's upserts.
inline void write_owners(snapshot_writer& out, const record_table& table, const write_batch* extra) {
  table.for_each_owner([&](const std::string& id, const scope& owner) { out.owner_entry(id, owner); });
  if (!extra) return;
  for (const auto& id : extra->erases) {
    if (auto owner = table.scope_of(id)) {
      out.owner_entry(id, *owner);
      continue;
    }
    const auto& ups = extra->upserts;
    const auto r = std::find_if(ups.begin(), ups.end(), [&](const record& u) { return u.id == id; });
    if (r != ups.end()) out.owner_entry(id, r->scope());
  }
}

/// Writes every entry of a snapshot of `c` after applying `extra` (when not null), with identity `id` when
/// given, else c's; with `empty` only the identity and the pending queue (clear). The end entry is the
/// caller's (snapshot_writer::finish), once it no longer needs `c` locked.
inline void write_snapshot_entries(snapshot_writer& out, const file_contents& c, const write_batch* extra,
                                   const std::optional<store_identity>& id, bool empty) {
  namespace ff = file_format;
  const auto ident = id ? id : c.identity;
  if (ident)
    out.put([&](byte_writer& w) {
      w.u8(ff::kind_identity_scope_keys);
      encode_identity(w, *ident);
    });
  if (!empty)
    out.put([&](byte_writer& w) {  // lets open() size its maps once
      w.u8(ff::kind_sizes);
      w.u64(c.table.size() + (extra ? extra->upserts.size() : 0));
      w.u64(c.table.history_count() + (extra ? extra->events.size() : 0));
    });
  if (!empty) {
    // The state after `extra`: replaced and erased records are taken from it.
    std::unordered_map<std::string, const record*> over;
    if (extra) {
      for (const auto& r : extra->upserts) over[r.id] = &r;
      for (const auto& e : extra->erases) over[e] = nullptr;
    }
    auto put_record = [&](const record& r) { out.record_entry(r, r.embedding); };
    c.table.for_each_vector([&](const record& r, std::span<const float> vector) {
      auto it = over.find(r.id);
      if (it == over.end()) {
        out.record_entry(r, vector);
      } else if (it->second) {
        put_record(*it->second);
        it->second = nullptr;  // written
      }
    });
    if (extra)
      for (const auto& r : extra->upserts)
        if (auto it = over.find(r.id); it != over.end() && it->second == &r) {
          put_record(r);
          it->second = nullptr;
        }
    auto put_event = [&](const history_event& e) { out.event_entry(e); };
    c.table.for_each_history(put_event);
    if (extra)
      for (const auto& e : extra->events) put_event(e);
    write_owners(out, c.table, extra);
    // access counts, in entries of at most 4096, skipping the records `extra` erases
    std::vector<std::pair<const std::string*, std::uint32_t>> counts;
    auto put_counts = [&] {
      if (counts.empty()) return;
      out.put([&](byte_writer& w) {
        w.u8(ff::kind_access);
        w.u32(static_cast<std::uint32_t>(counts.size()));
        for (const auto& [cid, n] : counts) {
          w.str(*cid);
          w.u32(n);
        }
      });
      counts.clear();
    };
    std::unordered_set<std::string_view> erased;
    if (extra) erased.insert(extra->erases.begin(), extra->erases.end());
    c.table.for_each_access([&](const record& r, std::uint32_t n) {
      if (erased.count(r.id)) return;
      counts.emplace_back(&r.id, n);
      if (counts.size() == 4096) put_counts();
    });
    put_counts();
  }
  {  // the pending queue, after `extra`'s queue changes; clear() keeps it too
    pending_list queue = c.queued_adds;
    if (extra) queue.apply(extra->enqueued, extra->dequeued);
    queue.for_each([&](const pending_add& p) {
      out.put([&](byte_writer& w) {
        w.u8(ff::kind_pending_scope_keys);
        encode_pending(w, p);
      });
    });
  }
}

/// Makes generation `gen` of the store in `dir` current: creates its empty log (ignored, and removed, by open
/// until the snapshot naming it is in place), writes the snapshot with entries(snapshot_writer&) (then the end
/// entry), renames it into place and switches `log` to the new log. A failure after the rename leaves the
/// files unlike the caller's state: `log` then refuses appends (reopening recovers).
template <class Entries>
void write_generation(const std::string& dir, std::uint64_t gen, log_appender& log, Entries&& entries) {
  const auto tmp = file_format::path(dir, "snapshot.tmp");
  const auto sp = file_format::path(dir, "snapshot");
  create_log(dir, gen);
  {
    snapshot_writer out(tmp, gen);
    entries(out);
    out.finish();
  }
  if (std::rename(tmp.c_str(), sp.c_str()) != 0) throw_errno("cannot rename", tmp);
  const auto lp = file_format::log_path(dir, gen);
  unique_fd fd;
  try {
    sync_dir(dir);
    fd = open_file(lp, O_RDWR);
  } catch (const storage_error& e) {
    log.fail(e.what());
    throw;
  }
  log.restart(std::move(fd), lp);
}

}  // namespace engram::inline v0::detail
