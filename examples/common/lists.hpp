#pragma once
/// @file examples/common/lists.hpp
/// Mem0's string form of a list ("food, travel"), shared by the apps' flags and the REST fields.

#include <algorithm>
#include <string>
#include <vector>

namespace engram_app {

/// The items of a comma-separated list, trimmed, empty ones dropped.
inline std::vector<std::string> comma_list(const std::string& csv) {
  std::vector<std::string> out;
  std::size_t from = 0;
  while (from <= csv.size()) {
    const auto comma = std::min(csv.find(',', from), csv.size());
    auto item = csv.substr(from, comma - from);
    item.erase(0, item.find_first_not_of(" \t\r\n"));
    item.erase(item.find_last_not_of(" \t\r\n") + 1);
    if (!item.empty()) out.push_back(std::move(item));
    from = comma + 1;
  }
  return out;
}

}  // namespace engram_app
