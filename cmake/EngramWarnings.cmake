# engram_warnings(target): strict warnings, as errors, for engram's own tests, benchmarks and examples.
# Never applied to the INTERFACE targets consumers link.
function(engram_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Werror)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC 12 reports false positives inside Eigen's products when AVX-512 is enabled (-march=native).
    target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized)
  endif()
endfunction()
