#include <engram/engram.hpp>

#include <string>

std::string remember_in_other_tu() {
  engram::memory mem;
  mem.add("I keep bees in the garden", engram::user("tu"));
  return mem.search("bees", engram::user("tu")).front().record.memory;
}
