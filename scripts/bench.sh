#!/usr/bin/env bash
# Installs what the benchmarks need, builds the `bench` preset (Release, -march=native) and runs engram's
# benchmarks, printing their tables. Single-threaded figures first, then what a second thread gives.
#
#   scripts/bench.sh            everything (the N = 1M cases take a few minutes on 2 cores)
#   scripts/bench.sh --quick    N = 100k only, fewer repetitions (IVF: nlist 256, 100 queries)
#
# Besides the index kernels, it times the memory's own paths: basic_memory::search filtered and unfiltered
# (bench_filter) and basic_memory::add against plain SQLite inserts (bench_store).
#
# Every figure is measured against an anchor taken in the same process (the read bandwidth for "x floor",
# FAISS IndexFlatIP for "engram/FAISS"): compare ratios, not absolute times across runs.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    *) echo "bench.sh: unknown option '$arg' (known: --quick)" >&2; exit 2 ;;
  esac
done

scripts/install-deps.sh --bench
cmake --preset bench >/dev/null
cmake --build --preset bench -j"$(nproc)" >/dev/null
bin=build/bench/bench
export OMP_WAIT_POLICY=PASSIVE

echo "== kernels: GB/s of vectors read (rows resident in L2) =="
"$bin/bench_kernels" --benchmark_min_time=0.2

echo
echo "== flat_index: d=384, k=10; x_floor = time / (bytes scanned / read bandwidth measured in this run) =="
if [ "$quick" = 1 ]; then
  "$bin/bench_flat" --benchmark_filter='read_bandwidth|single_query/100000|batch_queries/100000'
else
  "$bin/bench_flat"
fi

echo
echo "== basic_memory::search, top 10 in one scope, d=128: filtered (1/10/50%; auto, pre, post) next to unfiltered =="
if [ "$quick" = 1 ]; then
  ENGRAM_BENCH_RECORDS=100000 "$bin/bench_filter" --benchmark_filter='search_'
else
  "$bin/bench_filter" --benchmark_filter='search_'
fi

echo
echo "== basic_memory::add (file_store group commit) vs plain SQLite inserts, interleaved rounds =="
echo "   ratio_memory = memory adds/s / SQLite inserts/s in the same rounds"
"$bin/bench_store" --benchmark_filter='group_vs_sqlite'

if [ ! -x "$bin/bench_compare_faiss" ]; then
  echo "bench.sh: FAISS not found: skipping the comparison" >&2
  exit 0
fi
cmp_args=()
[ "$quick" = 1 ] && cmp_args+=(--quick)

echo
echo "== engram vs FAISS IndexFlatIP, one thread (BLAS as configured: OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}) =="
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$bin/bench_compare_faiss" "${cmp_args[@]}" 2>/dev/null | sed -n '/=== summary ===/,$p'

if grep -q avx512f /proc/cpuinfo; then
  echo
  echo "== batch again, FAISS's OpenBLAS forced to its AVX-512 kernels (OPENBLAS_CORETYPE=SKYLAKEX), one thread =="
  OPENBLAS_CORETYPE=SKYLAKEX OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
    "$bin/bench_compare_faiss" "${cmp_args[@]}" --cases batch 2>/dev/null | sed -n '/=== summary ===/,$p'
fi

echo
echo "== two threads (FAISS: OpenMP + BLAS threads; engram: batch split over 2 threads, single query unchanged) =="
OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 "$bin/bench_compare_faiss" "${cmp_args[@]}" --cases single,batch 2>/dev/null |
  sed -n '/=== summary ===/,$p'

echo
echo "== engram ivf_index vs FAISS IndexIVFFlat (inner product), clustered data with noise, one thread; --quick: N=100k, nlist=256 =="
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$bin/bench_compare_faiss_ivf" "${cmp_args[@]}" 2>/dev/null |
  sed -n '/=== summary ===/,$p'
echo
echo "== IVF training on $(nproc) threads (FAISS: OpenMP + OpenBLAS threads; engram: a thread_pool_executor) =="
"$bin/bench_compare_faiss_ivf" "${cmp_args[@]}" --threads "$(nproc)" --train-only 2>/dev/null | sed -n '/=== summary ===/,$p'
