// The index behaviour suite (tests/index_suite.hpp) over flat_index and ivf_index. The IVF kinds answer
// exactly: one untrained (a partition is one flat list), one trained early and probing every list.
#include <engram/index/flat.hpp>
#include <engram/index/ivf.hpp>

#include <cstddef>
#include <tuple>

struct flat_kind {
  using index_type = engram::flat_index;
  static index_type make(std::size_t dim) { return index_type(dim); }
};

struct ivf_untrained_kind {
  using index_type = engram::ivf_index;
  static index_type make(std::size_t dim) { return index_type(dim, {.train_threshold = 1u << 20}); }
};

struct ivf_trained_kind {  // trains at 16 vectors into up to 4 lists, synchronously; probes all of them
  using index_type = engram::ivf_index;
  static index_type make(std::size_t dim) {
    return index_type(dim, {.nlist = 4, .nprobe = 4, .train_threshold = 16, .min_per_list = 4, .background = false});
  }
};

using index_kinds = std::tuple<flat_kind, ivf_untrained_kind, ivf_trained_kind>;

#include "support/index_suite.hpp"
