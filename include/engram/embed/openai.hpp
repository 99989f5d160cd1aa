// engram-requires: http
#pragma once
/// @file embed/openai.hpp
/// Embeddings from any OpenAI-compatible `/embeddings` endpoint (OpenAI, Azure, vLLM, llama.cpp, LM Studio,
/// TEI, Ollama's /v1).

#include <engram/error.hpp>
#include <engram/http/remote_embedder.hpp>
#include <engram/http/transport.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace engram::inline v0 {

/// Settings of openai_embedder.
struct openai_embedder_options {
  http_options http{};                           ///< base_url, key, timeouts, retries
  std::string model = "text-embedding-3-small";  ///< the server's model name
  /// Expected vector length; 0 means "whatever the first reply has" (one call at construction of a memory).
  std::size_t dimension = 0;
  /// Also send `dimensions: dimension` in each request, asking the model to shorten its vectors
  /// (text-embedding-3-* support it; many other servers reject it).
  bool request_dimensions = false;
  std::size_t batch_size = 128;  ///< texts per request
};

namespace detail {

/// The wire format of POST /embeddings.
struct openai_embedding_protocol {
  std::string model;
  std::size_t dimensions = 0;  ///< sent when non-zero

  [[nodiscard]] std::string name() const { return "openai:" + model; }
  [[nodiscard]] static std::string path() { return "/embeddings"; }

  [[nodiscard]] nlohmann::json request(std::span<const std::string> texts) const {
    nlohmann::json body{{"model", model}, {"input", texts}};
    if (dimensions) body["dimensions"] = dimensions;
    return body;
  }

  /// Reads `data[i].embedding`, placed by `data[i].index` (position when absent).
  [[nodiscard]] std::vector<std::vector<float>> parse(const nlohmann::json& reply, std::size_t n) const {
    const auto where = name() + " reply";
    if (!reply.is_object() || !reply.contains("data") || !reply["data"].is_array())
      throw provider_error(where + ": expected an object with a 'data' array", 200, excerpt(reply.dump()));
    const auto& data = reply["data"];
    if (data.size() != n)
      throw provider_error(
          where + ": " + std::to_string(data.size()) + " embeddings for " + std::to_string(n) + " inputs", 200,
          excerpt(reply.dump()));
    std::vector<std::vector<float>> out(n);
    for (std::size_t pos = 0; pos < n; ++pos) {
      const auto& item = data[pos];
      if (!item.is_object() || !item.contains("embedding"))
        throw provider_error(where + ": data[" + std::to_string(pos) + "] has no 'embedding'", 200);
      std::size_t index = pos;
      if (item.contains("index")) {
        if (!item["index"].is_number_unsigned() || item["index"].get<std::size_t>() >= n)
          throw provider_error(
              where + ": data[" + std::to_string(pos) + "].index is not in [0, " + std::to_string(n) + ")", 200);
        index = item["index"].get<std::size_t>();
      }
      if (!out[index].empty()) throw provider_error(where + ": two embeddings for input " + std::to_string(index), 200);
      out[index] = json_vector(item["embedding"], where);
      if (out[index].empty()) throw provider_error(where + ": empty embedding for input " + std::to_string(index), 200);
    }
    return out;
  }
};

}  // namespace detail

/// Embeds with an OpenAI-compatible server: POST {base_url}/embeddings {"model", "input": [...]}, batched.
/// `name()` is "openai:<model>". Thread-safe; movable.
class openai_embedder : public detail::remote_embedder<detail::openai_embedding_protocol> {
 public:
  /// @throws validation_error for a bad base_url, an empty model or batch_size 0.
  explicit openai_embedder(openai_embedder_options o = {})
      : remote_embedder(
            std::move(o.http),
            detail::openai_embedding_protocol{checked_model(o.model), o.request_dimensions ? o.dimension : 0},
            o.dimension, o.batch_size) {
    if (o.request_dimensions && o.dimension == 0)
      throw validation_error("openai_embedder: request_dimensions needs a dimension");
  }

 private:
  static std::string checked_model(const std::string& m) {
    if (m.empty()) throw validation_error("openai_embedder: model is empty");
    return m;
  }
};

}  // namespace engram::inline v0
