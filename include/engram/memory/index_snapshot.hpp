#pragma once
/// @file memory/index_snapshot.hpp
/// Index snapshots: when the Index can save and restore its trained state keyed by memory id (snapshot_index,
/// e.g. ivf_index) and the Store keeps named blobs (blob_store, e.g. file_store), the index's state is saved in
/// blob "index" when the memory is destroyed (or on save_index_snapshot()) and restored on open: records are
/// indexed with training held, then the saved state of every partition that holds exactly the vectors it was
/// saved with is installed (no k-means), and only the other partitions train. A snapshot that does not match is
/// rejected (counted by the index) and rebuilt, never trusted. Other Index or Store types: no-ops.

#include <engram/capabilities.hpp>
#include <engram/error.hpp>
#include <engram/ids.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace engram::inline v0::detail {

template <class Index, class Store>
class index_snapshots {
 public:
  static constexpr bool supported = snapshot_index<Index> && blob_store<Store>;
  static constexpr std::string_view blob_name = "index";

  /// Step 1 of opening: hold (or, after indexing, release) the index's training.
  static void hold_training(Index& index, bool hold) {
    if constexpr (supported) index.hold_training(hold);
    (void)index;
    (void)hold;
  }

  /// Step 2 of opening, once every record is indexed: installs the saved state that still matches.
  /// `slot_of(id)` names the slot of a memory id.
  template <class SlotOf>
  void restore(Index& index, const Store& store, SlotOf&& slot_of) {
    if constexpr (supported) {
      std::optional<std::string> blob;
      try {
        blob = store.get_blob(blob_name);
      } catch (const storage_error&) {  // an unreadable snapshot is no snapshot: the index trains
      }
      if (blob) index.load_snapshots(*blob, slot_of);
      saved_version_ = index.version();
    } else {
      (void)index;
      (void)store;
      (void)slot_of;
    }
  }

  /// The bytes to save when the index changed since it was last saved or restored (nullopt otherwise), and the
  /// version they hold. Under the owner's read lock; `id_of(slot)` names a slot's memory id.
  template <class IdOf>
  std::optional<std::pair<std::string, std::uint64_t>> changed(const Index& index, IdOf&& id_of) const {
    if constexpr (supported) {
      const auto version = index.version();
      if (version == saved_version_) return std::nullopt;
      return std::pair{index.save_snapshots(id_of), version};
    } else {
      (void)index;
      (void)id_of;
      return std::nullopt;
    }
  }

  /// Records that the state of `version` is saved. Under the owner's write lock.
  void saved(std::uint64_t version) noexcept { saved_version_ = version; }

 private:
  std::uint64_t saved_version_ = ~std::uint64_t{0};  // index version last saved or restored
};

}  // namespace engram::inline v0::detail
