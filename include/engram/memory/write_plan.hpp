#pragma once
/// @file memory/write_plan.hpp
/// Write planning: turns an add's decided actions (or an update, or a deletion) into one write_batch, with the
/// events add() reports. It takes no lock and does no I/O: what it needs to know about stored memories comes
/// from the callables it is given, which the memory answers under its lock.

#include <engram/detail/md5.hpp>
#include <engram/error.hpp>
#include <engram/extract/actions.hpp>
#include <engram/memory/action_inputs.hpp>
#include <engram/memory/options.hpp>
#include <engram/memory/validate.hpp>
#include <engram/record.hpp>
#include <engram/scope.hpp>
#include <engram/temporal/supersede.hpp>
#include <engram/temporal/validity.hpp>
#include <engram/time.hpp>
#include <engram/uuid.hpp>
#include <engram/write_batch.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace engram::inline v0::detail {

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

/// Plans an add's actions for scope `s`; a contradicted memory (UPDATE, DELETE) is handled as `policy` says
/// (temporal/validity.hpp).
/// @param duplicate  (hash, text) -> the id of a visible memory of the scope with this text, or nullopt
/// @param target     id -> the record if it exists and `s` selects it (an extractor cannot reach outside the scope)
/// @param in         the vector of every text the actions may write, and the extractor's entities of them
template <class Duplicate, class Target>
write_plan plan_add(std::span<const fact> facts, std::span<const memory_action> actions, const scope& s,
                    const add_options& options, const input_rules& rules, timestamp now, contradiction_policy policy,
                    Duplicate&& duplicate, Target&& target, const action_inputs& in) {
  write_plan plan;
  auto& result = plan.result;
  std::unordered_set<std::string> touched;
  std::vector<std::pair<std::string, std::string>> pending;  // (hash, text) added by this batch
  const bool supersede = policy == contradiction_policy::supersede;
  std::vector<std::pair<std::size_t, std::string>> added_from;     // (fact index, id) of each ADD
  std::vector<std::pair<std::size_t, std::size_t>> closed_by_fact;  // (fact index, batch upsert) of each closing
  auto keep_version = [&](record v) {
    plan.batch.events.push_back(closed_version_event(v));
    plan.batch.upserts.push_back(v);
    plan.changed.emplace_back(std::move(v), true);
  };

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
        r.tenant = s.tenant;
        r.extra = s.extra;
        r.role = from ? from->role : std::string("user");
        r.actor_id = from ? from->actor_id : std::string();
        r.created_at = r.updated_at = options.timestamp.value_or(now);  // when the conversation happened
        r.embedding = in.vector_of(a.text);
        r.entities = in.entities_of(a.text);
        r.expiration_date = options.expiration_date;
        r.immutable = options.immutable;
        r.valid_from = from && from->valid_from ? *from->valid_from : r.created_at;  // when the fact became true
        plan.batch.events.push_back(history_event{make_uuid_v4(), r.id, std::nullopt, r.memory, event_kind::add, r.created_at,
                                                  std::nullopt, false, r.actor_id, r.role});
        result.results.push_back({r.id, r.memory, event_kind::add, std::nullopt});
        added_from.emplace_back(a.fact_index, r.id);
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
        const auto became = became_true(from ? from->valid_from : std::nullopt, options.timestamp, now);
        if (supersede && !a.correction) {
          if (became <= r.valid_since()) {  // an older statement arriving late: kept closed, the memory stays
            auto late = closed_version(r, a.text, in.vector_of(a.text), became, r.valid_since(), now);
            late.entities = in.entities_of(a.text);
            keep_version(std::move(late));
            result.results.push_back({r.id, r.memory, event_kind::none, std::nullopt});
            break;
          }
          auto was = closed_version(r, old, r.embedding, r.valid_since(), became, now);
          was.entities = r.entities;
          keep_version(std::move(was));
        }
        if (!a.correction && became > r.valid_since()) r.valid_from = became;  // a change: true from then on
        r.memory = a.text;
        r.hash = md5_hex(a.text);
        r.updated_at = now;
        r.embedding = in.vector_of(a.text);
        r.entities = in.entities_of(a.text);
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
        result.results.push_back({current->id, current->memory, event_kind::del, std::nullopt});
        if (supersede) {  // closed, not erased: it held until the contradicting fact became true
          const auto became = became_true(from ? from->valid_from : std::nullopt, options.timestamp, now);
          record r = closed(std::move(*current), became, now);
          plan.batch.events.push_back(update_event(r, r.memory));
          closed_by_fact.emplace_back(a.fact_index, plan.batch.upserts.size());
          plan.batch.upserts.push_back(r);
          plan.changed.emplace_back(std::move(r), false);
          break;
        }
        plan.batch.erases.push_back(current->id);
        plan.batch.events.push_back(deletion_event(*current, now));
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
  // A memory closed by a DELETE is superseded by what the same fact added, when it added something.
  for (const auto& [fact_index, at] : closed_by_fact) {
    auto by = std::find_if(added_from.begin(), added_from.end(), [fi = fact_index](const auto& x) { return x.first == fi; });
    if (fact_index >= facts.size() || by == added_from.end()) continue;
    auto& r = plan.batch.upserts[at];
    r.superseded_by = by->second;
    for (auto& [c, is_new] : plan.changed)
      if (!is_new && c.id == r.id) c.superseded_by = by->second;
  }
  return plan;
}

/// Plans update(): `current` with the new text and its `vector` (when options.text is set), the metadata patch
/// merged in and the expiration date. @throws validation_error when the merged metadata is over the limit.
inline write_plan plan_update(const record& current, std::vector<float> vector, const update_options& options,
                              const input_rules& rules, timestamp now,
                              std::optional<recognized_entities> entities = std::nullopt) {
  if (current.immutable)
    throw validation_error("update: memory '" + current.id + "' is immutable (added with immutable: true)");
  write_plan plan;
  record r = current;
  if (options.text) {
    r.memory = *options.text;
    r.hash = md5_hex(r.memory);
    r.embedding = std::move(vector);
    r.entities = std::move(entities);  // the extractor's for the new text, else none: the index recognises it
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

/// Runs `f` for item `i` of `n`; in a batch of several, a validation_error or not_found it throws is rethrown
/// with the item's index in front ("item 3: ..."), so the caller can find the bad one.
template <class F>
decltype(auto) for_item(std::size_t i, std::size_t n, F&& f) {
  if (n <= 1) return f();
  const auto where = "item " + std::to_string(i) + ": ";
  try {
    return f();
  } catch (const not_found& e) {
    throw not_found(where + e.what());
  } catch (const validation_error& e) {
    throw validation_error(where + e.what());
  }
}

/// @throws validation_error when an id is empty or given twice in `ids` (naming both indexes).
template <class Ids>
void require_distinct_ids(const Ids& ids, std::string_view op) {
  std::unordered_map<std::string_view, std::size_t> first;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::string_view id = ids[i];
    if (id.empty()) throw validation_error(std::string(op) + ": item " + std::to_string(i) + ": the memory id is empty");
    if (auto [it, fresh] = first.emplace(id, i); !fresh)
      throw validation_error(std::string(op) + ": item " + std::to_string(i) + ": memory '" + std::string(id) +
                             "' is already item " + std::to_string(it->second) + " of this batch");
  }
}

/// Checks update_many's items as update() checks one (and that no id is given twice), before anything is read.
/// @returns the new texts, in item order (items without a text have none): what to embed.
inline std::vector<std::string> checked_update_texts(std::span<const memory_update> items, const input_rules& rules) {
  std::vector<std::string_view> ids;
  for (const auto& u : items) ids.push_back(u.id);
  require_distinct_ids(ids, "update");
  std::vector<std::string> texts;
  for (std::size_t i = 0; i < items.size(); ++i) {
    for_item(i, items.size(), [&] { rules.update(items[i].options); });
    if (items[i].options.text) texts.push_back(*items[i].options.text);
  }
  return texts;
}

/// Plans update_many(): each item as plan_update (at its own timestamp, else `now`), all in one batch.
/// `vectors` holds one vector per item with a text, in order (see checked_update_texts), and `entities`, when set,
/// the extractor's entities of those texts; `stored(id)` returns the memory or throws not_found.
/// @throws as plan_update, naming the item's index in a batch of several.
template <class Stored>
write_plan plan_updates(std::span<const memory_update> items, std::vector<std::vector<float>> vectors,
                        const std::optional<std::vector<recognized_entities>>& entities, Stored&& stored,
                        const input_rules& rules, timestamp now) {
  write_plan plan;
  std::size_t next_text = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto& u = items[i];
    std::optional<recognized_entities> named;
    if (u.options.text && entities) named = entities->at(next_text);
    std::vector<float> v = u.options.text ? std::move(vectors.at(next_text++)) : std::vector<float>{};
    auto one = for_item(i, items.size(), [&] {
      return plan_update(stored(u.id), std::move(v), u.options, rules, u.options.timestamp.value_or(now),
                         std::move(named));
    });
    for (auto& r : one.batch.upserts) plan.batch.upserts.push_back(std::move(r));
    for (auto& e : one.batch.events) plan.batch.events.push_back(std::move(e));
    for (auto& c : one.changed) plan.changed.push_back(std::move(c));
  }
  return plan;
}

/// Plans delete_many(): every id erased with its DELETE event at `now`, in one batch. `stored(id)` returns the
/// memory or throws not_found. @throws validation_error for an empty or repeated id; not_found (naming the
/// item's index in a batch of several).
template <class Stored>
write_batch plan_deletions(std::span<const std::string> ids, Stored&& stored, timestamp now) {
  require_distinct_ids(ids, "delete");
  write_batch batch;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const record current = for_item(i, ids.size(), [&] { return stored(ids[i]); });
    batch.erases.push_back(current.id);
    batch.events.push_back(deletion_event(current, now));
  }
  return batch;
}

/// The records update_many() returns: each record after its change, in order.
inline std::vector<record> changed_records(write_plan&& plan) {
  std::vector<record> out;
  for (auto& c : plan.changed) out.push_back(std::move(c.first));
  return out;
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
