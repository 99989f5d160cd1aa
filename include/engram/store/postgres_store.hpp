// engram-requires: postgres
#pragma once
/// @file store/postgres_store.hpp
/// A store in a PostgreSQL database (optional target engram::postgres), shared by any number of engram
/// nodes: every node is stateless apart from its in-memory index, which a change feed keeps current.
///
/// Schema (in `options.schema`, created and migrated on open; `schema_version` in engram_meta):
///   engram_meta(key PRIMARY KEY, value)     format_version, schema_version, embedder, dimension
///   memories(id PRIMARY KEY, memory, hash, metadata JSON text, user_id, agent_id, run_id, actor_id, role,
///            created_at, updated_at timestamptz, embedding bytea of little-endian float32, expiration_date)
///   history(seq bigserial PRIMARY KEY, id, memory_id, old_memory, new_memory, event, created_at, updated_at,
///           is_deleted, actor_id, role, user_id, agent_id, run_id)    Mem0's history columns, plus seq for
///           their order and the record's scope (schema version 2; NULL in rows written before)
///   pending(seq, id PRIMARY KEY, user_id, agent_id, run_id, messages JSON, options JSON, created_at, attempts)
///   scope_versions(user_id, agent_id, run_id, version)   bumped by every batch touching the scope
///   changes(seq bigserial PRIMARY KEY, memory_id, origin, at)   the change feed ('*' = everything changed)
///   commits(token PRIMARY KEY, at)          one row per applied batch: makes a retried apply idempotent
///   access_counts(memory_id PRIMARY KEY REFERENCES memories ON DELETE CASCADE, count)   search hits per memory
///           (add_access). Created on open (IF NOT EXISTS) outside the numbered migrations, so the schema version
///           stays 2 and an older engram still opens the database; its deletes drop counts by the cascade.
///
/// Writes: every apply() is one transaction holding a per-schema advisory transaction lock, so the writes of
/// all nodes to one database are serialised and the change feed's sequence is their commit order. Inside it
/// a new record whose scope already holds the same text (same hash and memory) under another id is dropped
/// with its events and reported by apply() (`unique_content`): two nodes adding one fact at once store it once.
/// An upsert that comes with an UPDATE event for a record deleted meanwhile (not stored, its last event a
/// DELETE: another node deleted it) fails with not_found instead of bringing the record back.
/// The transaction ends with NOTIFY on channel `engram_<schema>`.
///
/// Failures: every error is a postgres_error (a storage_error) carrying the SQLSTATE. A dropped connection is
/// replaced; reads are retried, and an apply is retried only when it cannot have committed: each batch
/// carries a unique token inserted in its transaction, so a retry after an unknown COMMIT outcome finds the
/// token and stops. Retries end after `reconnect_timeout_ms`.

#include <engram/concepts.hpp>  // duplicate_record, change_feed_store
#include <engram/detail/identity_check.hpp>
#include <engram/store/postgres/libpq.hpp>
#include <engram/error.hpp>
#include <engram/record.hpp>
#include <engram/write_batch.hpp>
#include <engram/time.hpp>
#include <engram/uuid.hpp>
#include <engram/version.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>  // std::stoi's errors
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>  // std::invoke_result_t
#include <utility>
#include <vector>

#include <poll.h>  // the LISTEN connection's wait

namespace engram::inline v0 {

/// Options of postgres_store.
struct postgres_store_options {
  std::string schema = "engram";          ///< schema holding the tables ([a-z_][a-z0-9_]*, created if missing)
  std::size_t pool_size = 4;              ///< connections at most (opened on demand)
  int statement_timeout_ms = 30000;       ///< server-side limit per statement (SET statement_timeout)
  int reconnect_timeout_ms = 5000;        ///< how long an operation keeps retrying after a dropped connection
  bool unique_content = true;             ///< drop a new record whose scope already holds the same text
  int feed_poll_ms = 1000;                ///< changes_pending() is also true this long after the last poll
  /// Feed entries and commit tokens older than this are pruned (every 1000th write of a store object); a
  /// node that has not polled for longer reloads everything ("*").
  int change_retention_s = 3600;
};

/// A libpq connection URL plus engram's own settings, as given to `engram-server --store postgres://...`.
struct postgres_location {
  std::string conninfo;             ///< the URL without engram's parameters: what libpq connects with
  postgres_store_options options;   ///< with schema, pool_size and the timeouts taken from the URL
  std::string shard;                ///< `shard=NAME`: the database's name on a sharded store's ring (or empty)
};

/// Splits `postgres://user@host:port/db?schema=s&pool=8&statement_timeout_ms=5000&sslmode=...` (or
/// `postgresql://`) into libpq's URL and postgres_store_options: the parameters `schema`, `pool`,
/// `statement_timeout_ms`, `reconnect_timeout_ms` and `shard` are engram's and are removed; every other
/// parameter is left for libpq.
/// @throws validation_error for another scheme or a bad value, naming it.
inline postgres_location parse_postgres_url(std::string_view url) {
  postgres_location out;
  if (!url.starts_with("postgres://") && !url.starts_with("postgresql://"))
    throw validation_error("postgres store: '" + std::string(url) + "' is not a postgres:// or postgresql:// URL");
  const auto q = url.find('?');
  out.conninfo = std::string(url.substr(0, q));
  if (q == std::string_view::npos) return out;
  std::string rest;
  auto query = url.substr(q + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const auto item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto eq = item.find('=');
    const auto key = item.substr(0, eq);
    const std::string value(eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1));
    auto number = [&](int lo) {
      std::size_t used = 0;
      int v = 0;
      try {
        v = std::stoi(value, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != value.size() || v < lo)
        throw validation_error("postgres store URL: " + std::string(key) + "='" + value + "' is not an integer >= " +
                               std::to_string(lo));
      return v;
    };
    if (key == "schema") {
      out.options.schema = value;
    } else if (key == "pool") {
      out.options.pool_size = static_cast<std::size_t>(number(1));
    } else if (key == "statement_timeout_ms") {
      out.options.statement_timeout_ms = number(0);
    } else if (key == "reconnect_timeout_ms") {
      out.options.reconnect_timeout_ms = number(0);
    } else if (key == "shard") {
      out.shard = value;
    } else if (!item.empty()) {
      rest += (rest.empty() ? "?" : "&") + std::string(item);
    }
  }
  out.conninfo += rest;
  return out;
}

/// Every row of one exact scope in one database, as read in one snapshot: what moves when a scope changes
/// shard (sharded_postgres_store::rebalance).
struct postgres_scope_rows {
  scope owner;                         ///< the exact scope (user_id, agent_id, run_id)
  std::vector<record> records;         ///< by id
  std::vector<history_event> events;   ///< in their order
  std::vector<pending_add> pending;    ///< in enqueue order
  std::uint64_t version = 0;           ///< the scope's version in that snapshot
};

/// Records, history and the pending queue in PostgreSQL. Thread-safe: calls run concurrently on a pool of
/// connections. Movable, not copyable.
class postgres_store {
 public:
  /// Connects with the libpq connection string `conninfo` (e.g. "host=/tmp/pg dbname=engram" or
  /// "postgresql://user@host/db"), creating or migrating the schema.
  /// @throws postgres_error when the server cannot be reached or the schema is of another format version;
  ///         validation_error for a bad schema name.
  explicit postgres_store(std::string conninfo, postgres_store_options options = {})
      : s_(std::make_unique<state>()) {
    s_->conninfo = std::move(conninfo);
    s_->options = std::move(options);
    s_->origin = make_uuid_v4();
    validate_schema_name(s_->options.schema);
    if (s_->options.pool_size == 0) throw validation_error("postgres_store: pool_size must be at least 1");
    s_->where = "postgres_store (schema " + s_->options.schema + ")";
    open();
  }

  postgres_store(postgres_store&&) noexcept = default;
  postgres_store& operator=(postgres_store&& o) noexcept {
    if (this != &o) {
      stop_listening();
      s_ = std::move(o.s_);
    }
    return *this;
  }
  ~postgres_store() { stop_listening(); }

  /// Records the embedder identity on first use; afterwards a different one is refused
  /// (dimension_mismatch for another size, validation_error for another name), naming both.
  void bind(const store_identity& id) {
    if (auto have = identity()) {
      detail::check_same_identity(*have, id, s_->where);
      return;
    }
    write([&](detail::pq_conn& c) {
      // another node may have bound one meanwhile: check again under the lock
      if (auto have = identity_on(c)) {
        detail::check_same_identity(*have, id, s_->where);
        return;
      }
      put_identity(c, id);
    });
  }

  /// The identity bound so far, if any.
  [[nodiscard]] std::optional<store_identity> identity() const {
    return read([&](detail::pq_conn& c) { return identity_on(c); });
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

  [[nodiscard]] std::optional<record> get(std::string_view id) const {
    return read([&](detail::pq_conn& c) -> std::optional<record> {
      auto r = c.run("get_record", {detail::pq_param::text(id)}, true, s_->where);
      if (r.rows() == 0) return std::nullopt;
      return read_record(r, 0);
    });
  }

  /// Calls f(const record&) for every record, by id, fetched in pages (not one snapshot: records written
  /// meanwhile may or may not be seen).
  template <class F>
  void for_each(F&& f) const {
    std::string after;
    while (true) {
      auto page = read([&](detail::pq_conn& c) {
        return c.run("record_page", {detail::pq_param::text(after), detail::pq_param::int8(page_size)}, true,
                     s_->where);
      });
      const int n = page.rows();
      for (int i = 0; i < n; ++i) f(read_record(page, i));
      if (n < page_size) return;
      after = page.text(n - 1, 0);
    }
  }

  /// The events of one memory id, oldest first; empty when the id never existed.
  [[nodiscard]] std::vector<history_event> history(std::string_view memory_id) const {
    auto r = read([&](detail::pq_conn& c) {
      return c.run("history_of", {detail::pq_param::text(memory_id)}, true, s_->where);
    });
    std::vector<history_event> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(read_event(r, i));
    return out;
  }

  /// Calls f(const history_event&) for every event, each memory's oldest first.
  template <class F>
  void for_each_history(F&& f) const {
    auto r = read([&](detail::pq_conn& c) { return c.run("all_history", {}, true, s_->where); });
    for (int i = 0; i < r.rows(); ++i) f(read_event(r, i));
  }

  /// Calls f(const pending_add&) for every queued add, in the order they were first enqueued.
  template <class F>
  void for_each_pending(F&& f) const {
    auto r = read([&](detail::pq_conn& c) { return c.run("all_pending", {}, true, s_->where); });
    for (int i = 0; i < r.rows(); ++i) f(read_pending(r, i));
  }

  /// Erases every record and every history event (the identity and the pending queue stay), in one
  /// transaction; other nodes see it as a '*' change. Access counts go with their records (ON DELETE CASCADE,
  /// also for erases by apply() and drop_scope()).
  void clear() {
    write([&](detail::pq_conn& c) {
      c.exec("DELETE FROM memories; DELETE FROM history; UPDATE scope_versions SET version = version + 1", s_->where);
      c.run("add_change", {detail::pq_param::text("*"), detail::pq_param::text(s_->origin)}, false, s_->where);
    });
  }

  /// Adds each increment's count to its memory's access count (access_count_store), in one transaction:
  /// saturating at 2^32-1, ignoring ids not stored and zero counts. No scope version, change feed entry or
  /// notification, and no write lock (each memory's row is locked, so an erase running at the same time either
  /// waits for the count or makes it skip the memory). Retried like apply(): the commit token makes a retry after
  /// an unknown COMMIT outcome stop, so a batch is never counted twice.
  void add_access(std::span<const access_increment> incs) {
    std::map<std::string, std::uint64_t, std::less<>> sum;  // one row per id (ON CONFLICT needs it)
    for (const auto& a : incs)
      if (a.count) sum[a.memory_id] = std::min<std::uint64_t>(sum[a.memory_id] + a.count, max_access_count);
    if (sum.empty()) return;
    nlohmann::json counts = nlohmann::json::object();
    for (const auto& [id, n] : sum) counts[id] = n;
    const auto arg = counts.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    write([&](detail::pq_conn& c) { c.run("add_access", {detail::pq_param::text(arg)}, false, s_->where); },
          false);
  }

  /// Replaces the identity and applies `b` in one transaction. The way to switch embedders: engram::reembed.
  void rebind(const store_identity& id, const write_batch& b) {
    write([&](detail::pq_conn& c) {
      apply_on(c, b);
      put_identity(c, id);
    });
  }

  [[nodiscard]] std::size_t size() const {
    auto r = read([&](detail::pq_conn& c) { return c.run("count", {}, true, s_->where); });
    return static_cast<std::size_t>(r.integer(0, 0));
  }

  /// Checks that the database answers (a round trip on a pooled connection, retried like a read).
  /// @throws postgres_error when it does not within reconnect_timeout_ms.
  void ping() const {
    read([&](detail::pq_conn& c) { c.exec("SELECT 1", s_->where); });
  }

  // ---- moving scopes between databases (used by sharded_postgres_store) ----------------------------------

  /// Every exact scope with records, pending adds or scoped history events here, sorted.
  [[nodiscard]] std::vector<scope> scopes() const {
    auto r = read([&](detail::pq_conn& c) { return c.run("scopes", {}, false, s_->where); });
    std::vector<scope> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(scope{r.text(i, 0), r.text(i, 1), r.text(i, 2)});
    return out;
  }

  /// The rows of exact scope `s`: its records, the history of its records (also of those deleted since the
  /// history table holds scopes, schema version 2), its pending adds and its version, from one snapshot.
  [[nodiscard]] postgres_scope_rows export_scope(const scope& s) const {
    return read([&](detail::pq_conn& c) {
      postgres_scope_rows out;
      out.owner = s;
      const auto p = scope_params(s.user_id, s.agent_id, s.run_id);
      c.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", s_->where);
      auto recs = c.run("scope_records", p, true, s_->where);
      auto evs = c.run("scope_history", p, true, s_->where);
      auto pend = c.run("scope_pending", p, true, s_->where);
      auto ver = c.run("scope_version", p, true, s_->where);
      c.exec("COMMIT", s_->where);
      for (int i = 0; i < recs.rows(); ++i) out.records.push_back(read_record(recs, i));
      for (int i = 0; i < evs.rows(); ++i) out.events.push_back(read_event(evs, i));
      for (int i = 0; i < pend.rows(); ++i) out.pending.push_back(read_pending(pend, i));
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
      apply_on(c, b, false, "import_record");  // the rows are moved as they are
      for (const auto& e : rows.events) c.run("import_event", event_params(e, o), false, s_->where);
      auto p = scope_params(o.user_id, o.agent_id, o.run_id);
      p.push_back(pq_param::int8(static_cast<std::int64_t>(rows.version)));
      c.run("raise_version", p, false, s_->where);
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
      auto p = scope_params(o.user_id, o.agent_id, o.run_id);
      auto ver = c.run("scope_version", p, true, s_->where);
      const std::uint64_t now = ver.rows() ? static_cast<std::uint64_t>(ver.integer(0, 0)) : 0;
      dropped = now == rows.version;
      if (!dropped) return;
      nlohmann::json ev = nlohmann::json::array(), rec = nlohmann::json::array(), pend = nlohmann::json::array();
      for (const auto& e : rows.events) ev.push_back(e.id);
      for (const auto& r : rows.records) rec.push_back(r.id);
      for (const auto& q : rows.pending) pend.push_back(q.id);
      c.run("drop_events", {pq_param::text(ev.dump())}, false, s_->where);
      auto gone = c.run("drop_records", {pq_param::text(rec.dump())}, false, s_->where);
      c.run("drop_pending", {pq_param::text(pend.dump())}, false, s_->where);
      for (int i = 0; i < gone.rows(); ++i)
        c.run("add_change", {pq_param::text(gone.text(i, 0)), pq_param::text(s_->origin)}, false, s_->where);
      c.run("bump_version", p, false, s_->where);
    });
    return dropped;
  }

  /// Whether the pending queue holds an add with this id.
  [[nodiscard]] bool has_pending(std::string_view id) const {
    auto r = read([&](detail::pq_conn& c) { return c.run("has_pending", {detail::pq_param::text(id)}, false, s_->where); });
    return r.rows() && r.view(0, 0) == "t";
  }

  /// How many batches have changed scope `s` (exactly this scope, not the scopes it selects); 0 if none.
  [[nodiscard]] std::uint64_t scope_version(const scope& s) const {
    auto r = read([&](detail::pq_conn& c) {
      return c.run("scope_version",
                   {detail::pq_param::text(s.user_id), detail::pq_param::text(s.agent_id),
                    detail::pq_param::text(s.run_id)},
                   true, s_->where);
    });
    return r.rows() ? static_cast<std::uint64_t>(r.integer(0, 0)) : 0;
  }

  // ---- change feed (used by basic_memory to see other nodes' writes) ------------------------------------

  /// The feed's current position: changes after it are those committed later. Starts the LISTEN connection
  /// (a background thread) on first use.
  [[nodiscard]] std::uint64_t change_position() const {
    start_listening();
    auto r = read([&](detail::pq_conn& c) { return c.run("change_position", {}, true, s_->where); });
    return static_cast<std::uint64_t>(r.integer(0, 0));
  }

  /// True when another node may have written since the last poll_changes(): a notification arrived, the
  /// LISTEN connection was re-established, or feed_poll_ms passed. Cheap (two atomics).
  [[nodiscard]] bool changes_pending() const noexcept {
    if (s_->dirty.load(std::memory_order_acquire)) return true;
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    return now - s_->last_poll.load(std::memory_order_relaxed) >
           std::chrono::duration_cast<std::chrono::steady_clock::duration>(
               std::chrono::milliseconds(s_->options.feed_poll_ms))
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
    try {
      for (const auto& id : unsure) f(id);
      return poll_feed(since, f);
    } catch (...) {  // the caller drops what it was given: report these again next time
      std::lock_guard lock(s_->mtx);
      s_->unsure.insert(s_->unsure.end(), unsure.begin(), unsure.end());
      s_->dirty.store(true, std::memory_order_release);
      throw;
    }
  }

  [[nodiscard]] const std::string& schema() const noexcept { return s_->options.schema; }
  /// This store object's id in the change feed (changes it wrote are not reported back to it).
  [[nodiscard]] const std::string& origin() const noexcept { return s_->origin; }

 private:
  template <class F>
  std::uint64_t poll_feed(std::uint64_t since, F& f) const {
    auto pruned = read([&](detail::pq_conn& c) {
      return c.run("get_meta", {detail::pq_param::text("changes_pruned_through")}, false, s_->where);
    });
    if (pruned.rows()) {
      const auto through = std::stoull(pruned.text(0, 0));
      if (since < through) {  // missed pruned entries: everything may have changed, once
        f(std::string("*"));
        since = through;  // else every later poll would report "*" again until a newer entry exists
      }
    }
    while (true) {
      auto r = read([&](detail::pq_conn& c) {
        return c.run("changes_since",
                     {detail::pq_param::int8(static_cast<std::int64_t>(since)), detail::pq_param::int8(page_size)},
                     true, s_->where);
      });
      for (int i = 0; i < r.rows(); ++i) {
        since = static_cast<std::uint64_t>(r.integer(i, 0));
        if (r.view(i, 2) != s_->origin) f(r.text(i, 1));
      }
      if (r.rows() < page_size) return since;
    }
  }

  static constexpr int page_size = 2000;

  struct state {
    std::string conninfo;
    postgres_store_options options;
    std::string where;
    std::string origin;
    // the pool
    std::mutex mtx;
    std::condition_variable cv;
    std::vector<std::unique_ptr<detail::pq_conn>> idle;
    std::size_t open_count = 0;
    // the LISTEN thread
    std::mutex listen_mtx;
    std::thread listener;
    std::atomic<bool> stop{false};
    std::atomic<bool> dirty{true};
    std::atomic<std::int64_t> last_poll{0};
    std::atomic<std::uint64_t> writes{0};
    std::vector<std::string> unsure;  // ids of batches whose COMMIT outcome is unknown (guarded by mtx)
  };

  void recheck_later(const write_batch& b) const {
    std::lock_guard lock(s_->mtx);
    for (const auto& r : b.upserts) s_->unsure.push_back(r.id);
    for (const auto& id : b.erases) s_->unsure.push_back(id);
    s_->dirty.store(true, std::memory_order_release);
  }

  /// A connection leased from the pool; returned on destruction, or discarded when marked broken.
  class lease {
   public:
    lease(state& st, std::unique_ptr<detail::pq_conn> c) : st_(&st), c_(std::move(c)) {}
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    ~lease() {
      std::lock_guard lock(st_->mtx);
      if (c_ && c_->connected() && PQtransactionStatus(c_->get()) == PQTRANS_IDLE) {
        st_->idle.push_back(std::move(c_));
      } else {
        --st_->open_count;
      }
      st_->cv.notify_one();
    }
    detail::pq_conn& operator*() const noexcept { return *c_; }

   private:
    state* st_;
    std::unique_ptr<detail::pq_conn> c_;
  };

  static void validate_schema_name(const std::string& s) {
    bool ok = !s.empty() && s.size() <= 63 && !(s[0] >= '0' && s[0] <= '9');
    for (const char c : s) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
    if (!ok)
      throw validation_error("postgres_store: schema '" + s +
                             "' is not a lower-case identifier of at most 63 characters ([a-z_][a-z0-9_]*)");
  }

  static void quiet(void*, const char*) noexcept {}  // notices (e.g. "already exists, skipping") are dropped

  /// A new connection, set up: statement timeout, search path, prepared statements.
  static std::unique_ptr<detail::pq_conn> connect(const state& st, bool prepare_statements = true) {
    auto c = std::make_unique<detail::pq_conn>();
    c->connect(st.conninfo, st.where);
    PQsetNoticeProcessor(c->get(), &postgres_store::quiet, nullptr);
    c->exec("SET statement_timeout = " + std::to_string(st.options.statement_timeout_ms) +
                "; SET search_path TO \"" + st.options.schema + "\"",
            st.where);
    if (prepare_statements) prepare_all(*c, st.where);
    return c;
  }

  lease acquire() const {
    std::unique_lock lock(s_->mtx);
    s_->cv.wait(lock, [&] { return !s_->idle.empty() || s_->open_count < s_->options.pool_size; });
    if (!s_->idle.empty()) {
      auto c = std::move(s_->idle.back());
      s_->idle.pop_back();
      return lease(*s_, std::move(c));
    }
    ++s_->open_count;
    lock.unlock();
    try {
      return lease(*s_, connect(*s_));
    } catch (...) {
      lock.lock();
      --s_->open_count;
      s_->cv.notify_one();
      throw;
    }
  }

  /// Runs f(), retrying transient failures (a dropped connection, a restart) with a growing pause until
  /// reconnect_timeout_ms has passed.
  template <class F>
  std::invoke_result_t<F&> retrying(F&& f) const {
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + std::chrono::milliseconds(s_->options.reconnect_timeout_ms);
    auto pause = std::chrono::milliseconds(20);
    while (true) {
      try {
        return f();
      } catch (const postgres_error& e) {
        if (!e.transient() || clock::now() + pause > deadline) throw;
      }
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(500));
    }
  }

  /// Runs f on a pooled connection, retrying transient failures on another one. For reads, and for writes
  /// made idempotent by the caller.
  template <class F>
  std::invoke_result_t<F&, detail::pq_conn&> with_retry(F&& f) const {
    return retrying([&]() -> std::invoke_result_t<F&, detail::pq_conn&> {
      auto l = acquire();
      return f(*l);
    });
  }

  template <class F>
  std::invoke_result_t<F&, detail::pq_conn&> read(F&& f) const {
    return with_retry(std::forward<F>(f));
  }

  /// Runs body(conn) in one transaction under the schema's write lock, with a commit token: a retry after a
  /// lost COMMIT finds the token (unique violation) and stops, so the batch is applied exactly once.
  /// `feed` false (add_access): no write lock, notification or pruning, only the token.
  template <class F>
  void write(F&& body, bool feed = true) {
    const std::string token = make_uuid_v4();
    bool committed = false;
    with_retry([&](detail::pq_conn& c) {
      if (committed) return;
      c.exec("BEGIN", s_->where);
      try {
        if (feed) c.run("write_lock", {}, false, s_->where);
        try {
          c.run("add_commit", {detail::pq_param::text(token)}, false, s_->where);
        } catch (const postgres_error& e) {
          if (e.sqlstate() != "23505") throw;
          committed = true;  // an earlier attempt committed after all
          c.exec("ROLLBACK", s_->where);
          return;
        }
        body(c);
        if (feed) c.run("notify", {}, false, s_->where);
        if (feed && s_->writes.fetch_add(1, std::memory_order_relaxed) % 1000 == 999)
          c.run("prune", {detail::pq_param::text(std::to_string(s_->options.change_retention_s))}, false, s_->where);
        c.exec("COMMIT", s_->where);
        committed = true;
      } catch (...) {
        if (c.connected() && PQtransactionStatus(c.get()) != PQTRANS_IDLE) PQclear(PQexec(c.get(), "ROLLBACK"));
        throw;
      }
    });
  }

  void open() {
    // Schema creation and migration, serialised between nodes opening at once.
    retrying([&] {
      auto c = connect(*s_, false);
      const std::string q = "\"" + s_->options.schema + "\"";
      c->exec("BEGIN; SELECT pg_advisory_xact_lock(hashtext('engram-migrate:' || '" + s_->options.schema +
                  "')); CREATE SCHEMA IF NOT EXISTS " + q +
                  "; CREATE TABLE IF NOT EXISTS engram_meta(key text PRIMARY KEY, value text NOT NULL)",
              s_->where);
      try {
        auto fv = c->exec("SELECT value FROM engram_meta WHERE key = 'format_version'", s_->where);
        if (fv.rows() && fv.text(0, 0) != std::to_string(storage_format_version))
          throw storage_error(s_->where + ": database has storage format version " + fv.text(0, 0) +
                              "; this engram (" + version_string + ") reads version " +
                              std::to_string(storage_format_version));
        auto sv = c->exec("SELECT value FROM engram_meta WHERE key = 'schema_version'", s_->where);
        const std::size_t have = sv.rows() ? std::stoul(sv.text(0, 0)) : 0;
        const auto& steps = migrations();
        if (have > steps.size())
          throw storage_error(s_->where + ": schema version " + std::to_string(have) +
                              " is newer than this engram's (" + std::to_string(steps.size()) + ")");
        for (std::size_t v = have; v < steps.size(); ++v) c->exec(steps[v], s_->where);
        c->exec(access_counts_table, s_->where);
        c->exec("INSERT INTO engram_meta VALUES ('format_version', '" + std::to_string(storage_format_version) +
                    "'), ('schema_version', '" + std::to_string(steps.size()) +
                    "') ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value; COMMIT",
                s_->where);
      } catch (...) {
        if (c->connected()) PQclear(PQexec(c->get(), "ROLLBACK"));
        throw;
      }
    });
  }

  /// Schema migrations: step i takes schema_version i to i + 1. Append, never edit.
  static const std::vector<std::string>& migrations() {
    static const std::vector<std::string> steps = {
        "CREATE TABLE memories(id text PRIMARY KEY, memory text NOT NULL, hash text NOT NULL,"
        " metadata text NOT NULL, user_id text NOT NULL, agent_id text NOT NULL, run_id text NOT NULL,"
        " actor_id text NOT NULL, role text NOT NULL, created_at timestamptz NOT NULL,"
        " updated_at timestamptz NOT NULL, embedding bytea, expiration_date text);"
        "CREATE INDEX memories_scope ON memories(user_id, agent_id, run_id, hash);"
        "CREATE TABLE history(seq bigserial PRIMARY KEY, id text NOT NULL, memory_id text NOT NULL,"
        " old_memory text, new_memory text, event text NOT NULL, created_at timestamptz, updated_at timestamptz,"
        " is_deleted boolean NOT NULL DEFAULT false, actor_id text, role text);"
        "CREATE INDEX history_memory ON history(memory_id, seq);"
        "CREATE TABLE pending(seq bigserial NOT NULL, id text PRIMARY KEY, user_id text NOT NULL,"
        " agent_id text NOT NULL, run_id text NOT NULL, messages text NOT NULL, options text NOT NULL,"
        " created_at text NOT NULL, attempts integer NOT NULL);"
        "CREATE TABLE scope_versions(user_id text NOT NULL, agent_id text NOT NULL, run_id text NOT NULL,"
        " version bigint NOT NULL, PRIMARY KEY (user_id, agent_id, run_id));"
        "CREATE TABLE changes(seq bigserial PRIMARY KEY, memory_id text NOT NULL, origin text NOT NULL,"
        " at timestamptz NOT NULL DEFAULT now());"
        "CREATE TABLE commits(token text PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())",
        // 2: history rows name their record's scope (NULL where written before), so a scope's whole history
        // can move to another shard, also that of its deleted records
        "ALTER TABLE history ADD COLUMN user_id text, ADD COLUMN agent_id text, ADD COLUMN run_id text;"
        "CREATE INDEX history_scope ON history(user_id, agent_id, run_id)"};
    return steps;
  }

  /// Not a migration step: a step would raise schema_version, which older engrams refuse to open.
  static constexpr const char* access_counts_table =
      "CREATE TABLE IF NOT EXISTS access_counts(memory_id text PRIMARY KEY REFERENCES memories(id) ON DELETE"
      " CASCADE, count bigint NOT NULL)";
  static constexpr std::uint32_t max_access_count = 4294967295u;

  static constexpr const char* record_cols =
      "id, memory, hash, metadata, user_id, agent_id, run_id, actor_id, role, created_at, updated_at, embedding, "
      "expiration_date";
  static constexpr const char* history_cols =
      "id, memory_id, old_memory, new_memory, event, created_at, updated_at, is_deleted, actor_id, role";

  static void prepare_all(detail::pq_conn& c, const std::string& w) {
    const std::string rc = record_cols, hc = history_cols;
    c.prepare("get_meta", "SELECT value FROM engram_meta WHERE key = $1", w);
    c.prepare("put_meta",
              "INSERT INTO engram_meta(key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = $2", w);
    c.prepare("get_record", "SELECT " + rc + " FROM memories WHERE id = $1", w);
    c.prepare("record_page", "SELECT " + rc + " FROM memories WHERE id > $1 ORDER BY id LIMIT $2", w);
    c.prepare("count", "SELECT count(*) FROM memories", w);
    const std::string upsert =
        "INSERT INTO memories(" + rc +
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (id) DO UPDATE SET"
        " memory = $2, hash = $3, metadata = $4, user_id = $5, agent_id = $6, run_id = $7,"
        " actor_id = $8, role = $9, created_at = $10, updated_at = $11, embedding = $12, expiration_date = $13";
    c.prepare("upsert", upsert, w);
    c.prepare("import_record", upsert + " WHERE memories.updated_at <= EXCLUDED.updated_at", w);  // newer stays
    c.prepare("is_duplicate",
              "SELECT EXISTS (SELECT 1 FROM memories WHERE id = $1), (SELECT id FROM memories WHERE user_id = $2"
              " AND agent_id = $3 AND run_id = $4 AND hash = $5 AND memory = $6 AND id <> $1 LIMIT 1)",
              w);
    c.prepare("erase", "DELETE FROM memories WHERE id = $1 RETURNING user_id, agent_id, run_id", w);
    c.prepare("add_event",
              "INSERT INTO history(" + hc +
                  ", user_id, agent_id, run_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
              w);
    const std::string in_scope = "user_id = $1 AND agent_id = $2 AND run_id = $3";
    c.prepare("scopes",
              "SELECT user_id, agent_id, run_id FROM memories UNION SELECT user_id, agent_id, run_id FROM pending"
              " UNION SELECT user_id, agent_id, run_id FROM history WHERE user_id IS NOT NULL ORDER BY 1, 2, 3",
              w);
    c.prepare("scope_records", "SELECT " + rc + " FROM memories WHERE " + in_scope + " ORDER BY id", w);
    c.prepare("scope_history",
              "SELECT " + hc + " FROM history WHERE (" + in_scope +
                  ") OR (user_id IS NULL AND memory_id IN (SELECT id FROM memories WHERE " + in_scope +
                  ")) ORDER BY seq",
              w);
    c.prepare("scope_pending",
              "SELECT id, user_id, agent_id, run_id, messages, options, created_at, attempts::bigint FROM pending"
              " WHERE " + in_scope + " ORDER BY seq",
              w);
    c.prepare("import_event",
              "INSERT INTO history(" + hc +
                  ", user_id, agent_id, run_id) SELECT $1::text, $2::text, $3::text, $4::text, $5::text,"
                  " $6::timestamptz, $7::timestamptz, $8::boolean, $9::text, $10::text, $11::text, $12::text,"
                  " $13::text WHERE NOT EXISTS (SELECT 1 FROM history WHERE id = $1::text)",
              w);
    c.prepare("raise_version",
              "INSERT INTO scope_versions VALUES ($1, $2, $3, $4::bigint + 1) ON CONFLICT (user_id, agent_id, run_id)"
              " DO UPDATE SET version = greatest(scope_versions.version, $4::bigint) + 1",
              w);
    const std::string listed = " IN (SELECT jsonb_array_elements_text($1::jsonb))";
    c.prepare("drop_events", "DELETE FROM history WHERE id" + listed, w);
    c.prepare("drop_records", "DELETE FROM memories WHERE id" + listed + " RETURNING id", w);
    c.prepare("drop_pending", "DELETE FROM pending WHERE id" + listed, w);
    // FOR KEY SHARE: a concurrent erase of the memory waits for this count (then cascades to it), or this skips
    // the memory erased meanwhile
    c.prepare("add_access",
              "INSERT INTO access_counts(memory_id, count) SELECT i.key, i.value::bigint FROM jsonb_each_text($1::jsonb)"
              " AS i WHERE EXISTS (SELECT 1 FROM memories WHERE id = i.key FOR KEY SHARE) ORDER BY i.key"
              " ON CONFLICT (memory_id) DO UPDATE SET count = least(access_counts.count + EXCLUDED.count, " +
                  std::to_string(max_access_count) + ")",
              w);
    c.prepare("has_pending", "SELECT EXISTS (SELECT 1 FROM pending WHERE id = $1)", w);
    c.prepare("history_of", "SELECT " + hc + " FROM history WHERE memory_id = $1 ORDER BY seq", w);
    c.prepare("last_event", "SELECT event FROM history WHERE memory_id = $1 ORDER BY seq DESC LIMIT 1", w);
    c.prepare("all_history", "SELECT " + hc + " FROM history ORDER BY memory_id, seq", w);
    c.prepare("enqueue",
              "INSERT INTO pending(id, user_id, agent_id, run_id, messages, options, created_at, attempts)"
              " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::integer) ON CONFLICT (id) DO UPDATE SET user_id = $2,"
              " agent_id = $3, run_id = $4, messages = $5, options = $6, created_at = $7, attempts = $8::integer",
              w);
    c.prepare("dequeue", "DELETE FROM pending WHERE id = $1", w);
    c.prepare("all_pending",
              "SELECT id, user_id, agent_id, run_id, messages, options, created_at, attempts::bigint FROM pending"
              " ORDER BY seq",
              w);
    c.prepare("bump_version",
              "INSERT INTO scope_versions VALUES ($1, $2, $3, 1) ON CONFLICT (user_id, agent_id, run_id)"
              " DO UPDATE SET version = scope_versions.version + 1",
              w);
    c.prepare("scope_version",
              "SELECT version FROM scope_versions WHERE user_id = $1 AND agent_id = $2 AND run_id = $3", w);
    c.prepare("add_change", "INSERT INTO changes(memory_id, origin) VALUES ($1, $2)", w);
    c.prepare("changes_since", "SELECT seq, memory_id, origin FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2", w);
    c.prepare("change_position",
              "SELECT greatest(coalesce(max(seq), 0), coalesce((SELECT value::bigint FROM engram_meta WHERE key ="
              " 'changes_pruned_through'), 0))::bigint FROM changes",
              w);
    c.prepare("write_lock", "SELECT pg_advisory_xact_lock(hashtext('engram-write:' || current_schema()))", w);
    c.prepare("add_commit", "INSERT INTO commits(token) VALUES ($1)", w);
    c.prepare("notify", "SELECT pg_notify('engram_' || current_schema(), '')", w);
    c.prepare("prune",
              "WITH old_commits AS (DELETE FROM commits WHERE at < now() - $1::integer * interval '1 second'),"
              " gone AS (DELETE FROM changes WHERE at < now() - $1::integer * interval '1 second' RETURNING seq)"
              " INSERT INTO engram_meta(key, value) SELECT 'changes_pruned_through', max(seq)::text FROM gone"
              " HAVING count(*) > 0 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
              w);
  }

  std::optional<store_identity> identity_on(detail::pq_conn& c) const {
    auto name = c.run("get_meta", {detail::pq_param::text("embedder")}, false, s_->where);
    auto dim = c.run("get_meta", {detail::pq_param::text("dimension")}, false, s_->where);
    if (!name.rows() || !dim.rows()) return std::nullopt;
    return store_identity{name.text(0, 0), static_cast<std::size_t>(std::stoull(dim.text(0, 0)))};
  }
  void put_identity(detail::pq_conn& c, const store_identity& id) const {
    c.run("put_meta", {detail::pq_param::text("embedder"), detail::pq_param::text(id.embedder)}, false, s_->where);
    c.run("put_meta", {detail::pq_param::text("dimension"), detail::pq_param::text(std::to_string(id.dimension))},
          false, s_->where);
  }

  static detail::pq_param time_param(timestamp t) {
    return detail::pq_param::int8(t.time_since_epoch().count() - detail::pq_epoch_offset_us);
  }
  static std::vector<detail::pq_param> scope_params(const std::string& u, const std::string& a, const std::string& r) {
    return {detail::pq_param::text(u), detail::pq_param::text(a), detail::pq_param::text(r)};
  }

  /// The 13 parameters of add_event / import_event: the event, then its record's scope (NULLs if unknown).
  static std::vector<detail::pq_param> event_params(const history_event& e, const std::optional<scope>& owner) {
    using detail::pq_param;
    return {pq_param::text(e.id), pq_param::text(e.memory_id), pq_param::opt_text(e.old_memory),
            pq_param::opt_text(e.new_memory), pq_param::text(to_string(e.event)), time_param(e.created_at),
            e.updated_at ? time_param(*e.updated_at) : pq_param::null(), pq_param::text(e.is_deleted ? "t" : "f"),
            e.actor_id.empty() ? pq_param::null() : pq_param::text(e.actor_id),
            e.role.empty() ? pq_param::null() : pq_param::text(e.role),
            owner ? pq_param::text(owner->user_id) : pq_param::null(),
            owner ? pq_param::text(owner->agent_id) : pq_param::null(),
            owner ? pq_param::text(owner->run_id) : pq_param::null()};
  }

  std::vector<duplicate_record> apply_on(detail::pq_conn& c, const write_batch& b) const {
    return apply_on(c, b, s_->options.unique_content);
  }
  /// `upsert_statement`: "upsert", or "import_record" (a stored copy updated later is kept).
  std::vector<duplicate_record> apply_on(detail::pq_conn& c, const write_batch& b, bool unique_content,
                                         const char* upsert_statement = "upsert") const {
    using detail::pq_param;
    const auto& w = s_->where;
    std::vector<duplicate_record> dups;
    std::vector<scope> touched;
    std::vector<std::pair<std::string, scope>> owners;  // memory id -> its scope, for the history rows
    auto touch = [&](scope s) {
      if (std::find(touched.begin(), touched.end(), s) == touched.end()) touched.push_back(std::move(s));
    };
    auto change = [&](const std::string& id) {
      c.run("add_change", {pq_param::text(id), pq_param::text(s_->origin)}, false, w);
    };
    for (const auto& r : b.upserts) {
      // with an UPDATE event, a record whose last event is a DELETE was deleted meanwhile (by another node)
      const bool is_update = std::any_of(b.events.begin(), b.events.end(), [&](const history_event& e) {
        return e.memory_id == r.id && e.event == event_kind::update;
      });
      if (unique_content || is_update) {
        auto d = c.run("is_duplicate",
                       {pq_param::text(r.id), pq_param::text(r.user_id), pq_param::text(r.agent_id),
                        pq_param::text(r.run_id), pq_param::text(r.hash), pq_param::text(r.memory)},
                       false, w);
        if (d.view(0, 0) == "f" && is_update) {
          auto last = c.run("last_event", {pq_param::text(r.id)}, false, w);
          if (last.rows() && last.view(0, 0) == to_string(event_kind::del))
            throw not_found("update: memory '" + r.id + "' no longer exists (deleted by another node)");
        }
        if (unique_content && d.view(0, 0) == "f" && !d.is_null(0, 1)) {
          dups.push_back({r.id, d.text(0, 1)});
          continue;
        }
      }
      c.run(upsert_statement,
            {pq_param::text(r.id), pq_param::text(r.memory), pq_param::text(r.hash),
             pq_param::text((r.metadata.is_null() ? nlohmann::json::object() : r.metadata)
                                .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)),
             pq_param::text(r.user_id), pq_param::text(r.agent_id), pq_param::text(r.run_id),
             pq_param::text(r.actor_id), pq_param::text(r.role), time_param(r.created_at), time_param(r.updated_at),
             pq_param::bytes(detail::pq_floats_to_bytes(r.embedding)), pq_param::opt_text(r.expiration_date)},
            false, w);
      touch(r.scope());
      change(r.id);
      owners.emplace_back(r.id, r.scope());
    }
    for (const auto& id : b.erases) {
      auto gone = c.run("erase", {pq_param::text(id)}, false, w);
      if (gone.rows()) {
        scope s{gone.text(0, 0), gone.text(0, 1), gone.text(0, 2)};
        touch(s);
        change(id);
        owners.emplace_back(id, std::move(s));
      }
    }
    for (const auto& e : b.events) {
      if (std::any_of(dups.begin(), dups.end(), [&](const duplicate_record& d) { return d.dropped_id == e.memory_id; }))
        continue;
      const auto owner = std::find_if(owners.begin(), owners.end(), [&](const auto& o) { return o.first == e.memory_id; });
      c.run("add_event", event_params(e, owner == owners.end() ? std::optional<scope>{} : owner->second), false, w);
    }
    for (const auto& p : b.enqueued) {
      nlohmann::json msgs = nlohmann::json::array();
      for (const auto& m : p.messages) msgs.push_back({{"role", m.role}, {"content", m.content}, {"name", m.name}});
      const auto dump = [](const nlohmann::json& j) {
        return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      };
      c.run("enqueue",
            {pq_param::text(p.id), pq_param::text(p.owner.user_id), pq_param::text(p.owner.agent_id),
             pq_param::text(p.owner.run_id), pq_param::text(dump(msgs)), pq_param::text(dump(p.options)),
             pq_param::text(p.created_at), pq_param::text(std::to_string(p.attempts))},
            false, w);
    }
    for (const auto& id : b.dequeued) c.run("dequeue", {pq_param::text(id)}, false, w);
    for (const auto& s : touched) c.run("bump_version", scope_params(s.user_id, s.agent_id, s.run_id), false, w);
    return dups;
  }

  timestamp time_of(const detail::pq_result& r, int row, int col) const {
    return timestamp{std::chrono::microseconds{r.timestamp_us(row, col)}};
  }

  record read_record(const detail::pq_result& r, int i) const {
    record out;
    out.id = r.text(i, 0);
    out.memory = r.text(i, 1);
    out.hash = r.text(i, 2);
    out.metadata = nlohmann::json::parse(r.view(i, 3), nullptr, false);
    if (out.metadata.is_discarded()) throw storage_error(s_->where + ": metadata of '" + out.id + "' is not JSON");
    out.user_id = r.text(i, 4);
    out.agent_id = r.text(i, 5);
    out.run_id = r.text(i, 6);
    out.actor_id = r.text(i, 7);
    out.role = r.text(i, 8);
    out.created_at = time_of(r, i, 9);
    out.updated_at = time_of(r, i, 10);
    if (!r.is_null(i, 11)) out.embedding = detail::pq_bytes_to_floats(r.view(i, 11));
    out.expiration_date = r.opt_text(i, 12);
    return out;
  }

  history_event read_event(const detail::pq_result& r, int i) const {
    history_event e;
    e.id = r.text(i, 0);
    e.memory_id = r.text(i, 1);
    e.old_memory = r.opt_text(i, 2);
    e.new_memory = r.opt_text(i, 3);
    try {
      e.event = parse_event_kind(r.text(i, 4));
    } catch (const validation_error& err) {
      throw storage_error(s_->where + ": " + err.what());
    }
    e.created_at = time_of(r, i, 5);
    if (!r.is_null(i, 6)) e.updated_at = time_of(r, i, 6);
    e.is_deleted = r.integer(i, 7) != 0;
    if (!r.is_null(i, 8)) e.actor_id = r.text(i, 8);
    if (!r.is_null(i, 9)) e.role = r.text(i, 9);
    return e;
  }

  pending_add read_pending(const detail::pq_result& r, int i) const {
    pending_add p;
    p.id = r.text(i, 0);
    p.owner = scope{r.text(i, 1), r.text(i, 2), r.text(i, 3)};
    const auto msgs = nlohmann::json::parse(r.view(i, 4), nullptr, false);
    p.options = nlohmann::json::parse(r.view(i, 5), nullptr, false);
    if (!msgs.is_array() || p.options.is_discarded())
      throw storage_error(s_->where + ": pending add '" + p.id + "' is not valid JSON");
    for (const auto& m : msgs)
      p.messages.push_back(message{m.value("role", "user"), m.value("content", ""), m.value("name", "")});
    p.created_at = r.text(i, 6);
    p.attempts = static_cast<std::uint32_t>(r.integer(i, 7));
    return p;
  }

  // ---- the LISTEN connection -----------------------------------------------------------------------------

  void start_listening() const {
    std::lock_guard lock(s_->listen_mtx);
    if (s_->listener.joinable()) return;
    s_->listener = std::thread([st = s_.get()] { listen_loop(*st); });
  }

  /// Sets `dirty` on every notification, and after every (re)connection.
  static void listen_loop(state& st) {
    while (!st.stop.load()) {
      std::unique_ptr<detail::pq_conn> c;
      try {
        c = connect(st, false);
        c->exec("LISTEN \"engram_" + st.options.schema + "\"", st.where);
      } catch (const storage_error&) {
        for (int i = 0; i < 10 && !st.stop.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      st.dirty.store(true, std::memory_order_release);  // anything may have happened while not listening
      while (!st.stop.load()) {
        pollfd pfd{PQsocket(c->get()), POLLIN, 0};
        if (::poll(&pfd, 1, 100) < 0) continue;
        if (!PQconsumeInput(c->get()) || PQstatus(c->get()) != CONNECTION_OK) break;
        bool any = false;
        while (PGnotify* n = PQnotifies(c->get())) {
          PQfreemem(n);
          any = true;
        }
        if (any) st.dirty.store(true, std::memory_order_release);
      }
    }
  }

  void stop_listening() noexcept {
    if (!s_ || !s_->listener.joinable()) return;
    s_->stop.store(true);
    s_->listener.join();
  }

  std::unique_ptr<state> s_;

  // ==== scope loading (basic_memory's partition cache: memory_config::partition_cache_bytes) =================
  // Kept in one block: the statements below are prepared on a connection the first time it runs them, one per
  // combination of the ids a query scope names, so PostgreSQL plans each with the (user_id, agent_id, run_id)
  // index instead of a generic plan that scans the table.
 public:
  /// Calls f(const record&) for every record query scope `q` selects (every record when `q` is empty), by id,
  /// fetched in pages (not one snapshot: records written meanwhile may or may not be seen).
  template <class F>
  void for_each_in_scope(const scope& q, F&& f) const {
    static const std::vector<std::string> sql = scope_statements(std::string("SELECT ") + record_cols + " FROM memories",
                                                                  "id > $", " ORDER BY id LIMIT $");
    static const std::vector<std::string> names = scope_statement_names("scope_page_");
    for_each_scope_row(q, names, sql, [&](const detail::pq_result& page, int i) { f(read_record(page, i)); });
  }

  /// Calls f(const std::string& id, std::uint32_t count) for every memory query scope `q` selects (all when `q`
  /// is empty) whose access count is not zero, by id, fetched in pages like for_each_in_scope.
  template <class F>
  void for_each_access_count(const scope& q, F&& f) const {
    static const std::vector<std::string> sql = scope_statements(
        "SELECT id, count FROM memories JOIN access_counts ON memory_id = id AND count > 0", "id > $",
        " ORDER BY id LIMIT $");
    static const std::vector<std::string> names = scope_statement_names("scope_access_");
    for_each_scope_row(q, names, sql, [&](const detail::pq_result& page, int i) {
      const std::string id = page.text(i, 0);
      f(id, static_cast<std::uint32_t>(std::min<std::int64_t>(page.integer(i, 1), max_access_count)));
    });
  }

  /// The sum of the versions (scope_versions, bumped in the transaction of every batch writing the scope) of
  /// the exact scopes query scope `q` selects (all when `q` is empty): it grows with every batch that writes or
  /// erases a record `q` selects, on any node, and with clear(). One query.
  [[nodiscard]] std::uint64_t scope_selection_version(const scope& q) const {
    static const std::vector<std::string> sql =
        scope_statements("SELECT coalesce(sum(version), 0)::bigint FROM scope_versions", "", "");
    static const std::vector<std::string> names = scope_statement_names("scope_version_");
    const auto [mask, params] = scope_filter(q);
    auto r = read([&](detail::pq_conn& c) { return run_lazily_prepared(c, names[mask].c_str(), sql[mask], params); });
    return static_cast<std::uint64_t>(r.integer(0, 0));
  }

 private:
  /// Calls row(page, i) for every row of `sql[mask]` (named `names[mask]`; made by scope_statements with
  /// "id > $" and " ORDER BY id LIMIT $", the id in column 0) for `q`, page after page.
  template <class Row>
  void for_each_scope_row(const scope& q, const std::vector<std::string>& names, const std::vector<std::string>& sql,
                          Row&& row) const {
    const auto [mask, params] = scope_filter(q);
    std::string after;
    while (true) {
      auto page = read([&](detail::pq_conn& c) {
        auto p = params;
        p.push_back(detail::pq_param::text(after));
        p.push_back(detail::pq_param::int8(page_size));
        return run_lazily_prepared(c, names[mask].c_str(), sql[mask], p);
      });
      const int n = page.rows();
      for (int i = 0; i < n; ++i) row(page, i);
      if (n < page_size) return;
      after = page.text(n - 1, 0);
    }
  }

  /// Which ids `q` names (bit 0 user, 1 agent, 2 run) and their values, in that order.
  static std::pair<std::size_t, std::vector<detail::pq_param>> scope_filter(const scope& q) {
    std::size_t mask = 0;
    std::vector<detail::pq_param> params;
    const std::string* ids[] = {&q.user_id, &q.agent_id, &q.run_id};
    for (std::size_t i = 0; i < 3; ++i)
      if (!ids[i]->empty()) {
        mask |= std::size_t{1} << i;
        params.push_back(detail::pq_param::text(*ids[i]));
      }
    return {mask, std::move(params)};
  }
  /// For each mask: `head` WHERE <the named ids> [AND `more`<n>] [`tail`<n+1>] (n: the next parameter number).
  static std::vector<std::string> scope_statements(const std::string& head, const std::string& more,
                                                     const std::string& tail) {
    std::vector<std::string> out(8);
    const char* cols[] = {"user_id", "agent_id", "run_id"};
    for (std::size_t mask = 0; mask < 8; ++mask) {
      std::vector<std::string> conds;
      int n = 0;
      for (std::size_t i = 0; i < 3; ++i)
        if (mask & (std::size_t{1} << i)) conds.push_back(std::string(cols[i]) + " = $" + std::to_string(++n));
      if (!more.empty()) conds.push_back(more + std::to_string(++n));
      std::string sql = head;
      for (std::size_t i = 0; i < conds.size(); ++i) sql += (i ? " AND " : " WHERE ") + conds[i];
      if (!tail.empty()) sql += tail + std::to_string(++n);
      out[mask] = std::move(sql);
    }
    return out;
  }
  static std::vector<std::string> scope_statement_names(const std::string& prefix) {
    std::vector<std::string> out(8);
    for (std::size_t mask = 0; mask < 8; ++mask) out[mask] = prefix + std::to_string(mask);
    return out;
  }

  /// Runs prepared statement `name`, preparing it from `sql` first when this connection does not have it
  /// (SQLSTATE 26000). Outside a transaction only: the failed first attempt would abort one.
  detail::pq_result run_lazily_prepared(detail::pq_conn& c, const char* name, const std::string& sql,
                                        const std::vector<detail::pq_param>& params) const {
    try {
      return c.run(name, params, true, s_->where);
    } catch (const postgres_error& e) {
      if (e.sqlstate() != "26000") throw;
    }
    c.prepare(name, sql, s_->where);
    return c.run(name, params, true, s_->where);
  }
  // ==== end of scope loading =================================================================================
};

}  // namespace engram::inline v0
