// An index without remove(slot): basic_memory says what an Index needs.
// expect: Index needs: dimension(), size(), add(slot, partition, vector), update(slot, vector), remove(slot)
#include "policies.hpp"

struct no_remove : cf::good_index {
  void remove(engram::slot_id, int extra_argument);  // hides good_index::remove(slot)
};

using broken = engram::basic_memory<cf::good_embedder, no_remove, cf::good_store, cf::good_extractor>;
static_assert(sizeof(broken) > 0);

int main() {}
