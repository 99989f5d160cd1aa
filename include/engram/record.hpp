#pragma once
/// @file record.hpp
/// What a memory is (record), what happened to it (history_event), and what an add reports (memory_event).

#include <engram/entity/mentions.hpp>
#include <engram/scope.hpp>
#include <engram/time.hpp>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace engram::inline v0 {

/// What an add decided for one fact, and what a history event records.
enum class event_kind { add, update, del, none };

/// "ADD", "UPDATE", "DELETE" or "NONE": Mem0's spelling.
inline constexpr std::string_view to_string(event_kind e) noexcept {
  switch (e) {
    case event_kind::add: return "ADD";
    case event_kind::update: return "UPDATE";
    case event_kind::del: return "DELETE";
    case event_kind::none: return "NONE";
  }
  return "NONE";
}

/// Parses Mem0's spelling (case-insensitive). @throws validation_error naming the text otherwise.
inline event_kind parse_event_kind(std::string_view s) {
  std::string up(s);
  for (auto& c : up) c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
  if (up == "ADD") return event_kind::add;
  if (up == "UPDATE") return event_kind::update;
  if (up == "DELETE") return event_kind::del;
  if (up == "NONE") return event_kind::none;
  throw validation_error("unknown event '" + std::string(s) + "' (expected ADD, UPDATE, DELETE or NONE)");
}

/// One memory: a short text with its scope, metadata, timestamps and embedding.
struct record {
  std::string id;      ///< UUID v4, assigned by the memory
  std::string memory;  ///< the text remembered
  std::string hash;    ///< MD5 of `memory` (as Mem0 stores it)
  nlohmann::json metadata = nlohmann::json::object();  ///< the caller's metadata, always an object
  std::string user_id;
  std::string agent_id;
  std::string run_id;
  std::string actor_id;  ///< who said it (a message's `name`), if known
  std::string role;      ///< the role of the message it came from ("user", "assistant"), if known
  timestamp created_at{};
  timestamp updated_at{};          ///< equals created_at until the first update
  std::vector<float> embedding;   ///< as the embedder returned it (the index keeps its own normalised copy)
  /// `YYYY-MM-DD` (UTC): from the day after it, the memory is hidden from search and get_all (unless asked).
  std::optional<std::string> expiration_date{};
  /// Mem0's `immutable`: reconciliation never updates or deletes it (an UPDATE of it is added as a memory of its
  /// own), and update() refuses it; delete_memory() and delete_all() still remove it.
  bool immutable = false;
  /// When the fact became true: the add's `timestamp` when one was given, else created_at. Unset (data written
  /// before validity was stored): valid since created_at, as valid_since() reads it.
  std::optional<timestamp> valid_from{};
  /// When the fact stopped being true (it was contradicted); unset while it holds.
  std::optional<timestamp> invalid_at{};
  /// The id of the memory that replaced it, once superseded; unset otherwise.
  std::optional<std::string> superseded_by{};
  /// The entities and relations of the text, as the extractor gave them (entity memory). Unset: the entity
  /// index recognises them from the text with the offline recogniser; set (even empty): the extractor's answer
  /// stands and is kept with the memory, since it cannot be derived again without the model.
  std::optional<recognized_entities> entities{};
  /// The scope's wall keys and further keys (scope::tenant and scope::extra): empty under Mem0's key set.
  std::string tenant{};
  std::string extra{};

  /// When the fact became true: valid_from, else created_at.
  [[nodiscard]] timestamp valid_since() const noexcept { return valid_from.value_or(created_at); }

  /// The record's exact scope.
  [[nodiscard]] engram::scope scope() const { return engram::scope{user_id, agent_id, run_id, tenant, extra}; }

  friend bool operator==(const record&, const record&) = default;
};

/// One change in a memory's life. The history of an id survives the memory's deletion.
struct history_event {
  std::string id;         ///< the event's own UUID
  std::string memory_id;  ///< the memory it is about
  std::optional<std::string> old_memory;  ///< text before (UPDATE, DELETE)
  std::optional<std::string> new_memory;  ///< text after (ADD, UPDATE)
  event_kind event = event_kind::add;
  timestamp created_at{};                 ///< when the memory was created
  std::optional<timestamp> updated_at;    ///< when this change happened, for UPDATE and DELETE
  bool is_deleted = false;                ///< true for the DELETE event
  std::string actor_id;
  std::string role;

  friend bool operator==(const history_event&, const history_event&) = default;
};

/// One chat message handed to `add`.
struct message {
  std::string role = "user";  ///< "user", "assistant" or "system" (system messages are never remembered)
  std::string content;
  std::string name;  ///< optional speaker name; becomes the memory's actor_id

  friend bool operator==(const message&, const message&) = default;
};

/// What `add` did for one fact (Mem0's `results[i]`).
struct memory_event {
  std::string id;
  std::string memory;
  event_kind event = event_kind::add;
  std::optional<std::string> previous_memory;  ///< for UPDATE and DELETE

  friend bool operator==(const memory_event&, const memory_event&) = default;
};

/// Why a hit scored what it did (search_options::explain). Each term is its weighted contribution, so
/// semantic + keyword + recency + importance + access + entity == final (up to float rounding); `cosine` and `bm25`
/// are the raw similarities behind the first two (0 when not computed).
struct score_details {
  float semantic = 0.0f;
  float keyword = 0.0f;
  float recency = 0.0f;
  float importance = 0.0f;
  float access = 0.0f;
  float entity = 0.0f;  ///< the entity term (ranking_weights::entity)
  float final = 0.0f;
  float cosine = 0.0f;
  float bm25 = 0.0f;

  friend bool operator==(const score_details&, const score_details&) = default;
};

/// One search result: the record and its score (higher is better; cosine similarity for a plain semantic
/// search, the fused score otherwise — see search_options::mode).
struct search_hit {
  engram::record record;
  float score = 0.0f;
  std::optional<score_details> details{};  ///< set when search_options::explain
};

}  // namespace engram::inline v0
