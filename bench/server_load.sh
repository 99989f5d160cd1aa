#!/usr/bin/env bash
# A bounded load run of engram-server on this machine: 100k memories across 1k users (imported), then
# 16 clients for 20 s, 90% searches and 10% adds, on loopback. Prints requests/s and p50/p95/p99, and the
# server's CPU time (user + system) per request: less noisy than requests/s on a shared machine, where the load
# client competes with the server for the same cores.
#   bench/server_load.sh [--seconds S] [--clients N] [--add-percent P]
#   bench/server_load.sh --scale [--seconds S] [--max-clients N]
# --scale runs the grid 1, 4, 16, 64 ... clients (up to --max-clients, default 64) x 0%, 10%, 100% adds, each on
# a fresh copy of the seeded data, and prints how searches/s and adds/s scale with clients and the add p99 in
# the 10% mix relative to adds alone at the same client count (the writer-starvation ratio).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=20 clients=16 add_percent=10 scale=0 max_clients=64
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --add-percent) add_percent=$2; shift 2 ;;
    --scale) scale=1; shift ;;
    --max-clients) max_clients=$2; shift 2 ;;
    *) echo "server_load.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
scripts/install-deps.sh
cmake --preset release -DENGRAM_BUILD_BENCH=ON >/dev/null
cmake --build --preset release --target engram-server engram-cli bench_server_load >/dev/null
bin=build/release
work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
python3 - "$work/seed.jsonl" <<'PY'
import json, sys, uuid
words = "coffee travel garden meeting python piano allergy dog budget flight recipe doctor birthday project music book".split()
with open(sys.argv[1], "w") as f:
    for i in range(100000):
        text = f"note about {words[i % 16]} {words[(i * 7) % 16]} {i % 1000}"
        f.write(json.dumps({"type": "memory", "id": str(uuid.uuid4()), "memory": text, "user_id": f"user{i % 1000}",
                            "created_at": "2024-05-01T12:00:00Z"}) + "\n")
PY
echo "seeding 100k memories across 1k users"
"$bin/examples/engram" --data "$work/seed" import "$work/seed.jsonl" >/dev/null

# CPU time (user + system, in clock ticks) process PID has used so far
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run CLIENTS ADD_PERCENT: one load run against a server over a fresh copy of the seed
run() {
  rm -rf "$work/data"
  cp -r "$work/seed" "$work/data"
  local threads=$(( $1 > 16 ? $1 : 16 ))
  "$bin/examples/engram-server" --port 0 --data "$work/data" --threads "$threads" --log-format off \
    > "$work/out" 2>"$work/err" &
  pid=$!
  for _ in $(seq 1 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
  local port
  port=$(sed -n 's/.*127.0.0.1:\([0-9]*\).*/\1/p' "$work/out")
  local ticks_before
  ticks_before=$(cpu_ticks "$pid")
  "$bin/bench/bench_server_load" "$port" --clients "$1" --seconds "$seconds" --add-percent "$2" | tee "$work/load"
  python3 - "$work/load" "$ticks_before" "$(cpu_ticks "$pid")" "$(getconf CLK_TCK)" <<'PY'
import re, sys
served = sum(int(m.group(1)) for m in re.finditer(r"^(?:search|add)\s+(\d+) requests", open(sys.argv[1]).read(), re.M))
ticks = int(sys.argv[3]) - int(sys.argv[2])
if served:
    print(f"server CPU per request: {ticks / int(sys.argv[4]) / served * 1e6:.1f} us (user + system, {served} requests)")
PY
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=""
}

if [ "$scale" = 0 ]; then
  run "$clients" "$add_percent"
  exit 0
fi

echo "engram-server scale: $(nproc) cores, ${seconds} s a run"
grid=()
for c in 1 4 16 64 256; do [ "$c" -le "$max_clients" ] && grid+=("$c"); done
for c in "${grid[@]}"; do
  for adds in 0 10 100; do
    echo "== clients=$c adds=$adds%"
    run "$c" "$adds" | tee -a "$work/runs.txt"
  done
done
python3 - "$work/runs.txt" <<'PY'
import re, sys
runs = {}
key = None
for line in open(sys.argv[1]):
    m = re.match(r"(\d+) clients, \d+ s, \d+ users, (\d+)% adds", line)
    if m:
        key = (int(m.group(1)), int(m.group(2)))
        runs[key] = {}
    m = re.match(r"(search|add)\s+(\d+) requests\s+([\d.]+) req/s\s+client p50\s+([\d.]+) ms\s+p95\s+([\d.]+) ms\s+p99\s+([\d.]+) ms", line)
    if m and key:
        runs[key][m.group(1)] = {"rps": float(m.group(3)), "p50": float(m.group(4)), "p99": float(m.group(6))}
clients = sorted({c for c, _ in runs})
print("\n| clients | adds | searches/s | adds/s | search p50/p99 ms | add p50/p99 ms |")
print("|---|---|---|---|---|---|")
for (c, a), r in sorted(runs.items()):
    s, d = r.get("search", {}), r.get("add", {})
    fmt = lambda x: f"{x['p50']:.2f} / {x['p99']:.2f}" if x and x["rps"] else "-"
    print(f"| {c} | {a}% | {s.get('rps', 0):.0f} | {d.get('rps', 0):.0f} | {fmt(s)} | {fmt(d)} |")
base_s = runs.get((clients[0], 0), {}).get("search", {}).get("rps", 0)
base_a = runs.get((clients[0], 100), {}).get("add", {}).get("rps", 0)
print(f"\n| clients | searches/s vs {clients[0]} client(s) | adds/s vs {clients[0]} client(s) | add p99, 10% mix / adds alone |")
print("|---|---|---|---|")
for c in clients:
    s = runs.get((c, 0), {}).get("search", {}).get("rps", 0)
    a = runs.get((c, 100), {}).get("add", {}).get("rps", 0)
    mix = runs.get((c, 10), {}).get("add", {}).get("p99", 0)
    alone = runs.get((c, 100), {}).get("add", {}).get("p99", 0)
    ratio = f"{mix / alone:.2f}x" if alone else "-"
    print(f"| {c} | {s / base_s if base_s else 0:.2f}x | {a / base_a if base_a else 0:.2f}x | {ratio} |")
PY
