#pragma once
/// @file examples/common/app_memory.hpp
/// The memory the command-line tool, the server and the MCP server run: offline embedder and extractor,
/// exact index, durable file store in a data directory.

#include <engram/engram.hpp>

#include <cstdlib>
#include <memory>
#include <string>

namespace engram_app {

using app_memory = engram::persistent_memory;

/// The data directory: `explicit_dir` if given, else $ENGRAM_DIR, else ~/.engram.
inline std::string data_directory(const std::string& explicit_dir) {
  if (!explicit_dir.empty()) return explicit_dir;
  if (const char* d = std::getenv("ENGRAM_DIR"); d && *d) return d;
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.engram";
}

/// Opens (creating it when needed) the durable memory in `data_dir`. Group commit lets concurrent writers
/// (the server's threads) share fsyncs; every write is durable before it is acknowledged.
/// @throws engram::storage_error when another process holds the directory.
inline std::unique_ptr<app_memory> open_memory(const std::string& data_dir) {
  return std::make_unique<app_memory>(
      engram::hashing_embedder{},
      engram::file_store(data_dir, engram::file_store_options{.mode = engram::durability::group_commit}));
}

}  // namespace engram_app
