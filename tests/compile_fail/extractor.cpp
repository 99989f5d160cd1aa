// An extractor without decide(): basic_memory says what an Extractor needs.
// expect: Extractor needs: extract(messages, context) -> std::vector<fact>, decide(facts, neighbours,
#include "policies.hpp"

struct extract_only {
  std::vector<engram::fact> extract(std::span<const engram::message> messages,
                                    const engram::extraction_context& context);
};

using broken = engram::basic_memory<cf::good_embedder, cf::good_index, cf::good_store, extract_only>;
static_assert(sizeof(broken) > 0);

int main() {}
