#pragma once
/// @file memory/write_plan.hpp
/// Write planning: turns an add's decided actions (or an update, or a deletion) into one write_batch, with the
/// events add() reports. It takes no lock and does no I/O: what it needs to know about stored memories comes
/// from the callables it is given, which the memory answers under its lock.

#include <engram/detail/md5.hpp>
#include <engram/extract/actions.hpp>
#include <engram/memory/options.hpp>
#include <engram/memory/validate.hpp>
#include <engram/record.hpp>
#include <engram/scope.hpp>
#include <engram/time.hpp>
#include <engram/uuid.hpp>
#include <engram/write_batch.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace engram::inline v0::detail {

/// The texts actions add or update that are not the text of a fact (an extractor may rephrase): they need
/// vectors of their own, embedded before the write lock is taken.
inline std::vector<std::string> action_texts_to_embed(std::span<const memory_action> actions,
                                                      std::span<const std::string> fact_texts) {
  std::vector<std::string> out;
  for (const auto& a : actions)
    if ((a.event == event_kind::add || a.event == event_kind::update) && !is_blank(a.text) &&
        std::find(fact_texts.begin(), fact_texts.end(), a.text) == fact_texts.end() &&
        std::find(out.begin(), out.end(), a.text) == out.end())
      out.push_back(a.text);
  return out;
}

/// The metadata of a memory an add creates: the add's, then the fact's own keys over it.
inline nlohmann::json merged_metadata(const nlohmann::json& base, const fact* from) {
  nlohmann::json m = base.is_object() ? base : nlohmann::json::object();
  if (from && from->metadata.is_object()) m.update(from->metadata);
  return m;
}

/// The DELETE event of `r`, at `when`.
inline history_event deletion_event(const record& r, timestamp when = utc_now()) {
  return history_event{make_uuid_v4(), r.id, r.memory, std::nullopt, event_kind::del,
                       r.created_at,   when, true,     r.actor_id,   r.role};
}

/// The UPDATE event of `after`, whose text was `before`.
inline history_event update_event(const record& after, const std::string& before) {
  return history_event{make_uuid_v4(), after.id,         before, after.memory, event_kind::update,
                       after.created_at, after.updated_at, false, after.actor_id, after.role};
}

/// A planned write: the batch, and what the index must learn once the store has it.
struct write_plan {
  write_batch batch;
  std::vector<std::pair<record, bool>> changed;  ///< (record after, is new), in batch order
  std::vector<std::string> deleted;              ///< ids erased
  add_result result;                             ///< what add() reports
};

/// `a` as reconciliation may carry it out: an UPDATE of an immutable memory becomes an ADD of the new text (the
/// information is kept, the memory untouched), a DELETE of one is skipped.
template <class Target>
memory_action respecting_immutable(const memory_action& a, Target&& target) {
  if ((a.event != event_kind::update && a.event != event_kind::del) || !a.skip_reason.empty()) return a;
  const auto current = target(a.target_id);
  if (!current || !current->immutable) return a;
  memory_action out = a;
  if (a.event == event_kind::del) {
    out.skip_reason = "memory '" + a.target_id + "' is immutable: reconciliation never deletes it";
  } else {
    out.event = event_kind::add;
    out.target_id.clear();
  }
  return out;
}

/// Plans an add's actions for scope `s`.
/// @param duplicate  (hash, text) -> the id of a visible memory of the scope with this text, or nullopt
/// @param target     id -> the record if it exists and `s` selects it (an extractor cannot reach outside the scope)
/// @param vector_of  text -> its vector (every fact text and every action_texts_to_embed text)
template <class Duplicate, class Target, class VectorOf>
write_plan plan_add(std::span<const fact> facts, std::span<const memory_action> actions, const scope& s,
                    const add_options& options, const input_rules& rules, timestamp now, Duplicate&& duplicate,
                    Target&& target, VectorOf&& vector_of) {
  write_plan plan;
  auto& result = plan.result;
  std::unordered_set<std::string> touched;
  std::vector<std::pair<std::string, std::string>> pending;  // (hash, text) added by this batch

  for (const auto& proposed : actions) {
    const auto a = respecting_immutable(proposed, target);
    const fact* from = a.fact_index < facts.size() ? &facts[a.fact_index] : nullptr;
    auto skip = [&](std::string why) { result.skipped.push_back({a, std::move(why)}); };
    if (!a.skip_reason.empty()) {
      skip(a.skip_reason);
      continue;
    }
    switch (a.event) {
      case event_kind::add: {
        if (is_blank(a.text)) {
          skip("empty text");
          break;
        }
        if (!rules.storable(a.text)) {
          skip("text too long or not UTF-8");
          break;
        }
        const auto hash = md5_hex(a.text);
        if (auto dup = duplicate(hash, a.text)) {
          result.results.push_back({*dup, a.text, event_kind::none, std::nullopt});
          break;
        }
        if (std::find(pending.begin(), pending.end(), std::pair{hash, a.text}) != pending.end()) break;
        pending.emplace_back(hash, a.text);
        record r;
        r.id = make_uuid_v4();
        r.memory = a.text;
        r.hash = hash;
        r.metadata = merged_metadata(options.metadata, from);
        r.user_id = s.user_id;
        r.agent_id = s.agent_id;
        r.run_id = s.run_id;
        r.role = from ? from->role : std::string("user");
        r.actor_id = from ? from->actor_id : std::string();
        r.created_at = r.updated_at = options.timestamp.value_or(now);  // when the conversation happened
        r.embedding = vector_of(a.text);
        r.expiration_date = options.expiration_date;
        r.immutable = options.immutable;
        plan.batch.events.push_back(history_event{make_uuid_v4(), r.id, std::nullopt, r.memory, event_kind::add, r.created_at,
                                                  std::nullopt, false, r.actor_id, r.role});
        result.results.push_back({r.id, r.memory, event_kind::add, std::nullopt});
        touched.insert(r.id);
        plan.batch.upserts.push_back(r);
        plan.changed.emplace_back(std::move(r), true);
        break;
      }
      case event_kind::update: {
        auto current = target(a.target_id);
        if (!current) {
          skip("no memory '" + a.target_id + "' in this scope");
          break;
        }
        if (!rules.storable(a.text)) {
          skip("empty, too long or not UTF-8 text");
          break;
        }
        if (!touched.insert(a.target_id).second) {
          skip("memory '" + a.target_id + "' already changed by this add");
          break;
        }
        record r = std::move(*current);
        const std::string old = r.memory;
        if (old == a.text) {
          result.results.push_back({r.id, r.memory, event_kind::none, std::nullopt});
          break;
        }
        r.memory = a.text;
        r.hash = md5_hex(a.text);
        r.updated_at = now;
        r.embedding = vector_of(a.text);
        if (from && !from->metadata.empty()) r.metadata.update(from->metadata);
        plan.batch.events.push_back(update_event(r, old));
        result.results.push_back({r.id, r.memory, event_kind::update, old});
        plan.batch.upserts.push_back(r);
        plan.changed.emplace_back(std::move(r), false);
        break;
      }
      case event_kind::del: {
        auto current = target(a.target_id);
        if (!current) {
          skip("no memory '" + a.target_id + "' in this scope");
          break;
        }
        if (!touched.insert(a.target_id).second) {
          skip("memory '" + a.target_id + "' already changed by this add");
          break;
        }
        plan.batch.erases.push_back(current->id);
        plan.batch.events.push_back(deletion_event(*current, now));
        result.results.push_back({current->id, current->memory, event_kind::del, std::nullopt});
        plan.deleted.push_back(current->id);
        break;
      }
      case event_kind::none: {
        if (a.target_id.empty()) break;
        if (auto current = target(a.target_id))
          result.results.push_back({current->id, current->memory, event_kind::none, std::nullopt});
        break;
      }
    }
  }
  return plan;
}

/// Plans update(): `current` with the new text and its `vector` (when options.text is set), the metadata patch
/// merged in and the expiration date. @throws validation_error when the merged metadata is over the limit.
inline write_plan plan_update(const record& current, std::vector<float> vector, const update_options& options,
                              const input_rules& rules, timestamp now) {
  if (current.immutable)
    throw validation_error("update: memory '" + current.id + "' is immutable (added with immutable: true)");
  write_plan plan;
  record r = current;
  if (options.text) {
    r.memory = *options.text;
    r.hash = md5_hex(r.memory);
    r.embedding = std::move(vector);
  }
  r.updated_at = now;
  if (options.metadata) {
    if (!r.metadata.is_object()) r.metadata = nlohmann::json::object();
    r.metadata.merge_patch(*options.metadata);
    rules.metadata(r.metadata, "update");
  }
  if (options.expiration_date)
    r.expiration_date = options.expiration_date->empty() ? std::nullopt : options.expiration_date;
  plan.batch.upserts.push_back(r);
  plan.batch.events.push_back(update_event(r, current.memory));
  plan.changed.emplace_back(std::move(r), false);
  return plan;
}

/// After a shared store dropped new records of `plan` as duplicates of records another node added meanwhile:
/// they are not indexed, and add() reports the stored record (event none) instead.
inline void forget_dropped_duplicates(write_plan& plan, std::span<const duplicate_record> dropped) {
  for (const auto& d : dropped) {
    std::erase_if(plan.changed, [&](const auto& c) { return c.first.id == d.dropped_id; });
    for (auto& e : plan.result.results)
      if (e.id == d.dropped_id) {
        e.id = d.existing_id;
        e.event = event_kind::none;
      }
  }
}

}  // namespace engram::inline v0::detail
