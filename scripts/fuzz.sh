#!/usr/bin/env bash
# Fuzzes the filter JSON parser with libFuzzer for a fixed time, starting from tests/fuzz/corpus.
# Needs clang (libFuzzer); without it, prints "skipped" and exits 0.
#
#   scripts/fuzz.sh [seconds]     default 20 seconds
#   FUZZ_CXX=clang++-15 ...       choose the compiler
# New inputs found go to build/fuzz/corpus (the checked-in seeds are only read). A crash exits non-zero and
# leaves the input in build/fuzz/ (crash-*), to be added to tests/fuzz/corpus once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}

cxx=${FUZZ_CXX:-}
if [ -z "$cxx" ]; then
  for c in clang++ clang++-18 clang++-17 clang++-16 clang++-15 clang++-14; do
    if command -v "$c" >/dev/null 2>&1; then cxx=$c; break; fi
  done
fi
if [ -z "$cxx" ]; then
  echo "fuzz: skipped (no clang++ found; libFuzzer needs clang)"
  exit 0
fi

out=build/fuzz
mkdir -p "$out/corpus"
includes=(-I include)
for d in /usr/include/eigen3 /usr/local/include/eigen3; do [ -d "$d" ] && includes+=(-isystem "$d"); done

echo "fuzz: building with $cxx"
if ! "$cxx" -std=c++20 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
     -fno-sanitize-recover=undefined "${includes[@]}" \
     tests/fuzz/filter_parse_fuzz.cpp -o "$out/filter_parse_fuzz" 2>"$out/build.log"; then
  if grep -q "libclang_rt.fuzzer\|fsanitize=fuzzer" "$out/build.log"; then
    echo "fuzz: skipped ($cxx cannot link libFuzzer; see $out/build.log)"
    exit 0
  fi
  cat "$out/build.log" >&2
  exit 1
fi

echo "fuzz: running filter_parse_fuzz for ${seconds}s"
cd "$out"
./filter_parse_fuzz -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -dict=../../tests/fuzz/filter.dict -print_final_stats=1 corpus ../../tests/fuzz/corpus 2>&1 | tail -25
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
  echo "fuzz: FAILED (exit $status); crashing input in $out" >&2
  exit "$status"
fi
echo "fuzz: no crash in ${seconds}s"
