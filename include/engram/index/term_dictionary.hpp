#pragma once
/// @file index/term_dictionary.hpp
/// The keyword index's vocabulary: each distinct term gets a dense 32-bit id, its bytes kept back to back in one
/// buffer and found through an open-addressing table (detail/slot_hash_set.hpp): no node, no string object and
/// no allocation per term, which is what interning a million distinct terms (numbers, names) on open costs.
/// Terms sharing their first `prefix_bytes` bytes are chained in insertion order, for the variant lookup.

#include <engram/detail/slot_hash_set.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace engram::inline v0::detail {

class term_dictionary {
 public:
  using term_id = std::uint32_t;
  static constexpr term_id none = slot_hash_set::none;
  /// Terms of at least this many bytes are chained by their first prefix_bytes bytes (for_each_with_prefix).
  static constexpr std::size_t prefix_bytes = 5;

  /// The id of `term`, or nullopt when it was never interned. O(|term|) expected.
  [[nodiscard]] std::optional<term_id> find(std::string_view term) const {
    const auto id = ids_.find(hash(term), [&](term_id i) { return this->term(i) == term; });
    return id == none ? std::nullopt : std::optional<term_id>(id);
  }

  /// The id of `term`, giving it the next id when it is new. O(|term|) expected.
  term_id intern(std::string_view term) {
    const auto h = hash(term);
    if (const auto id = ids_.find(h, [&](term_id i) { return this->term(i) == term; }); id != none) return id;
    const auto id = static_cast<term_id>(begins_.size() - 1);
    if (id == none) throw std::length_error("term_dictionary: more than 2^32 - 1 distinct terms");
    bytes_.append(term);
    begins_.push_back(bytes_.size());
    ids_.insert(h, id);
    next_same_prefix_.push_back(none);
    if (term.size() >= prefix_bytes) {
      auto [chain, fresh] = by_prefix_.try_emplace(pack_prefix(term), chain_ends{id, id});
      if (!fresh) {
        next_same_prefix_[chain->second.last] = id;
        chain->second.last = id;
      }
    }
    return id;
  }

  /// The bytes of term `id` (valid until the next intern()).
  [[nodiscard]] std::string_view term(term_id id) const noexcept {
    return std::string_view(bytes_).substr(begins_[id], begins_[id + 1] - begins_[id]);
  }

  /// Number of distinct terms.
  [[nodiscard]] std::size_t size() const noexcept { return begins_.size() - 1; }

  /// Calls f(term_id) for each term of at least prefix_bytes bytes that starts with the first prefix_bytes
  /// bytes of `term` (which must be that long), in the order they were interned.
  template <class F>
  void for_each_with_prefix(std::string_view term, F&& f) const {
    auto chain = by_prefix_.find(pack_prefix(term));
    if (chain == by_prefix_.end()) return;
    for (auto id = chain->second.first; id != none; id = next_same_prefix_[id]) f(id);
  }

 private:
  struct chain_ends {
    term_id first, last;
  };
  static std::uint64_t hash(std::string_view term) noexcept { return std::hash<std::string_view>{}(term); }
  static std::uint64_t pack_prefix(std::string_view term) noexcept {
    std::uint64_t key = 0;
    for (std::size_t i = 0; i < prefix_bytes; ++i) key = (key << 8) | static_cast<unsigned char>(term[i]);
    return key;
  }

  std::string bytes_;                          // every term, back to back
  std::vector<std::size_t> begins_{0};         // term i is bytes_[begins_[i], begins_[i + 1])
  slot_hash_set ids_;                          // term ids by their bytes
  std::vector<term_id> next_same_prefix_;      // by term id: the next term of its prefix chain
  std::unordered_map<std::uint64_t, chain_ends> by_prefix_;  // prefix chains by their packed first bytes
};

}  // namespace engram::inline v0::detail
