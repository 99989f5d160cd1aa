#!/usr/bin/env bash
# Installs what is missing, builds, and runs the quickstart demo (offline: no network, no keys).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target quickstart
echo
./build/release/examples/quickstart
