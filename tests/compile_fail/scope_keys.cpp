// A key set beyond Mem0's over a store that does not say it keeps a scope's tenant and extra keys: such a store
// could drop them, and projects would share memories, so basic_memory refuses to compile.
// expect: a key set beyond Mem0's needs a Store that keeps tenant and extra keys
#include "policies.hpp"

#include <engram/scope_keys.hpp>

using broken = engram::basic_memory<cf::good_embedder, cf::good_index, cf::good_store, cf::good_extractor,
                                    engram::platform_scope_keys>;
static_assert(sizeof(broken) > 0);

int main() {}
