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

/// What plant_deleted() wrote: alice's memories deleted before the purge, and one of bob's (its history stays).
struct deleted {
  std::vector<std::string> alice;
  std::string bob;
};

/// Gives alice two memories holding `secret` that are deleted before any purge (one by delete_memory, one by
/// delete_all of its own agent scope), and bob one deleted memory: their histories name no scope.
template <class Memory>
deleted plant_deleted(Memory& m, const std::string& secret) {
  using namespace engram;
  deleted d;
  d.alice.push_back(m.add("a deleted note about " + secret, user("alice")).results.at(0).id);
  m.delete_memory(d.alice.back());
  const scope scratch{"alice", "scratch", ""};
  d.alice.push_back(m.add("the scratchpad held " + secret, scratch).results.at(0).id);
  CHECK(m.delete_all(scratch) == 1);
  d.bob = m.add("bob deleted his note", user("bob")).results.at(0).id;
  m.delete_memory(d.bob);
  return d;
}

/// Checks the histories of alice's deleted memories are gone and bob's (ADD, DELETE) is whole.
template <class Memory>
void check_deleted_purged(const Memory& m, const deleted& d) {
  for (const auto& id : d.alice) CHECK(m.history(id).empty());
  CHECK(m.history(d.bob).size() == 2);
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
