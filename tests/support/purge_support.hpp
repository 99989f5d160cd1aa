#pragma once
/// @file tests/support/purge_support.hpp
/// Planting a unique string in one scope, purging it, and looking for it everywhere (tests/purge*.cpp).

#include <engram/engram.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>  // std::istreambuf_iterator
#include <string>
#include <vector>

namespace purge_test {

/// What plant() wrote: alice's ids (purged) and bob's (kept).
struct planted {
  std::vector<std::string> alice, bob;
};

/// Gives user alice memories holding `secret` (one updated, so its history holds an older text too; one under an
/// agent; one expired) and user bob two memories, one also naming the secret's prefix.
template <class Memory>
planted plant(Memory& m, const std::string& secret) {
  using namespace engram;
  planted p;
  p.alice.push_back(m.add("my passport number is " + secret + "-old", user("alice")).results.at(0).id);
  m.update(p.alice.back(), "my passport number is " + secret);
  p.alice.push_back(m.add("the planner knows " + secret + " too", scope{"alice", "planner", ""}).results.at(0).id);
  add_options expired;
  expired.expiration_date = "2001-01-01";
  p.alice.push_back(m.add("an expired note about " + secret, user("alice"), expired).results.at(0).id);
  p.bob.push_back(m.add("bob likes tea", user("bob")).results.at(0).id);
  p.bob.push_back(m.add("bob's code is kept-" + secret.substr(0, 4), user("bob")).results.at(0).id);
  m.update(p.bob.front(), "bob likes green tea");
  return p;
}

/// Checks alice's memories and history are gone and bob's are whole.
template <class Memory>
void check_purged(const Memory& m, const planted& p) {
  using namespace engram;
  for (const auto& id : p.alice) {
    CHECK_FALSE(m.get(id));
    CHECK(m.history(id).empty());
  }
  CHECK(m.get_all(user("alice")).empty());
  CHECK(m.get_all(user("bob")).size() == 2);
  for (const auto& id : p.bob) CHECK(m.get(id));
  CHECK(m.history(p.bob.front()).size() == 2);
  CHECK(m.get(p.bob.front())->memory == "bob likes green tea");
}

/// The files under `dir` (recursively) whose bytes contain `needle`.
inline std::vector<std::string> files_holding(const std::string& dir, const std::string& needle) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.find(needle) != std::string::npos) out.push_back(e.path().string());
  }
  return out;
}

}  // namespace purge_test
