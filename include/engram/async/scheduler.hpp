#pragma once
/// @file async/scheduler.hpp
/// The in-memory side of add_async: a bounded queue of pending adds with backpressure, per-scope order,
/// batching of one scope's entries, delayed retries and the list of entries kept as failed.

#include <engram/async/options.hpp>
#include <engram/error.hpp>
#include <engram/scope.hpp>
#include <engram/write_batch.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace engram::inline v0::detail {

/// Which pending adds run next. Entries of one scope are handed out one batch at a time and in queue order
/// (a later entry never overtakes an earlier one of its scope, also while that one waits for a retry);
/// different scopes run in parallel. Thread-safe: every member may be called concurrently.
class add_scheduler {
 public:
  using clock = std::chrono::steady_clock;

  /// Sets the bound of the queue (entries waiting, plus rooms reserved by add_async calls in progress).
  void set_capacity(std::size_t n) {
    std::lock_guard lock(mtx_);
    capacity_ = std::max<std::size_t>(n, 1);
  }

  /// Blocks until the queue has room for one more entry, then reserves it (backpressure for add_async).
  /// @throws storage_error when the scheduler is stopping (the memory is being destroyed).
  void reserve() {
    std::unique_lock lock(mtx_);
    room_cv_.wait(lock, [&] { return stopping_ || queue_.size() + reserved_ < capacity_; });
    if (stopping_) throw storage_error("add_async: the memory is shutting down; nothing was queued");
    ++reserved_;
  }

  /// Gives back a room reserved by reserve() that will not be used (the store refused the entry).
  void unreserve() {
    std::lock_guard lock(mtx_);
    --reserved_;
    room_cv_.notify_one();
    idle_cv_.notify_all();
  }

  /// Queues an entry whose room was reserved.
  void push_reserved(pending_add p) {
    std::lock_guard lock(mtx_);
    --reserved_;
    queue_.push_back(item{std::move(p), {}});
    work_cv_.notify_one();
  }

  /// Queues an entry regardless of the bound (an entry resumed from the store).
  void push(pending_add p) {
    std::lock_guard lock(mtx_);
    queue_.push_back(item{std::move(p), {}});
    work_cv_.notify_one();
  }

  /// Waits for the oldest ready entry of a scope not being processed, and takes it with the entries right
  /// behind it in its scope that are ready and have equal options (at most `max_batch` entries and
  /// `max_messages` messages in all). Empty once stop() was called.
  std::vector<pending_add> take(std::size_t max_batch, std::size_t max_messages) {
    std::unique_lock lock(mtx_);
    for (;;) {
      if (stopping_) return {};
      const auto now = clock::now();
      std::optional<clock::time_point> next_ready;
      std::vector<const scope*> blocked;  // scopes whose head entry is busy or waiting
      auto is_blocked = [&](const scope& s) {
        return std::any_of(blocked.begin(), blocked.end(), [&](const scope* b) { return *b == s; }) ||
               std::find(busy_.begin(), busy_.end(), s) != busy_.end();
      };
      for (std::size_t i = 0; i < queue_.size(); ++i) {
        const auto& it = queue_[i];
        if (is_blocked(it.entry.owner)) continue;
        if (it.ready_at > now) {
          blocked.push_back(&it.entry.owner);
          if (!next_ready || it.ready_at < *next_ready) next_ready = it.ready_at;
          continue;
        }
        return take_from(i, max_batch, max_messages, now);
      }
      if (next_ready)
        work_cv_.wait_until(lock, *next_ready);
      else
        work_cv_.wait(lock);
    }
  }

  /// The batch taken by take() was committed: its scope may run again.
  void finished(const std::vector<pending_add>& batch) {
    std::lock_guard lock(mtx_);
    release(batch);
  }

  /// The batch failed and is to be tried again from `when` on, ahead of its scope's later entries.
  void retry(std::vector<pending_add> batch, clock::time_point when) {
    std::lock_guard lock(mtx_);
    release(batch);
    std::vector<item> back;
    back.reserve(batch.size());
    for (auto& p : batch) back.push_back(item{std::move(p), when});
    queue_.insert(queue_.begin(), std::make_move_iterator(back.begin()), std::make_move_iterator(back.end()));
    work_cv_.notify_all();
  }

  /// The batch failed for good: its entries are listed as failed (they stay in the store).
  void fail(const std::vector<pending_add>& batch, std::vector<failed_add> failures) {
    std::lock_guard lock(mtx_);
    release(batch);
    for (auto& f : failures) failed_.push_back(std::move(f));
  }

  /// Lists an entry found failed in the store on open.
  void add_failed(failed_add f) {
    std::lock_guard lock(mtx_);
    failed_.push_back(std::move(f));
  }

  /// Removes the failed entries whose id `keep` rejects and returns them.
  template <class Pred>
  std::vector<failed_add> remove_failed(Pred&& select) {
    std::lock_guard lock(mtx_);
    std::vector<failed_add> out;
    std::erase_if(failed_, [&](const failed_add& f) {
      if (!select(f)) return false;
      out.push_back(f);
      return true;
    });
    return out;
  }

  /// Blocks until nothing is queued, reserved or being processed (or the scheduler stops); @returns the
  /// failed entries.
  flush_result wait_idle() {
    std::unique_lock lock(mtx_);
    idle_cv_.wait(lock, [&] { return stopping_ || (queue_.empty() && reserved_ == 0 && busy_.empty()); });
    return flush_result{failed_};
  }

  [[nodiscard]] std::vector<failed_add> failures() const {
    std::lock_guard lock(mtx_);
    return failed_;
  }

  /// Entries queued or being processed.
  [[nodiscard]] std::size_t outstanding() const {
    std::lock_guard lock(mtx_);
    return queue_.size() + in_flight_;
  }

  /// Wakes every waiter; take() returns empty and reserve() throws from now on.
  void stop() {
    std::lock_guard lock(mtx_);
    stopping_ = true;
    work_cv_.notify_all();
    room_cv_.notify_all();
    idle_cv_.notify_all();
  }

 private:
  struct item {
    pending_add entry;
    clock::time_point ready_at;
  };

  std::vector<pending_add> take_from(std::size_t first, std::size_t max_batch, std::size_t max_messages,
                                     clock::time_point now) {
    std::vector<std::size_t> picked{first};
    std::size_t messages = queue_[first].entry.messages.size();
    const auto& head = queue_[first].entry;
    for (std::size_t j = first + 1; j < queue_.size() && picked.size() < std::max<std::size_t>(max_batch, 1); ++j) {
      const auto& e = queue_[j];
      if (!(e.entry.owner == head.owner)) continue;
      if (e.ready_at > now || e.entry.options != head.options || messages + e.entry.messages.size() > max_messages)
        break;  // the next entry of the scope cannot join: later ones must not overtake it
      picked.push_back(j);
      messages += e.entry.messages.size();
    }
    std::vector<pending_add> out;
    out.reserve(picked.size());
    for (const auto j : picked) out.push_back(std::move(queue_[j].entry));
    for (auto j = picked.rbegin(); j != picked.rend(); ++j) queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(*j));
    busy_.push_back(out.front().owner);
    in_flight_ += out.size();
    room_cv_.notify_all();
    return out;
  }

  void release(const std::vector<pending_add>& batch) {
    if (batch.empty()) return;
    if (auto it = std::find(busy_.begin(), busy_.end(), batch.front().owner); it != busy_.end()) busy_.erase(it);
    in_flight_ -= std::min(in_flight_, batch.size());
    work_cv_.notify_all();
    idle_cv_.notify_all();
  }

  mutable std::mutex mtx_;
  std::condition_variable work_cv_, room_cv_, idle_cv_;
  std::deque<item> queue_;
  std::vector<scope> busy_;  // scopes with a batch being processed
  std::size_t in_flight_ = 0;
  std::size_t reserved_ = 0;
  std::size_t capacity_ = 256;
  std::vector<failed_add> failed_;
  bool stopping_ = false;
};

}  // namespace engram::inline v0::detail
