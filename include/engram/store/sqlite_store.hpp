// engram-requires: sqlite
#pragma once
/// @file store/sqlite_store.hpp
/// A store in one SQLite database file (optional target engram::sqlite): WAL journal, synchronous=FULL,
/// a busy timeout, prepared statements, one transaction per write batch. Other tools can read it.
/// With FULL the store makes commits durable itself, by an fdatasync of the WAL after COMMIT (store/sqlite/
/// wal_sync.hpp), so that a memory can commit under its write lock and wait for the disk after releasing it,
/// and concurrent writers share one fdatasync (append + sync: engram::two_phase_store).
///
/// Schema:
///   engram_meta(key PRIMARY KEY, value)   format_version, embedder, dimension, scope_keys (the key set of
///           store_identity::scope_keys: absent for Mem0's, written when a memory with a wider one binds)
///   memories(id PRIMARY KEY, memory, hash, metadata JSON text, user_id, agent_id, run_id, actor_id, role,
///            created_at, updated_at ISO-8601 text, embedding BLOB of little-endian float32, expiration_date,
///            immutable, valid_from, invalid_at, superseded_by, entities JSON text (NULL: recognised from the
///            text), tenant, extra (scope::tenant and scope::extra, '' under Mem0's keys); the columns added since the first databases (store/sqlite/schema.hpp) are added on a
///            writable open, and a read-only open of an older database reads them as rows written before)
///   history(seq INTEGER PRIMARY KEY, id, memory_id, old_memory, new_memory, event, created_at, updated_at,
///           is_deleted, actor_id, role, user_id, agent_id, run_id, tenant, extra)   Mem0's history columns, plus seq for their
///           order and the scope of the memory (so that a purge takes the history of memories deleted before it):
///           user_id NULL when unknown (tenant and extra are then ''). The scope columns are added on open when missing, without a format version
///           change; a row written before (or by an older engram) learns its scope when its memory is erased, but
///           that of a memory erased before cannot be known
///   pending(seq INTEGER PRIMARY KEY, id UNIQUE, user_id, agent_id, run_id, messages JSON text, options JSON
///           text, created_at, attempts, tenant, extra)   add_async entries awaiting extraction, in seq order
///   access_counts(memory_id PRIMARY KEY, count)   how often search returned each stored memory (the `access`
///           ranking term); kept through a record's replacement, dropped with its erase. Created on open when
///           missing, without a format version change: older engram versions open the file and ignore it
/// Unlike file_store, several processes may open the same file for writing: SQLite serialises their
/// transactions and a writer waits up to `busy_timeout_ms` for another's lock before failing.

#include <engram/detail/identity_check.hpp>
#include <engram/error.hpp>
#include <engram/json.hpp>
#include <engram/json_dump.hpp>
#include <engram/record.hpp>
#include <engram/store/sqlite/rows.hpp>
#include <engram/store/sqlite/schema.hpp>
#include <engram/store/sqlite/wal_sync.hpp>
#include <engram/write_batch.hpp>
#include <engram/time.hpp>
#include <engram/version.hpp>

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace engram::inline v0 {

/// Options of sqlite_store.
struct sqlite_store_options {
  bool read_only = false;     ///< open with SQLITE_OPEN_READONLY; every write is refused
  int busy_timeout_ms = 5000; ///< how long a write waits for another connection's lock
  /// PRAGMA synchronous: "FULL" (default: a returned apply survives power loss; the store fdatasyncs the WAL
  /// itself, outside the connection's lock, see wal_sync.hpp), "NORMAL" (survives a
  /// process crash; in WAL mode the last commits may be lost on power loss) or "OFF".
  std::string synchronous = "FULL";
};

/// Records and history in a SQLite database. Thread-safe: one connection guarded by a mutex (reads and
/// writes of one store object are serialised; the WAL's fdatasync is not, so commits go on during it).
/// Movable, not copyable.
class sqlite_store {
 public:
  /// Records, history and pending adds keep their tenant and extra scope keys (scope_keyed_store).
  static constexpr bool keeps_scope_keys = true;

  /// Opens (creating unless read-only) the database file `file`.
  /// @throws storage_error when it cannot be opened, is not an engram database of this format version, or
  ///         the schema cannot be created.
  explicit sqlite_store(const std::filesystem::path& file, sqlite_store_options options = {})
      : s_(std::make_unique<state>()) {
    s_->path = file.string();
    s_->options = std::move(options);
    open();
  }

  /// Records the embedder identity on first use; afterwards a different one is refused
  /// (dimension_mismatch for another size, validation_error for another name or a narrower scope key set),
  /// naming both. A wider scope key set is recorded (read-only: for this object only).
  void bind(const store_identity& id) {
    std::lock_guard lock(s_->mtx);
    if (auto have = identity_locked()) {
      if (!detail::check_same_identity(*have, id, "sqlite_store '" + s_->path + "'")) return;
    }
    if (s_->options.read_only) {
      s_->volatile_identity = id;
      return;
    }
    durable(transaction([&] { put_identity(id); }));
  }

  /// The identity bound so far, if any.
  [[nodiscard]] std::optional<store_identity> identity() const {
    std::lock_guard lock(s_->mtx);
    return identity_locked();
  }

  /// Applies the batch in one transaction (durable on return with synchronous=FULL; concurrent callers share
  /// the fdatasync). @throws storage_error (nothing applied) on any SQLite failure, or when read-only.
  void apply(const write_batch& b) {
    if (b.empty()) return;
    sync(append(b));
  }

  /// First half of a two-phase commit (engram::two_phase_store): commits the batch in one transaction without
  /// waiting for the disk; a process crash keeps it, a power loss before sync(ticket) returned may lose it (whole).
  /// @returns the ticket to pass to sync(). @throws storage_error as apply does (nothing applied).
  [[nodiscard]] std::uint64_t append(const write_batch& b) {
    check_writable("append");
    if (b.empty()) return 0;
    std::lock_guard lock(s_->mtx);
    return transaction([&] { apply_locked(b); });
  }

  /// Second half: returns once the commit with `ticket` and every earlier one is durable (synchronous=FULL; at
  /// once otherwise). Concurrent callers share one fdatasync, and commits go on meanwhile. A reader may call it
  /// for the changes it saw. @throws storage_error when the fdatasync failed (the store then refuses writes).
  void sync(std::uint64_t ticket) const { durable(ticket); }

  /// The fdatasync calls of the WAL the store made so far (synchronous=FULL): fewer than the commits when
  /// concurrent writers shared them.
  [[nodiscard]] std::uint64_t wal_syncs() const { return s_->wal ? s_->wal->syncs() : 0; }

  [[nodiscard]] std::optional<record> get(std::string_view id) const {
    std::lock_guard lock(s_->mtx);
    auto& st = s_->get_record;
    reset(st);
    reset_on_exit done{st};
    bind_text(st, 1, id);
    if (step(st) != SQLITE_ROW) return std::nullopt;
    return read_record(st);
  }

  /// Calls f(const record&) for every record, in no particular order. f must not call back into the store.
  template <class F>
  void for_each(F&& f) const {
    std::lock_guard lock(s_->mtx);
    auto& st = s_->all_records;
    reset(st);
    reset_on_exit done{st};
    while (step(st) == SQLITE_ROW) f(read_record(st));
  }

  /// The events of one memory id, oldest first; empty when the id never existed.
  [[nodiscard]] std::vector<history_event> history(std::string_view memory_id) const {
    std::lock_guard lock(s_->mtx);
    auto& st = s_->history_of;
    reset(st);
    reset_on_exit done{st};
    bind_text(st, 1, memory_id);
    std::vector<history_event> out;
    while (step(st) == SQLITE_ROW) out.push_back(read_event(st));
    return out;
  }

  /// Calls f(const history_event&) for every event, each memory's oldest first. f must not call back.
  template <class F>
  void for_each_history(F&& f) const {
    std::lock_guard lock(s_->mtx);
    auto& st = s_->all_history;
    reset(st);
    reset_on_exit done{st};
    while (step(st) == SQLITE_ROW) f(read_event(st));
  }

  /// Calls f(const pending_add&) for every pending add, oldest first. f must not call back into the store.
  template <class F>
  void for_each_pending(F&& f) const {
    std::lock_guard lock(s_->mtx);
    if (!s_->all_pending) return;  // a read-only database written before the queue existed
    auto& st = s_->all_pending;
    reset(st);
    reset_on_exit done{st};
    while (step(st) == SQLITE_ROW) f(read_pending(st));
  }

  /// Erases the records `q` selects with their history and access counts, and the history rows whose scope `q`
  /// selects (of memories erased before) (engram::purging_store, docs/stores.md) with secure_delete on (left on),
  /// then VACUUMs and truncates the WAL. @throws validation_error, storage_error.
  std::size_t purge(const scope& q) {
    if (q.empty()) throw validation_error("sqlite_store: purge needs a scope (user_id, agent_id or run_id)");
    check_writable("purge");
    std::lock_guard lock(s_->mtx);
    std::size_t n = 0;
    exec("PRAGMA secure_delete = ON");
    const std::string selected = detail::sqlite_selected();  // scope::selects; an unknown scope selects nothing
    const std::string of_selected = " IN (SELECT id FROM memories WHERE " + selected + ")";
    const auto ticket = transaction([&] {
      for (const auto& sql : {"DELETE FROM history WHERE memory_id" + of_selected + " OR (" + selected + ")",
                              "DELETE FROM access_counts WHERE memory_id" + of_selected,
                              "DELETE FROM memories WHERE " + selected}) {
        const auto st = prepare(sql.c_str());
        bind_scope(st, 1, q);
        n = step(st) == SQLITE_DONE ? static_cast<std::size_t>(sqlite3_changes(s_->db.get())) : 0;  // last: records
      }
    });
    exec("VACUUM");
    if (sqlite3_wal_checkpoint_v2(s_->db.get(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr) != SQLITE_OK)
      fail("purge: cannot truncate the WAL (another connection reads it)");
    durable(ticket);
    return n;
  }

  /// Erases every record, every history event and every access count (the identity and the pending queue
  /// stay), in one transaction.
  void clear() {
    check_writable("clear");
    std::lock_guard lock(s_->mtx);
    durable(transaction([&] {
      exec("DELETE FROM memories");
      exec("DELETE FROM history");
      exec("DELETE FROM access_counts");
    }));
  }

  /// Adds each increment's count to its memory's access count, saturating at 2^32-1, in one transaction;
  /// ids not stored are ignored. Touches no record, history event or other table.
  /// @throws storage_error (nothing added) on any SQLite failure, or when read-only.
  void add_access(std::span<const access_increment> increments) {
    if (std::ranges::all_of(increments, [](const access_increment& i) { return i.count == 0; })) return;
    check_writable("add_access");
    std::lock_guard lock(s_->mtx);
    durable(transaction([&] {
      for (const auto& i : increments) {
        if (i.count == 0) continue;
        auto& st = s_->add_access;
        reset(st);
        reset_on_exit done{st};
        bind_text(st, 1, i.memory_id);
        sqlite3_bind_int64(st.get(), 2, static_cast<sqlite3_int64>(i.count));
        step(st);
      }
    }));
  }

  /// Calls f(const std::string& id, std::uint32_t count) for every stored memory with a nonzero access count
  /// whose scope `q` selects (every one when `q` is empty), in no particular order. f must not call back.
  template <class F>
  void for_each_access_count(const scope& q, F&& f) const {
    std::lock_guard lock(s_->mtx);
    if (!s_->access_in_scope) return;  // a read-only database written before access counts existed
    auto& st = s_->access_in_scope;
    reset(st);
    reset_on_exit done{st};
    bind_scope(st, 1, q);
    sqlite3_bind_int(st.get(), 6, q.empty() ? 1 : 0);
    while (step(st) == SQLITE_ROW)
      f(column_text(st, 0), static_cast<std::uint32_t>(sqlite3_column_int64(st.get(), 1)));
  }

  /// Replaces the identity and applies `b` in one transaction. The way to switch embedders: engram::reembed.
  /// The recorded scope key set stays unless `id` names one.
  void rebind(const store_identity& id, const write_batch& b) {
    check_writable("rebind");
    std::lock_guard lock(s_->mtx);
    durable(transaction([&] {
      apply_locked(b);
      put_identity(id);
    }));
  }

  [[nodiscard]] std::size_t size() const {
    std::lock_guard lock(s_->mtx);
    auto& st = s_->count;
    reset(st);
    reset_on_exit done{st};
    step(st);
    return static_cast<std::size_t>(sqlite3_column_int64(st.get(), 0));
  }

  [[nodiscard]] const std::string& path() const noexcept { return s_->path; }

 private:
  struct stmt_deleter {
    void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
  };
  using stmt = std::unique_ptr<sqlite3_stmt, stmt_deleter>;
  struct db_deleter {
    void operator()(sqlite3* d) const noexcept { sqlite3_close_v2(d); }
  };

  struct state {
    std::string path;
    sqlite_store_options options;
    mutable std::mutex mtx;
    std::unique_ptr<sqlite3, db_deleter> db;  // declared before the statements: destroyed after them
    stmt get_record, all_records, count, upsert, erase, add_event, history_of, all_history, get_meta, put_meta;
    stmt own_history;  // notes an erased record's scope in its history rows that have none
    stmt all_pending, enqueue, dequeue;  // the add_async queue
    stmt add_access, erase_access, access_in_scope;  // access counts
    std::optional<store_identity> volatile_identity;  // bound on a read-only store without one
    std::unique_ptr<detail::sqlite_wal_sync> wal;       // synchronous=FULL in WAL mode: the store's own fdatasync
  };

  [[noreturn]] void fail(std::string_view what) const {
    throw storage_error("sqlite_store '" + s_->path + "': " + std::string(what) + ": " +
                        (s_->db ? sqlite3_errmsg(s_->db.get()) : "cannot allocate"));
  }

  void check_writable(std::string_view op) const {
    if (s_->options.read_only)
      throw storage_error("sqlite_store: " + std::string(op) + " refused: '" + s_->path + "' is open read-only");
  }

  void exec(const std::string& sql) const {
    char* err = nullptr;
    if (sqlite3_exec(s_->db.get(), sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown error";
      sqlite3_free(err);
      throw storage_error("sqlite_store '" + s_->path + "': " + sql.substr(0, 40) + "...: " + msg);
    }
  }

  stmt prepare(const char* sql) const {
    sqlite3_stmt* p = nullptr;
    if (sqlite3_prepare_v3(s_->db.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &p, nullptr) != SQLITE_OK)
      fail(std::string("cannot prepare '") + sql + "'");
    return stmt(p);
  }

  /// Resets a statement when leaving scope, so that no read transaction stays open between calls (a stale
  /// WAL snapshot would make this connection's next write fail with SQLITE_BUSY_SNAPSHOT).
  struct reset_on_exit {
    const stmt& s;
    ~reset_on_exit() { sqlite3_reset(s.get()); }
  };
  static void reset(const stmt& s) {
    sqlite3_reset(s.get());
    sqlite3_clear_bindings(s.get());
  }
  int step(const stmt& s) const {
    const int rc = sqlite3_step(s.get());
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) fail("statement failed");
    return rc;
  }
  static void bind_text(const stmt& s, int i, std::string_view v) { detail::sqlite_bind_text(s.get(), i, v); }
  /// Binds the scope's user, agent and run ids, tenant and extra to parameters `first` to `first + 4`.
  static void bind_scope(const stmt& s, int first, const scope& q) {
    bind_text(s, first, q.user_id);
    bind_text(s, first + 1, q.agent_id);
    bind_text(s, first + 2, q.run_id);
    bind_text(s, first + 3, q.tenant);
    bind_text(s, first + 4, q.extra);
  }
  static void bind_opt_text(const stmt& s, int i, const std::optional<std::string>& v) {
    detail::sqlite_bind_opt_text(s.get(), i, v);
  }
  static void bind_nonempty(const stmt& s, int i, const std::string& v) {
    if (v.empty()) {
      sqlite3_bind_null(s.get(), i);
    } else {
      bind_text(s, i, v);
    }
  }
  static std::string column_text(const stmt& s, int i) { return detail::sqlite_column_text(s.get(), i); }
  static std::optional<std::string> column_opt_text(const stmt& s, int i) {
    return detail::sqlite_column_opt_text(s.get(), i);
  }
  timestamp column_time(const stmt& s, int i) const { return detail::sqlite_column_time(s.get(), i, where()); }
  [[nodiscard]] std::string where() const { return "sqlite_store '" + s_->path + "'"; }

  /// Runs body() in one transaction. @returns the commit's ticket for durable() (0: nothing to wait for).
  template <class F>
  std::uint64_t transaction(F&& body) const {
    if (s_->wal) s_->wal->check();
    exec("BEGIN IMMEDIATE");
    try {
      body();
      exec("COMMIT");
    } catch (...) {
      sqlite3_exec(s_->db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
    return s_->wal ? s_->wal->committed() : 0;
  }
  /// Returns once the commit with `ticket` is durable (synchronous=FULL).
  void durable(std::uint64_t ticket) const {
    if (s_->wal && ticket != 0) s_->wal->sync(ticket);
  }

  void open() {
    auto& st = *s_;
    const int flags = st.options.read_only ? SQLITE_OPEN_READONLY
                                           : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (!st.options.read_only && file_parent_missing())
      throw storage_error("sqlite_store: cannot create '" + st.path + "': its directory does not exist");
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(st.path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    st.db.reset(raw);
    if (rc != SQLITE_OK) fail("cannot open");
    sqlite3_busy_timeout(raw, st.options.busy_timeout_ms);
    if (sqlite3_create_function_v2(raw, "engram_scope_lines_within", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr,
                                   &detail::sqlite_scope_lines_within, nullptr, nullptr, nullptr) != SQLITE_OK)
      fail("cannot register engram_scope_lines_within");
    if (st.options.synchronous != "FULL" && st.options.synchronous != "NORMAL" && st.options.synchronous != "OFF")
      throw validation_error("sqlite_store: synchronous '" + st.options.synchronous +
                             "' is not one of FULL, NORMAL, OFF");
    if (!st.options.read_only) {
      exec("PRAGMA journal_mode=WAL");
      if (st.options.synchronous == "FULL" && journal_mode() == "wal") {
        exec("PRAGMA synchronous=NORMAL");  // the store syncs the WAL itself after each commit (wal_sync.hpp)
        st.wal = std::make_unique<detail::sqlite_wal_sync>(st.path);
      } else {
        exec("PRAGMA synchronous=" + st.options.synchronous);  // FULL here: a file system without WAL support
      }
      exec(detail::sqlite_tables);
      for (const auto& c : detail::sqlite_added_columns)
        if (!has_column(c.table, c.name))
          exec(std::string("ALTER TABLE ") + c.table + " ADD COLUMN " + c.name + c.type);
      exec(detail::sqlite_indexes);
    }
    st.get_meta = prepare("SELECT value FROM engram_meta WHERE key = ?1");
    if (auto v = meta("format_version"); v && *v != std::to_string(storage_format_version))
      throw storage_error("sqlite_store: '" + st.path + "' has storage format version " + *v + "; this engram (" +
                          version_string + ") reads version " + std::to_string(storage_format_version));
    const std::string cols = detail::sqlite_record_columns([&](const char* c) { return has_column("memories", c); });
    constexpr const char* hcols =
        "id, memory_id, old_memory, new_memory, event, created_at, updated_at, is_deleted, actor_id, role";
    st.get_record = prepare((std::string("SELECT ") + cols + " FROM memories WHERE id = ?1").c_str());
    st.all_records = prepare((std::string("SELECT ") + cols + " FROM memories").c_str());
    st.count = prepare("SELECT count(*) FROM memories");
    st.history_of = prepare((std::string("SELECT ") + hcols + " FROM history WHERE memory_id = ?1 ORDER BY seq").c_str());
    st.all_history = prepare((std::string("SELECT ") + hcols + " FROM history ORDER BY memory_id, seq").c_str());
    if (!st.options.read_only || has_table("pending"))
      st.all_pending = prepare((std::string("SELECT id, user_id, agent_id, run_id, messages, options, created_at,"
                                            " attempts") +
                                (has_column("pending", "tenant") ? ", tenant, extra" : ", '', ''") +
                                " FROM pending ORDER BY seq")
                                   .c_str());
    if (!st.options.read_only || has_table("access_counts"))
      st.access_in_scope = prepare(  // scope::selects, with the empty scope (?6 = 1) selecting all
          ("SELECT a.memory_id, a.count FROM access_counts a JOIN " +
           std::string(has_column("memories", "tenant") ? "memories" : detail::sqlite_memories_before_scope_keys) +
           " m ON m.id = a.memory_id WHERE a.count > 0 AND (?6 OR (" + detail::sqlite_selected("m.") + "))")
              .c_str());
    if (!st.options.read_only) {
      st.put_meta = prepare("INSERT OR REPLACE INTO engram_meta(key, value) VALUES (?1, ?2)");
      st.upsert = prepare(
          ("INSERT OR REPLACE INTO memories(" + cols + ") VALUES (" + detail::sqlite_placeholders(20) + ")").c_str());
      st.erase = prepare("DELETE FROM memories WHERE id = ?1");
      st.enqueue = prepare(
          "INSERT INTO pending(id, user_id, agent_id, run_id, tenant, extra, messages, options, created_at, attempts)"
          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT(id) DO UPDATE SET user_id = excluded.user_id,"
          " agent_id = excluded.agent_id, run_id = excluded.run_id, tenant = excluded.tenant, extra = excluded.extra,"
          " messages = excluded.messages, options = excluded.options, created_at = excluded.created_at,"
          " attempts = excluded.attempts");
      st.dequeue = prepare("DELETE FROM pending WHERE id = ?1");
      st.add_access = prepare(
          "INSERT INTO access_counts(memory_id, count) SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM memories WHERE id = ?1)"
          " ON CONFLICT(memory_id) DO UPDATE SET count = min(count + excluded.count, 4294967295)");
      st.erase_access = prepare("DELETE FROM access_counts WHERE memory_id = ?1");
      // the scope of the event's memory, NULL when it is not stored (the batch's erases come after its events)
      st.add_event = prepare((std::string("INSERT INTO history(") + hcols +
                              ", user_id, agent_id, run_id, tenant, extra) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
                              " ?10, m.user_id, m.agent_id, m.run_id, coalesce(m.tenant, ''), coalesce(m.extra, '')"
                              " FROM (SELECT 1) LEFT JOIN memories m ON m.id = ?2")
                                 .c_str());
      st.own_history = prepare(
          "UPDATE history SET (user_id, agent_id, run_id, tenant, extra) = (SELECT user_id, agent_id, run_id, tenant,"
          " extra FROM memories"
          " WHERE id = ?1) WHERE memory_id = ?1 AND user_id IS NULL AND EXISTS (SELECT 1 FROM memories WHERE id = ?1)");
      if (!meta("format_version"))
        transaction([&] { put_meta_value("format_version", std::to_string(storage_format_version)); });
      if (st.wal) st.wal->sync(st.wal->committed());  // the schema's changes, made outside transaction()
    }
  }

  [[nodiscard]] bool file_parent_missing() const {
    const auto parent = std::filesystem::path(s_->path).parent_path();
    return !parent.empty() && !std::filesystem::is_directory(parent);
  }

  /// Whether table `table` (a fixed name) has column `column`.
  [[nodiscard]] bool has_column(const char* table, const char* column) const {
    auto st = prepare((std::string("SELECT 1 FROM pragma_table_info('") + table + "') WHERE name = ?1").c_str());
    bind_text(st, 1, column);
    return step(st) == SQLITE_ROW;
  }

  [[nodiscard]] std::string journal_mode() const {
    auto st = prepare("PRAGMA journal_mode");
    return step(st) == SQLITE_ROW ? column_text(st, 0) : std::string();
  }

  [[nodiscard]] bool has_table(const char* name) const {
    auto st = prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1");
    bind_text(st, 1, name);
    return step(st) == SQLITE_ROW;
  }

  std::optional<std::string> meta(const char* key) const {
    auto& st = s_->get_meta;
    reset(st);
    reset_on_exit done{st};
    bind_text(st, 1, key);
    if (step(st) != SQLITE_ROW) return std::nullopt;
    return column_text(st, 0);
  }
  void put_meta_value(const char* key, const std::string& value) const {
    auto& st = s_->put_meta;
    reset(st);
    reset_on_exit done{st};
    bind_text(st, 1, key);
    bind_text(st, 2, value);
    step(st);
  }
  std::optional<store_identity> identity_locked() const {
    auto name = meta("embedder");
    auto dim = meta("dimension");
    // bound on a read-only open: none recorded, or a wider scope key set than recorded
    if (!name || !dim || s_->volatile_identity) return s_->volatile_identity;
    // scope_keys absent: written before key sets, or by a memory of Mem0's keys
    return store_identity{*name, static_cast<std::size_t>(std::stoull(*dim)), meta("scope_keys").value_or("")};
  }
  void put_identity(const store_identity& id) const {
    put_meta_value("embedder", id.embedder);
    put_meta_value("dimension", std::to_string(id.dimension));
    if (!id.scope_keys.empty()) put_meta_value("scope_keys", id.scope_keys);
  }

  void apply_locked(const write_batch& b) const {
    for (const auto& r : b.upserts) {
      auto& st = s_->upsert;
      reset(st);
      reset_on_exit done{st};
      detail::sqlite_bind_record(st.get(), r);
      step(st);
    }
    // the events before the erases: a DELETE event's row takes the scope of its memory while it is stored
    for (const auto& e : b.events) {
      auto& st = s_->add_event;
      reset(st);
    reset_on_exit done{st};
      bind_text(st, 1, e.id);
      bind_text(st, 2, e.memory_id);
      bind_opt_text(st, 3, e.old_memory);
      bind_opt_text(st, 4, e.new_memory);
      bind_text(st, 5, to_string(e.event));
      bind_text(st, 6, format_iso8601(e.created_at));
      bind_opt_text(st, 7, e.updated_at ? std::optional<std::string>(format_iso8601(*e.updated_at)) : std::nullopt);
      sqlite3_bind_int(st.get(), 8, e.is_deleted ? 1 : 0);
      bind_nonempty(st, 9, e.actor_id);
      bind_nonempty(st, 10, e.role);
      step(st);
    }
    for (const auto& id : b.erases) {
      run_with_id(s_->own_history, id);  // rows written before they named a scope
      run_with_id(s_->erase, id);
      run_with_id(s_->erase_access, id);  // a record stored again under this id starts from zero
    }
    for (const auto& p : b.enqueued) {
      auto& st = s_->enqueue;
      reset(st);
      reset_on_exit done{st};
      bind_text(st, 1, p.id);
      bind_scope(st, 2, p.owner);
      bind_text(st, 7, engram::dump_json(nlohmann::json(p.messages)));
      bind_text(st, 8, engram::dump_json(p.options));
      bind_text(st, 9, p.created_at);
      sqlite3_bind_int64(st.get(), 10, static_cast<sqlite3_int64>(p.attempts));
      step(st);
    }
    for (const auto& id : b.dequeued) run_with_id(s_->dequeue, id);
  }

  /// Runs a statement whose one parameter is an id.
  void run_with_id(const stmt& st, std::string_view id) const {
    reset(st);
    reset_on_exit done{st};
    bind_text(st, 1, id);
    step(st);
  }

  pending_add read_pending(const stmt& st) const {
    pending_add p;
    p.id = column_text(st, 0);
    p.owner.user_id = column_text(st, 1);
    p.owner.agent_id = column_text(st, 2);
    p.owner.run_id = column_text(st, 3);
    try {
      p.messages = nlohmann::json::parse(column_text(st, 4)).get<std::vector<message>>();
      p.options = nlohmann::json::parse(column_text(st, 5));
    } catch (const std::exception& e) {
      throw storage_error("sqlite_store '" + s_->path + "': pending add '" + p.id + "' is unreadable: " + e.what());
    }
    p.created_at = column_text(st, 6);
    p.attempts = static_cast<std::uint32_t>(sqlite3_column_int64(st.get(), 7));
    p.owner.tenant = detail::sqlite_scope_column(st.get(), 8, "tenant", where(), p.id);
    p.owner.extra = detail::sqlite_scope_column(st.get(), 9, "extra", where(), p.id);
    return p;
  }

  record read_record(const stmt& st) const { return detail::sqlite_read_record(st.get(), where()); }

  history_event read_event(const stmt& st) const {
    history_event e;
    e.id = column_text(st, 0);
    e.memory_id = column_text(st, 1);
    e.old_memory = column_opt_text(st, 2);
    e.new_memory = column_opt_text(st, 3);
    try {
      e.event = parse_event_kind(column_text(st, 4));
    } catch (const validation_error& err) {
      throw storage_error("sqlite_store '" + s_->path + "': " + err.what());
    }
    e.created_at = column_time(st, 5);
    if (sqlite3_column_type(st.get(), 6) != SQLITE_NULL) e.updated_at = column_time(st, 6);
    e.is_deleted = sqlite3_column_int(st.get(), 7) != 0;
    e.actor_id = column_text(st, 8);
    e.role = column_text(st, 9);
    return e;
  }

  std::unique_ptr<state> s_;
};

}  // namespace engram::inline v0
