#pragma once
/// @file index/ivf_snapshot.hpp
/// The byte format of ivf_index snapshots and the fingerprint that ties one to the vectors it was taken from.
/// A part of ivf_index: it encodes and decodes plain data; whether a decoded snapshot matches the index's
/// content is the index's check.
///
/// A partition snapshot: magic, u64 dimension, u64 lists, u64 vectors, u64 fingerprint, the centroids (lists x
/// dimension floats), then per vector, list by list, (u32 slot, u32 list) or, keyed, (u32 list, u32 key size,
/// key), and a CRC-32C of all that (it covers the centroids, which the fingerprint does not). A set: magic,
/// u64 parts, then per part its u64 size and bytes. Little-endian, through detail::byte_writer / byte_reader.

#include <engram/detail/aligned_allocator.hpp>
#include <engram/detail/byte_io.hpp>
#include <engram/detail/crc32c.hpp>
#include <engram/detail/fnv.hpp>
#include <engram/error.hpp>
#include <engram/ids.hpp>

#include <bit>  // std::bit_cast
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace engram::inline v0::detail {

inline constexpr std::string_view ivf_snapshot_magic{"engram-ivf-1\n"};
inline constexpr std::string_view ivf_keyed_magic{"engram-ivf-keyed-1\n"};
inline constexpr std::string_view ivf_set_magic{"engram-ivf-set-1\n"};

/// Hash of one (key, row of `dim` floats): summed over a partition's rows, an order-independent fingerprint
/// of its content.
inline std::uint64_t ivf_row_hash(std::uint64_t key, const float* row, std::size_t dim) noexcept {
  std::uint64_t x = mix64(key);
  for (std::size_t i = 0; i < dim; i += 2) {
    const auto a = std::bit_cast<std::uint32_t>(row[i]);
    const auto b = i + 1 < dim ? std::bit_cast<std::uint32_t>(row[i + 1]) : std::uint32_t{0};
    x = mix64(x ^ ((std::uint64_t{b} << 32) | a));
  }
  return x;
}
/// The fingerprint of a partition of `size` vectors of `dim` floats before its rows are added to it.
inline std::uint64_t ivf_fingerprint_base(std::size_t dim, std::size_t size) noexcept {
  return mix64(std::uint64_t{dim} ^ (std::uint64_t{size} << 32));
}
inline std::uint64_t ivf_slot_key(slot_id s) noexcept { return std::uint64_t{s} + 1; }
inline std::uint64_t ivf_string_key(std::string_view k) noexcept { return fnv1a64(k); }

/// The snapshot of one trained partition: `lists` (each with `rows`, `stride` floats a row, and `slots`),
/// `centroids` (lists.size() rows of `stride` floats), `size` vectors in all. Slot-keyed, or keyed by
/// `key_of(slot)` when given. O(size x d) plus the keys' bytes.
template <class Lists>
std::string ivf_encode_partition(const Lists& lists, const float* centroids, std::size_t size, std::size_t dim,
                                 std::size_t stride, const std::function<std::string(slot_id)>* key_of) {
  std::string out(key_of ? ivf_keyed_magic : ivf_snapshot_magic);
  std::vector<std::string> keys;
  std::uint64_t print = ivf_fingerprint_base(dim, size);
  for (const auto& l : lists)
    for (std::size_t r = 0; r < l.slots.size(); ++r) {
      if (key_of) keys.push_back((*key_of)(l.slots[r]));
      print += ivf_row_hash(key_of ? ivf_string_key(keys.back()) : ivf_slot_key(l.slots[r]),
                            l.rows.data() + r * stride, dim);
    }
  byte_writer w(out);
  w.u64(dim);
  w.u64(lists.size());
  w.u64(size);
  w.u64(print);
  for (std::size_t j = 0; j < lists.size(); ++j)
    for (std::size_t i = 0; i < dim; ++i) w.u32(std::bit_cast<std::uint32_t>(centroids[j * stride + i]));
  std::size_t i = 0;
  for (std::size_t j = 0; j < lists.size(); ++j)
    for (const slot_id s : lists[j].slots) {
      if (key_of) {
        w.u32(static_cast<std::uint32_t>(j));
        w.str(keys[i++]);
      } else {
        w.u32(s);
        w.u32(static_cast<std::uint32_t>(j));
      }
    }
  w.u32(crc32c(out.data(), out.size()));
  return out;
}

/// One vector of a decoded partition snapshot: its list, and its slot (slot-keyed) or key (keyed).
struct ivf_snapshot_entry {
  std::uint32_t list = 0;
  slot_id slot = 0;
  std::string_view key;  // into the snapshot's bytes
};

/// A partition snapshot decoded, not yet checked against an index.
struct ivf_partition_snapshot {
  std::size_t nlist = 0;
  std::uint64_t print = 0;
  std::vector<float, aligned_allocator<float>> centroids;  // nlist x stride, zero-padded
  std::vector<ivf_snapshot_entry> entries;                  // list by list, as saved
};

/// Decodes a snapshot of ivf_encode_partition. std::nullopt when it is malformed: another magic, a bad
/// checksum, truncated, trailing bytes, another dimension than `dim`, no vector, more than `max_count`
/// vectors, more lists than vectors, or a list out of range. Never reads past `bytes`.
inline std::optional<ivf_partition_snapshot> ivf_decode_partition(std::string_view bytes, bool keyed, std::size_t dim,
                                                                  std::size_t stride, std::size_t max_count) {
  const auto magic = keyed ? ivf_keyed_magic : ivf_snapshot_magic;
  constexpr std::size_t crc_size = 4;
  if (bytes.substr(0, magic.size()) != magic || bytes.size() < magic.size() + crc_size) return std::nullopt;
  const auto crc = byte_reader(bytes.data() + bytes.size() - crc_size, crc_size, "ivf snapshot").u32();
  bytes.remove_suffix(crc_size);
  if (crc != crc32c(bytes.data(), bytes.size())) return std::nullopt;
  try {
    byte_reader r(bytes.data() + magic.size(), bytes.size() - magic.size(), "ivf snapshot");
    const auto got_dim = r.u64(), nlist = r.u64(), count = r.u64();
    ivf_partition_snapshot out;
    out.print = r.u64();
    if (got_dim != dim || nlist == 0 || count == 0 || count > max_count || nlist > count) return std::nullopt;
    if (r.left() / (dim * sizeof(float)) < nlist) return std::nullopt;
    out.nlist = static_cast<std::size_t>(nlist);
    out.centroids.assign(out.nlist * stride, 0.0f);
    for (std::size_t j = 0; j < out.nlist; ++j)
      for (std::size_t i = 0; i < dim; ++i) out.centroids[j * stride + i] = std::bit_cast<float>(r.u32());
    out.entries.resize(static_cast<std::size_t>(count));  // count <= max_count: bounded by the caller
    for (auto& e : out.entries) {
      if (keyed) {
        e.list = r.u32();
        e.key = r.bytes(r.u32());
      } else {
        e.slot = r.u32();
        e.list = r.u32();
      }
      if (e.list >= nlist) return std::nullopt;
    }
    if (!r.done()) return std::nullopt;
    return out;
  } catch (const storage_error&) {  // truncated
    return std::nullopt;
  }
}

/// The slots a snapshot names, in its order, and the partition holding them all.
struct ivf_snapshot_match {
  partition_id partition = 0;
  std::vector<slot_id> slots;
};

/// Checks a decoded snapshot against an index's content: each vector (named by slot, or by key through
/// `slot_of` when given) held once (slots below `slot_bound`), all in one partition (`want` when given) that
/// holds exactly `snap.entries.size()` vectors, and the fingerprint of their current rows equal to the saved
/// one. `row_of(slot)` gives the slot's partition and row (std::nullopt: not held); `size_of(partition)` its
/// vector count (0 when absent). std::nullopt when anything does not match. O(count x d).
template <class RowOf, class SizeOf>
std::optional<ivf_snapshot_match> ivf_match_snapshot(const ivf_partition_snapshot& snap, std::optional<partition_id> want,
                                                     const std::function<std::optional<slot_id>(std::string_view)>* slot_of,
                                                     std::size_t slot_bound, std::size_t dim, RowOf&& row_of,
                                                     SizeOf&& size_of) {
  const std::size_t count = snap.entries.size();
  ivf_snapshot_match out;
  out.slots.resize(count);
  std::uint64_t got_print = 0;
  std::vector<unsigned char> seen(slot_bound, 0);
  std::optional<partition_id> pid = want;
  for (std::size_t i = 0; i < count; ++i) {
    const auto& e = snap.entries[i];
    slot_id s = e.slot;
    std::uint64_t key = 0;
    if (slot_of) {
      const auto found = (*slot_of)(e.key);
      if (!found) return std::nullopt;
      s = *found;
      key = ivf_string_key(e.key);
    } else {
      key = ivf_slot_key(s);
    }
    const std::optional<std::pair<partition_id, const float*>> at = row_of(s);
    if (!at || s >= slot_bound || seen[s]) return std::nullopt;
    if (!pid) pid = at->first;
    if (at->first != *pid) return std::nullopt;
    seen[s] = 1;
    out.slots[i] = s;
    got_print += ivf_row_hash(key, at->second, dim);
  }
  if (!pid || count != size_of(*pid)) return std::nullopt;
  if (snap.print != got_print + ivf_fingerprint_base(dim, count)) return std::nullopt;
  out.partition = *pid;
  return out;
}

/// Several partition snapshots in one blob.
inline std::string ivf_encode_set(const std::vector<std::string>& parts) {
  std::string out(ivf_set_magic);
  byte_writer w(out);
  w.u64(parts.size());
  for (const auto& s : parts) {
    w.u64(s.size());
    out += s;
  }
  return out;
}

/// The parts of an ivf_encode_set blob, in place, up to the first that is cut short; `intact` is false when
/// the blob is malformed (another magic, truncated).
struct ivf_snapshot_set {
  std::vector<std::string_view> parts;
  bool intact = true;
};

inline ivf_snapshot_set ivf_decode_set(std::string_view bytes) {
  ivf_snapshot_set out;
  if (bytes.substr(0, ivf_set_magic.size()) != ivf_set_magic) {
    out.intact = false;
    return out;
  }
  byte_reader r(bytes.data() + ivf_set_magic.size(), bytes.size() - ivf_set_magic.size(), "ivf snapshot set");
  try {
    const auto count = r.u64();
    for (std::uint64_t i = 0; i < count; ++i) {
      const auto len = r.u64();
      if (len > r.left()) throw storage_error("ivf snapshot set: part ends early");
      out.parts.push_back(r.bytes(static_cast<std::size_t>(len)));
    }
  } catch (const storage_error&) {
    out.intact = false;
  }
  return out;
}

}  // namespace engram::inline v0::detail
