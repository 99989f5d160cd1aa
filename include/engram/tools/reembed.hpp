#pragma once
/// @file tools/reembed.hpp
/// Switching a store to another embedding model: every record is embedded again with the new embedder and
/// the store's identity is replaced in one atomic step. This is the documented way to change models; a
/// store otherwise refuses an embedder other than the one it was first bound to.
///
///   { engram::file_store s(dir); engram::reembed(s, new_embedder); }
///   engram::basic_memory<NewEmbedder, ...> mem(new_embedder, engram::file_store(dir));

#include <engram/capabilities.hpp>
#include <engram/concepts.hpp>
#include <engram/error.hpp>
#include <engram/record.hpp>
#include <engram/write_batch.hpp>

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace engram::inline v0 {

/// Re-embeds every record of `store` with `e` (texts sent `batch_size` at a time), then atomically replaces
/// all vectors and binds the store to `e`'s identity: after a crash the store holds either the old vectors
/// with the old identity or the new ones with the new identity. Texts, metadata, timestamps and history are
/// unchanged. No basic_memory may be open over the store meanwhile (writes made during the call could keep
/// old vectors). Memory use: every record twice. @returns the number of records re-embedded.
/// @throws whatever the embedder throws (the store is then unchanged); dimension_mismatch when the
///         embedder returns vectors of a size other than its dimension().
template <record_store Store, embedder E>
std::size_t reembed(Store& store, const E& e, std::size_t batch_size = 256) {
  static_assert(requires(const store_identity& id, const write_batch& b) { store.rebind(id, b); },
                "reembed needs a store with rebind(store_identity, write_batch) (file_store, sqlite_store); a "
                "memory_store is volatile: build a new memory with the new embedder instead");
  if (batch_size == 0) throw validation_error("reembed: batch_size must be at least 1");
  write_batch batch;
  store.for_each([&](const record& r) { batch.upserts.push_back(r); });
  const std::size_t dim = e.dimension();
  for (std::size_t from = 0; from < batch.upserts.size(); from += batch_size) {
    const std::size_t to = std::min(batch.upserts.size(), from + batch_size);
    std::vector<std::string> texts;
    texts.reserve(to - from);
    for (std::size_t i = from; i < to; ++i) texts.push_back(batch.upserts[i].memory);
    auto vectors = detail::embed_all(e, std::span<const std::string>(texts));
    if (vectors.size() != texts.size())
      throw validation_error("reembed: embedder returned " + std::to_string(vectors.size()) + " vectors for " +
                             std::to_string(texts.size()) + " texts");
    for (std::size_t i = from; i < to; ++i) {
      auto& v = vectors[i - from];
      if (v.size() != dim)
        throw dimension_mismatch(dim, v.size(), "reembed: vector of record '" + batch.upserts[i].id + "'");
      batch.upserts[i].embedding = std::move(v);
    }
  }
  std::string keys;  // the scope key set recorded stays as it is
  if constexpr (identity_reporting_store<Store>)
    if (const auto id = store.identity()) keys = id->scope_keys;
  store.rebind(store_identity{detail::embedder_name(e), dim, std::move(keys)}, batch);
  return batch.upserts.size();
}

}  // namespace engram::inline v0
