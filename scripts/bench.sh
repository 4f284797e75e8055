#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# bench.sh -- installs the build dependencies (plus gnuplot and fio, which
# the harness uses when present), builds vems-bench and runs it.
#
# Usage: bash scripts/bench.sh [VEMS_BENCH_OPTION...]
#   e.g. bash scripts/bench.sh --quick
#        bash scripts/bench.sh --json bench.json --plot bench-charts
#   (bash scripts/bench.sh --help lists the options)
# Environment: VEMS_BUILD_DIR, CC as for scripts/test.sh.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${VEMS_BUILD_DIR:-$root/build}

bash "$root/scripts/install-deps.sh" gnuplot-nox fio

gen=()
if [[ ! -f $build/CMakeCache.txt ]] && command -v ninja >/dev/null; then
	gen=(-G Ninja)
fi
cmake -S "$root" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" --parallel "$(nproc)" --target vems-bench
"$build/bench/vems-bench" "$@"
