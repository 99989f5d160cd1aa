#!/usr/bin/env bash
# Builds and runs one consumer of engram, the way a user would consume it.
#   run.sh find_package     SOURCE_DIR BUILD_DIR   install BUILD_DIR into a temporary prefix, then find_package(engram)
#   run.sh add_subdirectory SOURCE_DIR BUILD_DIR   add_subdirectory(SOURCE_DIR)
#   run.sh single_header    SOURCE_DIR BUILD_DIR   g++ with only -I single_include and the dependencies' paths
#   run.sh pkg_config       SOURCE_DIR BUILD_DIR   install, then compile with `pkg-config --cflags engram`
set -euo pipefail
kind=$1 src=$2 build=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
consumers="$src/tests/consumers"
cxx=${CXX:-c++}
case "$kind" in
  find_package)
    cmake --install "$build" --prefix "$work/prefix" >/dev/null
    cmake -S "$consumers/find_package" -B "$work/b" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
    cmake --build "$work/b" >/dev/null
    "$work/b/consumer"
    ;;
  add_subdirectory)
    cmake -S "$consumers/add_subdirectory" -B "$work/b" -G Ninja -DENGRAM_SOURCE_DIR="$src" >/dev/null
    cmake --build "$work/b" >/dev/null
    "$work/b/consumer"
    ;;
  single_header)
    # -I single_include only: the program's <engram/engram.hpp> resolves to the generated single header.
    "$cxx" -std=c++20 -Wall -Wextra -Wpedantic -Werror -I "$src/single_include" \
      $(pkg-config --cflags eigen3 xsimd nlohmann_json) "$consumers/program.cpp" -o "$work/consumer" -pthread
    "$work/consumer"
    ;;
  pkg_config)
    cmake --install "$build" --prefix "$work/prefix" >/dev/null
    export PKG_CONFIG_PATH="$work/prefix/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
    "$cxx" $(pkg-config --cflags engram) "$consumers/program.cpp" -o "$work/consumer" $(pkg-config --libs engram)
    "$work/consumer"
    ;;
  *) echo "run.sh: unknown consumer kind '$kind'" >&2; exit 2 ;;
esac
