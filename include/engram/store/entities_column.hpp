#pragma once
/// @file store/entities_column.hpp
/// record::entities in a text column of the SQL stores (sqlite_store, postgres_store): the JSON of json.hpp,
/// NULL while unset. A column that does not read back is a storage_error naming the record, never an unset
/// field: an extractor's answer cannot be derived again, so it must not be dropped silently.

#include <engram/entity/mentions.hpp>
#include <engram/error.hpp>
#include <engram/json.hpp>
#include <engram/json_dump.hpp>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace engram::inline v0::detail {

/// The column's text for `e`: its JSON (invalid UTF-8 replaced, as for metadata), nullopt (NULL) when unset.
inline std::optional<std::string> entities_column(const std::optional<recognized_entities>& e) {
  if (!e) return std::nullopt;
  return engram::dump_json(entities_to_json(*e));
}

/// Reads a non-NULL column of record `id`; `where` names the store.
/// @throws storage_error when the text is not JSON or not of entities_to_json's shape.
inline recognized_entities entities_of_column(std::string_view text, const std::string& where, const std::string& id) {
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) throw storage_error(where + ": entities of '" + id + "' are not JSON");
  try {
    return entities_from_json(j, where + ": record '" + id + "'", "entities");
  } catch (const validation_error& e) {
    throw storage_error(e.what());
  }
}

}  // namespace engram::inline v0::detail
