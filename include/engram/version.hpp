#pragma once
/// @file version.hpp
/// engram's version. The same number is in CMakeLists.txt (a test checks they agree).

#define ENGRAM_VERSION_MAJOR 0
#define ENGRAM_VERSION_MINOR 1
#define ENGRAM_VERSION_PATCH 0
#define ENGRAM_VERSION_STRING "0.1.0"

namespace engram::inline v0 {
/// The library version as "major.minor.patch".
inline constexpr const char* version_string = ENGRAM_VERSION_STRING;
/// Format version of the SQL schemas (sqlite_store, postgres_store) and of the JSONL export; bumped on an
/// incompatible change. file_store's files carry their own, file_store::format_version.
inline constexpr int storage_format_version = 1;
}  // namespace engram::inline v0
