#pragma once
/// @file examples/common/app_memory.hpp
/// The memory the command-line tool and the server run: offline embedder and extractor, exact index.

#include <engram/engram.hpp>

#include <memory>
#include <string>

namespace engram_app {

using app_memory = engram::basic_memory<engram::hashing_embedder, engram::flat_index, engram::memory_store,
                                        engram::verbatim_extractor>;

/// Opens the memory for a data directory.
inline std::unique_ptr<app_memory> open_memory(const std::string& /*data_dir*/) {
  return std::make_unique<app_memory>();
}

}  // namespace engram_app
