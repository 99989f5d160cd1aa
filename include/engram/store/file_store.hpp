#pragma once
/// @file store/file_store.hpp
/// The embedded durable store: a directory with an append-only, checksummed log and periodic snapshots.
///
/// Files in the directory:
///   LOCK          flock'd by the one writer; holds its pid (for the error a second writer gets)
///   snapshot      the state at log generation G (absent until the first compaction)
///   log.G         entries appended since that snapshot; one write_batch is one entry, so one `add` is all
///                 or nothing
///   damaged.G.N   bytes cut from a damaged log tail at offset N, kept for inspection (never read back)
///   blob.NAME     named blobs (put_blob), beside the records
/// Opening replays snapshot + log and keeps the records in memory (a snapshot's vectors are read in place from
/// the mapped file); a damaged log tail is discarded and reported, a damaged snapshot refused. A log that has
/// outgrown the snapshot is compacted into a new one, by default on a thread of the store while writes go on
/// (file_store_options::background_compaction, store/file/compaction.hpp).
///
/// The parts, in store/file/: format (file names, header, entry kinds, frames), record_codec and entries
/// (entry payloads), recovery (replay on open), log (appending), group_commit (shared flushes), snapshot
/// (writing one), compaction (in the background), contents (the state in memory), lock, blob, options (the
/// types of this API).

#include <engram/detail/identity_check.hpp>
#include <engram/error.hpp>
#include <engram/record.hpp>
#include <engram/scope.hpp>
#include <engram/store/file/blob.hpp>
#include <engram/store/file/compaction.hpp>
#include <engram/store/file/contents.hpp>
#include <engram/store/file/entries.hpp>
#include <engram/store/file/format.hpp>
#include <engram/store/file/group_commit.hpp>
#include <engram/store/file/lock.hpp>
#include <engram/store/file/log.hpp>
#include <engram/store/file/options.hpp>
#include <engram/store/file/posix_file.hpp>
#include <engram/store/file/recovery.hpp>
#include <engram/store/file/snapshot.hpp>
#include <engram/write_batch.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace engram::inline v0 {

/// Records and history in a directory, durable on return of every write (see `durability`).
/// Thread-safe: every member may be called concurrently; reads run in parallel and are not blocked by an
/// fsync in progress. One writer process per directory (others get storage_error), any number of read-only
/// openers (they see what was committed when they opened). Movable, not copyable; a moved-from store may
/// only be destroyed or assigned to.
class file_store {
 public:
  /// The format of the files this engram writes, in every file's header (versions: see store/file/format.hpp).
  static constexpr std::uint32_t format_version = detail::file_format::version;
  /// The oldest format this engram reads (and upgrades: see upgrade_log_header).
  static constexpr std::uint32_t oldest_format_version = detail::file_format::oldest_version;
  /// Records, pending adds and history owners are kept whole, their tenant and extra scope keys too (format 8;
  /// scope_keyed_store).
  static constexpr bool keeps_scope_keys = true;

  /// Opens (creating when needed, unless read-only) the store in directory `dir` and replays it.
  /// @throws storage_error when the directory is locked by another writer (naming its pid), unreadable, of
  ///         another format version, or its snapshot is damaged.
  explicit file_store(std::filesystem::path dir, file_store_options options = {})
      : s_(std::make_unique<state>()) {
    s_->dir = dir.string();
    s_->options = std::move(options);
    open();
  }

  /// Records the identity on first use (durably); afterwards a different one is refused (dimension_mismatch
  /// for another size, validation_error for another name or a scope key set lacking a recorded key), naming
  /// both, and a wider scope key set is recorded in its place (durably; in memory only when read-only).
  void bind(const store_identity& id) {
    std::unique_lock wl(s_->write_mtx);
    {
      std::shared_lock lock(s_->mtx);
      if (s_->contents.identity &&
          !detail::check_same_identity(*s_->contents.identity, id, "file_store '" + s_->dir + "'"))
        return;
    }
    if (!s_->options.read_only) {
      s_->log.append(detail::file_format::make_frame(detail::identity_entry(id)), true);
    }
    std::unique_lock lock(s_->mtx);
    s_->contents.identity = id;
  }

  /// The identity bound so far, if any.
  [[nodiscard]] std::optional<store_identity> identity() const {
    std::shared_lock lock(s_->mtx);
    return s_->contents.identity;
  }

  /// Appends the batch as one log entry and applies it; durable on return as the mode promises.
  /// @throws storage_error when read-only, on an I/O error (nothing of the batch is applied), or after an
  ///         earlier fsync failure (the store must then be reopened).
  void apply(const write_batch& b) {
    check_writable("apply");
    if (b.empty()) return;
    const std::string frame = detail::file_format::make_frame(detail::batch_entry(b));
    if (s_->options.mode == durability::group_commit) {
      apply_grouped(frame, b);
      return;
    }
    std::unique_lock wl(s_->write_mtx);
    s_->log.append(frame, s_->options.mode == durability::fsync);
    {
      std::unique_lock lock(s_->mtx);
      s_->contents.apply(b);
    }
    compact_if_due_locked();  // the batch is committed: a failed compaction must not report it as failed
  }

  /// First half of a two-phase commit, for a caller that orders its writes under its own lock and waits
  /// for durability after releasing it (so that concurrent callers share one fsync): writes the batch's
  /// entry to the log and applies it (readers of the store see it at once: basic_memory makes its readers
  /// wait for sync(ticket) before they answer), without waiting for the disk.
  /// @returns the ticket to pass to sync(). A crash before sync(ticket) returned may lose the batch (whole).
  /// @throws storage_error as apply does (nothing applied).
  [[nodiscard]] std::uint64_t append(const write_batch& b) {
    check_writable("append");
    const std::string frame = detail::file_format::make_frame(detail::batch_entry(b));
    std::unique_lock wl(s_->write_mtx);
    if (!b.empty()) {
      s_->log.append(frame, false);
      std::unique_lock lock(s_->mtx);
      s_->contents.apply(b);
    }
    const auto ticket = s_->log.appended();
    compact_if_due_locked();
    return ticket;
  }

  /// Second half: returns once every entry appended up to `ticket` is durable. Concurrent callers share one
  /// fdatasync (the first becomes the leader, the others wait for it; the leader gathers them as
  /// durability::group_commit describes). With durability::buffered it returns at once.
  /// Waits only (const): a reader may call it for the changes it saw. Without a lock when already durable.
  /// @throws storage_error when the fsync failed (the store then refuses writes).
  void sync(std::uint64_t ticket) const {
    auto& st = *s_;
    if (st.options.mode == durability::buffered || st.log.durable() >= ticket) return;
    st.group.sync([&] { return st.log.durable() >= ticket; },
                  [&](std::chrono::steady_clock::duration& flush_time) {
                    try {
                      detail::unique_fd fd;
                      std::uint64_t target = 0;
                      {
                        std::unique_lock wl(st.write_mtx);
                        target = st.log.appended();
                        fd = st.log.dup();  // a compaction may replace the log meanwhile
                      }
                      const auto flush_start = std::chrono::steady_clock::now();
                      detail::sync_data(fd.get(), st.dir);
                      flush_time = std::chrono::steady_clock::now() - flush_start;
                      st.log.mark_durable(target);
                      std::unique_lock wl(st.write_mtx);
                      st.log.count_sync(flush_time);
                    } catch (const std::exception& e) {
                      std::unique_lock wl(st.write_mtx);
                      st.log.fail(e.what());
                      throw;
                    }
                  });
  }

  [[nodiscard]] std::optional<record> get(std::string_view id) const {
    std::shared_lock lock(s_->mtx);
    return s_->contents.table.get(id);
  }

  /// Calls f(const record&) for every record, in no particular order. f must not call back into the store.
  template <class F>
  void for_each(F&& f) const {
    std::shared_lock lock(s_->mtx);
    s_->contents.table.for_each(f);
  }

  /// Calls f(const record&, std::span<const float> embedding) for every record, in no particular order, without
  /// copying records or vectors (opening a memory): use the span, the record's `embedding` member may be empty
  /// (vectors of a snapshot are read in place from the mapped file). f must not call back into the store.
  template <class F>
  void for_each_vector(F&& f) const {
    std::shared_lock lock(s_->mtx);
    s_->contents.table.for_each_vector(f);
  }

  /// The events of one memory id, oldest first; empty when the id never existed.
  [[nodiscard]] std::vector<history_event> history(std::string_view memory_id) const {
    std::shared_lock lock(s_->mtx);
    return s_->contents.table.history(memory_id);
  }

  /// Calls f(const history_event&) for every event: each memory's events oldest first, memories in no
  /// particular order (includes the history of deleted memories). f must not call back into the store.
  template <class F>
  void for_each_history(F&& f) const {
    std::shared_lock lock(s_->mtx);
    s_->contents.table.for_each_history(f);
  }

  /// Calls f(const pending_add&) for every pending add, oldest first. f must not call back into the store.
  template <class F>
  void for_each_pending(F&& f) const {
    std::shared_lock lock(s_->mtx);
    s_->contents.queued_adds.for_each(f);
  }

  /// Adds search hits to the memories' access counts (the access_count_store concept): one log entry, durable
  /// as the mode promises (its own fdatasync unless buffered); ids not held are ignored; records, history and
  /// the compaction trigger are not affected otherwise.
  /// @throws storage_error when read-only or on an I/O error (no count changed).
  void add_access(std::span<const access_increment> increments) {
    check_writable("add_access");
    const std::string payload = detail::access_entry(increments);
    if (payload.empty()) return;
    std::unique_lock wl(s_->write_mtx);
    s_->log.append(detail::file_format::make_frame(payload), s_->options.mode != durability::buffered);
    {
      std::unique_lock lock(s_->mtx);
      for (const auto& a : increments)
        if (a.count) s_->contents.table.add_access(a.memory_id, a.count);
    }
    compact_if_due_locked();
  }

  /// Calls f(const std::string& id, std::uint32_t count) for every memory query scope `q` selects (every memory
  /// when `q` is empty) whose access count is not zero. f must not call back into the store.
  template <class F>
  void for_each_access_count(const scope& q, F&& f) const {
    std::shared_lock lock(s_->mtx);
    s_->contents.table.for_each_access([&](const record& r, std::uint32_t n) {
      if (q.covers(r.scope())) f(r.id, n);
    });
  }

  /// Erases every record and every history event (the identity and the pending queue stay), durably: a
  /// snapshot without them replaces the old one atomically.
  void clear() {
    check_writable("clear");
    std::lock_guard job(s_->compaction_mtx);
    std::unique_lock wl(s_->write_mtx);
    write_snapshot_locked(nullptr, std::nullopt, true);
    std::unique_lock lock(s_->mtx);
    s_->contents.table.clear();
    s_->contents.snapshot_map.reset();
  }

  /// Erases every record query scope `q` selects with its history (engram::purging_store), durably and leaving no
  /// copy of their text in the directory: a snapshot of what stays is written to a temporary file, fsync'd and
  /// renamed over the old one, the log is replaced by an empty one, and the damaged.* files (cut log tails, which
  /// may hold the text) are removed. A crash before the rename leaves the store as it was (the purge did not
  /// happen); after it, the purge is done, and an old log or snapshot.tmp left by the crash is removed by the
  /// next writable open (a damaged.* file by the next purge). Blobs (index snapshots: vectors, no text) and the
  /// pending queue stay. Writers wait. @returns how many records. @throws validation_error for an empty `q`;
  /// storage_error when read-only or on an I/O error (nothing changed then). O(size of the store).
  std::size_t purge(const scope& q) {
    if (q.empty()) throw validation_error("file_store: purge needs a scope (user_id, agent_id or run_id)");
    check_writable("purge");
    std::lock_guard job(s_->compaction_mtx);  // a compaction running from the old files would keep the text
    std::unique_lock wl(s_->write_mtx);
    detail::file_contents after;
    std::size_t n = 0;
    {
      std::shared_lock lock(s_->mtx);
      auto [kept, gone] = s_->contents.table.without(q);
      after = {s_->contents.snapshot_map, std::move(kept), s_->contents.identity, s_->contents.queued_adds};
      n = gone.size();
    }
    write_snapshot_locked(nullptr, std::nullopt, false, &after);
    {
      std::unique_lock lock(s_->mtx);
      s_->contents = std::move(after);
    }
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(s_->dir, ec))
      if (e.path().filename().string().rfind("damaged.", 0) == 0) std::filesystem::remove(e.path(), ec);
    detail::sync_dir(s_->dir);
    return n;
  }

  /// Writes a snapshot of the current state and starts an empty log. O(size of the store); writers wait. A
  /// background compaction in progress finishes first.
  void compact() {
    check_writable("compact");
    std::lock_guard job(s_->compaction_mtx);
    std::unique_lock wl(s_->write_mtx);
    write_snapshot_locked(nullptr, std::nullopt);
  }

  /// Replaces the identity and applies `b` in one atomic step (a snapshot of the result is written and
  /// renamed into place). The way to switch embedders: see engram::reembed. O(size of the store).
  void rebind(const store_identity& id, const write_batch& b) {
    check_writable("rebind");
    std::lock_guard job(s_->compaction_mtx);
    std::unique_lock wl(s_->write_mtx);
    write_snapshot_locked(&b, id);
    std::unique_lock lock(s_->mtx);
    s_->contents.apply(b);
    s_->contents.identity = id;
  }

  [[nodiscard]] std::size_t size() const {
    std::shared_lock lock(s_->mtx);
    return s_->contents.table.size();
  }

  /// What opening found (damage discarded, entries replayed).
  [[nodiscard]] const recovery_report& recovery() const noexcept { return s_->report; }

  [[nodiscard]] file_store_stats stats() const {
    std::unique_lock wl(s_->write_mtx);
    return {.commits = s_->log.commits(),
            .syncs = s_->log.syncs(),
            .log_bytes = s_->log.size(),
            .compactions = s_->compactions,
            .compacting = s_->compactor.running(),
            .sync_latency = s_->log.sync_latency()};
  }

  /// Returns once no background compaction runs (file_store_options::background_compaction): one that the
  /// writes so far started has then replaced the snapshot, or failed with a warning. Must not be called from
  /// on_warning.
  void wait_for_compaction() const { s_->compactor.wait(); }

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
    const auto p = detail::blob_path(s_->dir, name);
    std::unique_lock wl(s_->write_mtx);
    detail::write_blob(s_->dir, p, bytes);
  }

  /// The blob `name` as last written by put_blob(), or std::nullopt when there is none. Thread-safe.
  /// @throws validation_error for a bad name (see put_blob); storage_error when it exists but cannot be read.
  [[nodiscard]] std::optional<std::string> get_blob(std::string_view name) const {
    return detail::read_blob(detail::blob_path(s_->dir, name));
  }

 private:
  /// One writer's entry in a group-commit round.
  struct entry {
    const std::string* frame;
    const write_batch* batch;
  };

  struct state {
    std::string dir;
    file_store_options options;
    detail::dir_lock lock;

    mutable std::shared_mutex mtx;  // guards contents
    detail::file_contents contents;

    mutable std::mutex write_mtx;  // guards the files and the fields below
    detail::log_appender log;
    std::uint64_t generation = 0;
    std::uint64_t snapshot_bytes = 0;
    std::uint64_t compactions = 0;

    std::uint64_t compact_after = 0;  // a background compaction failed: none until the log is this large

    detail::group_commit<entry> group;  // group commit rounds and the flushes of sync()
    recovery_report report;

    // Held by a background compaction from start to end, and by the writes that replace the snapshot
    // themselves (clear, purge, compact, rebind), before write_mtx: they never write the same files at once.
    std::mutex compaction_mtx;
    detail::compaction_thread compactor;  // last: its thread ends before the members it uses go

    void warn(const std::string& message) const noexcept {
      try {
        if (options.on_warning) {
          options.on_warning(message);
        } else {
          std::fprintf(stderr, "engram: %s\n", message.c_str());
        }
      } catch (...) {
      }
    }
  };

  void warn(const std::string& message) const { s_->warn(message); }

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
        replay();
        if (detail::snapshot_generation(st.dir) == st.generation || attempt == 10) break;
        st.contents.table.clear();
        st.contents.identity.reset();
        st.contents.queued_adds.clear();
        st.report = {};
      }
      return;
    }
    std::error_code ec;
    fs::create_directories(st.dir, ec);
    if (ec) throw storage_error("file_store: cannot create directory '" + st.dir + "': " + ec.message());
    st.lock = detail::dir_lock(st.dir, "file_store");
    const auto log_end = replay();
    detail::remove_leftovers(st.dir, st.generation);
    const auto lp = detail::file_format::log_path(st.dir, st.generation);
    if (!detail::file_exists(lp)) detail::create_log(st.dir, st.generation);
    auto fd = detail::open_file(lp, O_RDWR);
    detail::upgrade_log_header(fd.get(), lp);
    st.log.open(std::move(fd), lp, st.dir, log_end, st.options.mode != durability::buffered);
    detail::sync_dir(st.dir);
  }

  /// Replays the directory's files into contents and report; @returns where the log's entries end.
  std::uint64_t replay() {
    auto& st = *s_;
    const auto r = detail::file_replay(st.dir, st.options.read_only, st.contents, st.report)
                       .run([this](const std::string& message) { warn(message); });
    st.generation = r.generation;
    if (r.snapshot_bytes) st.snapshot_bytes = r.snapshot_bytes;
    return r.log_end;
  }

  // ---- writing ------------------------------------------------------------------------------------------

  /// durability::group_commit: the round's leader writes every queued entry with one write and one fdatasync.
  void apply_grouped(const std::string& frame, const write_batch& b) {
    auto& st = *s_;
    st.group.commit(entry{&frame, &b}, [&](const std::vector<const entry*>& round,
                                           std::chrono::steady_clock::duration& flush_time) {
      std::unique_lock wl(st.write_mtx);
      const auto flush_start = std::chrono::steady_clock::now();
      if (round.size() == 1) {
        st.log.append(*round.front()->frame, true);
      } else {
        std::size_t total = 0;
        for (const auto* p : round) total += p->frame->size();
        std::string bytes;
        bytes.reserve(total);
        for (const auto* p : round) bytes += *p->frame;
        st.log.append(bytes, true, round.size());
      }
      flush_time = std::chrono::steady_clock::now() - flush_start;
      {
        std::unique_lock lock(st.mtx);
        for (const auto* p : round) st.contents.apply(*p->batch);
      }
      compact_if_due_locked();
    });
  }

  /// Compacts when the log has outgrown both the threshold and the snapshot; a failure is a warning (the
  /// log stays valid and the store keeps working, unless the failure left it unsafe: then the log refuses
  /// further appends). In the background (options.background_compaction), unless one runs already.
  void compact_if_due_locked() noexcept {
    auto& st = *s_;
    if (st.log.size() <= st.options.compact_log_bytes || st.log.size() <= st.snapshot_bytes) return;
    if (st.options.background_compaction) {
      if (st.compactor.running() || st.log.size() <= st.compact_after || st.log.failed()) return;
      try {
        st.compactor.start([&st, gen = st.generation, cut = st.log.size()] { compact_in_background(st, gen, cut); });
      } catch (const std::exception& e) {  // no thread to be had: compacting later will do
        st.warn(std::string("file_store: cannot start a compaction: ") + e.what());
      }
      return;
    }
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
  /// identity and the pending queue are written (clear). With `from`, that state instead of the store's (purge).
  void write_snapshot_locked(const write_batch* extra, const std::optional<store_identity>& id,
                             bool empty = false, const detail::file_contents* from = nullptr) {
    auto& st = *s_;
    const auto old = detail::file_format::log_path(st.dir, st.generation);
    detail::write_generation(st.dir, st.generation + 1, st.log, [&](detail::snapshot_writer& out) {
      std::shared_lock lock(st.mtx);
      detail::write_snapshot_entries(out, from ? *from : st.contents, extra, id, empty);
    });
    ++st.generation;
    st.snapshot_bytes = std::filesystem::file_size(detail::file_format::path(st.dir, "snapshot"));
    std::remove(old.c_str());
    ++st.compactions;
  }

  /// A background compaction from generation `gen`, its log cut at byte `cut` (compaction.hpp). Only the switch
  /// to the new files holds write_mtx. Does nothing when the store compacted between the start and now (clear,
  /// purge, compact, rebind: they hold compaction_mtx while they do). A failure, or a log failing meanwhile,
  /// removes its files and is a warning; the next try waits until the log has grown by compact_log_bytes more.
  static void compact_in_background(state& st, std::uint64_t gen, std::uint64_t cut) noexcept {
    namespace ff = detail::file_format;
    std::lock_guard job(st.compaction_mtx);
    const auto old_log = ff::log_path(st.dir, gen), new_log = ff::log_path(st.dir, gen + 1);
    const auto tmp = ff::path(st.dir, "snapshot.tmp");
    {
      std::unique_lock wl(st.write_mtx);
      if (st.generation != gen || st.log.failed()) return;
    }
    auto check = [&] {  // under write_mtx
      if (st.log.failed()) throw storage_error("the log refuses writes after a failure");
    };
    bool installed = false;
    try {
      detail::write_compacted_snapshot(st.dir, gen, cut);
      detail::create_log(st.dir, gen + 1);
      auto src = detail::open_file(old_log, O_RDONLY);
      auto dst = detail::open_file(new_log, O_RDWR);
      std::uint64_t from = cut, at = ff::header_size, to = 0;
      for (int round = 0; round < 2; ++round) {  // copies what was appended meanwhile, without the lock
        {
          std::unique_lock wl(st.write_mtx);
          check();
          to = st.log.size();
        }
        at = detail::copy_bytes(src.get(), dst.get(), from, to, at, new_log);
        from = to;
      }
      detail::sync_data(dst.get(), new_log);
      std::unique_lock wl(st.write_mtx);  // the switch: writers wait for the last entries' copy and two fsyncs
      check();
      at = detail::copy_bytes(src.get(), dst.get(), from, st.log.size(), at, new_log);
      detail::sync_data(dst.get(), new_log);
      if (std::rename(tmp.c_str(), ff::path(st.dir, "snapshot").c_str()) != 0) detail::throw_errno("cannot rename", tmp);
      installed = true;
      try {
        detail::sync_dir(st.dir);
      } catch (const storage_error& e) {
        st.log.fail(e.what());  // whether the rename is durable is unknown: the log must not grow
        throw;
      }
      st.log.restart(std::move(dst), new_log, at);
      ++st.generation;
      std::error_code ec;
      const auto bytes = std::filesystem::file_size(ff::path(st.dir, "snapshot"), ec);
      st.snapshot_bytes = ec ? 0 : bytes;
      std::remove(old_log.c_str());
      ++st.compactions;
      st.compact_after = 0;
    } catch (const std::exception& e) {
      if (!installed) {
        std::remove(tmp.c_str());
        std::remove(new_log.c_str());
      }
      std::unique_lock wl(st.write_mtx);
      st.compact_after = st.log.size() + st.options.compact_log_bytes;
      st.warn(std::string("file_store: compaction failed (") +
              (installed ? "the log refuses writes until the store is reopened" : "the log stays valid") +
              "): " + e.what());
    }
  }

  std::unique_ptr<state> s_;
};

}  // namespace engram::inline v0
