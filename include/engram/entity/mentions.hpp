#pragma once
/// @file entity/mentions.hpp
/// What a text names: the entities and relations of one memory, as the offline recogniser or an extractor
/// gives them. Plain values, kept with a record (record::entities) and read by the entity index.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace engram::inline v0 {

/// What an entity is.
enum class entity_type : std::uint8_t { person, organization, place, date, handle, title, name };

/// "person", "organization", "place", "date", "handle", "title" or "name".
inline constexpr std::string_view to_string(entity_type t) noexcept {
  switch (t) {
    case entity_type::person: return "person";
    case entity_type::organization: return "organization";
    case entity_type::place: return "place";
    case entity_type::date: return "date";
    case entity_type::handle: return "handle";
    case entity_type::title: return "title";
    case entity_type::name: return "name";
  }
  return "name";
}

/// One entity named in a text, as written.
struct entity_mention {
  std::string name;
  entity_type type = entity_type::name;
  friend bool operator==(const entity_mention&, const entity_mention&) = default;
};

/// source —relationship→ target, as a text says it (names as written, the relationship in lowercase words).
struct entity_relation {
  std::string source;
  std::string relationship;
  std::string target;
  friend bool operator==(const entity_relation&, const entity_relation&) = default;
};

/// What a text names: its entities in order of appearance (each name once) and the relations between them.
struct recognized_entities {
  std::vector<entity_mention> entities;
  std::vector<entity_relation> relations;
  friend bool operator==(const recognized_entities&, const recognized_entities&) = default;
};

/// Reads a type's spelling (case-insensitive; "organisation", "location" and "city" are read as their kinds).
/// Anything else is `name`: an extractor's own types ("product", "event") are kept as plain names.
inline entity_type parse_entity_type(std::string_view s) {
  std::string t(s);
  for (auto& c : t) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  if (t == "person" || t == "people") return entity_type::person;
  if (t == "organization" || t == "organisation" || t == "company" || t == "org") return entity_type::organization;
  if (t == "place" || t == "location" || t == "city" || t == "country") return entity_type::place;
  if (t == "date" || t == "time") return entity_type::date;
  if (t == "handle" || t == "email") return entity_type::handle;
  if (t == "title") return entity_type::title;
  return entity_type::name;
}

}  // namespace engram::inline v0
