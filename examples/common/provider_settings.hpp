#pragma once
/// @file examples/common/provider_settings.hpp
/// Which embedder and extractor the apps (engram, engram-server, engram-mcp) run, and the memory's own settings
/// (--on-contradiction, --entities), from flags, environment and --config. One parser for all three: each app
/// hands it the flags it does not know itself.

#include "lists.hpp"

#include <engram/temporal/validity.hpp>  // contradiction_policy

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <set>
#include <utility>
#include <vector>

namespace engram_app {

/// A misconfiguration: the CLI exits 2 with it, the servers refuse to start.
struct settings_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Help text of the provider flags, for the apps' --help.
inline constexpr const char* provider_help = R"(providers (default: fully offline, hashing embedder + verbatim extractor):
  --embedder hashing|openai|ollama   env ENGRAM_EMBEDDER
  --base-url URL         OpenAI-compatible root incl. /v1 (openai), or Ollama's root (ollama)  env ENGRAM_BASE_URL
  --embed-model NAME     embedding model (default text-embedding-3-small / nomic-embed-text)  env ENGRAM_EMBED_MODEL
  --dimensions N         vector length: hashing's size (default 384); openai: sent as `dimensions`;
                         ollama: the expected length
  --extractor verbatim|llm           what `infer` uses; env ENGRAM_EXTRACTOR
  --llm-model NAME       chat model (required by --extractor llm)  env ENGRAM_LLM_MODEL
  --llm-base-url URL     chat server (default: --base-url; with --embedder ollama, its root + /v1)
                         env ENGRAM_LLM_BASE_URL
  --llm-mode reconcile|additive      reconcile: facts, then ADD/UPDATE/DELETE against near memories (default)
  --llm-instructions TEXT            custom instructions appended to the extraction prompt
                                     env ENGRAM_LLM_INSTRUCTIONS
  --llm-includes A,B     kinds of information to remember only (a request's `includes` adds to them)
  --llm-excludes A,B     kinds of information never to remember (a request's `excludes` adds to them)
  --llm-categories NAME[:DESCRIPTION];...   categories facts are filed under (in metadata and a top-level "categories")
  --llm-fact-prompt-file PATH        replaces the extraction prompt (it must ask for {"facts": [...]})
  --llm-update-prompt-file PATH      replaces the reconcile prompt
                         (these need --extractor llm: with the verbatim extractor they are refused, not ignored)
  --api-key KEY          sent as a Bearer token (prefer env OPENAI_API_KEY or --api-key-file: a flag shows in `ps`)
  --api-key-file PATH    read the key from a file (trailing whitespace dropped)  env ENGRAM_API_KEY_FILE
  --timeout SECONDS      per read from a provider (default 120: a local model may answer slowly)
                         env ENGRAM_TIMEOUT
  --connect-timeout SECONDS   per connection attempt (default 10)
  --retries N            retries on 429, 5xx, timeouts and refused connections (default 3)
  --wordnet DIR          hashing embedder: add WordNet synonyms and hypernyms of each word (Debian wordnet-base:
                         /usr/share/wordnet); a store embedded with it needs it to reopen  env ENGRAM_WORDNET
  --search-threads N     threads one search may use over a large scope (default 1; 0: every core); small
                         scopes are always searched on the request's own thread
memory:
  --on-contradiction erase|supersede   what an UPDATE or DELETE the extractor decides does to the memory it
                         contradicts: erase (Mem0's behaviour, the default) rewrites or erases it; supersede
                         keeps the old version, closed, for as_of reads  env ENGRAM_ON_CONTRADICTION
  --entities off|on|llm  keep an index of the people, places and organisations each memory names, for the
                         `entity` ranking weight and the graph routes (default off: recognising every text
                         costs time on open); on: found by the offline recogniser; llm: named by the LLM
                         (--extractor llm) in one more call per add that writes, kept with each memory
                         (an add's enable_graph asks for that call too)  env ENGRAM_ENTITIES
  --entity-similarity X  also resolve two names of a scope as one entity when the embedder's vectors of the
                         names have a cosine of at least X (e.g. 0.9; default 0: off)  env ENGRAM_ENTITY_SIMILARITY
  --compaction background|inline   the data directory's compactions: background (the default) builds the new
                         snapshot on a thread of its own while writes go on, holding a second copy of the
                         records meanwhile; inline compacts in the write that finds the log too large, which
                         waits for it (no --store postgres://)  env ENGRAM_COMPACTION
settings file:
  --config FILE          a JSON object of these settings, keyed by the flag names without "--", e.g.
                         {"extractor": "llm", "llm-model": "gpt-4o-mini", "llm-excludes": ["small talk"]};
                         it overrides the environment and flags override it, wherever they stand; an unknown
                         key or a value of the wrong type is refused
)";

/// The provider settings. Defaults are the offline composition; from_env() fills them from the environment,
/// then set() applies flags over that, then check() refuses a misconfiguration.
struct provider_settings {
  std::string embedder = "hashing";    ///< hashing | openai | ollama
  std::string base_url{};              ///< the embedding server (required by openai and ollama)
  std::string embed_model{};           ///< empty: the embedder's default model
  std::size_t dimensions = 0;          ///< 0: the embedder's default (hashing 384; remote: learned)
  std::string extractor = "verbatim";  ///< verbatim | llm
  std::string llm_model{};             ///< required by extractor llm
  std::string llm_base_url{};          ///< empty: see chat_url()
  std::string llm_mode = "reconcile";  ///< reconcile | additive
  std::string api_key{};               ///< empty: the HTTP transport reads OPENAI_API_KEY itself
  std::string api_key_file{};          ///< a file holding the key instead (see key())
  std::string wordnet{};               ///< a WordNet 3.0 directory for the hashing embedder; empty: none
  std::string timeout = "120";         ///< per read from a provider, seconds (checked by check())
  std::string connect_timeout = "10";  ///< per connection attempt, seconds
  std::string retries = "3";           ///< retries of a failed provider call, 0 to 20
  std::string llm_instructions{};      ///< llm_extractor_options::custom_instructions
  std::string llm_includes{};          ///< comma-separated llm_extractor_options::includes
  std::string llm_excludes{};          ///< comma-separated llm_extractor_options::excludes
  std::string llm_categories{};        ///< "name[:description];..." llm_extractor_options::categories
  std::string llm_fact_prompt_file{};  ///< a file holding llm_extractor_options::fact_prompt
  std::string llm_update_prompt_file{};  ///< a file holding llm_extractor_options::update_prompt
  std::string search_threads = "1";   ///< threads per search (flat_index_options::executor); 0: every core
  std::string on_contradiction = "erase";  ///< memory_config::on_contradiction: erase | supersede
  std::string entities = "off";        ///< memory_config::entities: off | on | llm (llm_extractor_options::entities)
  std::string entity_similarity = "0";  ///< memory_config::entity_similarity: a cosine in [0, 1]; 0 is off
  std::string compaction{};  ///< file_store_options::background_compaction: background | inline; empty: background

  /// Offline defaults overridden by ENGRAM_EMBEDDER, ENGRAM_BASE_URL, ENGRAM_EMBED_MODEL, ENGRAM_EXTRACTOR,
  /// ENGRAM_LLM_MODEL, ENGRAM_LLM_BASE_URL, ENGRAM_WORDNET, ENGRAM_TIMEOUT, ENGRAM_API_KEY_FILE,
  /// ENGRAM_LLM_INSTRUCTIONS, ENGRAM_ON_CONTRADICTION, ENGRAM_ENTITIES, ENGRAM_ENTITY_SIMILARITY,
  /// ENGRAM_COMPACTION (empty variables count as unset).
  /// OPENAI_API_KEY is read by the HTTP transport when no --api-key is given. Values are checked by check().
  static provider_settings from_env() {
    provider_settings p;
    auto env = [](const char* name, std::string& slot) {
      if (const char* v = std::getenv(name); v && *v) slot = v;
    };
    env("ENGRAM_EMBEDDER", p.embedder);
    env("ENGRAM_BASE_URL", p.base_url);
    env("ENGRAM_EMBED_MODEL", p.embed_model);
    env("ENGRAM_EXTRACTOR", p.extractor);
    env("ENGRAM_LLM_MODEL", p.llm_model);
    env("ENGRAM_LLM_BASE_URL", p.llm_base_url);
    env("ENGRAM_WORDNET", p.wordnet);
    env("ENGRAM_TIMEOUT", p.timeout);
    env("ENGRAM_API_KEY_FILE", p.api_key_file);
    env("ENGRAM_LLM_INSTRUCTIONS", p.llm_instructions);
    env("ENGRAM_ON_CONTRADICTION", p.on_contradiction);
    env("ENGRAM_ENTITIES", p.entities);
    env("ENGRAM_ENTITY_SIMILARITY", p.entity_similarity);
    env("ENGRAM_COMPACTION", p.compaction);
    return p;
  }

  /// True when `flag` is one of the provider flags (each takes a value).
  static bool is_flag(std::string_view flag) {
    for (const char* f : {"--embedder", "--base-url", "--embed-model", "--dimensions", "--extractor", "--llm-model",
                          "--llm-base-url", "--llm-mode", "--api-key", "--api-key-file", "--wordnet",
                          "--timeout", "--connect-timeout", "--retries", "--llm-instructions", "--llm-includes",
                          "--llm-excludes", "--llm-categories", "--llm-fact-prompt-file", "--llm-update-prompt-file",
                          "--search-threads", "--on-contradiction", "--entities", "--entity-similarity", "--compaction",
                          "--config"})
      if (flag == f) return true;
    return false;
  }

  /// Applies one provider flag (`--config FILE`: every setting of the file that no flag has set yet; the flags
  /// after it override it too). @throws settings_error for a flag that is not one, a bad number, or a bad file.
  void set(std::string_view flag, const std::string& value) {
    if (flag == "--config") return apply_config(value);
    assign(flag, value);
    flags_given_.insert(std::string(flag));
  }

  /// Applies a --config file: a JSON object keyed by flag names without "--"; strings, numbers, lists of
  /// strings (joined with "," or, for llm-categories, ";") and, for llm-categories, a {"name": "description"}
  /// object.
  /// @throws settings_error naming the file and the key for anything else.
  void apply_config(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw settings_error("--config '" + path + "' cannot be read");
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(text);
    } catch (const std::exception& e) {
      throw settings_error("--config '" + path + "' is not valid JSON: " + e.what());
    }
    if (!doc.is_object()) throw settings_error("--config '" + path + "' must hold a JSON object of settings");
    for (const auto& [key, v] : doc.items()) {
      const std::string flag = "--" + key;
      const auto where = "--config '" + path + "': ";
      if (flag == "--config") throw settings_error(where + "a config file cannot name another one");
      if (!is_flag(flag))
        throw settings_error(where + "unknown setting '" + key + "' (settings are the provider flags without "
                             "\"--\": embedder, base-url, embed-model, dimensions, extractor, llm-model, ...)");
      if (flags_given_.count(flag)) continue;  // a flag given before --config wins
      const char* sep = flag == "--llm-categories" ? ";" : ",";
      std::string value;
      if (v.is_string()) value = v.get<std::string>();
      else if (v.is_number()) value = v.dump();
      else if (v.is_array()) {
        for (const auto& item : v) {
          if (!item.is_string()) throw settings_error(where + "'" + key + "' must list strings");
          value += (value.empty() ? "" : sep) + item.get<std::string>();
        }
      } else if (v.is_object() && flag == "--llm-categories") {
        for (const auto& [name, description] : v.items()) {
          if (!description.is_string()) throw settings_error(where + "the description of '" + name + "' must be a string");
          value += (value.empty() ? "" : ";") + name + ":" + description.get<std::string>();
        }
      } else {
        throw settings_error(where + "'" + key + "' must be a string" +
                             (flag == "--llm-categories" ? ", a list or a {\"name\": \"description\"} object"
                                                        : " or a number"));
      }
      assign(flag, value);
    }
  }

 private:
  std::set<std::string> flags_given_;  // flags set on the command line, which a --config file does not override

  void assign(std::string_view flag, const std::string& value) {
    if (flag == "--embedder") embedder = value;
    else if (flag == "--base-url") base_url = value;
    else if (flag == "--embed-model") embed_model = value;
    else if (flag == "--extractor") extractor = value;
    else if (flag == "--llm-model") llm_model = value;
    else if (flag == "--llm-base-url") llm_base_url = value;
    else if (flag == "--llm-mode") llm_mode = value;
    else if (flag == "--api-key") api_key = value;
    else if (flag == "--api-key-file") api_key_file = value;
    else if (flag == "--wordnet") wordnet = value;
    else if (flag == "--timeout") timeout = value;
    else if (flag == "--connect-timeout") connect_timeout = value;
    else if (flag == "--retries") retries = value;
    else if (flag == "--llm-instructions") llm_instructions = value;
    else if (flag == "--llm-includes") llm_includes = value;
    else if (flag == "--llm-excludes") llm_excludes = value;
    else if (flag == "--llm-categories") llm_categories = value;
    else if (flag == "--llm-fact-prompt-file") llm_fact_prompt_file = value;
    else if (flag == "--llm-update-prompt-file") llm_update_prompt_file = value;
    else if (flag == "--search-threads") search_threads = value;
    else if (flag == "--on-contradiction") on_contradiction = value;
    else if (flag == "--entities") entities = value;
    else if (flag == "--entity-similarity") entity_similarity = value;
    else if (flag == "--compaction") compaction = value;
    else if (flag == "--dimensions") {
      std::size_t pos = 0;
      unsigned long n = 0;
      try {
        n = std::stoul(value, &pos);
      } catch (const std::exception&) {
        pos = 0;
      }
      if (value.empty() || pos != value.size() || value[0] == '-' || n == 0 || n > 65536)
        throw settings_error("--dimensions expects a whole number from 1 to 65536, got '" + value + "'");
      dimensions = n;
    } else {
      throw settings_error("'" + std::string(flag) + "' is not a provider flag");
    }
  }

 public:

  /// The read timeout, connection timeout (seconds) and retries. @throws settings_error for a malformed one.
  [[nodiscard]] double timeout_seconds() const { return seconds("--timeout (or ENGRAM_TIMEOUT)", timeout); }
  [[nodiscard]] double connect_timeout_seconds() const { return seconds("--connect-timeout", connect_timeout); }
  /// --compaction as file_store_options::background_compaction. @throws settings_error for anything but
  /// background or inline.
  [[nodiscard]] bool background_compaction() const {
    if (compaction.empty() || compaction == "background") return true;
    if (compaction == "inline") return false;
    throw settings_error("--compaction (or ENGRAM_COMPACTION) expects background or inline, got '" + compaction + "'");
  }

  /// --search-threads as a number: 0 (every core) to 256. @throws settings_error for anything else.
  [[nodiscard]] std::size_t search_thread_count() const {
    std::size_t pos = 0;
    unsigned long n = 257;
    try {
      n = std::stoul(search_threads, &pos);
    } catch (const std::exception&) {
      pos = 0;
    }
    if (search_threads.empty() || search_threads[0] == '-' || pos != search_threads.size() || n > 256)
      throw settings_error("--search-threads expects a whole number from 0 (every core) to 256, got '" +
                           search_threads + "'");
    return n;
  }

  /// --on-contradiction as a policy. @throws settings_error for anything but erase or supersede.
  [[nodiscard]] engram::contradiction_policy contradiction() const {
    try {
      return engram::parse_contradiction_policy(on_contradiction);
    } catch (const engram::validation_error& e) {
      throw settings_error(std::string("--on-contradiction (or ENGRAM_ON_CONTRADICTION): ") + e.what());
    }
  }

  /// Whether memories' entities are indexed (--entities on or llm). @throws settings_error for another value,
  /// or llm without --extractor llm.
  [[nodiscard]] bool entity_index() const {
    if (entities == "llm" && extractor != "llm")
      throw settings_error("--entities llm (or ENGRAM_ENTITIES) needs --extractor llm: the entities are named by "
                           "the LLM; use --entities on for the offline recogniser");
    if (entities == "on" || entities == "llm") return true;
    if (entities == "off") return false;
    throw settings_error("--entities (or ENGRAM_ENTITIES) expects off, on or llm, got '" + entities + "'");
  }
  /// --entity-similarity as a cosine threshold (0: off). @throws settings_error for anything but a number in
  /// [0, 1], or a threshold without the entity index.
  [[nodiscard]] float entity_similarity_threshold() const {
    std::size_t pos = 0;
    float v = -1.0f;
    try {
      v = std::stof(entity_similarity, &pos);
    } catch (const std::exception&) {
      pos = 0;
    }
    if (entity_similarity.empty() || pos != entity_similarity.size() || !(v >= 0.0f && v <= 1.0f))
      throw settings_error("--entity-similarity (or ENGRAM_ENTITY_SIMILARITY) expects a cosine from 0 (off) to 1, "
                           "such as 0.9, got '" + entity_similarity + "'");
    if (v > 0.0f && !entity_index())
      throw settings_error("--entity-similarity resolves entity names: it needs --entities on or llm");
    return v;
  }
  /// --entities llm: the LLM extractor names each add's entities.
  [[nodiscard]] bool llm_entities() const { return entity_index() && entities == "llm"; }

  [[nodiscard]] unsigned retry_count() const {
    std::size_t pos = 0;
    int n = -1;
    try {
      n = std::stoi(retries, &pos);
    } catch (const std::exception&) {
      pos = 0;
    }
    if (retries.empty() || pos != retries.size() || n < 0 || n > 20)
      throw settings_error("--retries expects a whole number from 0 to 20, got '" + retries + "'");
    return static_cast<unsigned>(n);
  }

  /// The key to send: --api-key, else the content of --api-key-file less trailing whitespace, else empty (the
  /// HTTP transport then reads OPENAI_API_KEY). @throws settings_error for an unreadable or empty key file.
  [[nodiscard]] std::string key() const {
    if (api_key_file.empty()) return api_key;
    std::ifstream in(api_key_file, std::ios::binary);
    std::string k((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof())
      throw settings_error("--api-key-file (or ENGRAM_API_KEY_FILE) '" + api_key_file + "' cannot be read");
    while (!k.empty() && (k.back() == '\n' || k.back() == '\r' || k.back() == ' ' || k.back() == '\t')) k.pop_back();
    if (k.empty())
      throw settings_error("--api-key-file (or ENGRAM_API_KEY_FILE) '" + api_key_file +
                           "' is missing or empty: it should hold the key");
    if (k.find_first_of("\r\n") != std::string::npos)
      throw settings_error("--api-key-file '" + api_key_file + "' holds more than one line: it should hold the key");
    return k;
  }

  [[nodiscard]] bool remote_embedder() const { return embedder == "openai" || embedder == "ollama"; }

  /// The embedding server's root: base_url, less a trailing "/v1" for Ollama's native /api/embed.
  [[nodiscard]] std::string embed_url() const {
    std::string u = base_url;
    while (!u.empty() && u.back() == '/') u.pop_back();
    if (embedder == "ollama" && u.size() >= 3 && u.compare(u.size() - 3, 3, "/v1") == 0) u.resize(u.size() - 3);
    return u;
  }

  /// The chat server: llm_base_url; else Ollama's root + /v1 with --embedder ollama; else base_url.
  [[nodiscard]] std::string chat_url() const {
    if (!llm_base_url.empty()) return llm_base_url;
    if (embedder == "ollama" && !base_url.empty()) return embed_url() + "/v1";
    return base_url;
  }

  /// @throws settings_error naming what is wrong and how to fix it.
  void check(bool http_available) const {
    if (embedder != "hashing" && !remote_embedder())
      throw settings_error("unknown embedder '" + embedder + "' (expected hashing, openai or ollama)");
    if (extractor != "verbatim" && extractor != "llm")
      throw settings_error("unknown extractor '" + extractor + "' (expected verbatim or llm)");
    if (llm_mode != "reconcile" && llm_mode != "additive")
      throw settings_error("unknown --llm-mode '" + llm_mode + "' (expected reconcile or additive)");
    if (embedder == "hashing" && dimensions != 0 && dimensions < 16)
      throw settings_error("--dimensions " + std::to_string(dimensions) + " is too small for the hashing embedder (at least 16)");
    (void)timeout_seconds();
    (void)connect_timeout_seconds();
    (void)retry_count();
    (void)search_thread_count();
    (void)contradiction();
    (void)entity_index();
    if (!api_key.empty() && !api_key_file.empty())
      throw settings_error("give --api-key or --api-key-file (ENGRAM_API_KEY_FILE), not both");
    (void)key();
    if (!wordnet.empty() && embedder != "hashing")
      throw settings_error("--wordnet works with --embedder hashing only (a model embedder knows synonyms itself)");
    if ((remote_embedder() || extractor == "llm") && !http_available)
      throw settings_error("this build has no HTTP support (cpp-httplib was not found): only --embedder hashing "
                           "and --extractor verbatim are available");
    if (remote_embedder()) {
      if (base_url.empty())
        throw settings_error("--embedder " + embedder + " needs --base-url (or ENGRAM_BASE_URL), e.g. " +
                             (embedder == "ollama" ? "http://localhost:11434" : "https://api.openai.com/v1"));
      check_url(base_url, "--base-url");
    }
    if (extractor != "llm") {
      for (const auto& [flag, value] : {std::pair{"--llm-instructions (or ENGRAM_LLM_INSTRUCTIONS)", &llm_instructions},
                                        {"--llm-includes", &llm_includes}, {"--llm-excludes", &llm_excludes},
                                        {"--llm-categories", &llm_categories},
                                        {"--llm-fact-prompt-file", &llm_fact_prompt_file},
                                        {"--llm-update-prompt-file", &llm_update_prompt_file}})
        if (!value->empty())
          throw settings_error(std::string(flag) + " shapes the LLM extractor's prompt: it needs --extractor llm "
                               "(the verbatim extractor stores messages as given)");
    }
    if (extractor == "llm") {
      (void)read_prompt(llm_fact_prompt_file, "--llm-fact-prompt-file");
      (void)read_prompt(llm_update_prompt_file, "--llm-update-prompt-file");
      (void)categories();
      if (llm_model.empty())
        throw settings_error("--extractor llm needs --llm-model (or ENGRAM_LLM_MODEL), e.g. gpt-4o-mini or llama3.2");
      if (chat_url().empty())
        throw settings_error("--extractor llm needs --base-url or --llm-base-url (or ENGRAM_BASE_URL): the "
                             "OpenAI-compatible server to chat with, e.g. http://localhost:11434/v1");
      check_url(chat_url(), llm_base_url.empty() ? "--base-url" : "--llm-base-url");
    }
  }

  /// --llm-categories as (name, description) pairs. @throws settings_error for an entry without a name.
  [[nodiscard]] std::vector<std::pair<std::string, std::string>> categories() const {
    std::vector<std::pair<std::string, std::string>> out;
    std::size_t from = 0;
    while (from < llm_categories.size()) {
      const auto semi = std::min(llm_categories.find(';', from), llm_categories.size());
      const auto entry = llm_categories.substr(from, semi - from);
      from = semi + 1;
      if (entry.find_first_not_of(" \t") == std::string::npos) continue;
      const auto colon = entry.find(':');
      auto name = comma_list(entry.substr(0, colon));
      if (name.size() != 1)
        throw settings_error("--llm-categories: '" + entry + "' needs one name before its ':' (NAME[:DESCRIPTION];...)");
      out.emplace_back(name.front(), colon == std::string::npos ? std::string() : entry.substr(colon + 1));
    }
    return out;
  }

  /// The text of a prompt file; empty when `path` is. @throws settings_error for an unreadable or empty file.
  [[nodiscard]] static std::string read_prompt(const std::string& path, const char* flag) {
    if (path.empty()) return {};
    std::ifstream in(path, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) throw settings_error(std::string(flag) + " '" + path + "' cannot be read");
    if (text.find_first_not_of(" \t\r\n") == std::string::npos)
      throw settings_error(std::string(flag) + " '" + path + "' is missing or empty: it should hold the prompt");
    return text;
  }

  /// One line for logs: "embedder openai:model at URL, extractor llm:model (reconcile) at URL".
  [[nodiscard]] std::string describe() const {
    std::string s = "embedder " + embedder;
    if (remote_embedder()) s += (embed_model.empty() ? "" : ":" + embed_model) + " at " + embed_url();
    if (!wordnet.empty()) s += "+wordnet (" + wordnet + ")";
    s += ", extractor " + extractor;
    if (extractor == "llm") s += ":" + llm_model + " (" + llm_mode + ") at " + chat_url();
    return s;
  }

 private:
  /// A duration flag's value: seconds, fractions allowed, more than 0 and at most a day.
  static double seconds(std::string_view flag, const std::string& value) {
    std::size_t pos = 0;
    double v = 0;
    try {
      v = std::stod(value, &pos);
    } catch (const std::exception&) {
      pos = 0;
    }
    if (value.empty() || pos != value.size() || !(v > 0) || v > 86400)
      throw settings_error(std::string(flag) + " expects seconds, more than 0 and at most 86400, got '" + value + "'");
    return v;
  }

  static void check_url(const std::string& url, const char* what) {
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
      throw settings_error(std::string(what) + " '" + url + "' is not an http:// or https:// URL");
  }
};

}  // namespace engram_app
