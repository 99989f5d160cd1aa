#pragma once
/// @file entity/name_similarity.hpp
/// Entity resolution by the meaning of names (memory_config::entity_similarity): the normalised form names are
/// compared in, which types may be one entity, and the unit vectors of names as the memory's embedder gave them,
/// each name embedded once and kept by its normalised form. The entity index reads the vectors; the memory
/// embeds the names it lacks before it takes its write lock (a remote embedder takes ~100 ms).

#include <engram/entity/mentions.hpp>
#include <engram/error.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace engram::inline v0::detail {

/// A name as entities are compared: ASCII-lowercased, runs of spaces as one.
inline std::string entity_key(std::string_view name) {
  std::string out;
  for (const char c : name) {
    if (c == ' ') {
      if (!out.empty() && out.back() != ' ') out += ' ';
      continue;
    }
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

/// True for an entity that may join another by the similarity of names: dates and handles never do (two dates
/// or addresses written alike are different ones).
inline bool similarity_mergeable(entity_type t) noexcept { return t != entity_type::date && t != entity_type::handle; }

/// True when entities of types `a` and `b` may be one: the same type, or either a plain name.
inline bool compatible_types(entity_type a, entity_type b) noexcept {
  return a == b || a == entity_type::name || b == entity_type::name;
}

/// `threshold` when it is a valid memory_config::entity_similarity (0, off, to 1).
/// @throws validation_error otherwise (NaN included).
inline float checked_entity_similarity(float threshold) {
  if (!(threshold >= 0.0f && threshold <= 1.0f))
    throw validation_error("memory_config::entity_similarity is " + std::to_string(threshold) +
                           ": expected a cosine threshold from 0 (off, the default) to 1, such as 0.9");
  return threshold;
}

/// The dot product of two unit vectors (their cosine); 0 when their sizes differ.
inline float unit_cosine(std::span<const float> a, std::span<const float> b) noexcept {
  if (a.size() != b.size()) return 0.0f;
  float s = 0.0f;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

/// The unit vectors of entity names by normalised name (entity_key). Thread-safe (it locks itself): names are
/// learnt before a write takes the memory's lock and read under it. A vector is never replaced or dropped, so a
/// span find() returns stays valid for the cache's life. Memory: one vector per distinct name ever learnt.
class name_vectors {
 public:
  name_vectors() = default;
  name_vectors(const name_vectors&) = delete;
  name_vectors& operator=(const name_vectors&) = delete;

  /// The keys of `keys` without a vector, each once, in order.
  [[nodiscard]] std::vector<std::string> missing(const std::vector<std::string>& keys) const {
    std::vector<std::string> out;
    std::unordered_set<std::string_view> seen;
    const std::lock_guard lock(mtx_);
    for (const auto& k : keys)
      if (!by_key_.count(k) && seen.insert(k).second) out.push_back(k);
    return out;
  }

  /// Keeps the vector of each key, scaled to unit length (a zero vector is kept as none: the name is never
  /// embedded again and is similar to nothing). A key known already keeps the vector it has.
  /// @throws error when the counts differ.
  void remember(std::span<const std::string> keys, std::span<const std::vector<float>> vectors) {
    if (keys.size() != vectors.size())
      throw error("entity names: " + std::to_string(vectors.size()) + " vectors for " + std::to_string(keys.size()) +
                  " names");
    const std::lock_guard lock(mtx_);
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (by_key_.count(keys[i])) continue;
      auto v = vectors[i];
      double norm = 0.0;
      for (const float x : v) norm += double(x) * double(x);
      if (norm > 0.0 && std::isfinite(norm)) {
        const auto inv = static_cast<float>(1.0 / std::sqrt(norm));
        for (auto& x : v) x *= inv;
      } else {
        v.clear();
      }
      bytes_ += 64 + keys[i].size() + v.size() * sizeof(float);
      by_key_.emplace(keys[i], std::move(v));
    }
  }

  /// The unit vector of `key`; empty when it has none.
  [[nodiscard]] std::span<const float> find(const std::string& key) const {
    const std::lock_guard lock(mtx_);
    const auto it = by_key_.find(key);
    return it == by_key_.end() ? std::span<const float>() : std::span<const float>(it->second);
  }

  /// Bytes held, estimated (for reports).
  [[nodiscard]] std::size_t bytes() const {
    const std::lock_guard lock(mtx_);
    return bytes_;
  }

 private:
  mutable std::mutex mtx_;
  std::unordered_map<std::string, std::vector<float>> by_key_;
  std::size_t bytes_ = 0;
};

/// The names of one scope that are close to each other (cosine at least the threshold), best first. A name is
/// compared once, when it first needs it, with every name of the scope compared before; the answers are kept
/// across the scope's rebuilds, so that resolving a name again costs a lookup rather than a pass over the
/// scope's entities. Not thread-safe: its owner locks.
class similar_names {
 public:
  using neighbours = std::vector<std::pair<float, std::string>>;

  /// The names close to `key` (unit vector `v`) at `threshold` or more, best first (ties: the one seen first).
  const neighbours& of(const std::string& key, std::span<const float> v, float threshold) {
    const auto [it, fresh] = near_.try_emplace(key);
    auto& mine = it->second;  // stays valid while near_ grows
    if (!fresh) return mine;
    for (const auto& [other, w] : seen_) {
      const auto c = unit_cosine(v, w);
      if (c < threshold) continue;
      mine.emplace_back(c, other);
      auto& theirs = near_[other];
      const auto at = std::find_if(theirs.begin(), theirs.end(), [&](const auto& x) { return x.first < c; });
      theirs.emplace(at, c, key);
    }
    std::stable_sort(mine.begin(), mine.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    seen_.emplace_back(key, v);
    return mine;
  }

  /// Forgets the names `keep(key)` rejects (names no longer in the scope).
  template <class Keep>
  void prune(Keep&& keep) {
    std::erase_if(seen_, [&](const auto& s) { return !keep(s.first); });
    std::erase_if(near_, [&](const auto& n) { return !keep(n.first); });
    for (auto& [key, list] : near_) std::erase_if(list, [&](const auto& x) { return !keep(x.second); });
  }

  /// Bytes held, estimated (for reports).
  [[nodiscard]] std::size_t bytes() const noexcept {
    std::size_t b = seen_.size() * 48;
    for (const auto& [key, list] : near_) b += 64 + key.size() + list.size() * 48;
    return b;
  }

 private:
  std::unordered_map<std::string, neighbours> near_;
  std::vector<std::pair<std::string, std::span<const float>>> seen_;  // compared so far, with their vectors
};

}  // namespace engram::inline v0::detail
