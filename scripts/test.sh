#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds the dev tree (the apps, the README example,
# header self-containment, docs programs, compile-fail cases, the generated single header's freshness, version
# agreement, the consumer builds and the Debian package), fuzzes, runs the core suite against the single header,
# the concurrency tests under ThreadSanitizer, then every test program under AddressSanitizer + UBSan.
# The last thing printed is ctest's summary of the sanitizer run.
#
#   scripts/test.sh                 everything
#   ENGRAM_SKIP_SANITIZERS=1 ...    only the dev build, with every test program built and run there (quick local loop)
#   ENGRAM_WITH_POSTGRES=0 ...      do not install PostgreSQL (its tests then report themselves skipped)
#
# The suite asks install-deps.sh for PostgreSQL (libpq-dev and the server binaries) so that a clean machine
# runs tests/postgres and the two-node server test on a throwaway cluster too.
set -euo pipefail
cd "$(dirname "$0")/.."
ENGRAM_WITH_POSTGRES=${ENGRAM_WITH_POSTGRES:-1} scripts/install-deps.sh

jobs=$(nproc)
step() { printf '\n==== %s (%s)\n' "$*" "$(date +%T)"; }

# Every test program is built and run under ASan+UBSan below (the concurrency ones under TSan too, the core
# suite against the single header), so with those steps to come the first tree is the `checks` preset: the dev
# build without the test programs (the apps, header self-containment, docs programs, compile-fail, consumers,
# the Debian package). Alone (ENGRAM_SKIP_SANITIZERS=1) it is the dev tree with every program.
if [ "${ENGRAM_SKIP_SANITIZERS:-0}" = 1 ]; then first=dev; else first=checks; fi

step "$first build + tests"
cmake --preset "$first" >/dev/null
cmake --build --preset "$first" -j "$jobs"
ctest --preset "$first" -j "$jobs"

step "fuzzing: filter parser, request layer, file_store reader (libFuzzer, when clang is present)"
scripts/fuzz.sh 20

if [ "${ENGRAM_SKIP_SANITIZERS:-0}" = 1 ]; then
  exit 0
fi

step "the core suite against single_include/engram/engram.hpp"
cmake --preset single-header >/dev/null
cmake --build --preset single-header -j "$jobs"
ctest --preset single-header -j "$jobs"

step "ThreadSanitizer: concurrency tests"
cmake --preset tsan >/dev/null
# the programs of the concurrency tests (grouped as test_<folder>_concurrency_<n>; test_concurrency_* without groups)
tsan_targets=$(ninja -C build/tsan -t targets all | grep -o '^test_[a-z_0-9]*concurrency[a-z_0-9]*' | sort -u | tr '\n' ' ')
# shellcheck disable=SC2086
cmake --build --preset tsan -j "$jobs" --target $tsan_targets
ctest --preset tsan -L concurrency -j "$jobs"

step "AddressSanitizer + UndefinedBehaviorSanitizer: whole suite"
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$jobs"
ctest --preset asan -j "$jobs"
