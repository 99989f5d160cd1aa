# Runs one compile-fail program through the compiler (syntax only) and checks the outcome it declares:
#   // expect: TEXT       compilation must fail and the compiler's output must contain TEXT
#   // expect-compile     compilation must succeed (the control)
# Usage: cmake -DCXX=compiler -DFLAGS=file-of-flags -DSOURCE=program.cpp -P run.cmake
# FLAGS names a file with one compiler argument per line (include directories, definitions, standard).
foreach(var CXX FLAGS SOURCE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run.cmake: -D${var}=... is required")
  endif()
endforeach()

file(STRINGS ${SOURCE} expect_lines REGEX "^// expect")
list(LENGTH expect_lines n)
if(NOT n EQUAL 1)
  message(FATAL_ERROR "${SOURCE}: needs exactly one '// expect: TEXT' or '// expect-compile' line, has ${n}")
endif()
if(expect_lines STREQUAL "// expect-compile")
  set(must_fail FALSE)
elseif(expect_lines MATCHES "^// expect: (.+)$")
  set(must_fail TRUE)
  string(STRIP "${CMAKE_MATCH_1}" expected)
else()
  message(FATAL_ERROR "${SOURCE}: malformed expectation '${expect_lines}'")
endif()

file(STRINGS ${FLAGS} flags)
execute_process(COMMAND ${CXX} ${flags} -fsyntax-only ${SOURCE}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)

if(NOT must_fail)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${SOURCE} must compile but failed:\n${out}")
  endif()
  message(STATUS "compiled, as expected")
  return()
endif()
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled, but must fail with: ${expected}")
endif()
string(FIND "${out}" "${expected}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "${SOURCE} failed to compile, but the output lacks: ${expected}\n${out}")
endif()
message(STATUS "failed to compile with: ${expected}")
