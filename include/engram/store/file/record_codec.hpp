#pragma once
/// @file store/file/record_codec.hpp
/// The binary form of records, history events and write batches in file_store's files: little-endian
/// integers, length-prefixed strings, metadata as MessagePack, vectors as raw float32. Decoding checks every
/// length against the bytes left and throws storage_error instead of reading past the end.

#include <engram/detail/byte_io.hpp>
#include <engram/detail/identity_check.hpp>
#include <engram/error.hpp>
#include <engram/record.hpp>
#include <engram/scope.hpp>
#include <engram/scope_keys.hpp>
#include <engram/write_batch.hpp>

#include <nlohmann/json.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace engram::inline v0::detail {

inline std::int64_t micros_of(timestamp t) noexcept { return t.time_since_epoch().count(); }
inline timestamp timestamp_of(std::int64_t us) noexcept { return timestamp{std::chrono::microseconds{us}}; }

/// Which layout a record has in an entry: the first formats end at expiration_date; entries of the kinds added
/// in format 4 (file_format::kind_batch_flags, ...) follow it with a flags byte (bit 0: immutable); those of
/// format 5 (file_format::kind_batch_validity, ...) use flag bits 1-3 to say which of valid_from (i64),
/// invalid_at (i64) and superseded_by (string) follow the flags byte, in that order; those of format 7
/// (file_format::kind_batch_entities, ...) add bit 4: the record's entities (encode_entities) follow; those of
/// format 8 (file_format::kind_batch_scope_keys, ...) add bits 5 and 6: its tenant and extra scope keys (each a
/// string, when not empty) follow last. Each layout writes a record without the later fields in the bytes of
/// the one before.
enum class record_layout : std::uint8_t { v1, with_flags, with_validity, with_entities, with_scope_keys };

namespace record_flags {
inline constexpr std::uint8_t immutable = 1, valid_from = 2, invalid_at = 4, superseded_by = 8, entities = 16,
                              tenant = 32, extra = 64;
}  // namespace record_flags

/// How a scope is written: its three ids (formats 1-7), or also its tenant and extra keys (format 8).
enum class scope_layout : std::uint8_t { ids, with_keys };

/// A stored scope::tenant or scope::extra (`field`). @throws storage_error unless canonical (scope.hpp).
inline std::string decode_scope_lines(byte_reader& rd, std::string_view field) {
  auto lines = rd.str();
  try {
    validate_scope_lines(lines, field, "file_store");
  } catch (const validation_error& e) {
    throw storage_error(std::string("file_store: a stored scope is malformed (") + e.what() + ")");
  }
  return lines;
}

/// record::entities (format 7): u32 count, then per entity its name and type (u8, entity_type's value); u32
/// count, then per relation its source, relationship and target.
inline void encode_entities(byte_writer& w, const recognized_entities& e) {
  w.u32(static_cast<std::uint32_t>(e.entities.size()));
  for (const auto& m : e.entities) {
    w.str(m.name);
    w.u8(static_cast<std::uint8_t>(m.type));
  }
  w.u32(static_cast<std::uint32_t>(e.relations.size()));
  for (const auto& r : e.relations) {
    w.str(r.source);
    w.str(r.relationship);
    w.str(r.target);
  }
}

inline recognized_entities decode_entities(byte_reader& rd) {
  // counts bounded by the bytes left (an entity takes at least 5, a relation 12): no huge reserve
  auto count = [&](std::size_t least) {
    const std::size_t n = rd.u32();
    if (n > rd.left() / least) throw storage_error("file_store: entity count " + std::to_string(n) + " exceeds entry");
    return n;
  };
  recognized_entities e;
  e.entities.resize(count(5));
  for (auto& m : e.entities) {
    m.name = rd.str();
    const auto t = rd.u8();
    if (t > static_cast<std::uint8_t>(entity_type::name))
      throw storage_error("file_store: unknown entity type " + std::to_string(t));
    m.type = static_cast<entity_type>(t);
  }
  e.relations.resize(count(12));
  for (auto& r : e.relations) {
    r.source = rd.str();
    r.relationship = rd.str();
    r.target = rd.str();
  }
  return e;
}

/// A record's fields in file order, the vector being written (or read) by `vector()`.
template <class Vector>
void encode_record_with(byte_writer& w, const record& r, Vector&& vector, record_layout layout) {
  w.str(r.id);
  w.str(r.memory);
  w.str(r.hash);
  w.json(r.metadata);
  w.str(r.user_id);
  w.str(r.agent_id);
  w.str(r.run_id);
  w.str(r.actor_id);
  w.str(r.role);
  w.i64(micros_of(r.created_at));
  w.i64(micros_of(r.updated_at));
  vector();
  w.opt_str(r.expiration_date);
  const bool keys = !r.tenant.empty() || !r.extra.empty();
  if (keys && layout < record_layout::with_scope_keys)
    throw storage_error("file_store: the record layouts of formats 1-7 cannot hold a record's tenant or extra scope "
                        "keys");
  if (layout >= record_layout::with_validity) {
    if (r.entities && layout < record_layout::with_entities)
      throw storage_error("file_store: the record layouts of formats 1-6 cannot hold a record's entities");
    namespace f = record_flags;
    w.u8(static_cast<std::uint8_t>((r.immutable ? f::immutable : 0) | (r.valid_from ? f::valid_from : 0) |
                                   (r.invalid_at ? f::invalid_at : 0) | (r.superseded_by ? f::superseded_by : 0) |
                                   (r.entities ? f::entities : 0) | (r.tenant.empty() ? 0 : f::tenant) |
                                   (r.extra.empty() ? 0 : f::extra)));
    if (r.valid_from) w.i64(micros_of(*r.valid_from));
    if (r.invalid_at) w.i64(micros_of(*r.invalid_at));
    if (r.superseded_by) w.str(*r.superseded_by);
    if (r.entities) encode_entities(w, *r.entities);
    if (!r.tenant.empty()) w.str(r.tenant);
    if (!r.extra.empty()) w.str(r.extra);
    return;
  }
  if (r.valid_from || r.invalid_at || r.superseded_by || r.entities)
    throw storage_error("file_store: the record layouts of formats 1-4 cannot hold a record's validity or entities");
  if (layout == record_layout::with_flags) {
    w.u8(r.immutable ? 1 : 0);
  } else if (r.immutable) {
    throw storage_error("file_store: the first record layout cannot hold an immutable record");
  }
}
template <class Vector>
void decode_record_with(byte_reader& rd, record& r, Vector&& vector, record_layout layout) {
  r.id = rd.str();
  r.memory = rd.str();
  r.hash = rd.str();
  r.metadata = rd.json();
  r.user_id = rd.str();
  r.agent_id = rd.str();
  r.run_id = rd.str();
  r.actor_id = rd.str();
  r.role = rd.str();
  r.created_at = timestamp_of(rd.i64());
  r.updated_at = timestamp_of(rd.i64());
  vector();
  r.expiration_date = rd.opt_str();
  r.valid_from = r.invalid_at = std::nullopt;
  r.superseded_by = std::nullopt;
  r.entities = std::nullopt;
  r.tenant.clear();
  r.extra.clear();
  if (layout == record_layout::v1) return;
  namespace f = record_flags;
  const auto flags = rd.u8();
  std::uint8_t known = f::immutable;
  if (layout >= record_layout::with_validity) known |= f::valid_from | f::invalid_at | f::superseded_by;
  if (layout >= record_layout::with_entities) known |= f::entities;
  if (layout >= record_layout::with_scope_keys) known |= f::tenant | f::extra;
  if (flags & ~known) throw storage_error("file_store: unknown record flags " + std::to_string(flags));
  r.immutable = (flags & f::immutable) != 0;
  if (flags & f::valid_from) r.valid_from = timestamp_of(rd.i64());
  if (flags & f::invalid_at) r.invalid_at = timestamp_of(rd.i64());
  if (flags & f::superseded_by) r.superseded_by = rd.str();
  if (flags & f::entities) r.entities = decode_entities(rd);
  if (flags & f::tenant) r.tenant = decode_scope_lines(rd, "tenant");
  if (flags & f::extra) r.extra = decode_scope_lines(rd, "extra");
}

/// `layout` other than with_scope_keys writes the entries of earlier formats (kept to write old files in tests).
inline void encode_record(byte_writer& w, const record& r, record_layout layout = record_layout::with_scope_keys) {
  encode_record_with(w, r, [&] { w.floats(r.embedding); }, layout);
}

inline record decode_record(byte_reader& rd, record_layout layout) {
  record r;
  decode_record_with(rd, r, [&] { r.embedding = rd.floats(); }, layout);
  return r;
}

/// Snapshot form of a record whose vector can be used in place once the file is mapped: encode_record's fields,
/// the vector being `vector` (not r.embedding) written with byte_writer::aligned_floats; `base` is the file
/// offset at which w's output string starts.
inline void encode_record_aligned(byte_writer& w, const record& r, std::span<const float> vector, std::uint64_t base) {
  encode_record_with(w, r, [&] { w.aligned_floats(vector, base); }, record_layout::with_scope_keys);
}

/// Reads encode_record_aligned's form: the record (its embedding filled only when the floats could not be used
/// in place) and its vector in place in the decoded bytes (empty when copied or when the record has none).
inline std::pair<record, std::span<const float>> decode_record_aligned(byte_reader& rd, record_layout layout) {
  std::pair<record, std::span<const float>> out;
  decode_record_with(rd, out.first, [&] { out.second = rd.aligned_floats(out.first.embedding); }, layout);
  return out;
}

inline void encode_event(byte_writer& w, const history_event& e) {
  w.str(e.id);
  w.str(e.memory_id);
  w.opt_str(e.old_memory);
  w.opt_str(e.new_memory);
  w.u8(static_cast<std::uint8_t>(e.event));
  w.i64(micros_of(e.created_at));
  w.u8(e.updated_at ? 1 : 0);
  if (e.updated_at) w.i64(micros_of(*e.updated_at));
  w.u8(e.is_deleted ? 1 : 0);
  w.str(e.actor_id);
  w.str(e.role);
}

inline history_event decode_event(byte_reader& rd, std::string_view what) {
  history_event e;
  e.id = rd.str();
  e.memory_id = rd.str();
  e.old_memory = rd.opt_str();
  e.new_memory = rd.opt_str();
  const auto k = rd.u8();
  if (k > static_cast<std::uint8_t>(event_kind::none))
    throw storage_error(std::string(what) + ": unknown event kind " + std::to_string(k));
  e.event = static_cast<event_kind>(k);
  e.created_at = timestamp_of(rd.i64());
  if (rd.u8()) e.updated_at = timestamp_of(rd.i64());
  e.is_deleted = rd.u8() != 0;
  e.actor_id = rd.str();
  e.role = rd.str();
  return e;
}

/// `layout` other than with_scope_keys writes the batches of earlier formats (kept to write old files in tests).
inline void encode_batch(byte_writer& w, const write_batch& b, record_layout layout = record_layout::with_scope_keys) {
  w.u32(static_cast<std::uint32_t>(b.upserts.size()));
  for (const auto& r : b.upserts) encode_record(w, r, layout);
  w.u32(static_cast<std::uint32_t>(b.erases.size()));
  for (const auto& id : b.erases) w.str(id);
  w.u32(static_cast<std::uint32_t>(b.events.size()));
  for (const auto& e : b.events) encode_event(w, e);
}

inline write_batch decode_batch(byte_reader& rd, std::string_view what, record_layout layout) {
  write_batch b;
  // Counts are bounded by the bytes left (every element takes at least 4), so a corrupt count cannot
  // make us reserve gigabytes.
  auto count = [&] {
    const std::size_t n = rd.u32();
    if (n > rd.left() / 4) throw storage_error(std::string(what) + ": count " + std::to_string(n) + " exceeds entry");
    return n;
  };
  const auto nu = count();
  b.upserts.reserve(nu);
  for (std::size_t i = 0; i < nu; ++i) b.upserts.push_back(decode_record(rd, layout));
  const auto ne = count();
  b.erases.reserve(ne);
  for (std::size_t i = 0; i < ne; ++i) b.erases.push_back(rd.str());
  const auto nh = count();
  b.events.reserve(nh);
  for (std::size_t i = 0; i < nh; ++i) b.events.push_back(decode_event(rd, what));
  return b;
}

/// The identity a store is bound to: embedder name, dimension; with `keys` (format 8) also the scope key set.
/// Without, a key set other than Mem0's cannot be written, and Mem0's is read.
inline void encode_identity(byte_writer& w, const store_identity& id, bool keys = true) {
  if (!keys && !id.scope_keys.empty())
    throw storage_error("file_store: the identity entry of formats 1-7 cannot hold a scope key set");
  w.str(id.embedder);
  w.u64(id.dimension);
  if (keys) w.str(id.scope_keys);
}

inline store_identity decode_identity(byte_reader& rd, bool keys) {
  store_identity id;
  id.embedder = rd.str();
  id.dimension = static_cast<std::size_t>(rd.u64());
  if (keys) {
    id.scope_keys = rd.str();
    (void)parse_scope_keys(id.scope_keys, "file_store");  // throws storage_error unless a key set
  }
  return id;
}

/// A scope: user, agent and run ids, then with scope_layout::with_keys its tenant and extra (format 8). The
/// layout of formats 1-7 cannot write a scope with tenant or extra keys.
inline void encode_scope(byte_writer& w, const scope& s, scope_layout layout = scope_layout::with_keys) {
  if (layout == scope_layout::ids && (!s.tenant.empty() || !s.extra.empty()))
    throw storage_error("file_store: the scope layout of formats 1-7 cannot hold tenant or extra scope keys");
  w.str(s.user_id);
  w.str(s.agent_id);
  w.str(s.run_id);
  if (layout == scope_layout::with_keys) {
    w.str(s.tenant);
    w.str(s.extra);
  }
}

inline scope decode_scope(byte_reader& rd, scope_layout layout) {
  scope s;
  s.user_id = rd.str();
  s.agent_id = rd.str();
  s.run_id = rd.str();
  if (layout == scope_layout::with_keys) {
    s.tenant = decode_scope_lines(rd, "tenant");
    s.extra = decode_scope_lines(rd, "extra");
  }
  return s;
}

/// The owner of a history (format 6): the memory id, then the scope its record had.
inline void encode_owner(byte_writer& w, std::string_view memory_id, const scope& owner,
                         scope_layout layout = scope_layout::with_keys) {
  w.str(memory_id);
  encode_scope(w, owner, layout);
}

inline std::pair<std::string, scope> decode_owner(byte_reader& rd, scope_layout layout) {
  auto id = rd.str();
  return {std::move(id), decode_scope(rd, layout)};
}

/// A pending add (add_async): id, scope, messages, options (MessagePack), created_at, attempts.
inline void encode_pending(byte_writer& w, const pending_add& p, scope_layout layout = scope_layout::with_keys) {
  w.str(p.id);
  encode_scope(w, p.owner, layout);
  w.u32(static_cast<std::uint32_t>(p.messages.size()));
  for (const auto& m : p.messages) {
    w.str(m.role);
    w.str(m.content);
    w.str(m.name);
  }
  w.json(p.options);
  w.str(p.created_at);
  w.u32(p.attempts);
}

inline pending_add decode_pending(byte_reader& rd, std::string_view what, scope_layout layout) {
  pending_add p;
  p.id = rd.str();
  p.owner = decode_scope(rd, layout);
  const std::size_t n = rd.u32();
  if (n > rd.left() / 12) throw storage_error(std::string(what) + ": message count " + std::to_string(n) + " exceeds entry");
  p.messages.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    message m;
    m.role = rd.str();
    m.content = rd.str();
    m.name = rd.str();
    p.messages.push_back(std::move(m));
  }
  p.options = rd.json();
  p.created_at = rd.str();
  p.attempts = rd.u32();
  return p;
}

/// The pending-queue part of a batch (enqueued, then dequeued ids), written after encode_batch's part by
/// file_store for batches that change the queue (other batches keep the original encoding); the pending adds'
/// scopes in `layout`.
inline void encode_queue_ops(byte_writer& w, const write_batch& b, scope_layout layout = scope_layout::with_keys) {
  w.u32(static_cast<std::uint32_t>(b.enqueued.size()));
  for (const auto& p : b.enqueued) encode_pending(w, p, layout);
  w.u32(static_cast<std::uint32_t>(b.dequeued.size()));
  for (const auto& id : b.dequeued) w.str(id);
}

inline void decode_queue_ops(byte_reader& rd, write_batch& b, std::string_view what, scope_layout layout) {
  auto count = [&] {
    const std::size_t n = rd.u32();
    if (n > rd.left() / 4) throw storage_error(std::string(what) + ": count " + std::to_string(n) + " exceeds entry");
    return n;
  };
  const auto ne = count();
  b.enqueued.reserve(ne);
  for (std::size_t i = 0; i < ne; ++i) b.enqueued.push_back(decode_pending(rd, what, layout));
  const auto nd = count();
  b.dequeued.reserve(nd);
  for (std::size_t i = 0; i < nd; ++i) b.dequeued.push_back(rd.str());
}

}  // namespace engram::inline v0::detail
