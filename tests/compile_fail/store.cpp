// A store whose get(id) returns a pointer instead of std::optional<record>: basic_memory says what a Store needs.
// expect: Store needs: apply(write_batch), get(id) const -> std::optional<record>
#include "policies.hpp"

struct pointer_get : cf::good_store {
  const engram::record* get(std::string_view id) const;  // hides good_store::get
};

using broken = engram::basic_memory<cf::good_embedder, cf::good_index, pointer_get, cf::good_extractor>;
static_assert(sizeof(broken) > 0);

int main() {}
