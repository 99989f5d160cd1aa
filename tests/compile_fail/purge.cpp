// A store without purge(scope) cannot be purged: basic_memory::purge says what the Store needs, instead of
// keeping the history the caller asked to erase.
// expect: purge needs a Store with purge(const scope&) -> std::size_t (engram::purging_store)
#include "policies.hpp"

using memory_without_purge = engram::basic_memory<cf::good_embedder, cf::good_index, cf::good_store, cf::good_extractor>;

std::size_t erase_alice(memory_without_purge& m) { return m.purge(engram::user("alice")); }

int main() {}
