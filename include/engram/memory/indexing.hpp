#pragma once
/// @file memory/indexing.hpp
/// Reading the store into the derived state: every record on open (or after a change-feed gap), the records of
/// one scope for the partition cache, and the vectors of records stored without one (imported text).

#include <engram/capabilities.hpp>
#include <engram/concepts.hpp>
#include <engram/error.hpp>
#include <engram/index/keyword_index.hpp>
#include <engram/memory/action_inputs.hpp>
#include <engram/memory/derived_state.hpp>
#include <engram/record.hpp>
#include <engram/scope.hpp>
#include <engram/write_batch.hpp>

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace engram::inline v0::detail {

/// The embedder's vectors for `texts`, checked: one per text, each of the embedder's dimension.
template <class Embedder>
std::vector<std::vector<float>> embed_checked(const Embedder& embedder, std::span<const std::string> texts) {
  if (texts.empty()) return {};
  auto v = embed_all(embedder, texts);
  if (v.size() != texts.size())
    throw error("embedder returned " + std::to_string(v.size()) + " vectors for " + std::to_string(texts.size()) +
                " texts");
  for (const auto& x : v)
    if (x.size() != embedder.dimension()) throw dimension_mismatch(embedder.dimension(), x.size(), "embedder");
  return v;
}

/// With entity similarity on (memory_config::entity_similarity): embeds, in one call, the entity names that
/// memories about to be indexed bring and that have no vector yet, and keeps the vectors for the entity index;
/// a no-op when off or every name has one. `texts`: the texts of those whose entities are recognised (no
/// record::entities), in any number of lists; `given`: the record::entities of the others. Takes no lock and
/// needs none: call it before the write lock (a remote embedder is slow), so that indexing under the lock finds
/// the vectors (a name without one does not merge by similarity).
template <class Embedder, class Index>
void embed_entity_names(const Embedder& embedder, derived_state<Index>& d,
                        std::initializer_list<std::span<const std::string>> texts,
                        std::span<const recognized_entities> given = {}) {
  if (!d.has_entity_similarity()) return;
  std::vector<std::string> all;
  for (const auto& t : texts) all.insert(all.end(), t.begin(), t.end());
  const auto names = d.entity_names_missing(all, given);
  if (!names.empty()) d.remember_entity_names(names, embed_checked(embedder, names));
}

/// As above, for an add: the texts its `actions` write (written_texts), with the extractor's entities of them
/// when `in` has them (action_inputs::name_entities).
template <class Embedder, class Index>
void embed_entity_names(const Embedder& embedder, derived_state<Index>& d, std::span<const memory_action> actions,
                        const action_inputs& in) {
  if (!d.has_entity_similarity()) return;
  std::vector<std::string> texts;
  std::vector<recognized_entities> given;
  for (auto& t : written_texts(actions)) {
    if (auto e = in.entities_of(t))
      given.push_back(std::move(*e));
    else
      texts.push_back(std::move(t));
  }
  embed_entity_names(embedder, d, {texts}, given);
}

/// As above, for update_many: its new `texts`, or the extractor's entities of them when it `named` them.
template <class Embedder, class Index>
void embed_entity_names(const Embedder& embedder, derived_state<Index>& d, std::span<const std::string> texts,
                        const std::optional<std::vector<recognized_entities>>& named) {
  if (named)
    embed_entity_names(embedder, d, {}, std::span<const recognized_entities>(*named));
  else
    embed_entity_names(embedder, d, {texts});
}

/// Gives `records` (stored without a vector) their vectors; with `writable` (a writer's path) they are stored
/// too, in one batch. A read embeds them for the index only.
template <class Embedder, class Store>
void embed_records(const Embedder& embedder, std::vector<record>& records, Store* writable) {
  if (records.empty()) return;
  std::vector<std::string> texts;
  for (const auto& r : records) texts.push_back(r.memory);
  auto vectors = embed_checked(embedder, texts);
  write_batch batch;
  for (std::size_t i = 0; i < records.size(); ++i) {
    records[i].embedding = std::move(vectors[i]);
    if (writable) batch.upserts.push_back(records[i]);
  }
  if (writable) writable->apply(batch);
}

/// Calls f(const record&, std::span<const float> vector) for every stored record: through for_each_vector when
/// the store has it (no copy; file_store reads snapshot vectors in place), else for_each.
template <class Store, class F>
void for_each_stored(const Store& store, F&& f) {
  if constexpr (vector_scanning_store<Store>)
    store.for_each_vector(f);
  else
    store.for_each([&](const record& r) { f(r, std::span<const float>(r.embedding)); });
}

/// Throws when a stored vector is not of the embedder's dimension.
inline void check_stored_vector(const record& r, std::size_t size, std::size_t dimension) {
  if (size != dimension) throw dimension_mismatch(dimension, size, "store record '" + r.id + "'");
}

/// index_store's pass over the store.
template <class Index, class Store, class IndexOne>
std::vector<record> index_all(derived_state<Index>& d, const Store& store, std::size_t dimension,
                              IndexOne& index_one) {
  std::size_t expected = 0;
  if constexpr (counted_store<Store>) expected = store.size();
  d.reserve(expected, [&](auto&& count) {
    for_each_stored(store, [&](const record& r, std::span<const float>) { count(r); });
  });
  constexpr std::size_t background_keywords_from = 20000;  // below, a thread costs more than it saves
  std::vector<record> missing;
  keyword_index::bulk_loader keywords(d.keywords(),
                                      expected >= background_keywords_from && std::thread::hardware_concurrency() > 1);
  for_each_stored(store, [&](const record& r, std::span<const float> vector) {
    if (vector.empty()) return missing.push_back(r);
    check_stored_vector(r, vector.size(), dimension);
    index_one(r, keywords, vector);
  });
  keywords.finish();
  return missing;
}

/// Indexes every record of `store` through `index_one(record, keywords, vector)`, the keyword index being built
/// on a second thread meanwhile when the store is large; partitions are sized first from a counting pass. With
/// entity similarity on, the entity graphs are built last, once the entity names of every record (those stored
/// without a vector too) have vectors from `embedder`, embedded in one call.
/// @returns the records stored without a vector (to be embedded).
template <class Index, class Store, class Embedder, class IndexOne>
std::vector<record> index_store(derived_state<Index>& d, const Store& store, const Embedder& embedder,
                                IndexOne&& index_one) {
  const bool names = d.has_entity_similarity();
  d.hold_entities(names);
  try {
    auto missing = index_all(d, store, embedder.dimension(), index_one);
    if (names) {
      auto keys = d.indexed_entity_names_missing();
      for (auto& k : d.entity_names_missing(missing)) keys.push_back(std::move(k));
      std::sort(keys.begin(), keys.end());
      keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
      if (!keys.empty()) d.remember_entity_names(keys, embed_checked(embedder, keys));
      d.hold_entities(false);
    }
    return missing;
  } catch (...) {
    d.hold_entities(false);
    throw;
  }
}

/// Indexes, through `index_one(record)`, the records query scope `q` selects that are not indexed yet. With
/// entity similarity on, the names they bring are embedded first, in one call (a partition cache load).
/// @returns those stored without a vector.
template <class Index, class Store, class Embedder, class IndexOne>
std::vector<record> index_scope(derived_state<Index>& d, const Store& store, const scope& q, const Embedder& embedder,
                                IndexOne&& index_one) {
  std::vector<record> missing, fresh;
  auto take = [&](const record& r) {
    if (r.embedding.empty()) return missing.push_back(r);
    check_stored_vector(r, r.embedding.size(), embedder.dimension());
    index_one(r);
  };
  const bool names = d.has_entity_similarity();
  store.for_each_in_scope(q, [&](const record& r) {
    if (d.slot_of(r.id)) return;
    if (names)
      fresh.push_back(r);  // indexed once their names have vectors
    else
      take(r);
  });
  if (const auto keys = d.entity_names_missing(fresh); !keys.empty())
    d.remember_entity_names(keys, embed_checked(embedder, keys));
  for (const auto& r : fresh) take(r);
  return missing;
}

}  // namespace engram::inline v0::detail
