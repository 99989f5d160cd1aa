#pragma once
/// @file store/file/contents.hpp
/// What a file_store holds in memory once opened: what replaying its files fills and a snapshot writes out.

#include <engram/async/pending_list.hpp>
#include <engram/detail/record_table.hpp>
#include <engram/store/file/posix_file.hpp>
#include <engram/write_batch.hpp>

#include <memory>
#include <optional>

namespace engram::inline v0::detail {

/// Records and history, the embedder identity and the pending queue of add_async. Not thread-safe: the
/// store's lock guards it.
struct file_contents {
  std::shared_ptr<const mapped_file> snapshot_map;  // the opened snapshot, when table reads vectors in it
  record_table table;                               // records and history
  std::optional<store_identity> identity;
  pending_list queued_adds;  // add_async entries awaiting extraction

  /// Applies a batch's records, erases, events and queue changes.
  void apply(const write_batch& b) {
    table.apply(b);
    queued_adds.apply(b.enqueued, b.dequeued);
  }
};

}  // namespace engram::inline v0::detail
