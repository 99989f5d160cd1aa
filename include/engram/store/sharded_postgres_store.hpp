// engram-requires: postgres
#pragma once
/// @file store/sharded_postgres_store.hpp
/// postgres_store spread over several PostgreSQL databases (shards), so that no single database holds
/// everything: the same store, configured with a list of shards.
///
/// Placement: every row of a scope (its records, its history, its pending adds, its version) lives in one
/// shard, chosen by consistent hashing of the scope key `user_id \x1f agent_id \x1f run_id`, followed by
/// `\x1f tenant \x1f extra` when either is set (the record's exact scope, the unit basic_memory partitions by) on a ring of `virtual_nodes` points per shard. A shard's points
/// come from its `name` only, so the shard list may be reordered freely, and adding a shard moves only the
/// scopes whose ring position the new shard takes over (about 1/(n+1) of them).
///
/// Ids carry no shard: get(id), history(id) and erases ask the shards in turn (one indexed lookup each).
/// Operations without a scope span every shard: for_each (shard after shard), size, clear (reset), bind,
/// rebind (reembed), and the change feed, which listens on every shard.
///
/// Atomicity: a batch whose rows fall in one shard (every add, update and delete of basic_memory: they touch
/// one exact scope) is one transaction. A batch spanning shards (delete_all over several exact scopes, reset,
/// reembed) is one transaction per shard, applied in shard order: a failure part way leaves the earlier
/// shards' parts applied (each whole), and the operation can simply be repeated.
///
/// Adding a shard:
///   1. create the database (the schema is created on first open);
///   2. restart the nodes with the new shard list (old shards keep their names). They read every shard, so
///      every memory stays visible; new writes of a scope the new shard owns go to it;
///   3. call rebalance() (from one process): for each scope held by a shard that no longer owns it, its rows
///      are copied to the owner in one transaction (import_scope: idempotent; a copy there updated later
///      is kept), then deleted from the old shard in one transaction that first checks the scope's version
///      did not move meanwhile (else the scope is copied again). An interrupted rebalance is finished by
///      running it again. Until a scope has moved, a record of it that a node updated in step 2 is held by
///      both shards and get(id) may return the older copy (the first shard's); searches are not affected.
///   Nodes still on the old list do not read the new shard: finish step 2 before step 3.
///
/// Access counts (add_access) go to the shard owning the memory's scope, one transaction per shard. Until
/// rebalance() moves a scope, hits of its records still in the old shard are not counted (the new owner does
/// not hold them), and a record held by both shards is reported by for_each_access_count once per shard.
/// rebalance() carries a scope's counts to the new owner after deleting the scope from the old shard: counts
/// added to the old shard during the move, or all of the scope's counts when the process stops between that
/// delete and the copy, are lost (counts only rank, see ranking_weights::access).

#include <engram/concepts.hpp>
#include <engram/store/postgres/hash_ring.hpp>
#include <engram/error.hpp>
#include <engram/record.hpp>
#include <engram/scope.hpp>
#include <engram/store/postgres_store.hpp>
#include <engram/write_batch.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace engram::inline v0 {

/// One database of a sharded store.
struct postgres_shard {
  std::string name;      ///< its identity on the hash ring: keep it when the database moves (default: conninfo)
  std::string conninfo;  ///< libpq connection string or URL
};

/// Options of sharded_postgres_store.
struct sharded_postgres_options {
  std::vector<postgres_shard> shards{};     ///< at least one; names unique
  postgres_store_options store{};           ///< for every shard (same schema name in each database)
  std::size_t virtual_nodes = 128;          ///< ring points per shard: more = more even spread
};

/// What rebalance() did.
struct rebalance_report {
  std::size_t scopes_moved = 0;
  std::size_t records_moved = 0;
  std::size_t retries = 0;  ///< moves repeated because a write changed the scope meanwhile
  friend bool operator==(const rebalance_report&, const rebalance_report&) = default;
};

/// The scope key placed on the ring: the three ids joined by U+001F (which ids cannot contain), then the tenant
/// and extra when either is set (a scope of Mem0's keys keeps the key, and so the shard, it had before).
inline std::string shard_key(const scope& s) {
  auto key = s.user_id + '\x1f' + s.agent_id + '\x1f' + s.run_id;
  if (!s.tenant.empty() || !s.extra.empty()) key += '\x1f' + s.tenant + '\x1f' + s.extra;
  return key;
}

/// Records, history and pending queue spread over several databases by scope (see the file comment).
/// Satisfies record_store, pending_store, change_feed_store and access_count_store like postgres_store. Thread-safe; movable.
class sharded_postgres_store {
 public:
  /// Records, history and pending adds keep their tenant and extra scope keys (scope_keyed_store).
  static constexpr bool keeps_scope_keys = true;

  /// Opens (creating or migrating the schema in) every shard.
  /// @throws validation_error for no shard or a repeated name; postgres_error when a shard cannot be reached.
  explicit sharded_postgres_store(sharded_postgres_options o)
      : ring_(names_of(o.shards), o.virtual_nodes),
        feed_(std::make_unique<feed_state>()),
        commits_(std::make_unique<commit_state>()) {
    for (const auto& s : o.shards) shards_.push_back(std::make_unique<postgres_store>(s.conninfo, o.store));
  }

  [[nodiscard]] std::size_t shard_count() const noexcept { return shards_.size(); }
  /// The shard owning exact scope `s`.
  [[nodiscard]] std::size_t shard_of(const scope& s) const noexcept { return ring_.owner(shard_key(s)); }
  /// Shard `i` itself (e.g. to count its rows). @pre i < shard_count()
  [[nodiscard]] postgres_store& shard(std::size_t i) noexcept { return *shards_[i]; }
  [[nodiscard]] const postgres_store& shard(std::size_t i) const noexcept { return *shards_[i]; }

  /// Binds the identity in every shard (each refuses another, as postgres_store::bind).
  void bind(const store_identity& id) {
    for (auto& s : shards_) s->bind(id);
  }
  /// The identity bound so far (the first shard's), if any.
  [[nodiscard]] std::optional<store_identity> identity() const { return shards_.front()->identity(); }

  /// Applies the batch: its rows go to their scopes' shards, one transaction per shard touched, in shard
  /// order (see Atomicity above). @returns the new records dropped as duplicates.
  /// @throws postgres_error; earlier shards' parts stay applied when a later shard fails.
  std::vector<duplicate_record> apply(const write_batch& b) {
    std::vector<duplicate_record> dups;
    auto parts = split(b);
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (parts[i].empty()) continue;
      auto d = shards_[i]->apply(parts[i]);
      dups.insert(dups.end(), d.begin(), d.end());
    }
    return dups;
  }

  /// First half of a two-phase commit (engram::two_phase_store), as postgres_store::append in each shard the batch
  /// touches (one transaction per shard, in shard order, as apply()). `dropped`, when given, receives the new
  /// records dropped as duplicates. @returns the ticket to pass to sync() (0: nothing to wait for).
  std::uint64_t append(const write_batch& b, std::vector<duplicate_record>* dropped = nullptr) {
    return append(b, dropped, [] { return true; });
  }
  /// As append(b, dropped), asking `defer()` before each shard's COMMIT (postgres_store::append).
  template <class Defer>
  std::uint64_t append(const write_batch& b, std::vector<duplicate_record>* dropped, Defer&& defer) {
    auto parts = split(b);
    bool any = false;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (parts[i].empty()) continue;
      std::vector<duplicate_record> d;
      any = shards_[i]->append(parts[i], &d, defer) != 0 || any;
      if (dropped) dropped->insert(dropped->end(), d.begin(), d.end());
    }
    if (!any) return 0;
    std::vector<std::uint64_t> upto;  // each shard's newest ticket: sync() waits for all of them
    for (const auto& sh : shards_) upto.push_back(sh->appended());
    std::lock_guard lock(commits_->mtx);
    const auto t = ++commits_->last;
    commits_->unsynced.emplace(t, std::move(upto));
    return t;
  }

  /// Second half: returns once the batch appended with `ticket` and every earlier one is durable in every shard
  /// (postgres_store::sync of each shard, up to the newest batch it held when `ticket` was given).
  /// @throws postgres_error as postgres_store::sync.
  void sync(std::uint64_t ticket) const {
    std::vector<std::uint64_t> upto;
    {
      std::lock_guard lock(commits_->mtx);
      const auto it = commits_->unsynced.find(ticket);
      if (it == commits_->unsynced.end()) return;  // 0, or a later ticket's sync covered it
      upto = it->second;
    }
    for (std::size_t i = 0; i < shards_.size(); ++i) shards_[i]->sync(upto[i]);
    std::lock_guard lock(commits_->mtx);
    commits_->unsynced.erase(commits_->unsynced.begin(), commits_->unsynced.upper_bound(ticket));
  }

  /// The record, from the first shard holding it. O(shards) lookups at most.
  [[nodiscard]] std::optional<record> get(std::string_view id) const {
    for (const auto& s : shards_)
      if (auto r = s->get(id)) return r;
    return std::nullopt;
  }

  /// Calls f(const record&) for every record: shard after shard, each by id.
  template <class F>
  void for_each(F&& f) const {
    for (const auto& s : shards_) s->for_each(f);
  }

  /// The events of one memory id, oldest first (they live in one shard: the first holding any is asked).
  [[nodiscard]] std::vector<history_event> history(std::string_view memory_id) const {
    for (const auto& s : shards_) {
      auto h = s->history(memory_id);
      if (!h.empty()) return h;
    }
    return {};
  }

  /// Calls f(const history_event&) for every event, each memory's oldest first.
  template <class F>
  void for_each_history(F&& f) const {
    for (const auto& s : shards_) s->for_each_history(f);
  }

  /// Calls f(const pending_add&) for every queued add: each shard's queue in its order, merged by created_at.
  template <class F>
  void for_each_pending(F&& f) const {
    std::vector<std::vector<pending_add>> queues(shards_.size());
    for (std::size_t i = 0; i < shards_.size(); ++i)
      shards_[i]->for_each_pending([&](const pending_add& p) { queues[i].push_back(p); });
    std::vector<std::size_t> at(shards_.size(), 0);
    while (true) {
      std::size_t best = queues.size();
      for (std::size_t i = 0; i < queues.size(); ++i)
        if (at[i] < queues[i].size() &&
            (best == queues.size() || queues[i][at[i]].created_at < queues[best][at[best]].created_at))
          best = i;
      if (best == queues.size()) return;
      f(std::as_const(queues[best][at[best]++]));
    }
  }

  /// Erases every record and history event in every shard (one transaction per shard).
  void clear() {
    for (auto& s : shards_) s->clear();
  }

  /// Purges query scope `q` in every shard (see postgres_store::purge; its exact scopes may hash to several): one
  /// transaction per shard, in shard order; a failure part way leaves the shards done purged, and repeating the
  /// call finishes it. @returns how many records.
  std::size_t purge(const scope& q) {
    if (q.empty()) throw validation_error("sharded_postgres_store: purge needs a scope (user_id, agent_id or run_id)");
    std::size_t n = 0;
    for (auto& s : shards_) n += s->purge(q);
    return n;
  }

  /// Replaces the identity and applies `b` in every shard (each shard its part, one transaction each).
  void rebind(const store_identity& id, const write_batch& b) {
    auto parts = split(b);
    for (std::size_t i = 0; i < parts.size(); ++i) shards_[i]->rebind(id, parts[i]);
  }

  [[nodiscard]] std::size_t size() const {
    std::size_t n = 0;
    for (const auto& s : shards_) n += s->size();
    return n;
  }

  /// The version of exact scope `s`, from its shard.
  [[nodiscard]] std::uint64_t scope_version(const scope& s) const { return shards_[shard_of(s)]->scope_version(s); }

  // ---- scope loading (basic_memory's partition cache, memory_config::partition_cache_bytes) -------------

  /// Calls f(const record&) for every record query scope `q` selects (all when `q` is empty). A query scope
  /// naming fewer than all three ids selects exact scopes that may live on any shard, so every shard is asked.
  template <class F>
  void for_each_in_scope(const scope& q, F&& f) const {
    for (const auto& s : shards_) s->for_each_in_scope(q, f);
  }

  /// The sum over shards of the versions of the exact scopes `q` selects: grows with every batch that writes a
  /// record `q` selects, on any node and any shard.
  [[nodiscard]] std::uint64_t scope_selection_version(const scope& q) const {
    std::uint64_t v = 0;
    for (const auto& s : shards_) v += s->scope_selection_version(q);
    return v;
  }

  /// Checks that every shard answers. @throws postgres_error naming the first that does not.
  void ping() const {
    for (const auto& s : shards_) s->ping();
  }

  // ---- access counts (access_count_store) ----------------------------------------------------------------

  /// Adds the increments in the shards owning their scopes (as apply() places records): one transaction per
  /// shard, in shard order.
  void add_access(std::span<const access_increment> incs) {
    std::vector<std::vector<access_increment>> parts(shards_.size());
    for (const auto& a : incs) parts[shard_of(a.owner)].push_back(a);
    for (std::size_t i = 0; i < parts.size(); ++i)
      if (!parts[i].empty()) shards_[i]->add_access(parts[i]);
  }

  /// Calls f(const std::string& id, std::uint32_t count) for every memory `q` selects whose count is not zero,
  /// asking every shard as for_each_in_scope does.
  template <class F>
  void for_each_access_count(const scope& q, F&& f) const {
    for (const auto& s : shards_) s->for_each_access_count(q, f);
  }

  // ---- change feed over every shard ---------------------------------------------------------------------

  /// A position standing for every shard's current position (kept here: positions this object did not give,
  /// or gave more than `kept_positions` positions ago, make poll_changes report "*").
  [[nodiscard]] std::uint64_t change_position() const {
    std::vector<std::uint64_t> at;
    for (const auto& s : shards_) at.push_back(s->change_position());
    return remember(std::move(at));
  }

  [[nodiscard]] bool changes_pending() const noexcept {
    return std::any_of(shards_.begin(), shards_.end(), [](const auto& s) { return s->changes_pending(); });
  }

  /// Calls f(memory_id) for each record other store objects changed in any shard after `since`.
  template <class F>
  std::uint64_t poll_changes(std::uint64_t since, F&& f) const {
    std::vector<std::uint64_t> from;
    {
      std::lock_guard lock(feed_->mtx);
      if (auto it = feed_->positions.find(since); it != feed_->positions.end()) from = it->second;
    }
    if (from.empty()) {  // unknown position: everything may have changed
      f(std::string("*"));
      return change_position();
    }
    for (std::size_t i = 0; i < shards_.size(); ++i) from[i] = shards_[i]->poll_changes(from[i], f);
    return remember(std::move(from));
  }

  // ---- adding a shard ----------------------------------------------------------------------------------

  /// Moves every scope held by a shard other than its owner on the ring to its owner: per scope, a copy in
  /// one transaction on the owner, then a delete in one transaction on the old shard, checked against the
  /// scope's version (repeated when a write came in between). Repeats passes until nothing is misplaced.
  /// Safe to interrupt and run again. @throws storage_error when a scope keeps changing (10 tries).
  rebalance_report rebalance() {
    rebalance_report report;
    for (int pass = 0; pass < 10; ++pass) {
      bool moved_any = false;
      for (std::size_t from = 0; from < shards_.size(); ++from) {
        for (const auto& s : shards_[from]->scopes()) {
          const auto to = shard_of(s);
          if (to == from) continue;
          move_scope(s, from, to, report);
          moved_any = true;
        }
      }
      if (!moved_any) return report;
    }
    throw storage_error("sharded_postgres_store: rebalance: scopes were still being written to their old shards "
                        "after 10 passes; stop the nodes using the old shard list and run it again");
  }

 private:
  struct feed_state {
    std::mutex mtx;
    std::uint64_t next = 1;
    std::map<std::uint64_t, std::vector<std::uint64_t>> positions;
  };
  struct commit_state {  // append/sync: per ticket not yet synced, each shard's ticket to wait for
    std::mutex mtx;
    std::uint64_t last = 0;
    std::map<std::uint64_t, std::vector<std::uint64_t>> unsynced;
  };
  static constexpr std::size_t kept_positions = 64;

  static std::vector<std::string> names_of(const std::vector<postgres_shard>& shards) {
    if (shards.empty()) throw validation_error("sharded_postgres_store: at least one shard is needed");
    std::vector<std::string> names;
    for (const auto& s : shards) names.push_back(s.name.empty() ? s.conninfo : s.name);
    return names;
  }

  std::uint64_t remember(std::vector<std::uint64_t> at) const {
    std::lock_guard lock(feed_->mtx);
    const auto pos = feed_->next++;
    feed_->positions.emplace(pos, std::move(at));
    while (feed_->positions.size() > kept_positions) feed_->positions.erase(feed_->positions.begin());
    return pos;
  }

  /// The shard holding record `id` (or its history), if any.
  std::optional<std::size_t> locate(const std::string& id) const {
    for (std::size_t i = 0; i < shards_.size(); ++i)
      if (shards_[i]->get(id)) return i;
    for (std::size_t i = 0; i < shards_.size(); ++i)
      if (!shards_[i]->history(id).empty()) return i;
    return std::nullopt;
  }

  /// `b` cut by shard: records and pending adds by their scope, erases and events by where their record is
  /// (events of a record in the batch follow it), dequeues by where the pending add is (or is enqueued by
  /// this batch; ids queued nowhere are left out, as a single store ignores them).
  std::vector<write_batch> split(const write_batch& b) const {
    std::vector<write_batch> parts(shards_.size());
    std::map<std::string, std::size_t, std::less<>> where;  // memory id -> shard
    for (const auto& r : b.upserts) {
      const auto i = shard_of(r.scope());
      where[r.id] = i;
      parts[i].upserts.push_back(r);
    }
    auto shard_for = [&](const std::string& id) -> std::optional<std::size_t> {
      if (auto it = where.find(id); it != where.end()) return it->second;
      auto i = locate(id);
      if (i) where[id] = *i;
      return i;
    };
    for (const auto& id : b.erases)
      if (auto i = shard_for(id)) parts[*i].erases.push_back(id);  // held nowhere: nothing to erase
    for (const auto& e : b.events) parts[shard_for(e.memory_id).value_or(0)].events.push_back(e);
    std::map<std::string, std::size_t, std::less<>> queued;  // pending id -> shard, for this batch's enqueues
    for (const auto& p : b.enqueued) {
      parts[shard_of(p.owner)].enqueued.push_back(p);
      queued[p.id] = shard_of(p.owner);
    }
    for (const auto& id : b.dequeued) {
      if (auto it = queued.find(id); it != queued.end()) {
        parts[it->second].dequeued.push_back(id);
        continue;
      }
      for (std::size_t i = 0; i < shards_.size(); ++i)
        if (shards_[i]->has_pending(id)) {
          parts[i].dequeued.push_back(id);
          break;
        }
    }
    return parts;
  }

  void move_scope(const scope& s, std::size_t from, std::size_t to, rebalance_report& report) {
    for (int attempt = 0; attempt < 10; ++attempt) {
      auto rows = shards_[from]->export_scope(s);
      shards_[to]->import_scope(rows);
      const auto counts = access_counts_of(*shards_[from], rows);  // dropped with the records
      if (shards_[from]->drop_scope(rows)) {
        shards_[to]->add_access(counts);  // after the drop: a repeated copy would add them twice
        ++report.scopes_moved;
        report.records_moved += rows.records.size();
        return;
      }
      ++report.retries;
    }
    throw storage_error("sharded_postgres_store: rebalance: scope (user_id '" + s.user_id + "', agent_id '" +
                        s.agent_id + "', run_id '" + s.run_id + "', tenant '" + s.tenant + "', extra '" + s.extra +
                        "') changed during 10 attempts to move it");
  }

  /// The nonzero access counts in `shard` of the records `rows` lists (`rows.owner` as a query scope also
  /// selects narrower scopes: their records stay).
  static std::vector<access_increment> access_counts_of(const postgres_store& shard, const postgres_scope_rows& rows) {
    std::set<std::string, std::less<>> ids;
    for (const auto& r : rows.records) ids.insert(r.id);
    std::vector<access_increment> out;
    shard.for_each_access_count(rows.owner, [&](const std::string& id, std::uint32_t n) {
      if (ids.contains(id)) out.push_back({id, rows.owner, n});
    });
    return out;
  }

  detail::hash_ring ring_;
  std::vector<std::unique_ptr<postgres_store>> shards_;
  std::unique_ptr<feed_state> feed_;
  std::unique_ptr<commit_state> commits_;
};

}  // namespace engram::inline v0
