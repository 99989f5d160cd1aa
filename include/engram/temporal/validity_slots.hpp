#pragma once
/// @file temporal/validity_slots.hpp
/// The validity intervals of indexed memories, by slot: what lets a read hide closed versions or see the
/// memories valid at an instant without reading a record. Part of a memory's derived state.

#include <engram/ids.hpp>
#include <engram/index/bitmap.hpp>
#include <engram/record.hpp>
#include <engram/temporal/validity.hpp>
#include <engram/time.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

namespace engram::inline v0::detail {

/// valid_from and invalid_at of every indexed memory, as microseconds by slot. Not thread-safe: its owner locks.
/// Memory: 16 bytes per slot, plus a set entry per closed memory.
class validity_slots {
 public:
  /// Records the interval of the memory in `slot`.
  void assign(slot_id slot, const record& r) {
    if (slot >= from_.size()) {
      from_.resize(std::size_t{slot} + 1, 0);
      until_.resize(std::size_t{slot} + 1, open);
    }
    from_[slot] = micros(r.valid_since());
    until_[slot] = r.invalid_at ? micros(*r.invalid_at) : open;
    if (r.invalid_at)
      closed_.set(slot);
    else
      closed_.reset(slot);
  }

  /// Forgets `slot`.
  void erase(slot_id slot) {
    if (slot >= from_.size()) return;
    from_[slot] = 0;
    until_[slot] = open;
    closed_.reset(slot);
  }

  void clear() {
    from_.clear();
    until_.clear();
    closed_ = slot_bitmap{};
  }

  void reserve(std::size_t n) {
    from_.reserve(n);
    until_.reserve(n);
  }

  /// True when `view` may hide some memory: reads then check each slot. The default view over memories of which
  /// none is closed hides nothing, so today's searches stay free of the check.
  [[nodiscard]] bool active(const validity_view& view) const noexcept {
    switch (view.mode) {
      case validity_view::kind::current: return !closed_.empty();
      case validity_view::kind::as_of: return true;
      case validity_view::kind::all: return false;
    }
    return false;
  }

  /// At most how many memories `view` hides (every slot for as_of, which may hide any).
  [[nodiscard]] std::size_t max_hidden(const validity_view& view) const noexcept {
    switch (view.mode) {
      case validity_view::kind::current: return closed_.count();
      case validity_view::kind::as_of: return from_.size();
      case validity_view::kind::all: return 0;
    }
    return 0;
  }

  /// True when `view` hides the memory in `slot` at `now`.
  [[nodiscard]] bool hides(slot_id slot, const validity_view& view, timestamp now) const noexcept {
    if (slot >= from_.size() || view.mode == validity_view::kind::all) return false;
    const auto until = until_[slot];
    if (view.mode == validity_view::kind::current) return until != open && until <= micros(now);
    const auto at = micros(view.at);
    return !(from_[slot] <= at && at < until);
  }

  /// Clears the bits of `bits` whose memories `view` hides at `now`.
  void reset_hidden(slot_bitmap& bits, const validity_view& view, timestamp now) const {
    if (!active(view)) return;
    if (view.mode == validity_view::kind::current) {
      closed_.for_each([&](slot_id slot) {
        if (hides(slot, view, now)) bits.reset(slot);
      });
      return;
    }
    std::vector<slot_id> hidden;
    bits.for_each([&](slot_id slot) {
      if (hides(slot, view, now)) hidden.push_back(slot);
    });
    for (const auto slot : hidden) bits.reset(slot);
  }

 private:
  static constexpr std::int64_t open = std::numeric_limits<std::int64_t>::max();  // no invalid_at
  static std::int64_t micros(timestamp t) noexcept { return t.time_since_epoch().count(); }

  std::vector<std::int64_t> from_;   // valid_since() by slot
  std::vector<std::int64_t> until_;  // invalid_at by slot, `open` when unset
  slot_bitmap closed_;               // slots with an invalid_at (a bitmap: walked on every gated search)
};

}  // namespace engram::inline v0::detail
