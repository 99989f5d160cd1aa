#pragma once
/// @file detail/catalog.hpp
/// basic_memory's bookkeeping: which slot holds which memory id, which partition each scope is, and the
/// content hashes per partition for exact-duplicate checks. Not thread-safe (the memory's lock guards it).

#include <engram/index/topk.hpp>
#include <engram/scope.hpp>

#include <algorithm>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace engram::inline v0::detail {

/// std::hash<std::string_view> usable for heterogeneous lookup in unordered containers of std::string.
struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

template <class V>
using string_map = std::unordered_map<std::string, V, string_hash, std::equal_to<>>;

class scope_catalog {
 public:
  /// The partition of an exact record scope, created on first use.
  partition_id partition_for(const scope& s) {
    if (auto it = ids_.find(s); it != ids_.end()) return it->second;
    const auto p = static_cast<partition_id>(parts_.size());
    parts_.push_back(partition{s, {}, {}});
    ids_.emplace(s, p);
    if (!s.user_id.empty()) by_user_[s.user_id].push_back(p);
    if (!s.agent_id.empty()) by_agent_[s.agent_id].push_back(p);
    if (!s.run_id.empty()) by_run_[s.run_id].push_back(p);
    return p;
  }

  /// Every partition a query scope selects, in increasing order. Cost: the shortest list among the ids given.
  [[nodiscard]] std::vector<partition_id> select(const scope& q) const {
    const std::vector<partition_id>* shortest = nullptr;
    auto consider = [&](const string_map<std::vector<partition_id>>& m, const std::string& key) -> bool {
      if (key.empty()) return true;
      auto it = m.find(key);
      if (it == m.end()) return false;  // an id nobody has: nothing selected
      if (!shortest || it->second.size() < shortest->size()) shortest = &it->second;
      return true;
    };
    if (!consider(by_user_, q.user_id) || !consider(by_agent_, q.agent_id) || !consider(by_run_, q.run_id))
      return {};
    std::vector<partition_id> out;
    if (!shortest) return out;  // empty query scope selects nothing
    for (const auto p : *shortest)
      if (q.selects(parts_[p].scope)) out.push_back(p);
    return out;  // lists are built in increasing order
  }

  /// Gives memory `id` a slot in partition `p`.
  slot_id attach(const std::string& id, partition_id p, const std::string& hash) {
    slot_id s;
    if (!free_.empty()) {
      s = free_.back();
      free_.pop_back();
    } else {
      s = static_cast<slot_id>(slots_.size());
      slots_.emplace_back();
    }
    slots_[s] = slot_info{id, p, hash, true};
    slot_of_.emplace(id, s);
    parts_[p].members.insert(s);
    parts_[p].by_hash.emplace(hash, s);
    return s;
  }

  /// Releases a slot (its memory was deleted).
  void detach(slot_id s) {
    auto& info = slots_[s];
    auto& part = parts_[info.partition];
    part.members.erase(s);
    erase_hash(part, info.hash, s);
    slot_of_.erase(info.id);
    info = slot_info{};
    free_.push_back(s);
  }

  /// Records a new content hash for a slot (its text was updated).
  void rehash(slot_id s, const std::string& hash) {
    auto& info = slots_[s];
    auto& part = parts_[info.partition];
    erase_hash(part, info.hash, s);
    info.hash = hash;
    part.by_hash.emplace(hash, s);
  }

  [[nodiscard]] std::optional<slot_id> slot_of(std::string_view id) const {
    auto it = slot_of_.find(id);
    return it == slot_of_.end() ? std::nullopt : std::optional<slot_id>(it->second);
  }
  [[nodiscard]] const std::string& id_of(slot_id s) const { return slots_[s].id; }
  [[nodiscard]] partition_id partition_of(slot_id s) const { return slots_[s].partition; }
  [[nodiscard]] const scope& scope_of(partition_id p) const { return parts_[p].scope; }
  [[nodiscard]] std::size_t size() const noexcept { return slot_of_.size(); }
  /// Number of partitions (ids 0 .. partition_count()-1), empty ones included.
  [[nodiscard]] std::size_t partition_count() const noexcept { return parts_.size(); }
  /// One past the highest slot ever used (the size a slot bitmap needs).
  [[nodiscard]] std::size_t slot_capacity() const noexcept { return slots_.size(); }

  /// Calls f(slot) for each slot of partition p.
  template <class F>
  void for_each_slot(partition_id p, F&& f) const {
    for (const auto s : parts_[p].members) f(s);
  }
  [[nodiscard]] std::size_t partition_size(partition_id p) const { return parts_[p].members.size(); }

  /// Slots of partition p whose text has this content hash.
  [[nodiscard]] std::vector<slot_id> with_hash(partition_id p, const std::string& hash) const {
    std::vector<slot_id> out;
    auto [b, e] = parts_[p].by_hash.equal_range(hash);
    for (auto it = b; it != e; ++it) out.push_back(it->second);
    std::sort(out.begin(), out.end());
    return out;
  }

  void clear() {
    *this = scope_catalog{};
  }

 private:
  struct slot_info {
    std::string id;
    partition_id partition = 0;
    std::string hash;
    bool used = false;
  };
  struct partition {
    engram::scope scope;
    std::unordered_set<slot_id> members;
    std::unordered_multimap<std::string, slot_id> by_hash;
  };
  static void erase_hash(partition& part, const std::string& hash, slot_id s) {
    auto [b, e] = part.by_hash.equal_range(hash);
    for (auto it = b; it != e; ++it)
      if (it->second == s) {
        part.by_hash.erase(it);
        return;
      }
  }

  std::vector<slot_info> slots_;
  std::vector<slot_id> free_;
  string_map<slot_id> slot_of_;
  std::vector<partition> parts_;
  std::map<scope, partition_id> ids_;
  string_map<std::vector<partition_id>> by_user_, by_agent_, by_run_;
};

}  // namespace engram::inline v0::detail
