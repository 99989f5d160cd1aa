#pragma once
/// @file memory/async_adds.hpp
/// Asynchronous adds (add_async): messages accepted durably into the store's pending queue, processed by
/// background workers as ordinary adds that dequeue their entries in the same write batch, retried with
/// exponential backoff, and kept as failed (never dropped silently) when out of attempts. The progress
/// callbacks of async_options (on_started, on_processed) are called from here.

#include <engram/async/options.hpp>
#include <engram/async/scheduler.hpp>
#include <engram/async/worker_pool.hpp>
#include <engram/capabilities.hpp>
#include <engram/error.hpp>
#include <engram/memory/async_outcome.hpp>
#include <engram/memory/options.hpp>
#include <engram/record.hpp>
#include <engram/scope.hpp>
#include <engram/time.hpp>
#include <engram/write_batch.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace engram::inline v0::detail {

/// The background side of add_async for one memory over `Store` (a pending_store).
template <class Store>
class async_adds {
 public:
  /// Runs one add whose pending entries `dequeue` leave the queue in the add's own batch; returns what it did.
  using add_function = std::function<add_result(std::span<const message>, const scope&, const add_options&,
                                                std::span<const std::string> dequeue)>;

  async_adds() = default;
  async_adds(const async_adds&) = delete;
  async_adds& operator=(const async_adds&) = delete;
  /// Stops the workers, letting a batch being processed finish; waiting entries stay in the store.
  ~async_adds() { stop(); }

  /// Where entries go and how they are processed. Before any other call.
  void bind(Store& store, const async_options& options, std::size_t max_messages, add_function add) {
    store_ = &store;
    options_ = options;
    max_messages_ = max_messages;
    add_ = std::move(add);
    queue_.set_capacity(options.queue_capacity);
  }

  /// Accepts an add: stored durably, then queued. Blocks while queue_capacity entries wait (backpressure).
  /// @returns its id.
  std::string accept(const scope& s, std::span<const message> messages, const add_options& options,
                     std::string id, std::string created_at) {
    start();
    queue_.reserve();
    pending_add p{std::move(id), s, std::vector<message>(messages.begin(), messages.end()), stored_options(options),
                  std::move(created_at), 0};
    try {
      write_batch b;
      b.enqueued.push_back(p);
      store_->apply(b);
    } catch (...) {
      queue_.unreserve();
      throw;
    }
    auto out = p.id;
    queue_.push_reserved(std::move(p));
    return out;
  }

  flush_result wait_idle() { return queue_.wait_idle(); }
  [[nodiscard]] std::vector<failed_add> failures() const { return queue_.failures(); }
  [[nodiscard]] std::size_t outstanding() const { return queue_.outstanding(); }

  /// Gives every failed entry a fresh set of attempts (durably) and queues it. @returns how many.
  std::size_t retry_failed() {
    auto failed = queue_.remove_failed([](const failed_add&) { return true; });
    if (failed.empty()) return 0;
    std::unordered_set<std::string> ids;
    for (const auto& f : failed) ids.insert(f.id);
    write_batch b;
    store_->for_each_pending([&](const pending_add& p) {
      if (!ids.count(p.id)) return;
      b.enqueued.push_back(p);
      b.enqueued.back().attempts = 0;
      b.enqueued.back().options.erase("last_error");
    });
    store_->apply(b);
    start();
    for (auto& p : b.enqueued) queue_.push(std::move(p));
    return b.enqueued.size();
  }

  /// Removes failed entry `id` from the store's queue for good. @returns false when no failed entry has it.
  bool discard_failed(std::string_view id) {
    if (queue_.remove_failed([&](const failed_add& f) { return f.id == id; }).empty()) return false;
    write_batch b;
    b.dequeued.emplace_back(id);
    store_->apply(b);
    return true;
  }

  /// Queues the store's pending entries (on open); those out of attempts are listed as failed. A read-only store
  /// leaves its queue to the writer.
  void resume() {
    if (is_read_only(*store_)) return;
    std::size_t resumed = 0;
    std::vector<pending_add> entries;
    store_->for_each_pending([&](const pending_add& p) { entries.push_back(p); });
    for (auto& p : entries) {
      if (p.attempts >= options_.max_attempts) {
        queue_.add_failed(failed_add{p.id, p.owner, p.attempts, last_error_of(p)});
      } else {
        queue_.push(std::move(p));
        ++resumed;
      }
    }
    if (resumed) start();
  }

  /// Stops the workers (idempotent).
  void stop() {
    queue_.stop();
    workers_.join();
  }

 private:
  static nlohmann::json stored_options(const add_options& o) {
    nlohmann::json j{{"metadata", o.metadata}, {"infer", o.infer}};
    if (o.expiration_date) j["expiration_date"] = *o.expiration_date;
    if (o.immutable) j["immutable"] = true;
    if (o.timestamp) j["timestamp"] = format_iso8601(*o.timestamp);
    if (!o.extraction.empty()) j["extraction"] = o.extraction;
    return j;
  }

  static add_options options_of(const pending_add& p) {
    add_options o;
    const auto& j = p.options;
    if (!j.is_object()) return o;
    if (auto it = j.find("metadata"); it != j.end() && it->is_object()) o.metadata = *it;
    if (auto it = j.find("infer"); it != j.end() && it->is_boolean()) o.infer = it->template get<bool>();
    if (auto it = j.find("expiration_date"); it != j.end() && it->is_string())
      o.expiration_date = it->template get<std::string>();
    if (auto it = j.find("immutable"); it != j.end() && it->is_boolean()) o.immutable = it->template get<bool>();
    if (auto it = j.find("timestamp"); it != j.end() && it->is_string())
      o.timestamp = try_parse_iso8601(it->template get<std::string>());
    if (auto it = j.find("extraction"); it != j.end() && it->is_object()) o.extraction = it->template get<extraction_request>();
    return o;
  }

  static std::string last_error_of(const pending_add& p) {
    if (p.options.is_object())
      if (auto it = p.options.find("last_error"); it != p.options.end() && it->is_string())
        return it->template get<std::string>();
    return "failed " + std::to_string(p.attempts) + " time(s) (no error recorded)";
  }

  void start() {
    if (options_.workers == 0 || options_.max_attempts == 0)
      throw validation_error("async_options: workers (" + std::to_string(options_.workers) + ") and max_attempts (" +
                             std::to_string(options_.max_attempts) + ") must be at least 1");
    workers_.start(options_.workers, [this] {
      for (;;) {
        auto batch = queue_.take(options_.max_batch, max_messages_);
        if (batch.empty()) return;
        run(batch);
      }
    });
  }

  /// Processes one batch taken from the queue (entries of one scope, equal options) as one add.
  void run(std::vector<pending_add>& batch) {
    std::vector<message> messages;
    std::vector<std::string> ids;
    for (const auto& p : batch) {
      messages.insert(messages.end(), p.messages.begin(), p.messages.end());
      ids.push_back(p.id);
    }
    if (options_.on_started)
      for (const auto& id : ids) notify([&] { options_.on_started(id); });
    std::optional<add_result> done;
    std::string err;
    bool permanent = false;  // invalid input stays invalid: no retry
    try {
      done = add_(messages, batch.front().owner, options_of(batch.front()), ids);
    } catch (const validation_error& e) {
      err = e.what();
      permanent = true;
    } catch (const std::exception& e) {
      err = e.what();
    } catch (...) {
      err = "unknown exception";
    }
    if (done) {
      report(batch, ids, &*done, {});
      queue_.finished(batch);
      return;
    }
    std::uint32_t attempts = 0;
    for (auto& p : batch) {
      ++p.attempts;
      p.options["last_error"] = err;
      attempts = std::max(attempts, p.attempts);
    }
    try {
      write_batch b;
      b.enqueued = batch;  // the new attempt counts replace the stored entries
      store_->apply(b);
    } catch (const std::exception& e) {
      err += std::string("; recording the attempt failed too: ") + e.what();
    }
    if (permanent || attempts >= options_.max_attempts) {
      std::vector<failed_add> failures;
      for (const auto& p : batch) failures.push_back(failed_add{p.id, p.owner, p.attempts, err});
      report(batch, ids, nullptr, err);
      queue_.fail(batch, std::move(failures));
      return;
    }
    const double wait = std::min(static_cast<double>(options_.max_backoff.count()),
                                 static_cast<double>(options_.initial_backoff.count()) *
                                     static_cast<double>(std::uint64_t{1} << std::min<std::uint32_t>(attempts - 1, 30)));
    queue_.retry(std::move(batch),
                 add_scheduler::clock::now() + std::chrono::milliseconds(static_cast<std::int64_t>(wait)));
  }

  /// Tells on_processed the final outcome of each entry of `batch`: committed with `result`, or (null) failed
  /// with `error`. Before the scheduler hears of it, so that flush() returns after the callbacks.
  void report(const std::vector<pending_add>& batch, const std::vector<std::string>& ids, const add_result* result,
              const std::string& error) {
    if (!options_.on_processed) return;
    for (const auto& p : batch) {
      async_outcome o{p.id, p.owner, result != nullptr, result ? std::string() : error,
                      result ? p.attempts + 1 : p.attempts, result ? *result : add_result{}, ids};
      notify([&] { options_.on_processed(o); });
    }
  }

  /// Runs a user callback; what it throws is swallowed (it must not change the entry's outcome nor stop the
  /// worker).
  template <class F>
  static void notify(F&& f) noexcept {
    try {
      f();
    } catch (...) {
    }
  }

  Store* store_ = nullptr;
  async_options options_{};
  std::size_t max_messages_ = 0;
  add_function add_;
  add_scheduler queue_;
  worker_pool workers_;
};

}  // namespace engram::inline v0::detail
