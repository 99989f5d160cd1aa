#!/usr/bin/env bash
# The Debian package, end to end: scripts/package-deb.sh builds it from the build tree BUILD_DIR, `dpkg -x`
# extracts it into a throwaway root, and the installed engram-server runs against the installed default config
# the way engram.service starts it (on a free loopback port): /health answers and a memory is kept in the
# state directory. Also checks the files, the unit's hardening, the conffiles, and that find_package(engram)
# finds the installed CMake config.
#
#   test_deb.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
for tool in dpkg-deb dpkg-shlibdeps cpack curl; do
  command -v "$tool" >/dev/null || { echo "SKIPPED: $tool not found (Debian packages dpkg-dev, cmake, curl)"; exit 77; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/engram-deb-test-XXXXXX")
server_pid=""
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

deb=$("$src/scripts/package-deb.sh" --build-dir "$build" --output "$work" | tail -1)
version=$(sed -n 's/^project(engram VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
[ "$(basename "$deb")" = "engram_${version}_$(dpkg --print-architecture).deb" ] || fail "package named $(basename "$deb")"
ok "built $(basename "$deb")"

[ "$(dpkg-deb -f "$deb" Package)" = engram ] || fail "package name"
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "package version"
dpkg-deb -f "$deb" Depends | grep -q adduser || fail "Depends lacks adduser: $(dpkg-deb -f "$deb" Depends)"
dpkg-deb -f "$deb" Depends | grep -q libstdc++ || fail "Depends lacks the shared libraries (dpkg-shlibdeps)"
# (read whole before grep -q: with pipefail, grep leaving early would fail the pipeline by SIGPIPE to tar)
conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)
control_files=$(dpkg-deb --ctrl-tarfile "$deb" | tar -t)
grep -qx /etc/engram/engram.env <<<"$conffiles" || fail "engram.env is not a conffile"
grep -q '^./postinst$' <<<"$control_files" || fail "no postinst: $control_files"
ok "control: name, version, dependencies, conffiles, maintainer scripts"

root=$work/root
dpkg -x "$deb" "$root"
for f in usr/bin/engram usr/bin/engram-server usr/bin/engram-mcp; do
  [ -x "$root/$f" ] || fail "$f missing or not executable"
done
for f in usr/include/engram/engram.hpp usr/include/engram/memory.hpp usr/share/cmake/engram/engramConfig.cmake \
         usr/share/cmake/engram/engramConfigVersion.cmake usr/share/pkgconfig/engram.pc \
         lib/systemd/system/engram.service etc/engram/engram.env usr/share/doc/engram/operations.md; do
  [ -f "$root/$f" ] || fail "$f missing"
done
ok "files: the apps, the headers, the CMake config, the unit, the config"

unit=$root/lib/systemd/system/engram.service
for line in User=engram StateDirectory=engram EnvironmentFile=/etc/engram/engram.env NoNewPrivileges=yes \
            ProtectSystem=strict ProtectHome=yes PrivateTmp=yes WantedBy=multi-user.target; do
  grep -qx "$line" "$unit" || fail "engram.service lacks $line"
done
if command -v systemd-analyze >/dev/null; then
  # Syntax problems (an unknown key, a bad value) are reported as "FILE:LINE: ..."; the binary's absence from
  # the host (it is in the throwaway root) is not one of them.
  findings=$(systemd-analyze verify "$unit" 2>&1 | grep -F "$unit:" || true)
  [ -z "$findings" ] || fail "systemd-analyze verify: $findings"
  ok "systemd-analyze verify accepts engram.service"
fi
ok "unit: own user, state directory, hardening"

"$root/usr/bin/engram" --help >/dev/null 2>&1 || [ $? -eq 2 ] || fail "installed engram does not run"
"$root/usr/bin/engram-mcp" --help >/dev/null 2>&1 || [ $? -eq 2 ] || fail "installed engram-mcp does not run"

# engram-server as engram.service starts it: the config's variables, the unit's ExecStart and Environment=,
# the binary and the state directory inside the throwaway root, port 0 (a free one) instead of 8888.
set -a
# shellcheck disable=SC1091
. "$root/etc/engram/engram.env"
set +a
[ "$ENGRAM_HOST" = 127.0.0.1 ] && [ "$ENGRAM_PORT" = 8888 ] || fail "default config listens on $ENGRAM_HOST:$ENGRAM_PORT"
ENGRAM_PORT=0
ENGRAM_DIR=$(sed -n 's/^Environment=ENGRAM_DIR=//p' "$unit")
[ "$ENGRAM_DIR" = /var/lib/engram ] || fail "the unit keeps memories in '$ENGRAM_DIR'"
export ENGRAM_DIR=$root$ENGRAM_DIR
mkdir -p "$ENGRAM_DIR"
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
eval "set -- ${exec_start/#\/usr\/bin\//$root/usr/bin/}"
"$@" > "$work/server.out" 2> "$work/server.err" &
server_pid=$!
for _ in $(seq 200); do grep -q "listening on" "$work/server.out" 2>/dev/null && break; sleep 0.05; done
base=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/server.out")
[ -n "$base" ] || fail "the installed engram-server did not start: $(cat "$work/server.err")"
health=$(curl -sf "$base/health") || fail "/health did not answer"
echo "$health" | grep -q '"status":"ok"' || fail "/health answered $health"
curl -sf -X POST "$base/memories" -H 'Content-Type: application/json' \
  -d '{"messages": "Installed from the Debian package", "user_id": "ops"}' >/dev/null || fail "add failed"
kill "$server_pid"; wait "$server_pid" || fail "engram-server did not stop cleanly on SIGTERM"
server_pid=""
[ -n "$(ls -A "$ENGRAM_DIR")" ] || fail "nothing written to the state directory $ENGRAM_DIR"
ok "the installed engram-server runs on its default config: /health answers, memories kept in the state directory"

mkdir -p "$work/consumer"
cat > "$work/consumer/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.21)
project(consumer LANGUAGES CXX)
find_package(engram REQUIRED)
if(NOT TARGET engram::engram)
  message(FATAL_ERROR "engram::engram missing")
endif()
message(STATUS "engram ${engram_VERSION} from ${engram_DIR}")
CMAKE
out=$(cmake -S "$work/consumer" -B "$work/consumer/b" -DCMAKE_PREFIX_PATH="$root/usr" 2>&1) || fail "find_package: $out"
echo "$out" | grep -q "engram $version from $root/usr/share/cmake/engram" || fail "find_package found another engram: $out"
ok "find_package(engram) finds the installed CMake config"
