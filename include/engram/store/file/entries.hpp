#pragma once
/// @file store/file/entries.hpp
/// The payloads of the entries a file_store appends to its log: kind byte, then the body (see record_codec).
/// Replaying them is recovery.hpp's part.

#include <engram/store/file/format.hpp>
#include <engram/store/file/record_codec.hpp>
#include <engram/write_batch.hpp>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>

namespace engram::inline v0::detail {

/// A batch: the batch kind when it leaves the pending queue alone, the queued kind (with the queue changes)
/// otherwise; both with format 8's record (and pending add) layout.
inline std::string batch_entry(const write_batch& b) {
  std::string payload;
  byte_writer w(payload);
  const bool queue = !b.enqueued.empty() || !b.dequeued.empty();
  w.u8(queue ? file_format::kind_queued_batch_scope_keys : file_format::kind_batch_scope_keys);
  encode_batch(w, b);
  if (queue) encode_queue_ops(w, b);
  return payload;
}

/// The identity bound to the store: embedder and scope key set.
inline std::string identity_entry(const store_identity& id) {
  std::string payload;
  byte_writer w(payload);
  w.u8(file_format::kind_identity_scope_keys);
  encode_identity(w, id);
  return payload;
}

/// Access count increments, (id, count) pairs for the counts above zero; empty when there is none.
inline std::string access_entry(std::span<const access_increment> increments) {
  const auto n = static_cast<std::uint32_t>(std::count_if(increments.begin(), increments.end(),
                                                          [](const access_increment& a) { return a.count > 0; }));
  if (n == 0) return {};
  std::string payload;
  byte_writer w(payload);
  w.u8(file_format::kind_access);
  w.u32(n);
  for (const auto& a : increments)
    if (a.count) {
      w.str(a.memory_id);
      w.u32(a.count);
    }
  return payload;
}

}  // namespace engram::inline v0::detail
