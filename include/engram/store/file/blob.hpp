#pragma once
/// @file store/file/blob.hpp
/// Named blobs of a file_store: derived data kept beside the records (an index snapshot, say), one file
/// `blob.<name>` each, replaced atomically. The store's records never refer to them.

#include <engram/error.hpp>
#include <engram/store/file/format.hpp>
#include <engram/store/file/posix_file.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

namespace engram::inline v0::detail {

/// The file of blob `name` in `dir`.
/// @throws validation_error for a name that is empty or not made of letters, digits, '-' and '_'.
inline std::string blob_path(const std::string& dir, std::string_view name) {
  const bool ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
  if (!ok)
    throw validation_error("file_store: blob name '" + std::string(name) +
                           "' is invalid (expected 1 or more letters, digits, '-' or '_')");
  return file_format::path(dir, "blob." + std::string(name));
}

/// Replaces file `path` in `dir` with `bytes`, durably: written to `path.tmp`, fsync'd, renamed over it, the
/// directory fsync'd. @throws storage_error on an I/O error (the previous file then stays).
inline void write_blob(const std::string& dir, const std::string& path, std::string_view bytes) {
  const auto tmp = path + ".tmp";
  {
    auto fd = open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC);
    write_all(fd.get(), bytes.data(), bytes.size(), tmp);
    sync_data(fd.get(), tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw_errno("cannot rename", tmp, err);
  }
  sync_dir(dir);
}

/// The bytes of file `path`, or std::nullopt when it does not exist. @throws storage_error when unreadable.
inline std::optional<std::string> read_blob(const std::string& path) {
  if (!file_exists(path)) return std::nullopt;
  const mapped_file f(path);
  return std::string(f.data(), f.size());
}

}  // namespace engram::inline v0::detail
