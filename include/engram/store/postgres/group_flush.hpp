// engram-requires: postgres
#pragma once
/// @file store/postgres/group_flush.hpp
/// postgres_store's group commit (postgres_store_options::group_commit): a write transaction COMMITs with
/// `synchronous_commit = off` (it returns without waiting for its WAL to reach the disk), and a later flush makes
/// it durable. A flush is one statement committed synchronously: its commit record is flushed with everything the
/// WAL holds before it, so one flush serves every write committed before it began, and writes go on committing
/// meanwhile.
///
/// A crash of the database server before the flush loses the writes the WAL had not flushed yet. So a flush also
/// looks for the commit token of each write it covers (every write transaction inserts one): a write whose token
/// is missing was lost, and its sync() fails with SQLSTATE 08007 (transaction resolution unknown). Its records are
/// handed to the store's next poll_changes() (take_lost), which is how a memory re-reads them; until then every
/// sync() covering a lost write fails, so no caller is told that a state holding it is durable.

#include <engram/store/postgres/libpq.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace engram::inline v0::detail {

class pg_group_flush {
 public:
  /// A write committed and not flushed yet: its ticket, its commit token and the records it changed.
  struct unflushed {
    std::uint64_t ticket = 0;
    std::string token;
    std::vector<std::string> ids;
  };

  /// Notes a write that has COMMITted (without waiting for the flush) with `token`, changing records `ids`.
  /// @returns its ticket for sync().
  std::uint64_t committed(std::string token, std::vector<std::string> ids) {
    std::lock_guard lock(mtx_);
    const auto t = ++last_;
    pending_.push_back({t, std::move(token), std::move(ids)});
    return t;
  }

  /// The newest ticket given so far (0: none).
  [[nodiscard]] std::uint64_t last() const {
    std::lock_guard lock(mtx_);
    return last_;
  }

  /// Returns once the write with `ticket` and every earlier one is flushed, flushing if needed: concurrent
  /// callers share one flush. `flush(tokens)` runs it and @returns the tokens among `tokens` the database holds;
  /// `on_lost()` is called when a flush finds writes lost. `where` names the store in errors.
  /// @throws postgres_error: the flush's own failure (the writes it covered stay unflushed: a later sync()
  ///         tries again), or SQLSTATE 08007 when a write up to `ticket` was lost.
  template <class Flush, class OnLost>
  void sync(std::uint64_t ticket, Flush&& flush, OnLost&& on_lost, const std::string& where) {
    if (ticket == 0) return;
    if (durable_.load(std::memory_order_acquire) < ticket) {
      std::lock_guard flushing(flush_mtx_);
      if (durable_.load(std::memory_order_acquire) < ticket && run(flush)) on_lost();
    }
    if (any_lost_.load(std::memory_order_acquire)) {
      std::lock_guard lock(mtx_);
      if (!lost_.empty() && lost_.front().ticket <= ticket)
        throw postgres_error(where + ": a write committed before the database server crashed was lost before its "
                                     "WAL was flushed (SQLSTATE 08007, transaction resolution unknown); its records are "
                                     "re-read from the database by the store's next change feed poll",
                             "08007");
    }
  }

  /// Flushes issued so far.
  [[nodiscard]] std::uint64_t flushes() const noexcept { return flushes_.load(std::memory_order_relaxed); }

  /// Takes the record ids of the writes found lost (what the next change feed poll reports). From then on, a
  /// sync() no longer fails for them. Give them back with restore_lost() if they could not be delivered.
  std::vector<unflushed> take_lost() {
    std::lock_guard lock(mtx_);
    std::vector<unflushed> out(std::make_move_iterator(lost_.begin()), std::make_move_iterator(lost_.end()));
    lost_.clear();
    any_lost_.store(false, std::memory_order_release);
    return out;
  }
  void restore_lost(std::vector<unflushed> back) {
    if (back.empty()) return;
    std::lock_guard lock(mtx_);
    for (auto& u : back) lost_.push_back(std::move(u));
    std::sort(lost_.begin(), lost_.end(), [](const unflushed& a, const unflushed& b) { return a.ticket < b.ticket; });
    any_lost_.store(true, std::memory_order_release);
  }

 private:
  /// Flushes every write noted so far. @returns whether some were found lost. Under flush_mtx_.
  template <class Flush>
  bool run(Flush& flush) {
    std::deque<unflushed> batch;
    {
      std::lock_guard lock(mtx_);
      batch.swap(pending_);
    }
    if (batch.empty()) return false;  // cannot happen while durable_ < a given ticket; kept safe
    std::vector<std::string> tokens;
    tokens.reserve(batch.size());
    for (const auto& u : batch) tokens.push_back(u.token);
    std::set<std::string> present;
    try {
      present = flush(tokens);
    } catch (...) {
      std::lock_guard lock(mtx_);  // not known to be durable: the next flush covers them again
      pending_.insert(pending_.begin(), std::make_move_iterator(batch.begin()), std::make_move_iterator(batch.end()));
      throw;
    }
    flushes_.fetch_add(1, std::memory_order_relaxed);
    const auto through = batch.back().ticket;
    bool found = false;
    {
      std::lock_guard lock(mtx_);
      for (auto& u : batch)
        if (!present.count(u.token)) {
          lost_.push_back(std::move(u));
          found = true;
        }
      if (found) any_lost_.store(true, std::memory_order_release);
    }
    durable_.store(through, std::memory_order_release);
    return found;
  }

  mutable std::mutex mtx_;        // guards last_, pending_, lost_
  std::mutex flush_mtx_;          // one flush at a time; the others wait for it
  std::uint64_t last_ = 0;
  std::deque<unflushed> pending_;  // committed, not flushed, by ticket
  std::deque<unflushed> lost_;     // found missing by a flush, not yet taken by a poll, by ticket
  std::atomic<std::uint64_t> durable_{0};
  std::atomic<bool> any_lost_{false};
  std::atomic<std::uint64_t> flushes_{0};
};

}  // namespace engram::inline v0::detail
