#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# killtest.sh -- SIGKILL a program writing through the LD_PRELOAD shim, then
# check that every write it saw return is in the pool
#
# Usage: killtest.sh SHIM VEMSCTL [ROUNDS]
#   SHIM     libvems_preload.so; or "none": an ordinary directory (a
#            self-test of the writer and the verifier)
#   VEMSCTL  vemsctl (unused with SHIM=none)
#   ROUNDS   kill cycles (default 20), all on the same pool
#
# Each round starts the writer of killtest.c through the shim (it appends
# records to a few files under the prefix, reporting on fd 3, outside the
# pool, each record whose write has returned), SIGKILLs it after a random
# 20..300 ms from its first report (or, one round in four, 1..40 ms from
# its start, so that some kills land while it opens the pool), then runs
# the verifier through the shim (every reported record there and intact,
# at most a torn record past them; see killtest.c) and "vemsctl check". The
# next round continues on the same pool and files.
# Exits 0 when every round passed, 1 at the first that did not (with what
# failed, the seed and the delay), 77 when there is no C compiler, 2 on a
# usage error.
# Environment:
#   KILLTEST_BIN    the compiled killtest.c (else compiled here with cc)
#   KILLTEST_SEED   the records' seed (default: random, printed)
#   KILLTEST_KEEP=1 keep the temporary directories (their paths are printed)
#   KILLTEST_PACE_US, KILLTEST_CAP_MB  the writer's pause after each record
#                   (250 us) and the size at which a file is full (24 MiB)
#   VEMS_TEST_DIR   where the pool goes (default /dev/shm, else /tmp)
#   VEMS_SHIM_PRELOAD_FIRST  libraries preloaded before the shim, e.g. the
#                   ASan runtime when the shim was built with ASan
set -euo pipefail

usage() {
	echo "usage: killtest.sh SHIM VEMSCTL [ROUNDS]" >&2
	exit 2
}
(($# == 2 || $# == 3)) || usage
SHIM=$1 VEMSCTL=$2 ROUNDS=${3:-20}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || usage
if [[ $SHIM != none ]]; then
	[[ -f $SHIM ]] || { echo "killtest.sh: no shim at $SHIM" >&2; exit 2; }
	[[ -x $VEMSCTL ]] || { echo "killtest.sh: no vemsctl at $VEMSCTL" >&2; exit 2; }
	SHIM=$(realpath "$SHIM")
	VEMSCTL=$(realpath "$VEMSCTL")
fi
exec </dev/null
umask 022
# (made absolute before the cd below)
if [[ -n ${KILLTEST_BIN:-} ]]; then
	KILLTEST_BIN=$(realpath "$KILLTEST_BIN")
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pbase=${VEMS_TEST_DIR:-/dev/shm}
[[ -d $pbase && -w $pbase ]] || pbase=/tmp
T=$(mktemp -d "${TMPDIR:-/tmp}/shim-kill.XXXXXX")
PD=$(mktemp -d "$pbase/shim-kill.XXXXXX")
wpid=
cleanup() {
	if [[ -n $wpid ]]; then
		kill -KILL "$wpid" 2>/dev/null || true
		wait "$wpid" 2>/dev/null || true
	fi
	if [[ ${KILLTEST_KEEP:-} == 1 ]]; then
		echo "# kept $T (reports, logs) and $PD (pool)"
	else
		rm -rf "$T" "$PD"
	fi
}
trap cleanup EXIT
# whatever a program leaves in its cwd (fio: verify state) goes with it
cd "$T"

# the program: given, or compiled here as tests/shim/CMakeLists.txt would
bin=${KILLTEST_BIN:-}
if [[ -z $bin ]]; then
	command -v cc >/dev/null || {
		echo "killtest.sh: skipped: no C compiler (cc) and no KILLTEST_BIN"
		exit 77
	}
	bin=$T/killtest
	cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -o "$bin" \
		"$here/killtest.c"
fi
[[ -x $bin ]] || { echo "killtest.sh: $bin is not executable" >&2; exit 2; }

pool=$PD/pool.pmem
prefix=/vems-kill-$$-$RANDOM
[[ ! -e $prefix ]] || { echo "killtest.sh: $prefix exists" >&2; exit 2; }
if [[ $SHIM == none ]]; then
	dir=$T/plain/kt
	mkdir -p "$T/plain"
	vems=()
else
	dir=$prefix/kt
	export PMEM_IS_PMEM_FORCE=${PMEM_IS_PMEM_FORCE:-1}
	"$VEMSCTL" create "$pool" --pmem-size 256M >/dev/null
	vems=(env "LD_PRELOAD=${VEMS_SHIM_PRELOAD_FIRST:+$VEMS_SHIM_PRELOAD_FIRST:}$SHIM${LD_PRELOAD:+:$LD_PRELOAD}"
		"VEMS_POOL=$pool" "VEMS_PREFIX=$prefix" VEMS_LOCK_TIMEOUT=10
		PMEM_IS_PMEM_FORCE=1)
	if [[ -n ${VEMS_SHIM_PRELOAD_FIRST:-} ]]; then
		vems+=("ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0")
	fi
fi
seed=${KILLTEST_SEED:-$(((RANDOM << 30) ^ (RANDOM << 15) ^ RANDOM))}
echo "# killtest: shim $SHIM, $ROUNDS rounds, seed $seed (KILLTEST_SEED);" \
	"files in $dir${vems[*]:+, pool $pool}"

# fail ROUND MESSAGE FILE...: the verdict, with the files' contents
fail() {
	local r=$1 msg=$2 f
	shift 2
	echo "FAIL round $r of $ROUNDS (seed $seed, killed after $delay ms" \
		"from $from): $msg"
	for f in "$@"; do
		[[ -s $f ]] || continue
		echo "--- ${f##*/}:"
		tail -n 30 "$f"
	done
	exit 1
}

# ms N: N milliseconds for sleep(1)
ms() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }

reports=()
for ((r = 1; r <= ROUNDS; r++)); do
	rep=$T/report.$r
	reports+=("$rep")
	# mostly mid-write; one round in four early, while the writer opens
	# the pool (that takes some 25 ms) and recovers its files
	if ((RANDOM % 4 == 0)); then
		from=start delay=$((1 + RANDOM % 40))
	else
		from="first report" delay=$((20 + RANDOM % 281))
	fi

	"${vems[@]}" "$bin" write "$dir" "$seed" 3>"$rep" \
		2>"$T/writer.$r.err" &
	wpid=$!
	if [[ $from != start ]]; then
		# until the writer has opened its files (or has ended); a
		# pool held by someone else would be a lock wait of 10 s
		waited=0
		while [[ ! -s $rep ]] && kill -0 "$wpid" 2>/dev/null &&
			((waited++ < 1500)); do
			sleep 0.01
		done
	fi
	sleep "$(ms "$delay")"
	kill -KILL "$wpid" 2>/dev/null || true
	rc=0
	wait "$wpid" 2>/dev/null || rc=$? # (no "Killed" message)
	wpid=
	# 137: killed; 0: every file was full before the kill
	[[ $rc == 137 || $rc == 0 ]] ||
		fail "$r" "the writer failed (exit $rc)" "$T/writer.$r.err"
	how="killed after $delay ms from $from"
	((rc == 137)) || how="the writer ended by itself (its files full)"

	rc=0
	timeout -k 5 120 "${vems[@]}" "$bin" verify "$dir" "$seed" \
		"${reports[@]}" >"$T/verify.$r" 2>&1 || rc=$?
	((rc == 0)) || fail "$r" "the verifier failed (exit $rc)" \
		"$T/verify.$r" "$T/writer.$r.err"

	if [[ $SHIM != none ]]; then
		rc=0
		"$VEMSCTL" check "$pool" >"$T/check.$r" 2>&1 || rc=$?
		((rc == 0)) || fail "$r" "vemsctl check failed (exit $rc)" \
			"$T/check.$r" "$T/verify.$r"
	fi
	# a summary: the writer's reports this round, what the files hold
	w=$(grep -c '^w ' "$rep" || true)
	held=$(awk '{ n += $3 } END { print n + 0 }' "$T/verify.$r")
	torn=$(grep -c 'bytes not record' "$T/verify.$r" || true)
	echo "ok round $r: $how; $w records reported; the files hold" \
		"$held records, $torn with a torn tail"
done
echo "# all $ROUNDS rounds passed"
