#pragma once
/// @file detail/record_codec.hpp
/// The binary form of records, history events and write batches in file_store's files: little-endian
/// integers, length-prefixed strings, metadata as MessagePack, vectors as raw float32. Decoding checks every
/// length against the bytes left and throws storage_error instead of reading past the end.

#include <engram/error.hpp>
#include <engram/record.hpp>
#include <engram/store/write_batch.hpp>

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

/// Appends encoded values to a byte string.
class byte_writer {
 public:
  explicit byte_writer(std::string& out) : out_(out) {}

  /// Bytes in the output string so far.
  [[nodiscard]] std::size_t size() const noexcept { return out_.size(); }

  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(std::uint32_t v) {
    char b[4];
    for (int i = 0; i < 4; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
    out_.append(b, 4);
  }
  void u64(std::uint64_t v) {
    char b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
    out_.append(b, 8);
  }
  void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
  void str(std::string_view s) {
    if (s.size() > 0xFFFFFFFFu) throw storage_error("file_store: a string of " + std::to_string(s.size()) +
                                                    " bytes is too long to store (at most 4 GiB)");
    u32(static_cast<std::uint32_t>(s.size()));
    out_.append(s.data(), s.size());
  }
  void opt_str(const std::optional<std::string>& s) {
    u8(s ? 1 : 0);
    if (s) str(*s);
  }
  void floats(std::span<const float> v) {
    u32(static_cast<std::uint32_t>(v.size()));
    float_bytes(v);
  }
  /// As floats(), plus a pad byte and that many zero bytes before the floats, so that they start at a multiple
  /// of 4 bytes in a file in which the output string starts at offset `base` (read in place after mapping).
  void aligned_floats(std::span<const float> v, std::uint64_t base) {
    u32(static_cast<std::uint32_t>(v.size()));
    const auto pad = static_cast<std::uint8_t>((4 - (base + out_.size() + 1) % 4) % 4);
    u8(pad);
    out_.append(pad, '\0');
    float_bytes(v);
  }
  void json(const nlohmann::json& j) {
    const auto bytes = nlohmann::json::to_msgpack(j);
    u32(static_cast<std::uint32_t>(bytes.size()));
    out_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }

 private:
  void float_bytes(std::span<const float> v) {
    if constexpr (std::endian::native == std::endian::little) {
      out_.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
    } else {
      for (const float f : v) u32(std::bit_cast<std::uint32_t>(f));
    }
  }

  std::string& out_;
};

/// Reads values back; every read past the end throws storage_error naming `what`.
class byte_reader {
 public:
  byte_reader(const char* data, std::size_t size, std::string_view what) : p_(data), end_(data + size), what_(what) {}

  [[nodiscard]] std::size_t left() const noexcept { return static_cast<std::size_t>(end_ - p_); }
  [[nodiscard]] bool done() const noexcept { return p_ == end_; }

  std::uint8_t u8() { return static_cast<std::uint8_t>(*take(1)); }
  std::uint32_t u32() {
    const auto* b = reinterpret_cast<const unsigned char*>(take(4));
    return std::uint32_t(b[0]) | std::uint32_t(b[1]) << 8 | std::uint32_t(b[2]) << 16 | std::uint32_t(b[3]) << 24;
  }
  std::uint64_t u64() {
    const auto* b = reinterpret_cast<const unsigned char*>(take(8));
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | b[i];
    return v;
  }
  std::int64_t i64() { return static_cast<std::int64_t>(u64()); }
  std::string str() {
    const auto n = u32();
    const char* s = take(n);
    return std::string(s, n);
  }
  std::optional<std::string> opt_str() {
    if (u8() == 0) return std::nullopt;
    return str();
  }
  std::vector<float> floats() {
    const std::size_t n = u32();
    if (n > left() / sizeof(float)) fail();
    std::vector<float> v(n);
    const char* s = take(n * sizeof(float));
    if constexpr (std::endian::native == std::endian::little) {
      if (n) std::memcpy(v.data(), s, n * sizeof(float));
    } else {
      for (std::size_t i = 0; i < n; ++i) {
        byte_reader r(s + 4 * i, 4, what_);
        v[i] = std::bit_cast<float>(r.u32());
      }
    }
    return v;
  }
  /// Reads what byte_writer::aligned_floats wrote: @returns the floats in place (no copy) when they are aligned
  /// for float and stored in native order, else an empty span with the floats copied into `owned`.
  std::span<const float> aligned_floats(std::vector<float>& owned) {
    const std::size_t n = u32();
    const auto pad = u8();
    if (pad > 3) throw storage_error(std::string(what_) + ": bad vector padding " + std::to_string(pad));
    take(pad);
    if (n > left() / sizeof(float)) fail();
    const char* s = take(n * sizeof(float));
    if (n == 0) return {};
    if constexpr (std::endian::native == std::endian::little) {
      if (reinterpret_cast<std::uintptr_t>(s) % alignof(float) == 0)
        return {reinterpret_cast<const float*>(s), n};
      owned.resize(n);
      std::memcpy(owned.data(), s, n * sizeof(float));
    } else {
      owned.resize(n);
      for (std::size_t i = 0; i < n; ++i) {
        byte_reader r(s + 4 * i, 4, what_);
        owned[i] = std::bit_cast<float>(r.u32());
      }
    }
    return {};
  }
  nlohmann::json json() {
    const auto n = u32();
    const auto* s = reinterpret_cast<const std::uint8_t*>(take(n));
    auto j = nlohmann::json::from_msgpack(s, s + n, true, false);
    if (j.is_discarded()) throw storage_error(std::string(what_) + ": metadata is not valid MessagePack");
    return j;
  }

 private:
  const char* take(std::size_t n) {
    if (n > left()) fail();
    const char* s = p_;
    p_ += n;
    return s;
  }
  [[noreturn]] void fail() const {
    throw storage_error(std::string(what_) + ": entry ends early (" + std::to_string(left()) + " bytes left)");
  }
  const char* p_;
  const char* end_;
  std::string_view what_;
};

inline std::int64_t micros_of(timestamp t) noexcept { return t.time_since_epoch().count(); }
inline timestamp timestamp_of(std::int64_t us) noexcept { return timestamp{std::chrono::microseconds{us}}; }

/// A record's fields in file order, the vector being written (or read) by `vector()`.
template <class Vector>
void encode_record_with(byte_writer& w, const record& r, Vector&& vector) {
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
}
template <class Vector>
void decode_record_with(byte_reader& rd, record& r, Vector&& vector) {
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
}

inline void encode_record(byte_writer& w, const record& r) {
  encode_record_with(w, r, [&] { w.floats(r.embedding); });
}

inline record decode_record(byte_reader& rd) {
  record r;
  decode_record_with(rd, r, [&] { r.embedding = rd.floats(); });
  return r;
}

/// Snapshot form of a record whose vector can be used in place once the file is mapped: encode_record's fields,
/// the vector being `vector` (not r.embedding) written with byte_writer::aligned_floats; `base` is the file
/// offset at which w's output string starts.
inline void encode_record_aligned(byte_writer& w, const record& r, std::span<const float> vector, std::uint64_t base) {
  encode_record_with(w, r, [&] { w.aligned_floats(vector, base); });
}

/// Reads encode_record_aligned's form: the record (its embedding filled only when the floats could not be used
/// in place) and its vector in place in the decoded bytes (empty when copied or when the record has none).
inline std::pair<record, std::span<const float>> decode_record_aligned(byte_reader& rd) {
  std::pair<record, std::span<const float>> out;
  decode_record_with(rd, out.first, [&] { out.second = rd.aligned_floats(out.first.embedding); });
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

inline void encode_batch(byte_writer& w, const write_batch& b) {
  w.u32(static_cast<std::uint32_t>(b.upserts.size()));
  for (const auto& r : b.upserts) encode_record(w, r);
  w.u32(static_cast<std::uint32_t>(b.erases.size()));
  for (const auto& id : b.erases) w.str(id);
  w.u32(static_cast<std::uint32_t>(b.events.size()));
  for (const auto& e : b.events) encode_event(w, e);
}

inline write_batch decode_batch(byte_reader& rd, std::string_view what) {
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
  for (std::size_t i = 0; i < nu; ++i) b.upserts.push_back(decode_record(rd));
  const auto ne = count();
  b.erases.reserve(ne);
  for (std::size_t i = 0; i < ne; ++i) b.erases.push_back(rd.str());
  const auto nh = count();
  b.events.reserve(nh);
  for (std::size_t i = 0; i < nh; ++i) b.events.push_back(decode_event(rd, what));
  return b;
}

/// A pending add (add_async): id, scope, messages, options (MessagePack), created_at, attempts.
inline void encode_pending(byte_writer& w, const pending_add& p) {
  w.str(p.id);
  w.str(p.owner.user_id);
  w.str(p.owner.agent_id);
  w.str(p.owner.run_id);
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

inline pending_add decode_pending(byte_reader& rd, std::string_view what) {
  pending_add p;
  p.id = rd.str();
  p.owner.user_id = rd.str();
  p.owner.agent_id = rd.str();
  p.owner.run_id = rd.str();
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
/// file_store for batches that change the queue (other batches keep the original encoding).
inline void encode_queue_ops(byte_writer& w, const write_batch& b) {
  w.u32(static_cast<std::uint32_t>(b.enqueued.size()));
  for (const auto& p : b.enqueued) encode_pending(w, p);
  w.u32(static_cast<std::uint32_t>(b.dequeued.size()));
  for (const auto& id : b.dequeued) w.str(id);
}

inline void decode_queue_ops(byte_reader& rd, write_batch& b, std::string_view what) {
  auto count = [&] {
    const std::size_t n = rd.u32();
    if (n > rd.left() / 4) throw storage_error(std::string(what) + ": count " + std::to_string(n) + " exceeds entry");
    return n;
  };
  const auto ne = count();
  b.enqueued.reserve(ne);
  for (std::size_t i = 0; i < ne; ++i) b.enqueued.push_back(decode_pending(rd, what));
  const auto nd = count();
  b.dequeued.reserve(nd);
  for (std::size_t i = 0; i < nd; ++i) b.dequeued.push_back(rd.str());
}

}  // namespace engram::inline v0::detail
