#!/usr/bin/env bash
# A bounded load run of engram-server on this machine: 100k memories across 1k users (imported), then
# 16 clients for 20 s, 90% searches and 10% adds, on loopback. Prints requests/s and p50/p95/p99.
#   bench/server_load.sh [--seconds S] [--clients N]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=20 clients=16
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    *) echo "server_load.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
scripts/install-deps.sh
cmake --preset release -DENGRAM_BUILD_BENCH=ON >/dev/null
cmake --build --preset release --target engram-server engram-cli bench_server_load >/dev/null
bin=build/release
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
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
"$bin/examples/engram" --data "$work/data" import "$work/seed.jsonl" >/dev/null
"$bin/examples/engram-server" --port 0 --data "$work/data" --threads "$clients" > "$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 1 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/.*127.0.0.1:\([0-9]*\).*/\1/p' "$work/out")
"$bin/bench/bench_server_load" "$port" --clients "$clients" --seconds "$seconds"
