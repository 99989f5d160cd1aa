#pragma once
/// @file store/file/format.hpp
/// file_store's on-disk format: file names, the 24-byte file header, entry kinds and the entry frame.
///
/// Every file starts with a header: 8-byte magic, u32 format version, u32 zero, u64 generation. Every entry
/// is `u32 length | u32 CRC-32C(length, payload) | payload`, the payload's first byte being its kind.
/// Versions: 1 the first; 2 a snapshot may hold vectors read in place (kind 9) and a log may end in
/// preallocated zeros; 3 access counts (kind 10) may be present; 4 records carry a flags byte (immutable) in
/// the entries of kinds 11 (batch), 12 (batch + queue changes) and 13 (snapshot record, vector aligned), which
/// replace kinds 1, 7 and 9; 5 records also carry their validity (valid_from, invalid_at, superseded_by, each
/// flagged when present) in the entries of kinds 14 (batch), 15 (batch + queue changes) and 16 (snapshot
/// record, vector aligned), which replace kinds 11, 12 and 13 in what this engram writes (it still reads
/// every earlier kind); 6 a snapshot may hold owners (kind 17, (memory id, scope) of a history whose record was
/// erased, so that a purge of the scope takes it: history events name no scope). Logs are unchanged in 6 (their
/// replay learns owners from the erases); a snapshot of format 5 or older knows no owner, so the history of a
/// memory deleted before it is written is out of reach of purge; 7 records may also carry their entities (an
/// extractor's entities and relations, flagged when present) in the entries of kinds 18 (batch), 19 (batch +
/// queue changes) and 20 (snapshot record, vector aligned), which replace kinds 14, 15 and 16 in what this
/// engram writes (a record without entities takes the same bytes as in kinds 14-16); 8 scopes may carry the
/// keys of a key set beyond Mem0's (scope::tenant and scope::extra): records flag them (bits 5 and 6) in the
/// entries of kinds 21 (batch), 22 (batch + queue changes) and 23 (snapshot record, vector aligned), which
/// replace kinds 18, 19 and 20 (a record without them takes the same bytes as in kinds 18-20); the scopes of
/// pending adds and history owners hold them always in the entries of kinds 24 (owner) and 25 (pending add),
/// and in kind 22's queue changes, which replace kinds 17 and 8; the identity (kind 26, replacing 2) also holds
/// the key set the store was written with (store_identity::scope_keys). This engram reads every earlier kind.
///
/// A log holds batches (kind 1), identities (2) and access count increments (10, (id, increment) pairs). A
/// batch that changes the pending queue of add_async is an entry of its own kind (7: batch + queue changes),
/// so that files written without a queue read exactly as before. A snapshot holds the identity, a size hint
/// (6), one entry per record (kind 9 holds its vector 4-byte aligned, read in place from the mapped file;
/// kind 3, of earlier snapshots, copied out), per history event (4), blocks of access counts (10, after the
/// records), owners (17, after the events), one per pending add (8), and an end entry counting records and
/// events (5).

#include <engram/detail/byte_io.hpp>
#include <engram/detail/crc32c.hpp>
#include <engram/error.hpp>
#include <engram/version.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace engram::inline v0::detail::file_format {

/// The format this engram writes, in every file's header.
inline constexpr std::uint32_t version = 8;
/// The oldest format this engram reads (and upgrades a log of before appending to it).
inline constexpr std::uint32_t oldest_version = 1;

/// Entry kinds: the first byte of an entry's payload.
inline constexpr std::uint8_t kind_batch = 1, kind_identity = 2, kind_record = 3, kind_event = 4, kind_end = 5,
                              kind_sizes = 6, kind_queued_batch = 7, kind_pending = 8, kind_record_aligned = 9,
                              kind_access = 10, kind_batch_flags = 11, kind_queued_batch_flags = 12,
                              kind_record_flags = 13, kind_batch_validity = 14, kind_queued_batch_validity = 15,
                              kind_record_validity = 16, kind_owner = 17, kind_batch_entities = 18,
                              kind_queued_batch_entities = 19, kind_record_entities = 20,
                              kind_batch_scope_keys = 21, kind_queued_batch_scope_keys = 22,
                              kind_record_scope_keys = 23, kind_owner_scope_keys = 24,
                              kind_pending_scope_keys = 25, kind_identity_scope_keys = 26;

inline constexpr std::size_t header_size = 24;
inline constexpr std::size_t header_version_offset = 8;
inline constexpr char log_magic[9] = "ENGRMLOG";
inline constexpr char snap_magic[9] = "ENGRMSNP";

/// `name` in directory `dir`.
inline std::string path(const std::string& dir, std::string_view name) { return dir + "/" + std::string(name); }
/// The log of generation `gen`: `log.G`.
inline std::string log_path(const std::string& dir, std::uint64_t gen) {
  return path(dir, "log." + std::to_string(gen));
}

/// The header of a file of kind `magic` (log_magic or snap_magic) at generation `gen`.
inline std::string header(const char* magic, std::uint64_t gen) {
  std::string h(magic, 8);
  byte_writer w(h);
  w.u32(version);
  w.u32(0);
  w.u64(gen);
  return h;
}

/// Checks a file's header; @returns its generation.
/// @throws storage_error for another magic, a missing header or a version outside [oldest_version, version].
inline std::uint64_t read_header(const char* data, std::size_t size, const char* magic, const std::string& file) {
  if (size < header_size || std::string_view(data, 8) != std::string_view(magic, 8))
    throw storage_error("file_store: '" + file + "' is not an engram " +
                        (magic == log_magic ? std::string("log") : std::string("snapshot")) +
                        " (bad or missing header)");
  byte_reader r(data + 8, header_size - 8, file);
  const auto v = r.u32();
  if (v < oldest_version || v > version)
    throw storage_error("file_store: '" + file + "' has file_store format version " + std::to_string(v) +
                        "; this engram (" + version_string + ") reads versions " + std::to_string(oldest_version) +
                        " to " + std::to_string(version) + (v > version ? " (it was written by a newer engram)" : ""));
  r.u32();
  return r.u64();
}

/// The entry holding `payload`: length, checksum, payload.
/// @throws storage_error when the payload does not fit a u32 length.
inline std::string make_frame(const std::string& payload) {
  if (payload.size() > 0xFFFFFFF0u)
    throw storage_error("file_store: a write of " + std::to_string(payload.size()) +
                        " bytes is too large for one entry (at most 4 GiB)");
  std::string frame;
  frame.reserve(payload.size() + 8);
  byte_writer w(frame);
  w.u32(static_cast<std::uint32_t>(payload.size()));
  w.u32(0);
  frame += payload;
  std::uint32_t crc = crc32c(frame.data(), 4);
  crc = crc32c_extend(crc, payload.data(), payload.size());
  for (int i = 0; i < 4; ++i) frame[4 + i] = static_cast<char>((crc >> (8 * i)) & 0xFF);
  return frame;
}

/// Outcome of reading one frame.
struct frame_view {
  const char* payload = nullptr;
  std::size_t size = 0;
  std::string problem;  // empty when the frame is whole and its checksum matches
};

/// The frame at `pos` of `data[0, size)`; says what is wrong with it instead of throwing.
inline frame_view next_frame(const char* data, std::size_t size, std::size_t pos) {
  frame_view f;
  const std::size_t left = size - pos;
  if (left < 8) {
    f.problem = "torn entry header (" + std::to_string(left) + " of 8 bytes)";
    return f;
  }
  byte_reader r(data + pos, 8, "file_store");
  const std::uint32_t len = r.u32();
  const std::uint32_t crc = r.u32();
  if (len == 0 || len > left - 8) {
    f.problem = len == 0 ? std::string("empty entry")
                         : "torn entry (" + std::to_string(left - 8) + " of " + std::to_string(len) + " bytes)";
    return f;
  }
  std::uint32_t c = crc32c(data + pos, 4);
  c = crc32c_extend(c, data + pos + 8, len);
  if (c != crc) {
    f.problem = "checksum mismatch";
    return f;
  }
  f.payload = data + pos + 8;
  f.size = len;
  return f;
}

}  // namespace engram::inline v0::detail::file_format
