// engram-requires: postgres
#pragma once
/// @file store/postgres/options.hpp
/// postgres_store's options, shared by the store, its parts and parse_postgres_url.

#include <cstddef>
#include <string>

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
  /// When others wait for a memory's write lock, append() (a memory's writes) COMMITs without waiting for the WAL
  /// flush and sync() flushes, outside the lock; concurrent writers share one flush (store/postgres/
  /// group_flush.hpp). Other nodes may read such a batch before its flush (for about one flush's time); a crash
  /// of the database server in that window loses it, and its writer's sync() fails (SQLSTATE 08007) instead of
  /// reporting it durable. false: every COMMIT waits for its flush, under the memory's write lock.
  bool group_commit = true;
};

}  // namespace engram::inline v0
