#pragma once
/// @file write_batch.hpp
/// The unit of durability: every change one memory operation makes, applied by a store all or nothing.

#include <engram/record.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace engram::inline v0 {

/// An add accepted for background extraction (`add_async`): the raw messages of one scope, kept durably in the
/// store's pending queue until the add that processes them commits (in the same batch that dequeues it).
struct pending_add {
  std::string id;                   ///< UUID v4, unique in the queue
  scope owner;                      ///< the scope the messages belong to
  std::vector<message> messages;    ///< as given to add_async
  nlohmann::json options = nlohmann::json::object();  ///< the add's options (metadata, infer, expiration_date)
  std::string created_at;           ///< ISO-8601 UTC, when it was accepted
  std::uint32_t attempts = 0;       ///< failed processing attempts so far

  friend bool operator==(const pending_add&, const pending_add&) = default;
};

/// Records to insert or replace (whole), ids to erase, history events to append, and pending adds to
/// enqueue or dequeue, in that order. A store applies a batch atomically: after a crash either all of it is there
/// or none. Stores with a pending queue provide `for_each_pending(f)` (see the `pending_store` concept); the
/// others must be given batches whose `enqueued`/`dequeued` are empty.
struct write_batch {
  std::vector<record> upserts;
  std::vector<std::string> erases;
  std::vector<history_event> events;
  std::vector<pending_add> enqueued;  ///< pending adds to store (or replace, by id: e.g. a new attempt count)
  std::vector<std::string> dequeued;  ///< ids of pending adds that are done (unknown ids are ignored)

  [[nodiscard]] bool empty() const noexcept {
    return upserts.empty() && erases.empty() && events.empty() && enqueued.empty() && dequeued.empty();
  }
};

/// Search hits of one memory to add to its durable access count (the `access` ranking term, see
/// ranking_weights::access): basic_memory counts hits in memory and hands them to an `access_count_store` from
/// time to time. `owner` is the memory's scope (a sharded store routes by it).
struct access_increment {
  std::string memory_id;
  scope owner;
  std::uint32_t count = 0;

  friend bool operator==(const access_increment&, const access_increment&) = default;
};

/// What produced a store's vectors. A store remembers the identity it was first used with and refuses
/// another, so vectors of different models never mix.
struct store_identity {
  std::string embedder;       ///< the embedder's name(), e.g. "hashing-v1" or "openai:text-embedding-3-small"
  std::size_t dimension = 0;  ///< its vector size
  /// The memory's scope key set (detail::describe_scope_keys): empty for Mem0's user_id, agent_id, run_id.
  std::string scope_keys{};

  friend bool operator==(const store_identity&, const store_identity&) = default;
};

/// A new record a shared store dropped because its scope already held the same text (added meanwhile by
/// another node): `apply` of a change_feed_store returns these.
struct duplicate_record {
  std::string dropped_id;   ///< the id in the batch
  std::string existing_id;  ///< the record already stored
  friend bool operator==(const duplicate_record&, const duplicate_record&) = default;
};

}  // namespace engram::inline v0
