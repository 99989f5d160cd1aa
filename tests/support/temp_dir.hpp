#pragma once
/// @file tests/support/temp_dir.hpp
/// A fresh directory under /tmp for one test, removed with its contents when the test ends.

#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

#include <stdlib.h>  // mkdtemp

namespace engram_test {

struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/engram-test-XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    if (!p) throw std::runtime_error("temp_dir: mkdtemp failed");
    path = p;
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  /// A path inside the directory.
  [[nodiscard]] std::string sub(const std::string& name) const { return path + "/" + name; }
};

}  // namespace engram_test
