#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# fuzz.sh -- builds the libFuzzer targets (tests/fuzz) with clang, ASan and
# UBSan, and runs each for a bounded time on a scratch copy of its seed
# corpus (the repository is never written). Fails if any target finds a
# crash, a timeout (hang), a leak or an out-of-memory; the reproducer's path
# is printed. Reproducers worth keeping go to tests/fuzz/regress/<target>/.
#
# Usage: bash scripts/fuzz.sh [SECONDS-PER-TARGET] [TARGET...]
#   default 60 s; targets default to all (fuzz_pool_open fuzz_names)
# Environment:
#   VEMS_FUZZ_BUILD_DIR  build directory (default: build-fuzz/ in the tree)
#   VEMS_FUZZ_WORK       where corpora, artifacts and pools go (default: a
#                        new directory under /dev/shm, removed at the end
#                        unless something was found)
#   VEMS_FUZZ_ARGS       extra libFuzzer flags (e.g. -jobs=2 -workers=2)
#   VEMS_HARNESS_LOG     if set, each target's executions are appended to
#                        it (scripts/harness-figures.sh sums a CI run)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
secs=${1:-60}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(fuzz_pool_open fuzz_names)
build=${VEMS_FUZZ_BUILD_DIR:-$root/build-fuzz}

# clang and libFuzzer's runtime (libclang-rt-14-dev on Debian 12)
bash "$root/scripts/install-deps.sh" clang libclang-rt-14-dev
if ! command -v clang >/dev/null; then
	echo "fuzz: clang is not installed (run as root to install it)" >&2
	exit 1
fi

gen=()
if [[ ! -f $build/CMakeCache.txt ]] && command -v ninja >/dev/null; then
	gen=(-G Ninja)
fi
CC=clang cmake -S "$root" -B "$build" "${gen[@]}" -DVEMS_FUZZ=ON \
	-DVEMS_WERROR=ON -DVEMS_BUILD_EXAMPLES=OFF -DVEMS_BUILD_BENCH=OFF \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --parallel 2 --target "${targets[@]}"

top=/dev/shm
[[ -w $top ]] || top=${TMPDIR:-/tmp}
work=${VEMS_FUZZ_WORK:-$(mktemp -d "$top/vems-fuzz-run.XXXXXX")}
mkdir -p "$work"
found=0
cleanup() {
	if ((found == 0)) && [[ -z ${VEMS_FUZZ_WORK:-} ]]; then
		rm -rf "$work"
	fi
}
trap cleanup EXIT

export PMEM_IS_PMEM_FORCE=1
# a report is a failure; leaks are checked after every input
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

for t in "${targets[@]}"; do
	corpus=$work/$t/corpus
	art=$work/$t/artifacts
	mkdir -p "$corpus" "$art" "$work/$t/pools"
	cp "$root/tests/fuzz/corpus/$t"/* "$corpus"/
	log=$work/$t/log
	start=$SECONDS
	rc=0
	# -timeout: one input running longer than 20 s is a hang
	# -len_control=0: long patch lists from the start
	# shellcheck disable=SC2086 # VEMS_FUZZ_ARGS is a list of flags
	VEMS_FUZZ_DIR=$work/$t/pools "$build/tests/fuzz/$t" \
		-max_total_time="$secs" -timeout=20 -rss_limit_mb=4096 \
		-max_len=16384 -len_control=0 -print_final_stats=1 \
		-artifact_prefix="$art/" ${VEMS_FUZZ_ARGS:-} "$corpus" \
		>"$log" 2>&1 || rc=$?
	took=$((SECONDS - start))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" |
		tail -1)
	# slow-unit-* files only report slow inputs (a damaged heap that
	# spins until open's validation deadline): not findings
	mapfile -t repro < <(find "$art" -type f \( -name 'crash-*' -o \
		-name 'timeout-*' -o -name 'leak-*' -o -name 'oom-*' \) | sort)
	if ((rc != 0 || ${#repro[@]} != 0)); then
		found=1
		echo "fuzz: $t ${execs:-?} execs in $took s, FOUND (exit $rc)"
		grep -E '^==[0-9]+==ERROR|^SUMMARY|ERROR: libFuzzer|invariant' \
			"$log" | head -5 | sed 's/^/  /'
		for r in "${repro[@]}"; do
			echo "  reproducer: $r"
		done
		echo "  log: $log"
		echo "  replay: PMEM_IS_PMEM_FORCE=1 $build/tests/fuzz/$t <file>"
	else
		echo "fuzz: $t ${execs:-?} execs in $took s, 0 crashes" \
			"($(find "$corpus" -type f | wc -l) corpus inputs)"
		# the harness figures of a CI run (tests/testutil.h, tu_figure)
		if [[ -n ${VEMS_HARNESS_LOG:-} ]]; then
			echo "fuzz executions ${execs:-0}" >>"$VEMS_HARNESS_LOG"
		fi
	fi
	rm -rf "$work/$t/pools"
done
if ((found)); then
	echo "fuzz: findings kept in $work"
	exit 1
fi
