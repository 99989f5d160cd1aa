#pragma once
/// @file memory/purge.hpp
/// Purge: erasing a scope for good (basic_memory::purge). Unlike delete_all, which erases records and records
/// DELETE events (the history keeps their text), a purge has the store erase the records and their history and
/// leave no copy of the text in its files or rows (engram::purging_store), then drops them from the derived
/// state.

#include <engram/capabilities.hpp>
#include <engram/scope.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace engram::inline v0::detail {

/// Purges query scope `s` from `store` and calls unindex(const std::string& id) for every memory of it that
/// `derived` indexes (every version: closed and expired ones too). Under the memory's write lock, the scope
/// loaded (partition cache). @returns how many records the store erased.
template <class Store, class Derived, class Unindex>
std::size_t purge_scope(Store& store, const Derived& derived, const scope& s, Unindex&& unindex) {
  static_assert(purging_store<Store>,
                "purge needs a Store with purge(const scope&) -> std::size_t (engram::purging_store): one that "
                "erases a scope's records and history and leaves no copy of their text");
  std::vector<std::string> ids;
  for (const auto slot : derived.slots_in(s, [](const scope&) { return false; })) ids.push_back(derived.id_of(slot));
  const auto n = store.purge(s);  // the commit point: if it throws, nothing derived moved
  for (const auto& id : ids) unindex(id);
  return n;
}

}  // namespace engram::inline v0::detail
