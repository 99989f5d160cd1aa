// The small program every consumer build compiles and runs: remembers, searches, checks scope walls.
#include <engram/engram.hpp>

#include <iostream>

int main() {
  engram::memory mem;
  mem.add("I keep bees and sell honey", engram::user("ana"));
  mem.add("I keep chickens", engram::user("ben"));
  const auto hits = mem.search("honey bees", engram::user("ana"));
  if (hits.size() != 1 || hits[0].record.user_id != "ana") return 1;
  std::cout << "consumer ok: engram " << engram::version_string << ": " << hits[0].record.memory << '\n';
  return 0;
}
