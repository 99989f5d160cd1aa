#!/usr/bin/env bash
# Reports how long one translation unit including <engram/engram.hpp> takes to compile at -O0 (median of 3),
# next to the same TU including only the dependencies engram pulls in, so the figure means the same on any box.
set -euo pipefail
cd "$(dirname "$0")/.."
cxx=${CXX:-c++}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#include <engram/engram.hpp>\nint main() { engram::memory m; return int(m.size()); }\n' > "$tmp/engram.cpp"
printf '#include <nlohmann/json.hpp>\n#include <xsimd/xsimd.hpp>\n#include <Eigen/Core>\n#include <shared_mutex>\n#include <chrono>\nint main() { return 0; }\n' > "$tmp/deps.cpp"
flags=(-std=c++20 -O0 -I include $(pkg-config --cflags eigen3 xsimd nlohmann_json) -c)
median() {
  local src=$1 t=()
  for _ in 1 2 3; do
    local s=$(date +%s%N)
    "$cxx" "${flags[@]}" "$src" -o "$tmp/x.o"
    t+=("$(( ($(date +%s%N) - s) / 1000000 ))")
  done
  printf '%s\n' "${t[@]}" | sort -n | sed -n 2p
}
e=$(median "$tmp/engram.cpp")
d=$(median "$tmp/deps.cpp")
awk -v e="$e" -v d="$d" 'BEGIN { printf "compile time at -O0 (median of 3): <engram/engram.hpp> %.2f s; its dependencies alone %.2f s; engram adds %.2f s\n", e/1000, d/1000, (e-d)/1000 }'
