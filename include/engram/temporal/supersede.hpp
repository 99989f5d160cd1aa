#pragma once
/// @file temporal/supersede.hpp
/// What reconciliation writes under contradiction_policy::supersede: the closed versions an UPDATE keeps and the
/// closing a DELETE becomes. Pure functions over records; the write planner puts their results in its batch.

#include <engram/detail/md5.hpp>
#include <engram/record.hpp>
#include <engram/time.hpp>
#include <engram/uuid.hpp>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace engram::inline v0::detail {

/// When a fact of an add became true: the extractor's date for it, else the add's timestamp, else `now`.
inline timestamp became_true(const std::optional<timestamp>& fact_date, const std::optional<timestamp>& add_timestamp,
                             timestamp now) noexcept {
  return fact_date ? *fact_date : add_timestamp.value_or(now);
}

/// A closed version of `of`: a memory of its own in `of`'s scope, with `text` and its `vector`, that held from
/// `from` until `until` and was superseded by `of`. Metadata, actor and role are `of`'s; created at `from`
/// (the version's own age), written `now`.
inline record closed_version(const record& of, std::string text, std::vector<float> vector, timestamp from,
                             timestamp until, timestamp now) {
  record v;
  v.id = make_uuid_v4();
  v.hash = md5_hex(text);
  v.memory = std::move(text);
  v.embedding = std::move(vector);
  v.metadata = of.metadata;
  v.user_id = of.user_id;
  v.agent_id = of.agent_id;
  v.run_id = of.run_id;
  v.tenant = of.tenant;
  v.extra = of.extra;
  v.actor_id = of.actor_id;
  v.role = of.role;
  v.created_at = std::min(from, now);
  v.updated_at = now;
  v.expiration_date = of.expiration_date;
  v.valid_from = from;
  v.invalid_at = std::max(from, until);
  v.superseded_by = of.id;
  return v;
}

/// The history event of a closed version: its ADD (it is a memory of its own from now on).
inline history_event closed_version_event(const record& v) {
  return history_event{make_uuid_v4(), v.id,         std::nullopt, v.memory, event_kind::add,
                       v.created_at,   v.updated_at, false,        v.actor_id, v.role};
}

/// `r` closed at `until` (never before it became true), written `now`: what a DELETE under supersede leaves.
inline record closed(record r, timestamp until, timestamp now) {
  r.invalid_at = std::max(r.valid_since(), until);
  r.updated_at = now;
  return r;
}

}  // namespace engram::inline v0::detail
