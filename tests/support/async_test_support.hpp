#pragma once
#include "temp_dir.hpp"
// Extractors for the add_async tests: one that waits at a gate before extracting, one that fails on demand.
// Both extract like verbatim_extractor (each non-system message is one fact) and count their calls.

#include <engram/engram.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <stdlib.h>  // mkdtemp

namespace async_test {

using engram_test::temp_dir;

/// Shared by every copy of a test_extractor: the gate, the failure plan and what was seen.
struct extractor_control {
  std::mutex mtx;
  std::condition_variable cv;
  bool open = true;
  int fail_next = 0;        ///< extract calls still to fail (provider_error); -1: fail forever
  std::vector<std::vector<std::string>> calls;  ///< the message texts of each extract call, in call order
  std::atomic<int> entered{0};                  ///< extract calls started (also those waiting at the gate)

  void close_gate() {
    std::lock_guard lock(mtx);
    open = false;
  }
  void open_gate() {
    {
      std::lock_guard lock(mtx);
      open = true;
    }
    cv.notify_all();
  }
  std::size_t call_count() {
    std::lock_guard lock(mtx);
    return calls.size();
  }
};

struct test_extractor {
  std::shared_ptr<extractor_control> control = std::make_shared<extractor_control>();

  std::vector<engram::fact> extract(std::span<const engram::message> messages,
                                    const engram::extraction_context& ctx) const {
    ++control->entered;
    std::unique_lock lock(control->mtx);
    control->cv.wait(lock, [&] { return control->open; });
    std::vector<std::string> texts;
    for (const auto& m : messages) texts.push_back(m.content);
    control->calls.push_back(texts);
    if (control->fail_next != 0) {
      if (control->fail_next > 0) --control->fail_next;
      throw engram::provider_error("test_extractor: the model is unavailable (HTTP 503)", 503, "busy");
    }
    lock.unlock();
    return engram::verbatim_extractor{}.extract(messages, ctx);
  }
  std::vector<engram::memory_action> decide(std::span<const engram::fact> facts,
                                            std::span<const std::vector<engram::existing_memory>> near,
                                            const engram::extraction_context& ctx) const {
    return engram::verbatim_extractor{}.decide(facts, near, ctx);
  }
};

template <class Store>
using async_memory = engram::basic_memory<engram::hashing_embedder, engram::flat_index, Store, test_extractor>;

/// Fast retries for tests.
inline engram::memory_config fast_retries(std::uint32_t attempts = 3, std::size_t workers = 2) {
  engram::memory_config c;
  c.async.workers = workers;
  c.async.max_attempts = attempts;
  c.async.initial_backoff = std::chrono::milliseconds(1);
  c.async.max_backoff = std::chrono::milliseconds(4);
  return c;
}

template <class Store>
std::vector<engram::pending_add> pending_of(const Store& s) {
  std::vector<engram::pending_add> out;
  s.for_each_pending([&](const engram::pending_add& p) { out.push_back(p); });
  return out;
}

}  // namespace async_test
