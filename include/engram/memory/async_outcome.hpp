#pragma once
/// @file memory/async_outcome.hpp
/// What async_options::on_processed is told about an add_async entry whose outcome is final.

#include <engram/memory/options.hpp>
#include <engram/scope.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace engram::inline v0 {

/// The final outcome of one add_async entry: committed, or kept as failed.
struct async_outcome {
  std::string id;                  ///< the id add_async returned
  engram::scope scope;             ///< the scope the entry's messages belong to
  bool succeeded = false;          ///< true: the add committed; false: the entry is kept as failed (failed_adds())
  std::string error;               ///< why it failed (the last attempt's error); empty on success
  std::uint32_t attempts = 0;      ///< attempts made, the last one included
  /// On success, what the add did: one memory_event per memory added, updated or deleted, and the actions it
  /// skipped. When several entries were merged into one add (async_options::max_batch) each of them is
  /// given that add's whole result. Empty on failure.
  add_result result;
  /// The ids of every entry processed by the same add, this one included, in the order they were accepted.
  std::vector<std::string> batch;
};

}  // namespace engram::inline v0
