// An embedder without embed(): basic_memory says what an Embedder needs.
// expect: Embedder needs: dimension() const -> std::size_t, embed(std::string_view) const
#include "policies.hpp"

struct no_embed {
  std::size_t dimension() const;
};

using broken = engram::basic_memory<no_embed, cf::good_index, cf::good_store, cf::good_extractor>;
static_assert(sizeof(broken) > 0);

int main() {}
