// engram-requires: http
#pragma once
/// @file http/remote_embedder.hpp
/// What every HTTP embedder shares: batching, dimension discovery and checking, over one wire protocol.

#include <engram/error.hpp>
#include <engram/http/transport.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace engram::inline v0::detail {

/// Reads one JSON array of numbers as a vector. @throws provider_error when it is not one.
inline std::vector<float> json_vector(const nlohmann::json& j, std::string_view where) {
  if (!j.is_array()) throw provider_error(std::string(where) + ": expected an array of numbers, got " + j.type_name());
  std::vector<float> v;
  v.reserve(j.size());
  for (const auto& x : j) {
    if (!x.is_number())
      throw provider_error(std::string(where) + ": expected an array of numbers, found a " + x.type_name());
    v.push_back(x.get<float>());
  }
  return v;
}

/// An embedder over HTTP. `Protocol` provides `name()`, `path()`, `request(std::span<const std::string>)
/// -> json` and `parse(const json&, std::size_t n) -> std::vector<std::vector<float>>` (n vectors in input
/// order, or provider_error).
///
/// The dimension is the configured one, or (configured 0) the length of the first vector the server
/// returns: dimension() makes a one-text call when nothing was embedded yet. Every later vector of another
/// length is a dimension_mismatch. Thread-safe; movable (a moved-from embedder must not be used).
template <class Protocol>
class remote_embedder {
 public:
  /// @throws validation_error for a batch size of 0 or a malformed base_url.
  remote_embedder(http_options http, Protocol protocol, std::size_t dimension, std::size_t batch_size)
      : transport_(std::move(http)), protocol_(std::move(protocol)), batch_size_(batch_size) {
    if (batch_size == 0) throw validation_error(protocol_.name() + ": batch_size must be at least 1");
    state_->dimension.store(dimension);
  }

  /// The vector length. Discovers it with one call when not configured. @throws provider_error.
  [[nodiscard]] std::size_t dimension() const {
    if (const auto d = state_->dimension.load(); d != 0) return d;
    std::lock_guard lock(state_->discover);
    if (const auto d = state_->dimension.load(); d != 0) return d;
    const std::string probe = "dimension probe";
    (void)embed_batch(std::span<const std::string>(&probe, 1));
    return state_->dimension.load();
  }

  /// "<provider>:<model>": recorded by durable stores so vectors of another model are refused.
  [[nodiscard]] std::string name() const { return protocol_.name(); }

  [[nodiscard]] std::vector<float> embed(std::string_view text) const {
    const std::string t(text);
    return std::move(embed_batch(std::span<const std::string>(&t, 1)).front());
  }

  /// The embeddings of `texts` in order, `batch_size` texts per request.
  /// @throws provider_error (server failed or replied malformed), dimension_mismatch.
  [[nodiscard]] std::vector<std::vector<float>> embed_batch(std::span<const std::string> texts) const {
    std::vector<std::vector<float>> out;
    out.reserve(texts.size());
    for (std::size_t begin = 0; begin < texts.size(); begin += batch_size_) {
      const auto chunk = texts.subspan(begin, std::min(batch_size_, texts.size() - begin));
      auto vectors = protocol_.parse(transport_.post_json(protocol_.path(), protocol_.request(chunk)), chunk.size());
      if (vectors.size() != chunk.size())
        throw provider_error(protocol_.name() + ": " + std::to_string(vectors.size()) + " embeddings for " +
                             std::to_string(chunk.size()) + " inputs");
      for (auto& v : vectors) {
        std::size_t expected = 0;
        if (v.empty()) throw provider_error(protocol_.name() + ": the server returned an empty embedding");
        if (!state_->dimension.compare_exchange_strong(expected, v.size()) && expected != v.size())
          throw dimension_mismatch(expected, v.size(), protocol_.name());
        out.push_back(std::move(v));
      }
    }
    return out;
  }

  [[nodiscard]] const http_transport& transport() const noexcept { return transport_; }
  [[nodiscard]] std::size_t batch_size() const noexcept { return batch_size_; }

 private:
  struct state {
    std::atomic<std::size_t> dimension{0};
    std::mutex discover;
  };
  http_transport transport_;
  Protocol protocol_;
  std::size_t batch_size_;
  std::unique_ptr<state> state_ = std::make_unique<state>();
};

}  // namespace engram::inline v0::detail
