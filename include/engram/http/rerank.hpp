// engram-requires: http
#pragma once
/// @file http/rerank.hpp
/// A cross-encoder reranker over HTTP: Hugging Face TEI's `/rerank` or Cohere's (and Jina's, vLLM's) `/rerank`.
/// Plug it into a memory with `memory_config{.rerank = make_rerank_function(http_reranker(...))}`.

#include <engram/error.hpp>
#include <engram/http/transport.hpp>
#include <engram/rank/rerank.hpp>
#include <engram/record.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace engram::inline v0 {

/// The request and reply shapes of a `/rerank` server.
enum class rerank_protocol {
  /// TEI: {"query","texts"} -> [{"index","score"}, ...]
  tei,
  /// Cohere v1/v2, Jina, vLLM: {"model","query","documents","top_n"} -> {"results":[{"index","relevance_score"}]}
  cohere,
};

/// Settings of an http_reranker.
struct http_reranker_options {
  http_options http{};                         ///< base_url e.g. "http://localhost:8080" (TEI) or "https://api.cohere.com/v2"
  rerank_protocol protocol = rerank_protocol::tei;
  std::string model{};                         ///< sent as "model" (Cohere shape only; required by Cohere)
  std::string path = "/rerank";                ///< appended to base_url
};

/// Reorders hits by a cross-encoder's relevance of (query, memory text), one request per search. Each hit's
/// `score` becomes the server's relevance score (its score_details, when explained, still describe the fused
/// score that made it a candidate). Hits the server does not score are dropped.
///
/// Thread-safe (the transport is). @throws provider_error when the server fails or replies with another shape
/// (an index out of range, a missing score): a search fails rather than silently returning an unranked list.
class http_reranker {
 public:
  explicit http_reranker(http_reranker_options options)
      : opts_(std::move(options)), transport_(std::make_shared<http_transport>(opts_.http)) {}

  [[nodiscard]] std::vector<search_hit> rerank(std::string_view query, std::vector<search_hit> hits) const {
    if (hits.empty()) return hits;
    nlohmann::json texts = nlohmann::json::array();
    for (const auto& h : hits) texts.push_back(h.record.memory);
    nlohmann::json body;
    if (opts_.protocol == rerank_protocol::tei) {
      body = {{"query", std::string(query)}, {"texts", std::move(texts)}, {"raw_scores", false}};
    } else {
      body = {{"query", std::string(query)}, {"documents", std::move(texts)}, {"top_n", hits.size()}};
      if (!opts_.model.empty()) body["model"] = opts_.model;
    }
    const auto reply = transport_->post_json(opts_.path, body);
    const nlohmann::json* list = &reply;
    const char* score_key = "score";
    if (opts_.protocol == rerank_protocol::cohere) {
      if (!reply.is_object() || !reply.contains("results"))
        throw provider_error("rerank: reply has no 'results' array: " + reply.dump().substr(0, 200));
      list = &reply["results"];
      score_key = "relevance_score";
    }
    if (!list->is_array()) throw provider_error("rerank: expected an array of {index, score}, got " + list->dump().substr(0, 200));
    std::vector<std::pair<float, std::size_t>> order;
    std::vector<bool> seen(hits.size(), false);
    for (const auto& item : *list) {
      if (!item.is_object() || !item.contains("index") || !item["index"].is_number_unsigned() ||
          !item.contains(score_key) || !item[score_key].is_number())
        throw provider_error(std::string("rerank: each result needs 'index' and '") + score_key + "': " +
                             item.dump().substr(0, 200));
      const auto i = item["index"].get<std::size_t>();
      if (i >= hits.size() || seen[i])
        throw provider_error("rerank: result index " + std::to_string(i) + " is out of range or repeated (" +
                             std::to_string(hits.size()) + " documents sent)");
      seen[i] = true;
      order.emplace_back(item[score_key].get<float>(), i);
    }
    std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    std::vector<search_hit> out;
    out.reserve(order.size());
    for (const auto& [score, i] : order) {
      out.push_back(std::move(hits[i]));
      out.back().score = score;
    }
    return out;
  }

  [[nodiscard]] const http_reranker_options& options() const noexcept { return opts_; }
  [[nodiscard]] transport_stats stats() const noexcept { return transport_->stats(); }

 private:
  http_reranker_options opts_;
  std::shared_ptr<http_transport> transport_;  // shared: the reranker is copied into a std::function
};

static_assert(reranker<http_reranker>);

}  // namespace engram::inline v0
