#pragma once
// A loopback OpenAI-compatible server for tests: 127.0.0.1 on a free port, /v1/embeddings, /api/embed
// (Ollama) and /v1/chat/completions, answering from per-path queues of scripted replies.

#include <engram/embed/hashing.hpp>
#include <engram/http/transport.hpp>  // engram::http_options

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace engram_test {

/// One scripted answer. `body` empty with status 200 on an embeddings path: computed embeddings.
struct reply {
  int status = 200;
  std::string body{};
  std::vector<std::pair<std::string, std::string>> headers{};
  std::chrono::milliseconds delay{0};
};

/// What the server saw of one request.
struct seen_request {
  std::string path;
  nlohmann::json body;
  std::string authorization;
  std::string api_key;                        ///< the "api-key" header (Azure OpenAI)
  std::map<std::string, std::string> params;  ///< query parameters
};

class fake_server {
 public:
  using script_fn = std::function<reply(const nlohmann::json& request)>;

  /// @param dimension length of the computed embeddings (hashing_embedder of that size)
  explicit fake_server(std::size_t dimension = 64) : embedder_(dimension) {
    auto handle = [this](const httplib::Request& req, httplib::Response& res) { serve(req, res); };
    svr_.set_tcp_nodelay(true);
    svr_.Post("/v1/embeddings", handle);
    svr_.Post("/api/embed", handle);
    svr_.Post("/v1/chat/completions", handle);
    port_ = svr_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) throw std::runtime_error("fake_server: cannot bind 127.0.0.1");
    thread_ = std::thread([this] { svr_.listen_after_bind(); });
    for (int i = 0; i < 500 && !svr_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }

  ~fake_server() {
    {
      std::lock_guard lock(mtx_);
      stopping_ = true;
    }
    cv_.notify_all();
    svr_.stop();
    thread_.join();
  }

  fake_server(const fake_server&) = delete;
  fake_server& operator=(const fake_server&) = delete;

  [[nodiscard]] std::string root_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] std::string base_url() const { return root_url() + "/v1"; }
  [[nodiscard]] int port() const { return port_; }

  /// Queues a reply for `path` ("/v1/embeddings", "/api/embed", "/v1/chat/completions").
  void push(const std::string& path, reply r) {
    push(path, [r = std::move(r)](const nlohmann::json&) { return r; });
  }
  /// Queues a reply computed from the request.
  void push(const std::string& path, script_fn f) {
    std::lock_guard lock(mtx_);
    queues_[path].push_back(std::move(f));
  }
  /// Queues a 200 chat completion whose message content is `content`.
  void push_chat(const std::string& content) { push("/v1/chat/completions", reply{200, chat_body(content)}); }
  /// Queues a chat completion built from the request (e.g. to find the short ids the prompt shows).
  void push_chat(std::function<std::string(const nlohmann::json& request)> f) {
    push("/v1/chat/completions", [f = std::move(f)](const nlohmann::json& req) {
      return reply{200, chat_body(f(req))};
    });
  }
  /// Every reply of `path` is this one, once the queue is empty.
  void always(const std::string& path, reply r) {
    std::lock_guard lock(mtx_);
    fallback_[path] = std::move(r);
  }
  /// Computed embeddings get this length from now on (to fake a model swap).
  void set_dimension(std::size_t d) {
    std::lock_guard lock(mtx_);
    embedder_ = engram::hashing_embedder(d);
  }

  [[nodiscard]] std::vector<seen_request> requests(const std::string& path = {}) const {
    std::lock_guard lock(mtx_);
    std::vector<seen_request> out;
    for (const auto& r : seen_)
      if (path.empty() || r.path == path) out.push_back(r);
    return out;
  }
  [[nodiscard]] std::size_t count(const std::string& path) const { return requests(path).size(); }

  /// The embedding the server computes for `text` (to compare with what a client received).
  [[nodiscard]] std::vector<float> expected_embedding(const std::string& text) const {
    std::lock_guard lock(mtx_);
    return embedder_.embed(text);
  }

  static std::string chat_body(const std::string& content) {
    return nlohmann::json{
        {"id", "chatcmpl-test"},
        {"object", "chat.completion"},
        {"choices",
         {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", content}}}, {"finish_reason", "stop"}}}}}
        .dump();
  }

 private:
  void serve(const httplib::Request& req, httplib::Response& res) {
    auto body = nlohmann::json::parse(req.body, nullptr, false);
    reply r;
    engram::hashing_embedder emb(16);
    {
      std::lock_guard lock(mtx_);
      seen_.push_back({req.path, body, req.get_header_value("Authorization"), req.get_header_value("api-key"),
                       std::map<std::string, std::string>(req.params.begin(), req.params.end())});
      auto& q = queues_[req.path];
      if (!q.empty()) {
        auto f = std::move(q.front());
        q.pop_front();
        r = f(body);
      } else if (auto it = fallback_.find(req.path); it != fallback_.end()) {
        r = it->second;
      } else if (req.path == "/v1/chat/completions") {
        r = reply{400, R"({"error":{"message":"fake_server: no scripted chat reply"}})"};
      }
      emb = embedder_;
    }
    if (r.delay.count() > 0) {
      std::unique_lock lock(mtx_);
      cv_.wait_for(lock, r.delay, [this] { return stopping_; });
    }
    if (r.status == 200 && r.body.empty()) r.body = computed_embeddings(req.path, body, emb);
    res.status = r.status;
    for (const auto& [k, v] : r.headers) res.set_header(k, v);
    res.set_content(r.body, "application/json");
  }

  // OpenAI: data in reverse order, each with its index, so a client that ignores `index` gets them wrong.
  static std::string computed_embeddings(const std::string& path, const nlohmann::json& body,
                                         const engram::hashing_embedder& emb) {
    if (!body.is_object() || !body.contains("input") || !body["input"].is_array())
      return R"({"error":"fake_server: no input array"})";
    const auto& input = body["input"];
    if (path == "/api/embed") {
      nlohmann::json e = nlohmann::json::array();
      for (const auto& t : input) e.push_back(emb.embed(t.get<std::string>()));
      return nlohmann::json{{"model", body.value("model", "")}, {"embeddings", e}}.dump();
    }
    nlohmann::json data = nlohmann::json::array();
    for (std::size_t i = input.size(); i-- > 0;)
      data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", emb.embed(input[i].get<std::string>())}});
    return nlohmann::json{{"object", "list"}, {"data", data}, {"model", body.value("model", "")}}.dump();
  }

  mutable std::mutex mtx_;
  std::condition_variable cv_;
  bool stopping_ = false;
  engram::hashing_embedder embedder_;
  std::map<std::string, std::deque<script_fn>> queues_;
  std::map<std::string, reply> fallback_;
  std::vector<seen_request> seen_;
  httplib::Server svr_;
  int port_ = 0;
  std::thread thread_;
};

/// Client options for talking to `s` with short timeouts and backoffs, so that failure paths take
/// milliseconds. `url` replaces the server's base URL when given; `max_retries` and `read_timeout` as in
/// http_options (a concurrency test under load wants a longer read timeout).
inline engram::http_options fast(const fake_server& s, const std::string& url = {}, int max_retries = 2,
                                 std::chrono::milliseconds read_timeout = std::chrono::milliseconds(2000)) {
  engram::http_options o;
  o.base_url = url.empty() ? s.base_url() : url;
  o.api_key = "sk-test";
  o.connect_timeout = std::chrono::milliseconds(500);
  o.read_timeout = read_timeout;
  o.max_retries = max_retries;
  o.initial_backoff = std::chrono::milliseconds(5);
  o.max_backoff = std::chrono::milliseconds(20);
  return o;
}

}  // namespace engram_test
