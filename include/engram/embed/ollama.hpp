// engram-requires: http
#pragma once
/// @file embed/ollama.hpp
/// Embeddings from Ollama's native endpoint, POST /api/embed.

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

/// Settings of ollama_embedder.
struct ollama_embedder_options {
  http_options http{.base_url = "http://localhost:11434"};  ///< Ollama's root URL (no /v1)
  std::string model = "nomic-embed-text";
  std::size_t dimension = 0;    ///< expected vector length; 0: taken from the first reply
  std::size_t batch_size = 64;  ///< texts per request
  std::string keep_alive{};     ///< e.g. "10m": how long Ollama keeps the model loaded; empty: its default
};

namespace detail {

/// The wire format of Ollama's POST /api/embed.
struct ollama_embedding_protocol {
  std::string model;
  std::string keep_alive;

  [[nodiscard]] std::string name() const { return "ollama:" + model; }
  [[nodiscard]] static std::string path() { return "/api/embed"; }

  [[nodiscard]] nlohmann::json request(std::span<const std::string> texts) const {
    nlohmann::json body{{"model", model}, {"input", texts}};
    if (!keep_alive.empty()) body["keep_alive"] = keep_alive;
    return body;
  }

  /// Reads `embeddings`, one array per input, in input order.
  [[nodiscard]] std::vector<std::vector<float>> parse(const nlohmann::json& reply, std::size_t n) const {
    const auto where = name() + " reply";
    if (!reply.is_object() || !reply.contains("embeddings") || !reply["embeddings"].is_array())
      throw provider_error(where + ": expected an object with an 'embeddings' array", 200, excerpt(reply.dump()));
    const auto& e = reply["embeddings"];
    if (e.size() != n)
      throw provider_error(where + ": " + std::to_string(e.size()) + " embeddings for " + std::to_string(n) + " inputs",
                           200, excerpt(reply.dump()));
    std::vector<std::vector<float>> out;
    out.reserve(n);
    for (const auto& v : e) out.push_back(json_vector(v, where));
    return out;
  }
};

}  // namespace detail

/// Embeds with Ollama's native API (`/api/embed`, batched). For Ollama's OpenAI route use openai_embedder
/// with base_url "http://localhost:11434/v1". `name()` is "ollama:<model>". Thread-safe; movable.
class ollama_embedder : public detail::remote_embedder<detail::ollama_embedding_protocol> {
 public:
  /// @throws validation_error for a bad base_url, an empty model or batch_size 0.
  explicit ollama_embedder(ollama_embedder_options o = {})
      : remote_embedder(std::move(o.http), detail::ollama_embedding_protocol{checked_model(o.model), o.keep_alive},
                        o.dimension, o.batch_size) {}

 private:
  static std::string checked_model(const std::string& m) {
    if (m.empty()) throw validation_error("ollama_embedder: model is empty");
    return m;
  }
};

}  // namespace engram::inline v0
