// engram over an OpenAI-compatible server: real embeddings, and an LLM deciding what to remember.
//
//   ENGRAM_BASE_URL      server root incl. /v1 (default http://localhost:11434/v1, Ollama's OpenAI route)
//   ENGRAM_EMBED_MODEL   embedding model      (default nomic-embed-text)
//   ENGRAM_LLM_MODEL     chat model           (default llama3.2)
//   OPENAI_API_KEY       sent as a Bearer token when set (OpenAI needs it; Ollama ignores it)
#include "../common/provider_settings.hpp"

#include <engram/embed/openai.hpp>
#include <engram/extract/llm.hpp>
#include <engram/index/flat.hpp>
#include <engram/memory.hpp>
#include <engram/store/memory_store.hpp>

#include <chrono>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <string>
#include <vector>

namespace {

using llm_memory =
    engram::basic_memory<engram::openai_embedder, engram::flat_index, engram::memory_store, engram::llm_extractor>;

void print(const engram::add_result& r) {
  if (r.results.empty() && r.skipped.empty()) std::cout << "    (nothing worth remembering)\n";
  for (const auto& e : r.results) {
    std::cout << "    " << std::left << std::setw(7) << engram::to_string(e.event) << e.memory;
    if (e.previous_memory) std::cout << "   (was: " << *e.previous_memory << ")";
    std::cout << '\n';
  }
  for (const auto& s : r.skipped)
    std::cout << "    skipped " << engram::to_string(s.action.event) << ": " << s.reason << '\n';
}

}  // namespace

int main() {
  using namespace std::chrono_literals;
  // The same environment the engram command and engram-server read, with Ollama's defaults.
  const auto env = engram_app::provider_settings::from_env();
  engram::http_options http;
  http.base_url = env.base_url.empty() ? "http://localhost:11434/v1" : env.base_url;
  http.connect_timeout = 3s;
  http.read_timeout = 120s;  // a local model can be slow on its first call
  http.max_retries = 2;
  const auto embed_model = env.embed_model.empty() ? std::string("nomic-embed-text") : env.embed_model;
  const auto llm_model = env.llm_model.empty() ? std::string("llama3.2") : env.llm_model;

  std::cout << "engram providers example\n  server: " << http.base_url << "\n  embeddings: " << embed_model
            << "\n  chat: " << llm_model << "\n\n";
  try {
    // Constructing the memory asks the server for one embedding, to learn the model's dimension.
    llm_memory mem(engram::openai_embedder({.http = http, .model = embed_model}), engram::memory_store{},
                   engram::llm_extractor({.http = http,
                                          .model = llm_model,
                                          .excludes = {"small_talk"},
                                          .categories = {{"food", "diet, dishes, drinks"},
                                                         {"home", "where they live"},
                                                         {"work", "job and career"}}}));
    const auto alice = engram::user("alice");

    std::cout << "== alice: \"Hi! I'm Alice, a nurse in Lisbon. I'm vegetarian and I love green tea.\"\n";
    print(mem.add(
        std::vector<engram::message>{
            {"user", "Hi! I'm Alice, a nurse in Lisbon. I'm vegetarian and I love green tea.", "alice"},
            {"assistant", "Nice to meet you, Alice! Noted.", ""}},
        alice));

    std::cout << "\n== alice: \"Big news: I moved to Porto last month. And I switched from tea to coffee.\"\n";
    print(mem.add("Big news: I moved to Porto last month. And I switched from tea to coffee.", alice));

    std::cout << "\n== search \"where does alice live?\"\n";
    for (const auto& h : mem.search("where does alice live?", alice, {.limit = 3}))
      std::cout << "    " << std::fixed << std::setprecision(3) << h.score << "  " << h.record.memory
                << (h.record.metadata.contains("categories") ? "  " + h.record.metadata["categories"].dump() : "")
                << '\n';

    std::cout << "\n== everything alice's memory holds\n";
    for (const auto& r : mem.get_all(alice)) {
      std::cout << "    " << r.memory << '\n';
      for (const auto& e : mem.history(r.id))
        if (e.event == engram::event_kind::update)
          std::cout << "      history: updated from \"" << e.old_memory.value_or("") << "\"\n";
    }
  } catch (const engram::provider_error& e) {
    std::cerr << "\nThe server did not answer as expected: " << e.what() << "\n\n"
              << (e.status() == 0 ? "No server answered at " + http.base_url +
                                        ".\nStart one (e.g. `ollama serve`, then `ollama pull " + embed_model +
                                        "` and `ollama pull " + llm_model +
                                        "`), or point ENGRAM_BASE_URL at an OpenAI-compatible server.\n"
                  : e.status() == 401 ? std::string("The server refused the key: set OPENAI_API_KEY.\n")
                  : e.status() == 404 ? "Unknown path or model: check ENGRAM_BASE_URL (it ends in /v1) and "
                                        "the model names.\n"
                                      : std::string())
              << "See examples/providers/README.md for Ollama and OpenAI settings.\n";
    return 1;
  } catch (const engram::error& e) {
    std::cerr << "engram error: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
