#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# demo.sh -- installs the build dependencies, builds libvems and runs its
# demo (examples/demo.c) on emulated pmem in a temporary directory.
#
# Usage: bash scripts/demo.sh [DEMO_OPTION...]
#   e.g. bash scripts/demo.sh --pmem-size 256M --working-set 1G
#   (bash scripts/demo.sh --help lists the options)
# Environment: VEMS_BUILD_DIR, CC as for scripts/test.sh.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${VEMS_BUILD_DIR:-$root/build}

bash "$root/scripts/install-deps.sh"

gen=()
if [[ ! -f $build/CMakeCache.txt ]] && command -v ninja >/dev/null; then
	gen=(-G Ninja)
fi
cmake -S "$root" -B "$build" "${gen[@]}" >/dev/null
cmake --build "$build" --parallel "$(nproc)" --target demo

# tmpfs is the emulated pmem here; /tmp where there is no /dev/shm
base=/dev/shm
[[ -d $base && -w $base ]] || base=${TMPDIR:-/tmp}
dir=$(mktemp -d "$base/vems-demo.XXXXXX")
trap 'rm -rf "$dir"' EXIT

# Flush the emulated pmem with cache instructions, as on real pmem.
export PMEM_IS_PMEM_FORCE=${PMEM_IS_PMEM_FORCE:-1}
"$build/examples/demo" --dir "$dir" "$@"
