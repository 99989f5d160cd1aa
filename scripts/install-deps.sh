#!/usr/bin/env bash
# Installs whichever of engram's Debian build dependencies are missing. Idempotent: when everything is
# present it only checks (dpkg), and it runs `apt-get update` only when something must be installed.
#
#   scripts/install-deps.sh            core + tests + optional targets (http, sqlite)
#   scripts/install-deps.sh --bench    also what the benchmarks need (FAISS, hnswlib, WordNet data)
#   ENGRAM_WITH_BENCH=1                same as --bench
#   scripts/install-deps.sh --postgres also libpq-dev (target engram::postgres) and the postgresql server
#                                      (its binaries let ctest run tests/postgres on a throwaway cluster)
#   ENGRAM_WITH_POSTGRES=1             same as --postgres
set -euo pipefail

packages=(
  cmake ninja-build g++ pkg-config python3
  libeigen3-dev libxsimd-dev xtl-dev nlohmann-json3-dev   # core
  catch2 libbenchmark-dev                                 # tests, benchmarks
  prometheus   # tests: promtool checks /metrics (Debian ships promtool only with the server, which it enables)
  chromium     # tests: the dashboard in a headless browser (driven by puppeteer-core from npm, when node is there)
  libcpp-httplib-dev libssl-dev libsqlite3-dev            # optional targets engram::http, engram::sqlite
)
want_bench=${ENGRAM_WITH_BENCH:-0}
want_postgres=${ENGRAM_WITH_POSTGRES:-0}
for arg in "$@"; do
  case "$arg" in
    --bench) want_bench=1 ;;
    --postgres) want_postgres=1 ;;
    *) echo "install-deps.sh: unknown option '$arg' (known: --bench, --postgres)" >&2; exit 2 ;;
  esac
done
if [ "$want_bench" = 1 ]; then
  packages+=(libfaiss-dev libhnswlib-dev libopenblas-dev wordnet-base)  # wordnet-base: bench/retrieval's related words
fi
if [ "$want_postgres" = 1 ]; then
  packages+=(libpq-dev postgresql)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps.sh: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" != 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps.sh: done"
