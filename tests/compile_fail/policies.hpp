#pragma once
// Policies that meet every requirement of basic_memory, declared only: the compile-fail programs are checked
// with -fsyntax-only, so nothing is linked. Each program breaks one of them by leaving out one member.

#include <engram/memory.hpp>  // basic_memory and the types its policies use

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cf {

struct good_embedder {
  std::size_t dimension() const;
  std::vector<float> embed(std::string_view text) const;
};

struct good_index {
  std::size_t dimension() const;
  std::size_t size() const;
  void add(engram::slot_id slot, engram::partition_id partition, std::span<const float> vector);
  void update(engram::slot_id slot, std::span<const float> vector);
  void remove(engram::slot_id slot);
  void clear();
  std::vector<engram::index_hit> search(std::span<const float> query, std::size_t k,
                                        std::span<const engram::partition_id> partitions,
                                        const engram::slot_bitmap* candidates) const;
};

struct good_store {
  void apply(const engram::write_batch& batch);
  std::optional<engram::record> get(std::string_view id) const;
  template <class F>
  void for_each(F&& visit) const;
  std::vector<engram::history_event> history(std::string_view id) const;
  void clear();
};

struct good_extractor {
  std::vector<engram::fact> extract(std::span<const engram::message> messages,
                                    const engram::extraction_context& context);
  std::vector<engram::memory_action> decide(std::span<const engram::fact> facts,
                                            std::span<const std::vector<engram::existing_memory>> neighbours,
                                            const engram::extraction_context& context);
};

}  // namespace cf
