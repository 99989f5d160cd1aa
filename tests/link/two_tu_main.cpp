#include <engram/engram.hpp>

#include <iostream>
#include <string>

std::string remember_in_other_tu();

int main() {
  engram::memory mem;
  mem.add("I grow tomatoes", engram::user("tu"));
  const auto here = mem.search("tomatoes", engram::user("tu")).front().record.memory;
  const auto there = remember_in_other_tu();
  std::cout << here << " / " << there << '\n';
  return here == "I grow tomatoes" && there == "I keep bees in the garden" ? 0 : 1;
}
