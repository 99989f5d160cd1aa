// engram quickstart: two users tell the memory different things; each sees only their own memories.
// Offline: the hashing embedder and the verbatim extractor need no network and no keys.
#include <engram/engram.hpp>

#include <iomanip>
#include <iostream>
#include <string>
#include <vector>

namespace {

void show_search(const engram::memory& mem, const std::string& who, const std::string& query) {
  std::cout << "\n  " << who << " asks: \"" << query << "\"\n";
  const auto hits = mem.search(query, engram::user(who), {.limit = 3});
  if (hits.empty()) std::cout << "    (nothing remembered)\n";
  for (const auto& h : hits)
    std::cout << "    " << std::fixed << std::setprecision(3) << h.score << "  " << h.record.memory << '\n';
}

}  // namespace

int main() {
  engram::memory mem;  // hashing embedder + flat index + in-memory store + verbatim extractor

  std::cout << "== What alice and bob tell the memory\n";
  const std::vector<engram::message> alice_chat = {
      {"system", "You are a helpful travel assistant.", ""},
      {"user", "I'm vegetarian and I avoid dairy.", "alice"},
      {"user", "I live in Lisbon and work as a nurse.", "alice"},
      {"user", "My favourite drink is green tea.", "alice"},
  };
  for (const auto& e : mem.add(alice_chat, engram::user("alice")).results)
    std::cout << "  alice  " << engram::to_string(e.event) << "  " << e.memory << '\n';

  for (const char* text : {"I love steak and red wine.", "I live in Toronto and drive a truck.",
                           "My favourite drink is black coffee."})
    for (const auto& e : mem.add(text, engram::user("bob")).results)
      std::cout << "  bob    " << engram::to_string(e.event) << "  " << e.memory << '\n';

  const auto again = mem.add("My favourite drink is green tea.", engram::user("alice"));
  std::cout << "  alice  " << engram::to_string(again.results.front().event) << "  (said twice, kept once)\n";

  std::cout << "\n== Searches stay inside each user's scope";
  show_search(mem, "alice", "what does she like to drink?");
  show_search(mem, "bob", "what does he like to drink?");
  show_search(mem, "alice", "where does she live?");

  std::cout << "\n== alice moves: update, then look at the history\n";
  const auto home = mem.search("where do I live", engram::user("alice"), {.limit = 1}).front().record;
  mem.update(home.id, "I live in Porto and work as a nurse.");
  std::cout << "  history of " << home.id << ":\n";
  for (const auto& ev : mem.history(home.id))
    std::cout << "    " << std::left << std::setw(7) << engram::to_string(ev.event) << std::right
              << (ev.old_memory ? "\"" + *ev.old_memory + "\" -> " : std::string()) << "\""
              << ev.new_memory.value_or("") << "\"\n";

  std::cout << "\n== bob deletes his drink preference\n";
  const auto drink = mem.search("favourite drink", engram::user("bob"), {.limit = 1}).front().record;
  mem.delete_memory(drink.id);
  std::cout << "  deleted \"" << drink.memory << "\"; bob now remembers " << mem.get_all(engram::user("bob")).size()
            << " things, alice " << mem.get_all(engram::user("alice")).size() << '\n';
  show_search(mem, "bob", "what does he like to drink?");

  std::cout << "\n== As JSON (Mem0's shape)\n  "
            << engram::results(mem.search("tea", engram::user("alice"), {.limit = 1})).dump() << '\n';
  return 0;
}
