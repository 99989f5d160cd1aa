#pragma once
/// @file store/file_store.hpp
/// The embedded durable store: a directory with an append-only, checksummed log and periodic snapshots.
///
/// Files in the directory:
///   LOCK          flock'd by the one writer; holds its pid (for the error a second writer gets)
///   snapshot      the state at log generation G (absent until the first compaction)
///   log.G         entries appended since that snapshot
///   damaged.G.N   bytes cut from a damaged log tail at offset N, kept for inspection (never read back)
/// Every file starts with a 24-byte header (magic, file_store::format_version, generation). Every entry
/// is `u32 length | u32 CRC-32C(length, payload) | payload`; one write_batch is one entry, so one `add` is
/// all or nothing. A compaction writes `snapshot.tmp`, fsyncs it, renames it over `snapshot`, fsyncs the
/// directory, and only then removes the old log.
/// The pending queue of add_async: a batch that changes it is an entry of its own kind (batch + queue changes),
/// and a snapshot holds one entry per pending add. Files written without a queue read exactly as before.
///
/// Opening replays snapshot + log. A torn or corrupt log entry (and everything after it) is discarded, never
/// half-applied; the damage is reported through `recovery()` and the `on_warning` callback. A damaged
/// snapshot is refused with storage_error (it was fsync'd before it became visible, so damage there is
/// not a crash artefact). Records stay in memory after opening. A snapshot's record entries (kind 9) hold their
/// vector 4-byte aligned in the file, and the store keeps the snapshot mapped and reads those vectors in place
/// (no copy at open: the page cache holds them); earlier snapshots (kind 3, vectors copied out) still open.
/// Access counts (add_access) are log entries of kind 10, (id, increment) pairs; a snapshot holds the counts
/// as entries of the same kind, after the records.

#include <engram/async/pending_list.hpp>
#include <engram/detail/crc32c.hpp>
#include <engram/store/file/lock.hpp>
#include <engram/detail/identity_check.hpp>
#include <engram/store/file/posix_file.hpp>
#include <engram/detail/record_table.hpp>
#include <engram/store/file/record_codec.hpp>
#include <engram/error.hpp>
#include <engram/record.hpp>
#include <engram/write_batch.hpp>
#include <engram/version.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace engram::inline v0 {

/// When a file_store write is durable.
enum class durability {
  /// Each apply writes its entry and calls fdatasync before returning: a returned apply survives a process
  /// crash, a kernel crash and a power loss (as far as the device honours flushes). Writers are serialised.
  /// The log is extended in steps of zeros (written and flushed with the commit that needs them), so that a
  /// commit overwrites allocated blocks and its fdatasync flushes data only, not a file-size change too (on
  /// ext4 that is a journal commit: about a second device flush). Opening treats an all-zero tail as free space.
  fsync,
  /// Same promise as `fsync` for every caller: apply returns only after an fdatasync that covers its entry.
  /// Concurrent appliers are batched: one leader writes every waiting entry in one write and one fdatasync,
  /// so N concurrent commits cost about one flush. Changes become visible to readers when durable.
  /// When several writers were active at the end of the previous flush, the leader first waits (at most half
  /// that flush's duration, and 2 ms) for as many to have queued: without it, writers returning from one flush
  /// miss the next, and the batches alternate between two halves of them. The log is preallocated as in `fsync`.
  group_commit,
  /// The entry is written to the OS (write(2)) but not flushed: a returned apply survives a crash of the
  /// process, not of the machine. For caches and tests.
  buffered,
};

/// Options of file_store. Designated initializers: `file_store(dir, {.mode = durability::group_commit})`.
struct file_store_options {
  durability mode = durability::fsync;
  /// Open without the lock, for reading what the writer has committed so far; every write is refused.
  bool read_only = false;
  /// Compact when the log is larger than both this and the last snapshot.
  std::uint64_t compact_log_bytes = 64ull << 20;
  /// Receives recovery warnings; empty: they go to stderr.
  std::function<void(const std::string&)> on_warning = {};
};

/// What opening found. Damage is never silent: it is counted here and announced through on_warning.
struct recovery_report {
  std::uint64_t generation = 0;           ///< snapshot/log generation opened
  std::uint64_t snapshot_records = 0;     ///< records read from the snapshot
  std::uint64_t snapshot_events = 0;      ///< history events read from the snapshot
  std::uint64_t log_entries = 0;          ///< log entries replayed
  std::uint64_t discarded_entries = 0;    ///< damaged entries dropped (the bad one and what followed it)
  std::uint64_t discarded_bytes = 0;      ///< bytes of log dropped
  std::uint64_t damage_offset = 0;        ///< log offset of the first damaged byte, when damaged()
  std::string damage;                     ///< what was wrong, empty when nothing was
  std::string preserved_as;               ///< file the dropped bytes were copied to (writer only)
  [[nodiscard]] bool damaged() const noexcept { return discarded_bytes > 0; }
};

/// Counters of the write path, to see group commit at work.
struct file_store_stats {
  std::uint64_t commits = 0;      ///< entries appended
  std::uint64_t syncs = 0;        ///< fdatasync calls made for them
  std::uint64_t log_bytes = 0;    ///< current log size
  std::uint64_t compactions = 0;  ///< snapshots written since open
};

/// Records and history in a directory, durable on return of every write (see `durability`).
/// Thread-safe: every member may be called concurrently; reads run in parallel and are not blocked by an
/// fsync in progress. One writer process per directory (others get storage_error), any number of read-only
/// openers (they see what was committed when they opened). Movable, not copyable; a moved-from store may
/// only be destroyed or assigned to.
class file_store {
 public:
  /// The format of the files this engram writes, in every file's header. 2: a snapshot may hold vectors read in
  /// place (entry kind 9) and a log may end in preallocated zeros. 1: neither. 3: access counts (entry kind 10)
  /// may be present.
  static constexpr std::uint32_t format_version = 3;
  /// The oldest format this engram reads (and upgrades: see upgrade_log_header).
  static constexpr std::uint32_t oldest_format_version = 1;

  /// Opens (creating when needed, unless read-only) the store in directory `dir` and replays it.
  /// @throws storage_error when the directory is locked by another writer (naming its pid), unreadable, of
  ///         another format version, or its snapshot is damaged.
  explicit file_store(std::filesystem::path dir, file_store_options options = {})
      : s_(std::make_unique<state>()) {
    s_->dir = dir.string();
    s_->options = std::move(options);
    open();
  }

  /// Records the embedder identity on first use (durably); afterwards a different one is refused
  /// (dimension_mismatch for another size, validation_error for another name), naming both.
  void bind(const store_identity& id) {
    std::unique_lock wl(s_->write_mtx);
    {
      std::shared_lock lock(s_->mtx);
      if (s_->identity) {
        check_identity(*s_->identity, id);
        return;
      }
    }
    if (!s_->options.read_only) {
      std::string payload;
      detail::byte_writer w(payload);
      w.u8(kind_identity);
      w.str(id.embedder);
      w.u64(id.dimension);
      std::string frame = make_frame(payload);
      append_locked(frame, true);
    }
    std::unique_lock lock(s_->mtx);
    s_->identity = id;
  }

  /// The identity bound so far, if any.
  [[nodiscard]] std::optional<store_identity> identity() const {
    std::shared_lock lock(s_->mtx);
    return s_->identity;
  }

  /// Appends the batch as one log entry and applies it; durable on return as the mode promises.
  /// @throws storage_error when read-only, on an I/O error (nothing of the batch is applied), or after an
  ///         earlier fsync failure (the store must then be reopened).
  void apply(const write_batch& b) {
    check_writable("apply");
    if (b.empty()) return;
    const std::string payload = batch_payload(b);
    std::string frame = make_frame(payload);
    if (s_->options.mode == durability::group_commit) {
      apply_grouped(frame, b);
      return;
    }
    std::unique_lock wl(s_->write_mtx);
    append_locked(frame, s_->options.mode == durability::fsync);
    {
      std::unique_lock lock(s_->mtx);
      apply_to_memory(b);
    }
    compact_if_due_locked();  // the batch is committed: a failed compaction must not report it as failed
  }

  /// First half of a two-phase commit, for a caller that orders its writes under its own lock and waits
  /// for durability after releasing it (so that concurrent callers share one fsync): writes the batch's
  /// entry to the log and applies it (readers see it at once), without waiting for the disk.
  /// @returns the ticket to pass to sync(). A crash before sync(ticket) returned may lose the batch (whole).
  /// @throws storage_error as apply does (nothing applied).
  [[nodiscard]] std::uint64_t append(const write_batch& b) {
    check_writable("append");
    const std::string payload = batch_payload(b);
    const std::string frame = make_frame(payload);
    std::unique_lock wl(s_->write_mtx);
    if (!b.empty()) {
      append_locked(frame, false);
      std::unique_lock lock(s_->mtx);
      apply_to_memory(b);
    }
    const auto ticket = s_->appended;
    compact_if_due_locked();
    return ticket;
  }

  /// Second half: returns once every entry appended up to `ticket` is durable. Concurrent callers share one
  /// fdatasync (the first becomes the leader, the others wait for it; the leader gathers them as
  /// durability::group_commit describes). With durability::buffered it returns at once.
  /// @throws storage_error when the fsync failed (the store then refuses writes).
  void sync(std::uint64_t ticket) {
    auto& st = *s_;
    if (st.options.mode == durability::buffered) return;
    std::unique_lock lk(st.group_mtx);
    ++st.sync_waiters;
    st.gather_cv.notify_one();
    struct leave {
      state& st;
      ~leave() { --st.sync_waiters; }  // group_mtx is held again whenever the loop is left
    } guard{st};
    while (st.durable.load() < ticket) {
      if (st.sync_error) std::rethrow_exception(st.sync_error);
      if (st.syncing) {
        st.sync_cv.wait(lk);
        continue;
      }
      st.syncing = true;
      gather(lk, [&] { return st.sync_waiters; });
      lk.unlock();
      std::exception_ptr err;
      std::chrono::steady_clock::duration flush_time{};
      try {
        detail::unique_fd fd;
        std::uint64_t target = 0;
        {
          std::unique_lock wl(st.write_mtx);
          target = st.appended;
          fd = detail::unique_fd(::dup(st.log.get()));  // a compaction may replace st.log meanwhile
          if (!fd) detail::throw_errno("cannot dup", log_path(st.generation));
        }
        const auto flush_start = std::chrono::steady_clock::now();
        detail::sync_data(fd.get(), st.dir);
        flush_time = std::chrono::steady_clock::now() - flush_start;
        mark_durable(target);
        std::unique_lock wl(st.write_mtx);
        ++st.stats.syncs;
      } catch (const std::exception& e) {
        err = std::current_exception();
        std::unique_lock wl(st.write_mtx);
        st.failed = e.what();
      }
      lk.lock();
      st.last_flush = flush_time;
      st.last_round = st.sync_waiters;  // the writers it served and those that came meanwhile
      st.syncing = false;
      if (err) st.sync_error = err;
      st.sync_cv.notify_all();
    }
  }

  [[nodiscard]] std::optional<record> get(std::string_view id) const {
    std::shared_lock lock(s_->mtx);
    return s_->table.get(id);
  }

  /// Calls f(const record&) for every record, in no particular order. f must not call back into the store.
  template <class F>
  void for_each(F&& f) const {
    std::shared_lock lock(s_->mtx);
    s_->table.for_each(f);
  }

  /// Calls f(const record&, std::span<const float> embedding) for every record, in no particular order, without
  /// copying records or vectors (opening a memory): use the span, the record's `embedding` member may be empty
  /// (vectors of a snapshot are read in place from the mapped file). f must not call back into the store.
  template <class F>
  void for_each_vector(F&& f) const {
    std::shared_lock lock(s_->mtx);
    s_->table.for_each_vector(f);
  }

  /// The events of one memory id, oldest first; empty when the id never existed.
  [[nodiscard]] std::vector<history_event> history(std::string_view memory_id) const {
    std::shared_lock lock(s_->mtx);
    return s_->table.history(memory_id);
  }

  /// Calls f(const history_event&) for every event: each memory's events oldest first, memories in no
  /// particular order (includes the history of deleted memories). f must not call back into the store.
  template <class F>
  void for_each_history(F&& f) const {
    std::shared_lock lock(s_->mtx);
    s_->table.for_each_history(f);
  }

  /// Calls f(const pending_add&) for every pending add, oldest first. f must not call back into the store.
  template <class F>
  void for_each_pending(F&& f) const {
    std::shared_lock lock(s_->mtx);
    s_->queued_adds.for_each(f);
  }

  /// Adds search hits to the memories' access counts (the access_count_store concept): one log entry, durable
  /// as the mode promises (its own fdatasync unless buffered); ids not held are ignored; records, history and
  /// the compaction trigger are not affected otherwise.
  /// @throws storage_error when read-only or on an I/O error (no count changed).
  void add_access(std::span<const access_increment> increments) {
    check_writable("add_access");
    std::string payload;
    detail::byte_writer w(payload);
    w.u8(kind_access);
    const auto n = static_cast<std::uint32_t>(std::count_if(increments.begin(), increments.end(),
                                                            [](const access_increment& a) { return a.count > 0; }));
    if (n == 0) return;
    w.u32(n);
    for (const auto& a : increments)
      if (a.count) {
        w.str(a.memory_id);
        w.u32(a.count);
      }
    const std::string frame = make_frame(payload);
    std::unique_lock wl(s_->write_mtx);
    append_locked(frame, s_->options.mode != durability::buffered);
    {
      std::unique_lock lock(s_->mtx);
      for (const auto& a : increments)
        if (a.count) s_->table.add_access(a.memory_id, a.count);
    }
    compact_if_due_locked();
  }

  /// Calls f(const std::string& id, std::uint32_t count) for every memory query scope `q` selects (every memory
  /// when `q` is empty) whose access count is not zero. f must not call back into the store.
  template <class F>
  void for_each_access_count(const scope& q, F&& f) const {
    std::shared_lock lock(s_->mtx);
    s_->table.for_each_access([&](const record& r, std::uint32_t n) {
      if (q.empty() || q.selects(r.scope())) f(r.id, n);
    });
  }

  /// Erases every record and every history event (the identity and the pending queue stay), durably: a
  /// snapshot without them replaces the old one atomically.
  void clear() {
    check_writable("clear");
    std::unique_lock wl(s_->write_mtx);
    write_snapshot_locked(nullptr, std::nullopt, true);
    std::unique_lock lock(s_->mtx);
    s_->table.clear();
    s_->snapshot_map.reset();
  }

  /// Writes a snapshot of the current state and starts an empty log. O(size of the store); writers wait.
  void compact() {
    check_writable("compact");
    std::unique_lock wl(s_->write_mtx);
    write_snapshot_locked(nullptr, std::nullopt);
  }

  /// Replaces the identity and applies `b` in one atomic step (a snapshot of the result is written and
  /// renamed into place). The way to switch embedders: see engram::reembed. O(size of the store).
  void rebind(const store_identity& id, const write_batch& b) {
    check_writable("rebind");
    std::unique_lock wl(s_->write_mtx);
    write_snapshot_locked(&b, id);
    std::unique_lock lock(s_->mtx);
    apply_to_memory(b);
    s_->identity = id;
  }

  [[nodiscard]] std::size_t size() const {
    std::shared_lock lock(s_->mtx);
    return s_->table.size();
  }

  /// What opening found (damage discarded, entries replayed).
  [[nodiscard]] const recovery_report& recovery() const noexcept { return s_->report; }

  [[nodiscard]] file_store_stats stats() const {
    std::unique_lock wl(s_->write_mtx);
    return s_->stats;
  }

  [[nodiscard]] const std::string& directory() const noexcept { return s_->dir; }
  [[nodiscard]] bool read_only() const noexcept { return s_->options.read_only; }

  // ---- named blobs: derived data kept beside the records (an index snapshot, say) ------------------------

  /// Writes `bytes` as blob `name` atomically and durably: file `blob.<name>` in the store's directory,
  /// written to a temporary file, fsynced, renamed over the old one, then the directory fsynced. A blob is
  /// not part of the records (clear() and compaction keep it): whoever reads it must validate it. The temporary
  /// file of a write a crash interrupted is removed by the next writable open.
  /// Thread-safe; writers wait while it writes. O(bytes).
  /// @throws validation_error for a name that is empty or not made of letters, digits, '-' and '_';
  ///         storage_error when read-only or on an I/O error (the previous blob then stays).
  void put_blob(std::string_view name, std::string_view bytes) {
    check_writable("put_blob");
    const auto final_path = blob_path(name);
    const auto tmp = final_path + ".tmp";
    std::unique_lock wl(s_->write_mtx);
    {
      auto fd = detail::open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC);
      detail::write_all(fd.get(), bytes.data(), bytes.size(), tmp);
      detail::sync_data(fd.get(), tmp);
    }
    if (std::rename(tmp.c_str(), final_path.c_str()) != 0) {
      const int err = errno;
      std::remove(tmp.c_str());
      detail::throw_errno("cannot rename", tmp, err);
    }
    detail::sync_dir(s_->dir);
  }

  /// The blob `name` as last written by put_blob(), or std::nullopt when there is none. Thread-safe.
  /// @throws validation_error for a bad name (see put_blob); storage_error when it exists but cannot be read.
  [[nodiscard]] std::optional<std::string> get_blob(std::string_view name) const {
    const auto p = blob_path(name);
    if (!detail::file_exists(p)) return std::nullopt;
    const detail::mapped_file f(p);
    return std::string(f.data(), f.size());
  }

 private:
  [[nodiscard]] std::string blob_path(std::string_view name) const {
    const bool ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    });
    if (!ok)
      throw validation_error("file_store: blob name '" + std::string(name) +
                             "' is invalid (expected 1 or more letters, digits, '-' or '_')");
    return path("blob." + std::string(name));
  }

 private:
  static constexpr std::uint8_t kind_batch = 1, kind_identity = 2, kind_record = 3, kind_event = 4, kind_end = 5,
                                  kind_sizes = 6, kind_queued_batch = 7, kind_pending = 8, kind_record_aligned = 9,
                                  kind_access = 10;
  static constexpr std::size_t header_size = 24;
  static constexpr std::size_t header_version_offset = 8;
  static constexpr std::uint64_t log_step = 1u << 20;  // fsync modes extend the log by this many bytes of zeros
  static constexpr char log_magic[9] = "ENGRMLOG";
  static constexpr char snap_magic[9] = "ENGRMSNP";

  struct pending {
    const std::string* frame;
    const write_batch* batch;
    bool done = false;
    std::exception_ptr error;
    std::condition_variable cv;  // woken when done, or to become the next leader
  };

  struct state {
    std::string dir;
    file_store_options options;
    detail::dir_lock lock;

    mutable std::shared_mutex mtx;  // guards table, identity
    std::shared_ptr<const detail::mapped_file> snapshot_map;  // the opened snapshot, when table reads vectors in it
    detail::record_table table;     // records and history
    std::optional<store_identity> identity;
    detail::pending_list queued_adds;  // add_async entries awaiting extraction

    mutable std::mutex write_mtx;  // guards the files and the fields below
    detail::unique_fd log;
    std::uint64_t generation = 0;
    std::uint64_t log_size = 0;   // bytes of entries (the log's logical end)
    std::uint64_t log_alloc = 0;  // size of the log file: log_size plus preallocated zeros (not buffered)
    std::uint64_t snapshot_bytes = 0;
    file_store_stats stats;
    std::string failed;  // non-empty after an fsync failure: the store refuses further writes

    std::mutex group_mtx;  // group commit queue and the two-phase sync below
    std::uint64_t appended = 0;             // bytes ever appended (write_mtx)
    std::atomic<std::uint64_t> durable{0};  // of which known durable
    bool syncing = false;
    std::condition_variable sync_cv;
    std::exception_ptr sync_error;
    std::vector<pending*> queue;
    bool leader = false;
    std::size_t sync_waiters = 0;  // callers inside sync()
    std::size_t last_round = 0;    // writers active at the end of the last flush (served or waiting)
    std::chrono::steady_clock::duration last_flush{};  // how long that flush took (group_mtx)
    std::condition_variable gather_cv;  // a leader gathering writers waits here; arriving writers notify it

    recovery_report report;
    std::uint64_t log_end = header_size;  // where load() found the log's entries to end
    std::uint64_t size_hint_limit = 0;  // bound on the map sizes a snapshot may ask for
  };

  // ---- paths and headers --------------------------------------------------------------------------------

  [[nodiscard]] std::string path(std::string_view name) const { return s_->dir + "/" + std::string(name); }
  [[nodiscard]] std::string log_path(std::uint64_t gen) const { return path("log." + std::to_string(gen)); }

  static std::string header(const char* magic, std::uint64_t gen) {
    std::string h(magic, 8);
    detail::byte_writer w(h);
    w.u32(format_version);
    w.u32(0);
    w.u64(gen);
    return h;
  }

  /// Checks a file's header; @returns its generation.
  static std::uint64_t read_header(const char* data, std::size_t size, const char* magic, const std::string& file) {
    if (size < header_size || std::string_view(data, 8) != std::string_view(magic, 8))
      throw storage_error("file_store: '" + file + "' is not an engram " +
                          (magic == log_magic ? std::string("log") : std::string("snapshot")) +
                          " (bad or missing header)");
    detail::byte_reader r(data + 8, header_size - 8, file);
    const auto version = r.u32();
    if (version < oldest_format_version || version > format_version)
      throw storage_error("file_store: '" + file + "' has file_store format version " + std::to_string(version) +
                          "; this engram (" + version_string + ") reads versions " +
                          std::to_string(oldest_format_version) + " to " + std::to_string(format_version) +
                          (version > format_version ? " (it was written by a newer engram)" : ""));
    r.u32();
    return r.u64();
  }

  static std::string make_frame(const std::string& payload) {
    if (payload.size() > 0xFFFFFFF0u)
      throw storage_error("file_store: a write of " + std::to_string(payload.size()) +
                          " bytes is too large for one entry (at most 4 GiB)");
    std::string frame;
    frame.reserve(payload.size() + 8);
    detail::byte_writer w(frame);
    w.u32(static_cast<std::uint32_t>(payload.size()));
    w.u32(0);
    frame += payload;
    std::uint32_t crc = detail::crc32c(frame.data(), 4);
    crc = detail::crc32c_extend(crc, payload.data(), payload.size());
    for (int i = 0; i < 4; ++i) frame[4 + i] = static_cast<char>((crc >> (8 * i)) & 0xFF);
    return frame;
  }

  /// Outcome of reading one frame at `pos`.
  struct frame_view {
    const char* payload = nullptr;
    std::size_t size = 0;
    std::string problem;  // empty when the frame is whole and its checksum matches
  };

  static frame_view next_frame(const char* data, std::size_t size, std::size_t pos) {
    frame_view f;
    const std::size_t left = size - pos;
    if (left < 8) {
      f.problem = "torn entry header (" + std::to_string(left) + " of 8 bytes)";
      return f;
    }
    detail::byte_reader r(data + pos, 8, "file_store");
    const std::uint32_t len = r.u32();
    const std::uint32_t crc = r.u32();
    if (len == 0 || len > left - 8) {
      f.problem = len == 0 ? std::string("empty entry") : "torn entry (" + std::to_string(left - 8) + " of " +
                                                               std::to_string(len) + " bytes)";
      return f;
    }
    std::uint32_t c = detail::crc32c(data + pos, 4);
    c = detail::crc32c_extend(c, data + pos + 8, len);
    if (c != crc) {
      f.problem = "checksum mismatch";
      return f;
    }
    f.payload = data + pos + 8;
    f.size = len;
    return f;
  }

  void warn(const std::string& message) const {
    if (s_->options.on_warning) {
      s_->options.on_warning(message);
    } else {
      std::fprintf(stderr, "engram: %s\n", message.c_str());
    }
  }

  void check_identity(const store_identity& have, const store_identity& want) const {
    detail::check_same_identity(have, want, "file_store '" + s_->dir + "'");
  }

  void check_writable(std::string_view op) const {
    if (s_->options.read_only)
      throw storage_error("file_store: " + std::string(op) + " refused: '" + s_->dir + "' is open read-only");
  }

  // ---- opening ------------------------------------------------------------------------------------------

  void open() {
    namespace fs = std::filesystem;
    auto& st = *s_;
    if (st.options.read_only) {
      if (!fs::is_directory(st.dir))
        throw storage_error("file_store: cannot open '" + st.dir + "' read-only: no such directory");
      // A compaction by the writer may replace the snapshot and remove the log while we read: retry then.
      for (int attempt = 0;; ++attempt) {
        load();
        if (current_generation() == st.generation || attempt == 10) break;
        st.table.clear();
        st.identity.reset();
        st.queued_adds.clear();
        st.report = {};
      }
      return;
    }
    std::error_code ec;
    fs::create_directories(st.dir, ec);
    if (ec) throw storage_error("file_store: cannot create directory '" + st.dir + "': " + ec.message());
    st.lock = detail::dir_lock(st.dir, "file_store");
    load();
    // Remove leftovers of interrupted compactions and blob writes (a blob's .tmp is never read).
    for (const auto& entry : fs::directory_iterator(st.dir)) {
      const auto name = entry.path().filename().string();
      const bool stale_log = name.rfind("log.", 0) == 0 && name != "log." + std::to_string(st.generation);
      const bool stale_blob = name.rfind("blob.", 0) == 0 && name.ends_with(".tmp");
      if (stale_log || stale_blob || name == "snapshot.tmp") fs::remove(entry.path(), ec);
    }
    const auto lp = log_path(st.generation);
    if (!detail::file_exists(lp)) create_log(st.generation);
    st.log = detail::open_file(lp, O_RDWR);
    upgrade_log_header(lp);
    st.log_alloc = detail::file_size(st.log.get(), lp);
    st.log_size = std::min(st.log_end, st.log_alloc);
    st.stats.log_bytes = st.log_size;
    detail::sync_dir(st.dir);
  }

  /// A log of an older format that this engram will append to is marked with the current format first, so
  /// that an older engram refuses it by its version instead of misreading what is appended (a group-commit
  /// log's preallocated zeros, say). The snapshot keeps its version until the next compaction rewrites it.
  void upgrade_log_header(const std::string& lp) {
    char h[header_size];
    const auto got = ::pread(s_->log.get(), h, header_size, 0);
    if (got != static_cast<ssize_t>(header_size)) return;  // load() has checked it; nothing to upgrade
    const auto version = detail::byte_reader(h + header_version_offset, 4, lp).u32();
    if (version >= format_version) return;
    std::string v;
    detail::byte_writer(v).u32(format_version);
    detail::pwrite_all(s_->log.get(), v.data(), v.size(), header_version_offset, lp);
    detail::sync_data(s_->log.get(), lp);
  }

  std::uint64_t current_generation() const {
    const auto sp = path("snapshot");
    if (!detail::file_exists(sp)) return 0;
    try {
      char h[header_size];
      const auto fd = detail::open_file(sp, O_RDONLY);
      const auto got = ::pread(fd.get(), h, header_size, 0);
      return read_header(h, got < 0 ? 0 : static_cast<std::size_t>(got), snap_magic, sp);
    } catch (const storage_error&) {
      return 0;
    }
  }

  void create_log(std::uint64_t gen) {
    const auto tmp = path("log.tmp");
    {
      auto fd = detail::open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC);
      const auto h = header(log_magic, gen);
      detail::write_all(fd.get(), h.data(), h.size(), tmp);
      detail::sync_data(fd.get(), tmp);
    }
    if (std::rename(tmp.c_str(), log_path(gen).c_str()) != 0) detail::throw_errno("cannot rename", tmp);
    detail::sync_dir(s_->dir);
  }

  void apply_payload(const char* data, std::size_t size, bool in_snapshot, const std::string& file) {
    auto& st = *s_;
    detail::byte_reader r(data, size, file);
    const auto kind = r.u8();
    switch (kind) {
      case kind_batch: {
        if (in_snapshot) break;
        auto b = detail::decode_batch(r, file);  // decoded whole before anything is applied
        // Replay moves the decoded records and events (vectors included) instead of copying them; the rest of
        // the batch is applied as any batch.
        st.table.apply(std::move(b));
        b.upserts.clear();
        b.erases.clear();
        b.events.clear();
        apply_to_memory(b);
        return;
      }
      case kind_queued_batch: {
        if (in_snapshot) break;
        auto b = detail::decode_batch(r, file);
        detail::decode_queue_ops(r, b, file);
        apply_to_memory(b);
        return;
      }
      case kind_access: {  // log: increments; snapshot: the counts (applied after the records)
        const auto n = r.u32();
        for (std::uint32_t i = 0; i < n; ++i) {
          const auto id = r.str();
          st.table.add_access(id, r.u32());
        }
        return;
      }
      case kind_pending: {
        if (!in_snapshot) break;
        st.queued_adds.apply({detail::decode_pending(r, file)}, {});
        return;
      }
      case kind_identity: {
        store_identity id;
        id.embedder = r.str();
        id.dimension = static_cast<std::size_t>(r.u64());
        st.identity = std::move(id);
        return;
      }
      case kind_record: {
        if (!in_snapshot) break;
        st.table.upsert(detail::decode_record(r));
        ++st.report.snapshot_records;
        return;
      }
      case kind_record_aligned: {  // the vector stays in the mapped snapshot (st.snapshot_map)
        if (!in_snapshot) break;
        auto [rec, vector] = detail::decode_record_aligned(r);
        st.table.upsert_external(std::move(rec), vector);
        ++st.report.snapshot_records;
        return;
      }
      case kind_sizes: {
        if (!in_snapshot) break;
        const auto nr = r.u64(), nh = r.u64();
        // A hint only: bounded by what the file could hold (a record entry takes more than 64 bytes).
        st.table.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(nr, st.size_hint_limit)),
                         static_cast<std::size_t>(std::min<std::uint64_t>(nh, st.size_hint_limit)));
        return;
      }
      case kind_event: {
        if (!in_snapshot) break;
        st.table.append(detail::decode_event(r, file));
        ++st.report.snapshot_events;
        return;
      }
      default: break;
    }
    throw storage_error("file_store: '" + file + "': unexpected entry kind " + std::to_string(kind));
  }

  void load() {
    auto& st = *s_;
    st.generation = 0;
    const auto sp = path("snapshot");
    if (detail::file_exists(sp)) {
      auto map = std::make_shared<const detail::mapped_file>(sp);
      const auto& f = *map;
      st.generation = read_header(f.data(), f.size(), snap_magic, sp);
      st.size_hint_limit = f.size() / 64;
      st.snapshot_bytes = f.size();
      // First every checksum is checked and the entries sorted out (identity and sizes applied at once); then
      // records and history events, which fill separate maps, are decoded side by side.
      std::vector<std::pair<const char*, std::size_t>> records, events, access;
      std::size_t pos = header_size;
      bool ended = false;
      while (pos < f.size() && !ended) {
        auto fr = next_frame(f.data(), f.size(), pos);
        if (!fr.problem.empty())
          throw storage_error("file_store: snapshot '" + sp + "' is damaged at offset " + std::to_string(pos) +
                              " (" + fr.problem + "); restore it from a backup or an export");
        const auto kind = static_cast<std::uint8_t>(fr.payload[0]);
        if (kind == kind_end) {
          detail::byte_reader r(fr.payload + 1, fr.size - 1, sp);
          const auto nr = r.u64(), ne = r.u64();
          if (nr != records.size() || ne != events.size())
            throw storage_error("file_store: snapshot '" + sp + "' is inconsistent: it announces " +
                                std::to_string(nr) + " records and " + std::to_string(ne) + " events, holds " +
                                std::to_string(records.size()) + " and " + std::to_string(events.size()));
          ended = true;
        } else if (kind == kind_record || kind == kind_record_aligned) {
          if (kind == kind_record_aligned) st.snapshot_map = map;  // records will point into it
          records.emplace_back(fr.payload, fr.size);
        } else if (kind == kind_event) {
          events.emplace_back(fr.payload, fr.size);
        } else if (kind == kind_access) {
          access.emplace_back(fr.payload, fr.size);
        } else {
          apply_payload(fr.payload, fr.size, true, sp);
        }
        pos += 8 + fr.size;
      }
      if (!ended) throw storage_error("file_store: snapshot '" + sp + "' is truncated (no end entry)");
      if (st.snapshot_map == map) map->advise_normal();  // kept: get() reads vectors from it at random
      auto apply_all = [&](const std::vector<std::pair<const char*, std::size_t>>& entries) {
        for (const auto& [data, size] : entries) apply_payload(data, size, true, sp);
      };
      constexpr std::size_t parallel_from = 20000;  // entries; below, a thread costs more than it saves
      if (records.size() + events.size() >= parallel_from && std::thread::hardware_concurrency() > 1) {
        std::exception_ptr failed;
        std::thread other([&] {
          try {
            apply_all(events);  // the table's histories and st.report.snapshot_events only
          } catch (...) {
            failed = std::current_exception();
          }
        });
        try {
          apply_all(records);  // the table's records and st.report.snapshot_records
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
    }
    st.report.generation = st.generation;

    const auto lp = log_path(st.generation);
    st.log_end = header_size;
    if (!detail::file_exists(lp)) return;
    detail::mapped_file f(lp);
    const auto gen = read_header(f.data(), f.size(), log_magic, lp);
    if (gen != st.generation)
      throw storage_error("file_store: '" + lp + "' belongs to generation " + std::to_string(gen) + ", expected " +
                          std::to_string(st.generation));
    std::size_t pos = header_size;
    std::string problem;
    st.log_end = f.size();
    while (pos < f.size()) {
      auto fr = next_frame(f.data(), f.size(), pos);
      if (!fr.problem.empty() && std::all_of(f.data() + pos, f.data() + f.size(), [](char c) { return c == 0; })) {
        st.log_end = pos;  // zeros preallocated by a fsync mode: free space, not damage
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
      ++st.report.log_entries;
      pos += 8 + fr.size;
    }
    if (problem.empty()) return;

    // Damage: drop everything from `pos` on. Count the frames that still parse after it, for the report.
    auto& rep = st.report;
    st.log_end = pos;
    rep.damage_offset = pos;
    rep.discarded_bytes = f.size() - pos;
    rep.damage = problem;
    rep.discarded_entries = 1;
    {
      std::size_t q = pos;
      auto fr = next_frame(f.data(), f.size(), q);
      std::size_t skip = fr.problem.empty() ? fr.size : 0;
      if (!fr.problem.empty() && f.size() - q >= 8) {
        detail::byte_reader r(f.data() + q, 4, lp);
        const auto len = r.u32();
        if (len > 0 && len <= f.size() - q - 8) skip = len;
      }
      if (skip > 0) {
        q += 8 + skip;
        while (q < f.size()) {
          auto g = next_frame(f.data(), f.size(), q);
          if (!g.problem.empty()) break;
          ++rep.discarded_entries;
          q += 8 + g.size;
        }
      }
    }
    if (!st.options.read_only) {
      rep.preserved_as = path("damaged." + std::to_string(st.generation) + "." + std::to_string(pos));
      {
        auto out = detail::open_file(rep.preserved_as, O_WRONLY | O_CREAT | O_TRUNC);
        detail::write_all(out.get(), f.data() + pos, f.size() - pos, rep.preserved_as);
        detail::sync_data(out.get(), rep.preserved_as);
      }
      auto fd = detail::open_file(lp, O_RDWR);
      if (::ftruncate(fd.get(), static_cast<off_t>(pos)) != 0) detail::throw_errno("cannot truncate", lp);
      detail::sync_data(fd.get(), lp);
    }
    warn("file_store: '" + lp + "': " + problem + " at offset " + std::to_string(pos) + "; discarded " +
         std::to_string(rep.discarded_bytes) + " bytes (" + std::to_string(rep.discarded_entries) +
         " entries) after " + std::to_string(rep.log_entries) + " intact entries" +
         (rep.preserved_as.empty() ? std::string() : "; the bytes are kept in '" + rep.preserved_as + "'"));
  }

  // ---- writing ------------------------------------------------------------------------------------------

  void apply_to_memory(const write_batch& b) {
    s_->table.apply(b);
    s_->queued_adds.apply(b.enqueued, b.dequeued);
  }

  /// A batch's log entry payload: the original kind when it leaves the pending queue alone.
  static std::string batch_payload(const write_batch& b) {
    std::string payload;
    detail::byte_writer w(payload);
    const bool queue = !b.enqueued.empty() || !b.dequeued.empty();
    w.u8(queue ? kind_queued_batch : kind_batch);
    detail::encode_batch(w, b);
    if (queue) detail::encode_queue_ops(w, b);
    return payload;
  }

  /// Appends bytes to the log at its end; with `sync`, fdatasyncs. Caller holds write_mtx.
  void append_locked(const std::string& bytes, bool sync, std::uint64_t entries = 1) {
    auto& st = *s_;
    if (!st.failed.empty())
      throw storage_error("file_store: '" + st.dir + "' refuses writes after an earlier failure (" + st.failed +
                          "); reopen it");
    const auto lp = log_path(st.generation);
    try {
      if (st.options.mode != durability::buffered && st.log_size + bytes.size() > st.log_alloc) {
        // Zeros ahead of the entries, made durable by this commit's fdatasync (see durability::fsync).
        const auto want = (st.log_size + bytes.size() + log_step - 1) / log_step * log_step;
        const std::string zeros(static_cast<std::size_t>(want - st.log_alloc), '\0');
        detail::pwrite_all(st.log.get(), zeros.data(), zeros.size(), static_cast<off_t>(st.log_alloc), lp);
        st.log_alloc = want;
      }
      detail::pwrite_all(st.log.get(), bytes.data(), bytes.size(), static_cast<off_t>(st.log_size), lp);
    } catch (const storage_error&) {
      // Cut off whatever part was written so the next entry follows intact ones.
      if (::ftruncate(st.log.get(), static_cast<off_t>(st.log_size)) != 0) st.failed = "write failed";
      st.log_alloc = st.log_size;
      throw;
    }
    if (sync) {
      try {
        detail::sync_data(st.log.get(), lp);
      } catch (const storage_error& e) {
        st.failed = e.what();  // after a failed fsync the page cache state is unknown: stop writing
        throw;
      }
      ++st.stats.syncs;
    }
    st.log_size += bytes.size();
    st.appended += bytes.size();
    if (sync) mark_durable(st.appended);
    st.stats.commits += entries;
    st.stats.log_bytes = st.log_size;
  }

  void mark_durable(std::uint64_t upto) noexcept {
    auto& d = s_->durable;
    for (auto cur = d.load(); cur < upto && !d.compare_exchange_weak(cur, upto);) {
    }
  }

  void apply_grouped(const std::string& frame, const write_batch& b) {
    auto& st = *s_;
    pending me{&frame, &b, false, nullptr, {}};
    std::unique_lock lk(st.group_mtx);
    st.queue.push_back(&me);
    st.gather_cv.notify_one();
    while (!me.done) {
      if (st.leader) {
        me.cv.wait(lk);
        continue;
      }
      st.leader = true;
      gather(lk, [&] { return st.queue.size(); });
      std::vector<pending*> round;
      round.swap(st.queue);
      lk.unlock();
      std::exception_ptr err;
      std::chrono::steady_clock::duration flush_time{};
      try {
        std::unique_lock wl(st.write_mtx);
        std::string bytes;
        const auto flush_start = std::chrono::steady_clock::now();
        if (round.size() == 1) {
          append_locked(*round.front()->frame, true);
        } else {
          std::size_t total = 0;
          for (const auto* p : round) total += p->frame->size();
          bytes.reserve(total);
          for (const auto* p : round) bytes += *p->frame;
          append_locked(bytes, true, round.size());
        }
        flush_time = std::chrono::steady_clock::now() - flush_start;
        {
          std::unique_lock lock(st.mtx);
          for (const auto* p : round) apply_to_memory(*p->batch);
        }
        compact_if_due_locked();
      } catch (...) {
        err = std::current_exception();
      }
      lk.lock();
      st.last_flush = flush_time;
      st.last_round = round.size() + st.queue.size();  // the writers it served and those that came meanwhile
      for (auto* p : round) {
        p->done = true;
        p->error = err;
        if (p != &me) p->cv.notify_one();
      }
      st.leader = false;
      if (!st.queue.empty()) st.queue.front()->cv.notify_one();  // the next leader
    }
    if (me.error) std::rethrow_exception(me.error);
  }

  /// Called by a new leader holding group_mtx: when several writers were active at the end of the last flush,
  /// waits until `gathered()` of them are waiting again, at most half that flush's duration (and 2 ms). A
  /// lone writer never waits.
  template <class Count>
  void gather(std::unique_lock<std::mutex>& lk, Count gathered) {
    auto& st = *s_;
    if (st.last_round <= 1 || gathered() >= st.last_round) return;
    const auto wait = std::min<std::chrono::steady_clock::duration>(st.last_flush / 2, std::chrono::milliseconds(2));
    st.gather_cv.wait_for(lk, wait, [&] { return gathered() >= st.last_round; });
  }

  /// Compacts when the log has outgrown both the threshold and the snapshot; a failure is a warning (the
  /// log stays valid and the store keeps working, unless the failure left it unsafe: then st.failed is set).
  void compact_if_due_locked() noexcept {
    auto& st = *s_;
    if (st.log_size <= st.options.compact_log_bytes || st.log_size <= st.snapshot_bytes) return;
    try {
      write_snapshot_locked(nullptr, std::nullopt);
    } catch (const std::exception& e) {
      try {
        warn(std::string("file_store: compaction failed (the log stays valid): ") + e.what());
      } catch (...) {
      }
    }
  }

  /// Writes a snapshot of the state (after applying `extra`, with identity `id` when given) as generation
  /// G+1, switches to an empty log G+1 and removes log G. Caller holds write_mtx. With `empty` only the
  /// identity is written (clear).
  void write_snapshot_locked(const write_batch* extra, const std::optional<store_identity>& id,
                             bool empty = false) {
    auto& st = *s_;
    const std::uint64_t next = st.generation + 1;
    const auto tmp = path("snapshot.tmp");
    const auto sp = path("snapshot");
    create_log(next);  // empty; ignored (and removed) by open until the snapshot naming it is in place
    std::uint64_t nrec = 0, nev = 0;
    {
      auto fd = detail::open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC);
      std::string buf = header(snap_magic, next);
      std::string payload;
      std::uint64_t written = 0;  // bytes of the file before buf
      std::uint64_t payload_at = 0;  // file offset of the payload being encoded
      auto flush = [&](bool force) {
        if (buf.size() >= (4u << 20) || (force && !buf.empty())) {
          detail::write_all(fd.get(), buf.data(), buf.size(), tmp);
          written += buf.size();
          buf.clear();
        }
      };
      auto put = [&](auto&& encode) {
        payload.clear();
        payload_at = written + buf.size() + 8;
        detail::byte_writer w(payload);
        encode(w);
        buf += make_frame(payload);
        flush(false);
      };
      std::shared_lock lock(st.mtx);
      const auto ident = id ? id : st.identity;
      if (ident)
        put([&](detail::byte_writer& w) {
          w.u8(kind_identity);
          w.str(ident->embedder);
          w.u64(ident->dimension);
        });
      if (!empty)
        put([&](detail::byte_writer& w) {  // lets open() size its maps once
          w.u8(kind_sizes);
          w.u64(st.table.size() + (extra ? extra->upserts.size() : 0));
          w.u64(st.table.history_count() + (extra ? extra->events.size() : 0));
        });
      if (!empty) {
        // The state after `extra`: replaced and erased records are taken from it.
        std::unordered_map<std::string, const record*> over;
        if (extra) {
          for (const auto& r : extra->upserts) over[r.id] = &r;
          for (const auto& e : extra->erases) over[e] = nullptr;
        }
        auto put_record_vector = [&](const record& r, std::span<const float> vector) {
          put([&](detail::byte_writer& w) {
            w.u8(kind_record_aligned);
            detail::encode_record_aligned(w, r, vector, payload_at);
          });
          ++nrec;
        };
        auto put_record = [&](const record& r) { put_record_vector(r, r.embedding); };
        st.table.for_each_vector([&](const record& r, std::span<const float> vector) {
          auto it = over.find(r.id);
          if (it == over.end()) {
            put_record_vector(r, vector);
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
        auto put_event = [&](const history_event& e) {
          put([&](detail::byte_writer& w) {
            w.u8(kind_event);
            detail::encode_event(w, e);
          });
          ++nev;
        };
        st.table.for_each_history(put_event);
        if (extra)
          for (const auto& e : extra->events) put_event(e);
        // access counts, in entries of at most 4096, skipping the records `extra` erases
        std::vector<std::pair<const std::string*, std::uint32_t>> counts;
        auto put_counts = [&] {
          if (counts.empty()) return;
          put([&](detail::byte_writer& w) {
            w.u8(kind_access);
            w.u32(static_cast<std::uint32_t>(counts.size()));
            for (const auto& [id, n] : counts) {
              w.str(*id);
              w.u32(n);
            }
          });
          counts.clear();
        };
        std::unordered_set<std::string_view> erased;
        if (extra) erased.insert(extra->erases.begin(), extra->erases.end());
        st.table.for_each_access([&](const record& r, std::uint32_t n) {
          if (erased.count(r.id)) return;
          counts.emplace_back(&r.id, n);
          if (counts.size() == 4096) put_counts();
        });
        put_counts();
      }
      {  // the pending queue, after `extra`'s queue changes; clear() keeps it too
        detail::pending_list queue = st.queued_adds;
        if (extra) queue.apply(extra->enqueued, extra->dequeued);
        queue.for_each([&](const pending_add& p) {
          put([&](detail::byte_writer& w) {
            w.u8(kind_pending);
            detail::encode_pending(w, p);
          });
        });
      }
      lock.unlock();
      put([&](detail::byte_writer& w) {
        w.u8(kind_end);
        w.u64(nrec);
        w.u64(nev);
      });
      flush(true);
      detail::sync_data(fd.get(), tmp);
    }
    if (std::rename(tmp.c_str(), sp.c_str()) != 0) detail::throw_errno("cannot rename", tmp);
    // The new snapshot is in place: from here on the store is at generation `next`. If switching fails, the
    // files no longer match this object's state: refuse further writes (reopening recovers).
    const auto old = log_path(st.generation);
    try {
      detail::sync_dir(st.dir);
      st.log = detail::open_file(log_path(next), O_RDWR);
    } catch (const storage_error& e) {
      st.failed = e.what();
      throw;
    }
    st.generation = next;
    st.log_size = st.log_alloc = header_size;
    mark_durable(st.appended);  // everything appended so far is in the fsync'd snapshot
    st.snapshot_bytes = std::filesystem::file_size(sp);
    std::remove(old.c_str());
    ++st.stats.compactions;
    st.stats.log_bytes = st.log_size;
  }

  std::unique_ptr<state> s_;
};

}  // namespace engram::inline v0
