// engram-requires: postgres
#pragma once
/// @file store/postgres_store.hpp
/// A store in a PostgreSQL database (optional target engram::postgres), shared by any number of engram
/// nodes: every node is stateless apart from its in-memory index, which a change feed keeps current.
///
/// Schema: the tables are described in store/postgres/schema.hpp; each lives in `options.schema`, created and
/// migrated on open.
///
/// Writes: every apply() is one transaction holding a per-schema advisory transaction lock, so the writes of
/// all nodes to one database are serialised and the change feed's sequence is their commit order. Inside it
/// a new record whose exact scope already holds the same text (same hash and memory) under another id is dropped
/// with its events and reported by apply() (`unique_content`): two nodes adding one fact at once store it once.
/// An upsert that comes with an UPDATE event for a record deleted meanwhile (not stored, its last event a
/// DELETE: another node deleted it) fails with not_found instead of bringing the record back.
/// The transaction ends with NOTIFY on channel `engram_<schema>`. A memory writes with append() + sync(): with
/// group_commit its COMMIT may leave the WAL flush to sync(), after the memory's lock (group_flush.hpp).
///
/// Failures: every error is a postgres_error (a storage_error) carrying the SQLSTATE. A dropped connection is
/// replaced; reads are retried, and an apply is retried only when it cannot have committed: each batch
/// carries a unique token inserted in its transaction, so a retry after an unknown COMMIT outcome finds the
/// token and stops. Retries end after `reconnect_timeout_ms`: every operation has that deadline, and its waits
/// (a free pooled connection, connecting, the pauses between retries) end there. An outage is shared by the
/// store's operations: once one has failed on it, the others' deadlines count from its start (past it: one
/// attempt), so callers queued behind each other (basic_memory's write lock) answer within the timeout plus
/// one attempt, not one timeout each. Pooled connections that died while idle are dropped together and
/// retried at once, so the first operation after the database is back succeeds (store/postgres/pool.hpp).
///
/// Parts (store/postgres/): url (parse_postgres_url), pool (connections, retries), schema (tables, migration),
/// statements (SQL), rows (records <-> rows), apply (one batch's writes), listen (the change feed's reading).

#include <engram/concepts.hpp>  // duplicate_record, change_feed_store
#include <engram/detail/identity_check.hpp>
#include <engram/error.hpp>
#include <engram/record.hpp>
#include <engram/scope.hpp>
#include <engram/store/postgres/apply.hpp>
#include <engram/store/postgres/group_flush.hpp>
#include <engram/store/postgres/libpq.hpp>
#include <engram/store/postgres/listen.hpp>
#include <engram/store/postgres/options.hpp>
#include <engram/store/postgres/pool.hpp>
#include <engram/store/postgres/rows.hpp>
#include <engram/store/postgres/schema.hpp>
#include <engram/store/postgres/statements.hpp>
#include <engram/store/postgres/url.hpp>
#include <engram/uuid.hpp>
#include <engram/write_batch.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>  // std::invoke_result_t
#include <utility>
#include <vector>

namespace engram::inline v0 {

/// Every row of one exact scope in one database, as read in one snapshot: what moves when a scope changes
/// shard (sharded_postgres_store::rebalance).
struct postgres_scope_rows {
  scope owner;                         ///< the exact scope (user_id, agent_id, run_id, tenant, extra)
  std::vector<record> records;         ///< by id
  std::vector<history_event> events;   ///< in their order
  std::vector<pending_add> pending;    ///< in enqueue order
  std::uint64_t version = 0;           ///< the scope's version in that snapshot
};

/// Records, history and the pending queue in PostgreSQL. Thread-safe: calls run concurrently on a pool of
/// connections. Movable, not copyable.
class postgres_store {
 public:
  /// Records, history and pending adds keep their tenant and extra scope keys (scope_keyed_store).
  static constexpr bool keeps_scope_keys = true;

  /// Connects with the libpq connection string `conninfo` (e.g. "host=/tmp/pg dbname=engram" or
  /// "postgresql://user@host/db"), creating or migrating the schema.
  /// @throws postgres_error when the server cannot be reached or the schema is of another format version;
  ///         validation_error for a bad schema name.
  explicit postgres_store(std::string conninfo, postgres_store_options options = {}) {
    detail::pg_validate_schema_name(options.schema);
    if (options.pool_size == 0) throw validation_error("postgres_store: pool_size must be at least 1");
    std::string name = "postgres_store (schema " + options.schema + ")";
    s_ = std::make_unique<state>(std::move(conninfo), std::move(options), std::move(name));
    // Schema creation and migration, serialised between nodes opening at once.
    s_->pool.retrying([&] { detail::pg_migrate(*s_->pool.connect(false), schema(), where()); });
  }

  // The LISTEN thread stops with the state it belongs to (state::listener).
  postgres_store(postgres_store&&) noexcept = default;
  postgres_store& operator=(postgres_store&&) noexcept = default;
  ~postgres_store() = default;

  /// Records the embedder identity on first use; afterwards a different one is refused
  /// (dimension_mismatch for another size, validation_error for another name or a narrower scope key set),
  /// naming both. A wider scope key set is recorded.
  void bind(const store_identity& id) {
    if (auto have = identity())
      if (!detail::check_same_identity(*have, id, where())) return;
    write([&](detail::pq_conn& c) {
      // another node may have bound one meanwhile: check again under the lock
      if (auto have = detail::pg_get_identity(c, where()))
        if (!detail::check_same_identity(*have, id, where())) return;
      detail::pg_put_identity(c, id, where());
    });
  }

  /// The identity bound so far, if any.
  [[nodiscard]] std::optional<store_identity> identity() const {
    return read([&](detail::pq_conn& c) { return detail::pg_get_identity(c, where()); });
  }

  /// Applies the batch in one transaction, durable on return.
  /// @returns the new records dropped as duplicates (empty unless unique_content found some).
  /// @throws postgres_error (nothing applied) on any failure that retries did not overcome.
  /// When it fails after losing the connection (the COMMIT may have happened), the batch's record ids are
  /// reported by the next poll_changes() of this object, so a caller keeping an index re-reads them.
  std::vector<duplicate_record> apply(const write_batch& b) {
    if (b.empty()) return {};
    std::vector<duplicate_record> dups;
    try {
      write([&](detail::pq_conn& c) { dups = apply_on(c, b); });
    } catch (const postgres_error& e) {
      if (e.connection_lost()) recheck_later(b);
      throw;
    }
    return dups;
  }

  /// First half of a two-phase commit (engram::two_phase_store, what basic_memory uses): commits the batch in one
  /// transaction as apply() does, but with options.group_commit the COMMIT does not wait for the WAL flush, so a
  /// memory holds its write lock only for the transaction, and concurrent writers share one flush (sync). Until
  /// sync(ticket) returns, the batch is visible to other connections (other nodes) but a crash of the database
  /// server may still lose it (store/postgres/group_flush.hpp). Without group_commit it is durable on return.
  /// `dropped`, when given, receives the new records dropped as duplicates (as apply() returns them).
  /// @returns the ticket to pass to sync() (0: nothing to wait for). @throws postgres_error as apply() does.
  std::uint64_t append(const write_batch& b, std::vector<duplicate_record>* dropped = nullptr) {
    return append(b, dropped, [] { return true; });
  }

  /// As append(b, dropped), asking `defer()` right before the COMMIT whether to leave the flush to sync(): false
  /// COMMITs synchronously (ticket 0). The deferred flush is one more statement, worth it only when others wait
  /// (basic_memory asks whether anyone waits for its write lock).
  template <class Defer>
  std::uint64_t append(const write_batch& b, std::vector<duplicate_record>* dropped, Defer&& defer) {
    if (b.empty()) return 0;
    const bool grouped = options().group_commit;
    write_outcome done;
    try {
      done = write([&](detail::pq_conn& c) {
        auto d = apply_on(c, b);
        if (dropped) *dropped = std::move(d);
      }, true, [&] { return grouped && defer(); });
    } catch (const postgres_error& e) {
      if (e.connection_lost()) recheck_later(b);
      throw;
    }
    return done.deferred ? s_->flusher.committed(std::move(done.token), ids_of(b)) : 0;
  }

  /// Second half: returns once the batch appended with `ticket` and every earlier one is durable. Concurrent
  /// callers share one flush: one statement committed synchronously (with the database's synchronous_commit),
  /// whose flush covers every commit before it. Readers call it too, for the changes they saw.
  /// @throws postgres_error when the flush fails (a later sync() tries again), or with SQLSTATE 08007 when a
  ///         crash of the database server lost a batch up to `ticket` (its records are reported by the next
  ///         poll_changes(), so a memory re-reads them).
  void sync(std::uint64_t ticket) const {
    s_->flusher.sync(
        ticket, [&](const std::vector<std::string>& tokens) { return flush(tokens); },
        [&] { s_->dirty.store(true, std::memory_order_release); },  // the next poll reports the lost records
        where());
  }

  /// The newest ticket append() returned (0: none, or group_commit off).
  [[nodiscard]] std::uint64_t appended() const { return s_->flusher.last(); }

  /// The flushes sync() has issued (group_commit): fewer than the batches appended when writers shared them.
  [[nodiscard]] std::uint64_t flushes() const noexcept { return s_->flusher.flushes(); }

  [[nodiscard]] std::optional<record> get(std::string_view id) const {
    return read([&](detail::pq_conn& c) -> std::optional<record> {
      auto r = c.run("get_record", {detail::pq_param::text(id)}, true, where());
      if (r.rows() == 0) return std::nullopt;
      return detail::pg_read_record(r, 0, where());
    });
  }

  /// Calls f(const record&) for every record, by id, fetched in pages (not one snapshot: records written
  /// meanwhile may or may not be seen).
  template <class F>
  void for_each(F&& f) const {
    std::string after;
    while (true) {
      auto page = read([&](detail::pq_conn& c) {
        return c.run("record_page", {detail::pq_param::text(after), detail::pq_param::int8(detail::pg_page_size)}, true,
                     where());
      });
      const int n = page.rows();
      for (int i = 0; i < n; ++i) f(detail::pg_read_record(page, i, where()));
      if (n < detail::pg_page_size) return;
      after = page.text(n - 1, 0);
    }
  }

  /// The events of one memory id, oldest first; empty when the id never existed.
  [[nodiscard]] std::vector<history_event> history(std::string_view memory_id) const {
    auto r = read([&](detail::pq_conn& c) {
      return c.run("history_of", {detail::pq_param::text(memory_id)}, true, where());
    });
    std::vector<history_event> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(detail::pg_read_event(r, i, where()));
    return out;
  }

  /// Calls f(const history_event&) for every event, each memory's oldest first.
  template <class F>
  void for_each_history(F&& f) const {
    auto r = read([&](detail::pq_conn& c) { return c.run("all_history", {}, true, where()); });
    for (int i = 0; i < r.rows(); ++i) f(detail::pg_read_event(r, i, where()));
  }

  /// Calls f(const pending_add&) for every queued add, in the order they were first enqueued.
  template <class F>
  void for_each_pending(F&& f) const {
    auto r = read([&](detail::pq_conn& c) { return c.run("all_pending", {}, true, where()); });
    for (int i = 0; i < r.rows(); ++i) f(detail::pg_read_pending(r, i, where()));
  }

  /// Erases every record and every history event (the identity and the pending queue stay), in one
  /// transaction; other nodes see it as a '*' change. Access counts go with their records (ON DELETE CASCADE,
  /// also for erases by apply() and drop_scope()).
  void clear() {
    write([&](detail::pq_conn& c) {
      c.exec("DELETE FROM memories; DELETE FROM history; UPDATE scope_versions SET version = version + 1", where());
      c.run("add_change", {detail::pq_param::text("*"), detail::pq_param::text(s_->origin)}, false, where());
    });
  }

  /// Erases every record query scope `q` selects with its history, also that of records erased before (history
  /// rows name their scope since schema version 2; older rows only by their record), in one transaction
  /// (engram::purging_store): after it, no row of the schema holds their text (their access counts go by ON
  /// DELETE CASCADE; the change feed and scope versions name ids and scopes only). Dead row versions are
  /// reclaimed by PostgreSQL's (auto)vacuum. A failure or a crash before the COMMIT changes nothing. Other
  /// nodes drop the records from the feed. The pending queue stays. @returns how many records.
  /// @throws validation_error for an empty `q`; postgres_error.
  std::size_t purge(const scope& q) {
    if (q.empty()) throw validation_error("postgres_store: purge needs a scope (user_id, agent_id or run_id)");
    using detail::pq_param;
    std::size_t n = 0;
    write([&](detail::pq_conn& c) {
      const auto p = detail::pg_scope_params(q);  // as a query scope: '' selects any id
      c.run("purge_history", p, false, where());
      auto gone = c.run("purge_records", p, false, where());
      std::set<scope> touched;
      for (int i = 0; i < gone.rows(); ++i) {
        c.run("add_change", {pq_param::text(gone.text(i, 0)), pq_param::text(s_->origin)}, false, where());
        touched.insert(scope{gone.text(i, 1), gone.text(i, 2), gone.text(i, 3), gone.text(i, 4), gone.text(i, 5)});
      }
      for (const auto& t : touched) c.run("bump_version", detail::pg_scope_params(t), false, where());
      n = static_cast<std::size_t>(gone.rows());
    });
    return n;
  }

  /// Adds each increment's count to its memory's access count (access_count_store), in one transaction:
  /// saturating at 2^32-1, ignoring ids not stored and zero counts. No scope version, change feed entry or
  /// notification, and no write lock (each memory's row is locked, so an erase running at the same time either
  /// waits for the count or makes it skip the memory). Retried like apply(): the commit token makes a retry after
  /// an unknown COMMIT outcome stop, so a batch is never counted twice.
  void add_access(std::span<const access_increment> incs) {
    std::map<std::string, std::uint64_t, std::less<>> sum;  // one row per id (ON CONFLICT needs it)
    for (const auto& a : incs)
      if (a.count) sum[a.memory_id] = std::min<std::uint64_t>(sum[a.memory_id] + a.count, detail::pg_max_access_count);
    if (sum.empty()) return;
    nlohmann::json counts = nlohmann::json::object();
    for (const auto& [id, n] : sum) counts[id] = n;
    const auto arg = detail::pg_json_text(counts);
    write([&](detail::pq_conn& c) { c.run("add_access", {detail::pq_param::text(arg)}, false, where()); },
          false);
  }

  /// Replaces the identity and applies `b` in one transaction. The way to switch embedders: engram::reembed.
  /// The recorded scope key set stays unless `id` names one.
  void rebind(const store_identity& id, const write_batch& b) {
    write([&](detail::pq_conn& c) {
      apply_on(c, b);
      detail::pg_put_identity(c, id, where());
    });
  }

  [[nodiscard]] std::size_t size() const {
    auto r = read([&](detail::pq_conn& c) { return c.run("count", {}, true, where()); });
    return static_cast<std::size_t>(r.integer(0, 0));
  }

  /// Checks that the database answers (a round trip on a pooled connection, retried like a read).
  /// @throws postgres_error when it does not within reconnect_timeout_ms.
  void ping() const {
    read([&](detail::pq_conn& c) { c.exec("SELECT 1", where()); });
  }

  // ---- moving scopes between databases (used by sharded_postgres_store) ----------------------------------

  /// Every exact scope with records, pending adds or scoped history events here, sorted.
  [[nodiscard]] std::vector<scope> scopes() const {
    auto r = read([&](detail::pq_conn& c) { return c.run("scopes", {}, false, where()); });
    std::vector<scope> out;
    for (int i = 0; i < r.rows(); ++i)
      out.push_back(scope{r.text(i, 0), r.text(i, 1), r.text(i, 2), r.text(i, 3), r.text(i, 4)});
    return out;
  }

  /// The rows of exact scope `s`: its records, the history of its records (also of those deleted since the
  /// history table holds scopes, schema version 2), its pending adds and its version, from one snapshot.
  [[nodiscard]] postgres_scope_rows export_scope(const scope& s) const {
    return read([&](detail::pq_conn& c) {
      postgres_scope_rows out;
      out.owner = s;
      const auto p = detail::pg_scope_params(s);
      c.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", where());
      auto recs = c.run("scope_records", p, true, where());
      auto evs = c.run("scope_history", p, true, where());
      auto pend = c.run("scope_pending", p, true, where());
      auto ver = c.run("scope_version", p, true, where());
      c.exec("COMMIT", where());
      for (int i = 0; i < recs.rows(); ++i) out.records.push_back(detail::pg_read_record(recs, i, where()));
      for (int i = 0; i < evs.rows(); ++i) out.events.push_back(detail::pg_read_event(evs, i, where()));
      for (int i = 0; i < pend.rows(); ++i) out.pending.push_back(detail::pg_read_pending(pend, i, where()));
      out.version = ver.rows() ? static_cast<std::uint64_t>(ver.integer(0, 0)) : 0;
      return out;
    });
  }

  /// Writes `rows` here in one transaction: records replace those of the same id unless the copy here was
  /// updated later (updated_at), events already here (same event id) are skipped, pending adds replace by id; the scope's version moves past both databases'.
  /// Idempotent, so a move interrupted after it can be run again. Other nodes see the records as changed.
  void import_scope(const postgres_scope_rows& rows) {
    using detail::pq_param;
    write([&](detail::pq_conn& c) {
      const auto& o = rows.owner;
      write_batch b;
      b.upserts = rows.records;
      b.enqueued = rows.pending;
      detail::pg_apply_batch(c, b, false, "import_record", s_->origin, where());  // the rows are moved as they are
      for (const auto& e : rows.events) c.run("import_event", detail::pg_event_params(e, o), false, where());
      auto p = detail::pg_scope_params(o);
      p.push_back(pq_param::int8(static_cast<std::int64_t>(rows.version)));
      c.run("raise_version", p, false, where());
    });
  }

  /// Deletes here, in one transaction, exactly the rows `rows` lists (after import_scope() copied them
  /// elsewhere), provided scope `rows.owner` is still at `rows.version`. @returns false, deleting nothing,
  /// when a write moved the version meanwhile (export and import again, then retry).
  bool drop_scope(const postgres_scope_rows& rows) {
    using detail::pq_param;
    bool dropped = false;
    write([&](detail::pq_conn& c) {
      const auto& o = rows.owner;
      auto p = detail::pg_scope_params(o);
      auto ver = c.run("scope_version", p, true, where());
      const std::uint64_t now = ver.rows() ? static_cast<std::uint64_t>(ver.integer(0, 0)) : 0;
      dropped = now == rows.version;
      if (!dropped) return;
      nlohmann::json ev = nlohmann::json::array(), rec = nlohmann::json::array(), pend = nlohmann::json::array();
      for (const auto& e : rows.events) ev.push_back(e.id);
      for (const auto& r : rows.records) rec.push_back(r.id);
      for (const auto& q : rows.pending) pend.push_back(q.id);
      c.run("drop_events", {pq_param::text(ev.dump())}, false, where());
      auto gone = c.run("drop_records", {pq_param::text(rec.dump())}, false, where());
      c.run("drop_pending", {pq_param::text(pend.dump())}, false, where());
      for (int i = 0; i < gone.rows(); ++i)
        c.run("add_change", {pq_param::text(gone.text(i, 0)), pq_param::text(s_->origin)}, false, where());
      c.run("bump_version", p, false, where());
    });
    return dropped;
  }

  /// Whether the pending queue holds an add with this id.
  [[nodiscard]] bool has_pending(std::string_view id) const {
    auto r = read([&](detail::pq_conn& c) { return c.run("has_pending", {detail::pq_param::text(id)}, false, where()); });
    return r.rows() && r.view(0, 0) == "t";
  }

  /// How many batches have changed scope `s` (exactly this scope, not the scopes it selects); 0 if none.
  [[nodiscard]] std::uint64_t scope_version(const scope& s) const {
    auto r = read([&](detail::pq_conn& c) {
      return c.run("scope_version", detail::pg_scope_params(s), true, where());
    });
    return r.rows() ? static_cast<std::uint64_t>(r.integer(0, 0)) : 0;
  }

  // ---- scope loading (basic_memory's partition cache: memory_config::partition_cache_bytes) ---------------
  // Each query is prepared on a connection the first time it runs there, one statement per combination of the
  // ids a query scope names (detail::pg_scope_query), so each is planned with the scope index.

  /// Calls f(const record&) for every record query scope `q` selects (every record when `q` is empty), by id,
  /// fetched in pages (not one snapshot: records written meanwhile may or may not be seen).
  template <class F>
  void for_each_in_scope(const scope& q, F&& f) const {
    static const detail::pg_scope_query query("scope_page_", std::string("SELECT ") + detail::pg_record_cols +
                                              " FROM memories", "id > $", " ORDER BY id LIMIT $");
    detail::pg_for_each_scope_row(reader(), query, q, where(), [&](const detail::pq_result& page, int i) {
      f(detail::pg_read_record(page, i, where()));
    });
  }

  /// Calls f(const std::string& id, std::uint32_t count) for every memory query scope `q` selects (all when `q`
  /// is empty) whose access count is not zero, by id, fetched in pages like for_each_in_scope.
  template <class F>
  void for_each_access_count(const scope& q, F&& f) const {
    static const detail::pg_scope_query query(
        "scope_access_", "SELECT id, count FROM memories JOIN access_counts ON memory_id = id AND count > 0",
        "id > $", " ORDER BY id LIMIT $");
    detail::pg_for_each_scope_row(reader(), query, q, where(), [&](const detail::pq_result& page, int i) {
      const std::string id = page.text(i, 0);
      f(id, static_cast<std::uint32_t>(std::min<std::int64_t>(page.integer(i, 1), detail::pg_max_access_count)));
    });
  }

  /// The sum of the versions (scope_versions, bumped in the transaction of every batch writing the scope) of
  /// the exact scopes query scope `q` selects (all when `q` is empty): it grows with every batch that writes or
  /// erases a record `q` selects, on any node, and with clear(). One query.
  [[nodiscard]] std::uint64_t scope_selection_version(const scope& q) const {
    static const detail::pg_scope_query query(
        "scope_version_", "SELECT coalesce(sum(version), 0)::bigint FROM scope_versions", "", "");
    const auto [mask, params] = detail::pg_scope_filter(q);
    auto r = read([&, mask = mask, &params = params](detail::pq_conn& c) {  // bindings captured by name (C++20)
      return detail::pg_run_lazily_prepared(c, query.names[mask].c_str(), query.sql[mask], params, where());
    });
    return static_cast<std::uint64_t>(r.integer(0, 0));
  }

  // ---- change feed (used by basic_memory to see other nodes' writes) ------------------------------------

  /// The feed's current position: changes after it are those committed later. Starts the LISTEN connection
  /// (a background thread) on first use.
  [[nodiscard]] std::uint64_t change_position() const {
    start_listening();
    auto r = read([&](detail::pq_conn& c) { return c.run("change_position", {}, true, where()); });
    return static_cast<std::uint64_t>(r.integer(0, 0));
  }

  /// True when another node may have written since the last poll_changes(): a notification arrived, the
  /// LISTEN connection was re-established, or feed_poll_ms passed. Cheap (two atomics).
  [[nodiscard]] bool changes_pending() const noexcept {
    if (s_->dirty.load(std::memory_order_acquire)) return true;
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    return now - s_->last_poll.load(std::memory_order_relaxed) >
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(
               std::chrono::milliseconds(options().feed_poll_ms))
               .count();
  }

  /// Calls f(memory_id) for each record another store object changed after position `since` (in commit
  /// order; "*" means every record may have changed), and @returns the new position.
  /// Also reports the records of this object's own batches whose outcome a lost connection left unknown.
  template <class F>
  std::uint64_t poll_changes(std::uint64_t since, F&& f) const {
    s_->dirty.store(false, std::memory_order_release);
    s_->last_poll.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    std::vector<std::string> unsure;
    {
      std::lock_guard lock(s_->mtx);
      unsure.swap(s_->unsure);
    }
    auto lost = s_->flusher.take_lost();
    try {
      for (const auto& id : unsure) f(id);
      for (const auto& l : lost)
        for (const auto& id : l.ids) f(id);
      return detail::pg_poll_feed(reader(), since, s_->origin, detail::pg_page_size, where(), f);
    } catch (...) {  // the caller drops what it was given: report these again next time
      s_->flusher.restore_lost(std::move(lost));
      std::lock_guard lock(s_->mtx);
      s_->unsure.insert(s_->unsure.end(), unsure.begin(), unsure.end());
      s_->dirty.store(true, std::memory_order_release);
      throw;
    }
  }

  [[nodiscard]] const std::string& schema() const noexcept { return options().schema; }
  /// This store object's id in the change feed (changes it wrote are not reported back to it).
  [[nodiscard]] const std::string& origin() const noexcept { return s_->origin; }

 private:
  struct state {
    state(std::string conninfo, postgres_store_options options, std::string where)
        : pool(std::move(conninfo), std::move(options), std::move(where), &detail::pg_prepare_all) {}
    detail::pg_pool pool;  // holds the options and `where`, the store's name in errors
    std::string origin = make_uuid_v4();
    std::atomic<bool> dirty{true};
    std::atomic<std::int64_t> last_poll{0};
    std::atomic<std::uint64_t> writes{0};
    std::mutex mtx;
    std::vector<std::string> unsure;  // ids of batches whose COMMIT outcome is unknown (guarded by mtx)
    detail::pg_group_flush flusher;   // group_commit: batches committed and not yet flushed
    detail::pg_listener listener;     // last: its thread stops before the members it uses go
  };

  [[nodiscard]] const postgres_store_options& options() const noexcept { return s_->pool.options(); }
  [[nodiscard]] const std::string& where() const noexcept { return s_->pool.where(); }

  static std::vector<std::string> ids_of(const write_batch& b) {
    std::vector<std::string> ids;
    ids.reserve(b.upserts.size() + b.erases.size());
    for (const auto& r : b.upserts) ids.push_back(r.id);
    ids.insert(ids.end(), b.erases.begin(), b.erases.end());
    return ids;
  }

  void recheck_later(const write_batch& b) const {
    auto ids = ids_of(b);
    std::lock_guard lock(s_->mtx);
    s_->unsure.insert(s_->unsure.end(), ids.begin(), ids.end());
    s_->dirty.store(true, std::memory_order_release);
  }

  /// group_commit's flush: one statement committed synchronously (inserting a commit token of its own, so that
  /// it has a commit record to flush), which reads which of `tokens` the database holds. @returns those.
  std::set<std::string> flush(const std::vector<std::string>& tokens) const {
    std::string list = "{";
    for (const auto& t : tokens) list += (list.size() > 1 ? "," : "") + t;  // uuids: nothing to quote
    list += '}';
    std::set<std::string> present;
    s_->pool.with_retry([&](detail::pq_conn& c) {
      auto r = c.run("flush_commits", {detail::pq_param::text(make_uuid_v4()), detail::pq_param::text(list)}, false,
                     where());
      present.clear();
      for (int i = 0; i < r.rows(); ++i) present.insert(r.text(i, 0));
    });
    return present;
  }

  void start_listening() const {
    s_->listener.start([pool = &s_->pool] { return pool->connect(false); }, "engram_" + options().schema, where(),
                       [dirty = &s_->dirty] { dirty->store(true, std::memory_order_release); });
  }

  template <class F>
  std::invoke_result_t<F&, detail::pq_conn&> read(F&& f) const {
    return s_->pool.with_retry(std::forward<F>(f));
  }
  /// read() as a callable, for the parts (a named type: a deduced return type could not be used in the
  /// member templates above it with every compiler).
  struct reader_fn {
    const postgres_store* self;
    template <class F>
    std::invoke_result_t<F&, detail::pq_conn&> operator()(F&& f) const {
      return self->read(f);
    }
  };
  reader_fn reader() const { return {this}; }

  /// Runs body(conn) in one transaction under the schema's write lock, with a commit token: a retry after a
  /// lost COMMIT finds the token (unique violation) and stops, so the batch is applied exactly once.
  /// `feed` false (add_access): no write lock, notification or pruning, only the token.
  /// `defer()`, asked right before the COMMIT: true COMMITs without waiting for the WAL flush (group_commit:
  /// sync() flushes). @returns the token, and whether the commit may have been deferred.
  struct write_outcome {
    std::string token;
    bool deferred = false;
  };
  template <class F, class Defer = bool (*)()>
  write_outcome write(F&& body, bool feed = true, Defer&& defer = [] { return false; }) {
    write_outcome out{make_uuid_v4(), false};
    const auto& token = out.token;
    bool committed = false;
    s_->pool.with_retry([&](detail::pq_conn& c) {
      if (committed) return;
      c.exec("BEGIN", where());
      try {
        if (feed) c.run("write_lock", {}, false, where());
        try {
          c.run("add_commit", {detail::pq_param::text(token)}, false, where());
        } catch (const postgres_error& e) {
          if (e.sqlstate() != "23505") throw;
          committed = true;  // an earlier attempt committed after all
          c.exec("ROLLBACK", where());
          return;
        }
        body(c);
        if (feed) c.run("notify", {}, false, where());
        if (feed && s_->writes.fetch_add(1, std::memory_order_relaxed) % 1000 == 999)
          c.run("prune", {detail::pq_param::text(std::to_string(options().change_retention_s))}, false, where());
        const bool deferred = defer();
        out.deferred = out.deferred || deferred;  // a retry cannot tell which attempt committed
        c.exec(deferred ? "SET LOCAL synchronous_commit = off; COMMIT" : "COMMIT", where());
        committed = true;
      } catch (...) {
        if (c.connected() && PQtransactionStatus(c.get()) != PQTRANS_IDLE) PQclear(PQexec(c.get(), "ROLLBACK"));
        throw;
      }
    });
    return out;
  }

  std::vector<duplicate_record> apply_on(detail::pq_conn& c, const write_batch& b) const {
    return detail::pg_apply_batch(c, b, options().unique_content, "upsert", s_->origin, where());
  }

  std::unique_ptr<state> s_;
};

}  // namespace engram::inline v0
