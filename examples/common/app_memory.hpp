#pragma once
/// @file examples/common/app_memory.hpp
/// The memory the command-line tool, the server and the MCP server run: an embedder and an extractor chosen
/// at run time (provider_settings; offline by default), exact index, durable file store in a data directory.
/// Built with ENGRAM_APP_HTTP (the apps linking engram::http), the OpenAI-compatible and Ollama providers are
/// available; without it only the offline ones.

#include "provider_settings.hpp"

#include <engram/embed/any_embedder.hpp>
#include <engram/engram.hpp>
#include <engram/extract/any_extractor.hpp>

#ifdef ENGRAM_APP_HTTP
#include <engram/embed/ollama.hpp>
#include <engram/embed/openai.hpp>
#include <engram/extract/llm.hpp>
#endif

#ifdef ENGRAM_APP_POSTGRES
#include <engram/store/postgres_store.hpp>
#include <engram/store/sharded_postgres_store.hpp>
#endif

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace engram_app {

using app_memory = engram::basic_memory<engram::any_embedder, engram::flat_index, engram::file_store, engram::any_extractor,
                                        engram::platform_scope_keys>;

/// Whether this build can talk to HTTP providers.
inline constexpr bool http_available =
#ifdef ENGRAM_APP_HTTP
    true;
#else
    false;
#endif

/// The data directory: `explicit_dir` if given, else $ENGRAM_DIR, else ~/.engram.
inline std::string data_directory(const std::string& explicit_dir) {
  if (!explicit_dir.empty()) return explicit_dir;
  if (const char* d = std::getenv("ENGRAM_DIR"); d && *d) return d;
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.engram";
}

#ifdef ENGRAM_APP_HTTP
namespace detail {
inline engram::http_options http_for(const provider_settings& p, std::string url) {
  engram::http_options h;
  h.base_url = std::move(url);
  h.api_key = p.key();
  auto ms = [](double s) { return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000.0 + 0.5)); };
  h.read_timeout = ms(p.timeout_seconds());
  h.connect_timeout = ms(p.connect_timeout_seconds());
  h.max_retries = p.retry_count();
  return h;
}
}  // namespace detail
#endif

/// The embedder `p` names. @throws settings_error (checked first), validation_error from the embedder.
inline engram::any_embedder make_embedder(const provider_settings& p) {
  p.check(http_available);
#ifdef ENGRAM_APP_HTTP
  if (p.embedder == "openai") {
    engram::openai_embedder_options o;
    o.http = detail::http_for(p, p.embed_url());
    if (!p.embed_model.empty()) o.model = p.embed_model;
    o.dimension = p.dimensions;
    o.request_dimensions = p.dimensions != 0;
    return engram::openai_embedder(std::move(o));
  }
  if (p.embedder == "ollama") {
    engram::ollama_embedder_options o;
    o.http = detail::http_for(p, p.embed_url());
    if (!p.embed_model.empty()) o.model = p.embed_model;
    o.dimension = p.dimensions;
    return engram::ollama_embedder(std::move(o));
  }
#endif
  const std::size_t dimension = p.dimensions ? p.dimensions : 384;
  if (p.wordnet.empty()) return engram::hashing_embedder(dimension);
  try {
    return engram::hashing_embedder(
        dimension, std::make_shared<const engram::related_words>(engram::related_words::load_wordnet(p.wordnet)));
  } catch (const engram::storage_error& e) {
    throw settings_error("--wordnet '" + p.wordnet + "' is not a readable WordNet 3.0 directory: " + e.what());
  }
}

/// The extractor `p` names. @throws settings_error (checked first), validation_error from the extractor.
inline engram::any_extractor make_extractor(const provider_settings& p) {
  p.check(http_available);
#ifdef ENGRAM_APP_HTTP
  if (p.extractor == "llm") {
    engram::llm_extractor_options o;
    o.http = detail::http_for(p, p.chat_url());
    o.model = p.llm_model;
    o.mode = p.llm_mode == "additive" ? engram::extraction_mode::additive : engram::extraction_mode::reconcile;
    o.custom_instructions = p.llm_instructions;
    o.includes = comma_list(p.llm_includes);
    o.excludes = comma_list(p.llm_excludes);
    for (auto& [name, description] : p.categories()) o.categories.push_back({name, description});
    o.fact_prompt = provider_settings::read_prompt(p.llm_fact_prompt_file, "--llm-fact-prompt-file");
    o.update_prompt = provider_settings::read_prompt(p.llm_update_prompt_file, "--llm-update-prompt-file");
    o.entities = p.llm_entities();
    return engram::llm_extractor(std::move(o));
  }
#endif
  return engram::verbatim_extractor{};
}

/// The index of the apps' memories: `--search-threads` threads per search over a large scope, from one pool
/// the process keeps (made by the first call; an app opens one memory).
inline engram::flat_index make_index(const provider_settings& p, std::size_t dimension) {
  const auto threads = p.search_thread_count();
  if (threads == 1) return engram::flat_index(dimension);
  static engram::thread_pool_executor pool(threads);
  return engram::flat_index(dimension, {.executor = pool});
}

/// The memory's own settings from `p` over `c` (the app's other settings, such as the async hooks): what
/// reconciliation does with a contradicted memory (--on-contradiction) and whether entities are indexed
/// (--entities). @throws settings_error.
inline engram::memory_config memory_config_of(const provider_settings& p, engram::memory_config c = {}) {
  c.on_contradiction = p.contradiction();
  c.entities = p.entity_index();
  c.entity_similarity = p.entity_similarity_threshold();
  return c;
}

/// The apps' startup line: the providers, then the memory's settings ("..., on contradiction: supersede").
template <class Memory>
std::string describe_memory(const provider_settings& p, const Memory& memory) {
  return p.describe() + ", on contradiction: " + std::string(engram::to_string(memory.config().on_contradiction)) +
         (memory.config().entities ? (p.llm_entities() ? ", entities named by the LLM" : ", entities indexed") : "") +
         (memory.config().entity_similarity > 0 ? ", names resolved at cosine " + p.entity_similarity : std::string());
}

/// Opens (creating it when needed) the durable memory in `data_dir` with the providers `p` names: the one
/// place the apps compose their memory. Group commit lets concurrent writers (the server's threads) share
/// fsyncs; every write is durable before it is acknowledged.
/// @throws settings_error for a misconfiguration; engram::storage_error when another process holds the
///         directory; dimension_mismatch / validation_error when the directory holds another embedder's
///         vectors; provider_error when a remote embedder must be asked its dimension and does not answer.
/// With `read_only` an existing directory is opened without its lock and without writing (a read-only
/// mount, or a directory a running server holds, can be read); a missing one is created as usual. `config`:
/// the memory's settings (the server sets its async_options' progress callbacks there).
inline std::unique_ptr<app_memory> open_memory(const std::string& data_dir, const provider_settings& p = {},
                                               bool read_only = false, engram::memory_config config = {}) {
  auto embedder = make_embedder(p);
  auto extractor = make_extractor(p);
  std::error_code ec;
  read_only = read_only && std::filesystem::is_directory(data_dir, ec);
  auto index = make_index(p, embedder.dimension());
  return std::make_unique<app_memory>(
      std::move(embedder), std::move(index),
      engram::file_store(data_dir, engram::file_store_options{.mode = engram::durability::group_commit,
                                                              .read_only = read_only,
                                                              .background_compaction = p.background_compaction()}),
      std::move(extractor), memory_config_of(p, std::move(config)));
}

/// Whether `store` names a PostgreSQL database (`postgres://` or `postgresql://`) rather than a directory.
inline bool is_postgres_url(std::string_view store) {
  return store.starts_with("postgres://") || store.starts_with("postgresql://");
}

/// Whether this build can keep memories in PostgreSQL (the app links engram::postgres).
inline constexpr bool postgres_available =
#ifdef ENGRAM_APP_POSTGRES
    true;
#else
    false;
#endif

#ifdef ENGRAM_APP_POSTGRES
/// engram::parse_postgres_url for a --store flag: a malformed URL is a settings error (exit 2), as a bad flag is.
inline engram::postgres_location store_location(const std::string& url) {
  try {
    return engram::parse_postgres_url(url);
  } catch (const engram::validation_error& e) {
    throw settings_error(std::string("--store: ") + e.what());
  }
}

/// Settings of the file store given with a PostgreSQL store would do nothing: refused, not ignored.
inline void refuse_file_settings(const provider_settings& p) {
  if (!p.compaction.empty())
    throw settings_error("--compaction (or ENGRAM_COMPACTION) applies to a data directory, not to a postgres:// store");
}

/// The memory over a PostgreSQL database shared by several nodes: each keeps its own index, brought up to
/// date through the store's change feed before every read and write.
using postgres_app_memory =
    engram::basic_memory<engram::any_embedder, engram::flat_index, engram::postgres_store, engram::any_extractor,
                         engram::platform_scope_keys>;

/// Opens the memory in the database `url` names (`postgres://user@host:port/db?schema=s&pool=8&...`, see
/// engram::parse_postgres_url) with the providers `p` names. Must not be used as a const object (reads apply
/// other nodes' changes). @throws settings_error, validation_error (a bad URL), engram::postgres_error (the
/// database cannot be reached, with its SQLSTATE), and the identity errors of open_memory().
inline std::unique_ptr<postgres_app_memory> open_postgres_memory(const std::string& url, const provider_settings& p = {},
                                                                 engram::memory_config config = {}) {
  refuse_file_settings(p);
  auto where = store_location(url);
  auto embedder = make_embedder(p);
  auto extractor = make_extractor(p);
  auto index = make_index(p, embedder.dimension());
  return std::make_unique<postgres_app_memory>(std::move(embedder), std::move(index),
                                               engram::postgres_store(std::move(where.conninfo), where.options),
                                               std::move(extractor), memory_config_of(p, std::move(config)));
}

/// The memory over several PostgreSQL databases, scopes spread by consistent hashing
/// (engram::sharded_postgres_store).
using sharded_postgres_app_memory =
    engram::basic_memory<engram::any_embedder, engram::flat_index, engram::sharded_postgres_store, engram::any_extractor,
                         engram::platform_scope_keys>;

/// The store over the shards `urls` name (see open_sharded_postgres_memory), for work on the store itself
/// (engram-server --rebalance). @throws settings_error (a bad URL), engram::postgres_error.
inline engram::sharded_postgres_store open_sharded_postgres_store(const std::vector<std::string>& urls) {
  engram::sharded_postgres_options o;
  for (std::size_t i = 0; i < urls.size(); ++i) {
    auto where = store_location(urls[i]);
    if (i == 0) o.store = where.options;
    o.shards.push_back({where.shard, std::move(where.conninfo)});
  }
  return engram::sharded_postgres_store(std::move(o));
}

/// Opens the memory over the shards `urls` name, one database each (at least two). The first URL's engram
/// parameters (schema, pool, timeouts) apply to all; each URL's `shard=NAME` names it on the ring (default:
/// the URL), which must not change while the shard holds data. @throws as open_postgres_memory().
inline std::unique_ptr<sharded_postgres_app_memory> open_sharded_postgres_memory(const std::vector<std::string>& urls,
                                                                                const provider_settings& p = {},
                                                                                engram::memory_config config = {}) {
  refuse_file_settings(p);
  auto embedder = make_embedder(p);
  auto extractor = make_extractor(p);
  auto index = make_index(p, embedder.dimension());
  return std::make_unique<sharded_postgres_app_memory>(std::move(embedder), std::move(index), open_sharded_postgres_store(urls),
                                                       std::move(extractor), memory_config_of(p, std::move(config)));
}
#endif

/// A hint to append to an error opening a data directory that holds another embedder's vectors (the
/// store's refusal says "store holds ..."); empty for any other error.
inline std::string embedder_mismatch_hint(const std::string& message) {
  if (message.find("store holds") == std::string::npos) return {};
  return "\n  This data directory was written with another embedder: give the --embedder, --embed-model and "
         "--dimensions it was created with, or use another data directory.";
}

}  // namespace engram_app
