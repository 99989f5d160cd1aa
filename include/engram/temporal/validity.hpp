#pragma once
/// @file temporal/validity.hpp
/// Time-aware memory: when a memory's fact held (record::valid_from .. record::invalid_at), what
/// reconciliation does with a contradicted fact (contradiction_policy), and which versions a read sees
/// (validity_view: the current facts, the facts valid at an instant, or every version).

#include <engram/error.hpp>
#include <engram/record.hpp>
#include <engram/time.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace engram::inline v0 {

/// What reconciliation does when the extractor decides that a new fact contradicts a stored memory.
enum class contradiction_policy : unsigned char {
  /// Mem0's behaviour: an UPDATE rewrites the memory in place and a DELETE erases it; the old text survives
  /// only in history. The default: ids, events and get() answers are exactly Mem0's, and storage does not
  /// grow with every change of mind.
  erase,
  /// A change in the world keeps the old version. An UPDATE rewrites the memory in place (same id, same event
  /// as erase) and keeps its former text as a closed version of its own (valid_from as before, invalid_at =
  /// the new fact's valid_from, superseded_by = the memory's id); a DELETE closes the memory (invalid_at set)
  /// instead of erasing it. A correction (memory_action::correction: the old text was never true) still
  /// rewrites in place without a closed version. Reads hide closed versions unless asked (validity_view).
  supersede,
};

/// "erase" or "supersede".
inline constexpr std::string_view to_string(contradiction_policy p) noexcept {
  return p == contradiction_policy::supersede ? "supersede" : "erase";
}

/// Parses "erase" or "supersede". @throws validation_error naming the text otherwise.
inline contradiction_policy parse_contradiction_policy(std::string_view s) {
  if (s == "erase") return contradiction_policy::erase;
  if (s == "supersede") return contradiction_policy::supersede;
  throw validation_error("unknown contradiction policy '" + std::string(s) + "' (expected supersede or erase)");
}

/// True when `r`'s fact held at `t`: valid_since() <= t < invalid_at (both ends as stored; no invalid_at:
/// still holds).
inline bool valid_at(const record& r, timestamp t) noexcept {
  return r.valid_since() <= t && (!r.invalid_at || t < *r.invalid_at);
}

/// True when `r` is closed at `now` (invalid_at set and not after now): the default reads hide it.
inline bool closed_at(const record& r, timestamp now) noexcept { return r.invalid_at && *r.invalid_at <= now; }

/// Which versions a read sees.
struct validity_view {
  enum class kind : unsigned char {
    current,  ///< every memory not closed by now (the default: a superseded version is hidden)
    as_of,    ///< the memories whose fact held at `at` (valid_from <= at < invalid_at)
    all,      ///< every version, closed or not
  };
  kind mode = kind::current;
  timestamp at{};  ///< for as_of

  /// The view of a search or listing's options: `include_invalid` wins, then `as_of`, else current.
  static validity_view of(const std::optional<timestamp>& as_of, bool include_invalid) noexcept {
    if (include_invalid) return {kind::all, {}};
    if (as_of) return {kind::as_of, *as_of};
    return {};
  }

  /// True when a memory valid from `from` and closed at `until` (nullopt: still valid) is seen at `now`.
  [[nodiscard]] bool admits(timestamp from, const std::optional<timestamp>& until, timestamp now) const noexcept {
    switch (mode) {
      case kind::current: return !until || now < *until;
      case kind::as_of: return from <= at && (!until || at < *until);
      case kind::all: return true;
    }
    return true;
  }
  [[nodiscard]] bool admits(const record& r, timestamp now) const noexcept {
    return admits(r.valid_since(), r.invalid_at, now);
  }
};

}  // namespace engram::inline v0
