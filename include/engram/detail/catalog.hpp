#pragma once
/// @file detail/catalog.hpp
/// basic_memory's bookkeeping: which slot holds which memory id, which partition each scope is, and the
/// content hashes per partition for exact-duplicate checks. Not thread-safe (the memory's lock guards it).
///
/// Layout: per slot one id string and a 24-byte entry in flat vectors; id lookup and (partition, content
/// hash) lookup go through open-addressing tables of slot numbers (8 bytes a cell, load at most 1/2), and
/// the slots sharing a (partition, content hash) form a doubly linked list through the slot entries. So
/// attaching a memory costs one allocation (its id), and opening a large store builds no node containers.

#include <engram/detail/slot_hash_set.hpp>
#include <engram/ids.hpp>
#include <engram/scope.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
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
  /// The partition of an exact record scope, created on first use. O(1) expected.
  partition_id partition_for(const scope& s) {
    return partition_for(s.user_id, s.agent_id, s.run_id, s.tenant, s.extra);
  }

  /// As above, from the scope's parts (no scope object needed).
  partition_id partition_for(std::string_view user_id, std::string_view agent_id, std::string_view run_id,
                             std::string_view tenant = {}, std::string_view extra = {}) {
    const auto key = scope_key{user_id, agent_id, run_id, tenant, extra};
    if (auto it = ids_.find(key); it != ids_.end()) return it->second;
    const auto p = static_cast<partition_id>(parts_.size());
    scope s{std::string(user_id), std::string(agent_id), std::string(run_id), std::string(tenant), std::string(extra)};
    if (!s.user_id.empty()) by_user_[s.user_id].push_back(p);
    if (!s.agent_id.empty()) by_agent_[s.agent_id].push_back(p);
    if (!s.run_id.empty()) by_run_[s.run_id].push_back(p);
    if (!s.extra.empty()) with_extra_.push_back(p);
    ids_.emplace(s, p);
    parts_.push_back(partition{std::move(s), {}});
    return p;
  }

  /// The partition of record `r`'s exact scope, if it has one (creates none).
  template <class Record>
  [[nodiscard]] std::optional<partition_id> find_partition(const Record& r) const {
    const auto it = ids_.find(scope_key{r.user_id, r.agent_id, r.run_id, r.tenant, r.extra});
    return it == ids_.end() ? std::nullopt : std::optional<partition_id>(it->second);
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
    if (!shortest && !q.extra.empty()) shortest = &with_extra_;  // only further keys (an app id) given
    if (!shortest) return out;  // empty query scope selects nothing
    for (const auto p : *shortest)
      if (q.selects(parts_[p].scope)) out.push_back(p);
    return out;  // lists are built in increasing order
  }

  /// Makes room for `n` memories in total without growing (bulk loading).
  void reserve(std::size_t n) {
    ids_of_.reserve(n);
    slots_.reserve(n);
    by_id_.reserve(n);
    by_hash_.reserve(n);
  }

  /// Gives memory `id` (not attached yet) a slot in partition `p`. O(1) expected; one allocation for the id.
  slot_id attach(std::string_view id, partition_id p, std::string_view hash) {
    slot_id s;
    if (!free_.empty()) {
      s = free_.back();
      free_.pop_back();
      ids_of_[s].assign(id);
    } else {
      s = static_cast<slot_id>(slots_.size());
      ids_of_.emplace_back(id);
      slots_.emplace_back();
    }
    auto& info = slots_[s];
    auto& members = parts_[p].members;
    info = slot_info{p, static_cast<std::uint32_t>(members.size()), fingerprint(hash), slot_hash_set::none,
                     slot_hash_set::none};
    members.push_back(s);
    by_id_.insert(id_hash(id), s);
    link_hash(s);
    ++size_;
    return s;
  }

  /// Releases a slot (its memory was deleted). O(1) expected.
  void detach(slot_id s) {
    auto& info = slots_[s];
    auto& members = parts_[info.partition].members;
    const auto last = members.back();
    members[info.position] = last;
    slots_[last].position = info.position;
    members.pop_back();
    unlink_hash(s);
    by_id_.erase(id_hash(ids_of_[s]), s);
    std::string().swap(ids_of_[s]);
    info = slot_info{};
    free_.push_back(s);
    --size_;
  }

  /// Records a new content hash for a slot (its text was updated). O(1) expected.
  void rehash(slot_id s, std::string_view hash) {
    unlink_hash(s);
    slots_[s].content = fingerprint(hash);
    link_hash(s);
  }

  [[nodiscard]] std::optional<slot_id> slot_of(std::string_view id) const {
    const auto s = by_id_.find(id_hash(id), [&](slot_id x) { return ids_of_[x] == id; });
    return s == slot_hash_set::none ? std::nullopt : std::optional<slot_id>(s);
  }
  [[nodiscard]] const std::string& id_of(slot_id s) const { return ids_of_[s]; }
  [[nodiscard]] partition_id partition_of(slot_id s) const { return slots_[s].partition; }
  [[nodiscard]] const scope& scope_of(partition_id p) const { return parts_[p].scope; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// Number of partitions (ids 0 .. partition_count()-1), empty ones included.
  [[nodiscard]] std::size_t partition_count() const noexcept { return parts_.size(); }
  /// One past the highest slot ever used (the size a slot bitmap needs).
  [[nodiscard]] std::size_t slot_capacity() const noexcept { return slots_.size(); }

  /// Calls f(slot) for each slot of partition p, in no particular order.
  template <class F>
  void for_each_slot(partition_id p, F&& f) const {
    for (const auto s : parts_[p].members) f(s);
  }
  [[nodiscard]] std::size_t partition_size(partition_id p) const { return parts_[p].members.size(); }

  /// Slots of partition p whose text has this content hash, in increasing order. Hashes are told apart by a
  /// 64-bit fingerprint: in the astronomically rare case of two colliding, a slot with the other hash is
  /// listed too (callers compare the texts anyway). O(slots listed).
  [[nodiscard]] std::vector<slot_id> with_hash(partition_id p, std::string_view hash) const {
    std::vector<slot_id> out;
    const auto fp = fingerprint(hash);
    for (auto s = head_of(p, fp); s != slot_hash_set::none; s = slots_[s].next) out.push_back(s);
    std::sort(out.begin(), out.end());
    return out;
  }

  void clear() { *this = scope_catalog{}; }

 private:
  struct slot_info {
    partition_id partition = 0;
    std::uint32_t position = 0;                 // index in its partition's members
    std::uint64_t content = 0;                  // fingerprint of the content hash
    slot_id prev = slot_hash_set::none;         // neighbours with the same (partition, content)
    slot_id next = slot_hash_set::none;
  };
  struct partition {
    engram::scope scope;
    std::vector<slot_id> members;
  };
  /// A scope as views, to look a partition up without building a scope.
  struct scope_key {
    std::string_view user, agent, run, tenant, extra;
    friend bool operator==(const scope_key&, const scope_key&) = default;
  };
  struct scope_hash {
    using is_transparent = void;
    std::size_t operator()(const scope_key& k) const noexcept {
      return scope_hash_of(k.user, k.agent, k.run, k.tenant, k.extra);
    }
    std::size_t operator()(const scope& s) const noexcept { return (*this)(scope_equal::key(s)); }
  };
  struct scope_equal {
    using is_transparent = void;
    static scope_key key(const scope& s) noexcept { return {s.user_id, s.agent_id, s.run_id, s.tenant, s.extra}; }
    static scope_key key(const scope_key& k) noexcept { return k; }
    template <class A, class B>
    bool operator()(const A& a, const B& b) const noexcept {
      return key(a) == key(b);
    }
  };

  static std::uint64_t id_hash(std::string_view id) noexcept { return std::hash<std::string_view>{}(id); }
  static std::uint64_t fingerprint(std::string_view hash) noexcept { return std::hash<std::string_view>{}(hash); }
  static std::uint64_t hash_key(partition_id p, std::uint64_t content) noexcept {
    return content ^ ((std::uint64_t{p} + 1) * 0x9E3779B97F4A7C15ull);
  }

  [[nodiscard]] slot_id head_of(partition_id p, std::uint64_t content) const {
    return by_hash_.find(hash_key(p, content), [&](slot_id x) {
      return slots_[x].partition == p && slots_[x].content == content;
    });
  }
  /// Puts `s` at the head of its (partition, content) list.
  void link_hash(slot_id s) {
    auto& info = slots_[s];
    const auto key = hash_key(info.partition, info.content);
    const auto head = head_of(info.partition, info.content);
    info.prev = slot_hash_set::none;
    info.next = head;
    if (head == slot_hash_set::none) {
      by_hash_.insert(key, s);
    } else {
      slots_[head].prev = s;
      by_hash_.replace(key, head, s);
    }
  }
  void unlink_hash(slot_id s) {
    auto& info = slots_[s];
    if (info.next != slot_hash_set::none) slots_[info.next].prev = info.prev;
    if (info.prev != slot_hash_set::none) {
      slots_[info.prev].next = info.next;
    } else {
      const auto key = hash_key(info.partition, info.content);
      if (info.next == slot_hash_set::none)
        by_hash_.erase(key, s);
      else
        by_hash_.replace(key, s, info.next);
    }
    info.prev = info.next = slot_hash_set::none;
  }

  std::vector<std::string> ids_of_;  // by slot; empty when free
  std::vector<slot_info> slots_;     // by slot
  std::vector<slot_id> free_;
  std::size_t size_ = 0;
  slot_hash_set by_id_;    // slots by id
  slot_hash_set by_hash_;  // the first slot of each (partition, content) list
  std::vector<partition> parts_;
  std::unordered_map<scope, partition_id, scope_hash, scope_equal> ids_;
  string_map<std::vector<partition_id>> by_user_, by_agent_, by_run_;
  std::vector<partition_id> with_extra_;  // partitions whose scope has further keys
};

}  // namespace engram::inline v0::detail
