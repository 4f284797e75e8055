#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# test.sh -- installs the build dependencies, builds libvems and runs every
# test with ctest. CI runs this same script.
#
# Usage: bash scripts/test.sh [CMAKE_OPTION...]
#   e.g. bash scripts/test.sh -DVEMS_SANITIZE=address,undefined
# Environment:
#   VEMS_BUILD_DIR  build directory (default: build/ in the source tree)
#   CC              compiler for a new build directory (default: cc)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${VEMS_BUILD_DIR:-$root/build}
jobs=$(nproc)

bash "$root/scripts/install-deps.sh"

# Ninja for a new build directory; an existing one keeps its generator.
gen=()
if [[ ! -f $build/CMakeCache.txt ]] && command -v ninja >/dev/null; then
	gen=(-G Ninja)
fi
cmake -S "$root" -B "$build" "${gen[@]}" "$@"
cmake --build "$build" --parallel "$jobs"

# Pools are emulated pmem files under /dev/shm (see tests/CMakeLists.txt).
cd "$build"
# the long sweeps (label sweep) run in CI with a bounded budget
ctest --output-on-failure --parallel "$jobs" -LE sweep
