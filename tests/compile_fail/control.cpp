// The control: the same four policies with nothing missing compile, so a compile-fail test that passes does
// so because of the requirement it leaves out, not because the harness cannot compile anything.
// expect-compile
#include "policies.hpp"

using complete = engram::basic_memory<cf::good_embedder, cf::good_index, cf::good_store, cf::good_extractor>;
static_assert(sizeof(complete) > 0);

int main() {}
