#pragma once
/// @file detail/byte_io.hpp
/// Little-endian integers, length-prefixed strings, float arrays and MessagePack JSON in a byte string: the
/// writer and the bounds-checked reader behind every binary format engram keeps (file_store's records, index
/// snapshots). The reader throws storage_error instead of reading past the end.

#include <engram/error.hpp>

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
  /// The next `n` bytes, in place (valid as long as the input).
  std::string_view bytes(std::size_t n) { return {take(n), n}; }
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

}  // namespace engram::inline v0::detail
