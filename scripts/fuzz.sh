#!/usr/bin/env bash
# Fuzzes with libFuzzer for a fixed time per target, each from its checked-in seeds:
#   filter_parse_fuzz   the filter JSON parser (seeds tests/fuzz/corpus, dictionary filter.dict)
#   request_parse_fuzz  the apps' request layer and service: bodies, query strings, path ids, /mcp messages
#                       (seeds tests/fuzz/request_corpus, dictionary request.dict)
#   file_log_fuzz       file_store's reader: logs and snapshots of real, changed, cut and torn entries
#                       (seeds tests/fuzz/log_corpus, no dictionary: the entries come from a real store)
# Needs clang (libFuzzer); without it, prints "skipped" and exits 0.
#
#   scripts/fuzz.sh [seconds]     seconds per target, default 20
#   FUZZ_CXX=clang++-15 ...       choose the compiler
# New inputs found go to build/fuzz/<target>.corpus (the checked-in seeds are only read). A crash exits non-zero
# and leaves the input in build/fuzz/ (crash-*), to be added to the target's seeds once fixed.
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
mkdir -p "$out"
includes=(-I include)
for d in /usr/include/eigen3 /usr/local/include/eigen3; do [ -d "$d" ] && includes+=(-isystem "$d"); done

# build TARGET: compiles tests/fuzz/TARGET.cpp (0 built, 3 this clang cannot link libFuzzer, else failed).
build() {
  local target=$1
  "$cxx" -std=c++20 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined "${includes[@]}" \
    "tests/fuzz/$target.cpp" -o "$out/$target" 2>"$out/$target.build.log" && return 0
  grep -q "libclang_rt.fuzzer\|fsanitize=fuzzer" "$out/$target.build.log" && return 3
  return 1
}

# fuzz TARGET SEEDS [DICT]: runs the built TARGET for $seconds.
fuzz() {
  local target=$1 seeds=$2 dict=${3:-}
  local dict_flag=()
  [ -n "$dict" ] && dict_flag=(-dict="../../tests/fuzz/$dict")
  echo "fuzz: running $target for ${seconds}s"
  mkdir -p "$out/$target.corpus"
  local status=0
  (cd "$out" && "./$target" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
     "${dict_flag[@]}" -print_final_stats=1 "$target.corpus" "../../$seeds" >"$target.log" 2>&1) ||
    status=$?
  if [ "$status" -ne 0 ]; then
    tail -60 "$out/$target.log" >&2
    echo "fuzz: $target FAILED (exit $status); crashing input in $out" >&2
    return "$status"
  fi
  # the inputs tried and the coverage reached (edges "cov", features "ft")
  grep -E "DONE|stat::number_of_executed_units|stat::new_units_added" "$out/$target.log" || true
  echo "fuzz: $target: no crash in ${seconds}s"
}

# The three builds at once (each is one long compile), then the runs one after the other.
targets=(filter_parse_fuzz request_parse_fuzz file_log_fuzz)
echo "fuzz: building ${targets[*]} with $cxx"
pids=()
for t in "${targets[@]}"; do build "$t" & pids+=($!); done
for i in "${!targets[@]}"; do
  status=0
  wait "${pids[$i]}" || status=$?
  if [ "$status" -eq 3 ]; then
    echo "fuzz: skipped ($cxx cannot link libFuzzer; see $out/${targets[$i]}.build.log)"
    exit 0
  elif [ "$status" -ne 0 ]; then
    cat "$out/${targets[$i]}.build.log" >&2
    echo "fuzz: building ${targets[$i]} FAILED" >&2
    exit 1
  fi
done

fuzz filter_parse_fuzz tests/fuzz/corpus filter.dict
fuzz request_parse_fuzz tests/fuzz/request_corpus request.dict
fuzz file_log_fuzz tests/fuzz/log_corpus
