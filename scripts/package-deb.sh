#!/usr/bin/env bash
# Builds the Debian package engram_<version>_<arch>.deb: engram, engram-server, engram-mcp, the headers and
# the CMake config, the systemd unit engram.service and its settings in /etc/engram (packaging/debian/).
#
#   scripts/package-deb.sh                      configures build/release (preset release), builds the apps
#   scripts/package-deb.sh --build-dir DIR      packages from an already configured build tree instead
#                                               (only the three apps are built there; their tests are not)
#   scripts/package-deb.sh --output DIR         where the .deb goes (default: the build tree)
#
# The install tree is staged with `cmake --install` (binaries stripped) and CPack's DEB generator packs it,
# with the metadata of packaging/debian/package.cmake. Prints the path of the package on its last line.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=""
output=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build=${2:?--build-dir needs a directory}; shift 2 ;;
    --output) output=${2:?--output needs a directory}; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "package-deb.sh: unknown option '$1' (known: --build-dir DIR, --output DIR)" >&2; exit 2 ;;
  esac
done
for tool in cmake cpack dpkg-deb dpkg-shlibdeps; do
  command -v "$tool" >/dev/null || { echo "package-deb.sh: $tool not found (Debian packages cmake, dpkg-dev)" >&2; exit 2; }
done

if [ -z "$build" ]; then
  build=$root/build/release
  (cd "$root" && cmake --preset release >/dev/null)
fi
build=$(cd "$build" && pwd)
[ -f "$build/CPackConfig.cmake" ] || {
  echo "package-deb.sh: $build has no CPackConfig.cmake: configure it from $root first (cmake --preset release)" >&2
  exit 2
}
output=${output:-$build}
mkdir -p "$output"

jobs=${ENGRAM_JOBS:-2}
cmake --build "$build" --target engram-cli engram-mcp engram-server -j "$jobs" >/dev/null || {
  echo "package-deb.sh: building the apps failed in $build (engram-server needs cpp-httplib: scripts/install-deps.sh)" >&2
  exit 1
}

stage=$(mktemp -d "${TMPDIR:-/tmp}/engram-deb-XXXXXX")
trap 'rm -rf "$stage"' EXIT
DESTDIR=$stage/root cmake --install "$build" --prefix /usr --strip >/dev/null
DESTDIR=$stage/root cmake --install "$build" --prefix /usr --component service >/dev/null

# Pack the staged tree as it is (paths from /), rather than letting CPack install the project again, which
# would first build every target of the build tree, tests included.
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$stage/out" \
  -D CPACK_INSTALL_CMAKE_PROJECTS= \
  -D "CPACK_INSTALLED_DIRECTORIES=$stage/root;/" \
  -D CPACK_PACKAGING_INSTALL_PREFIX=/ >"$stage/cpack.log" 2>&1 || {
  cat "$stage/cpack.log" >&2
  echo "package-deb.sh: cpack failed" >&2
  exit 1
}
deb=$(find "$stage/out" -maxdepth 1 -name 'engram_*.deb' | head -1)
[ -n "$deb" ] || { cat "$stage/cpack.log" >&2; echo "package-deb.sh: cpack made no engram_*.deb" >&2; exit 1; }
mv "$deb" "$output/"
echo "$output/$(basename "$deb")"
