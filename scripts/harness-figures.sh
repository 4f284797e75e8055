#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# harness-figures.sh -- sums the crash and fault harness's figures of a
# whole run and checks them against what issue 8 asks of a CI run.
#
# Usage: bash scripts/harness-figures.sh LOG
#   LOG: the file the tests appended "<suite> <key> <value>" lines to
#        (VEMS_HARNESS_LOG, tests/testutil.h tu_figure; scripts/fuzz.sh)
# Fails if an acknowledged write was lost, an invariant broke, a planted
# bug went uncaught, or the run verified fewer than VEMS_MIN_STATES crash
# states (default 1000000) or VEMS_MIN_RANDOM random workloads (1000).
set -euo pipefail
log=${1:?usage: harness-figures.sh LOG}
[[ -f $log ]] || { echo "harness-figures: no $log" >&2; exit 1; }

awk -v min_states="${VEMS_MIN_STATES:-1000000}" \
	-v min_random="${VEMS_MIN_RANDOM:-1000}" '
{ sum[$1 " " $2] += $3; if ($1 ~ /^crashsim/) cs[$2] += $3 }
$1 == "plant" { plants[$2] = 1 }
function f(k) { return sum[k] + 0 }
function c(k) { return cs[k] + 0 }
END {
	st = c("states")
	printf "crash harness figures of this run (all builds summed)\n"
	printf "  crash points: %d seen, %d verified (pmem drains, msyncs, " \
		"block syncs)\n", c("crash_points_seen"), c("crash_points_verified")
	printf "  crash states verified: %d (exhaustive %d = %.1f%%, " \
		"sampled %d)\n", st, c("states_exhaustive"),
		st ? 100 * c("states_exhaustive") / st : 0, c("states_sampled")
	printf "    by granularity: 64 B data lines %d, 8 B metadata words " \
		"%d, 4 KiB blocks %d\n", c("states_data64"), c("states_meta8"),
		c("states_block")
	printf "    block-loss states (a held-back block dropped or torn): " \
		"%d\n", c("states_block_loss")
	printf "    by mode: pmem (flush+fence) %d, msync %d, RWF_DSYNC " \
		"block writes %d\n", f("crashsim states"),
		f("crashsim-msync states"), f("crashsim-dsync states")
	printf "    by delta reads %d, of them cross-checked by a fresh " \
		"open %d\n", c("states_delta"), c("delta_crosschecks")
	printf "  workloads: %d sweep sequences, %d random, %d threaded\n",
		c("sweep_sequences"), c("random_workloads"),
		c("threaded_workloads")
	printf "  fence-level power-fail points (test_powerfail): %d\n",
		f("powerfail crash_points")
	printf "  SIGKILL cycles: %d (%d with an operation in flight)\n",
		f("sigkill cycles"), f("sigkill inflight")
	printf "  fault combinations: %d (+ %d allocation/open positions)\n",
		f("faultinj combinations"), f("resfault call_positions")
	printf "  damaged images opened: %d over libpmemobj metadata, %d " \
		"crashed or hung\n", f("corrupt damaged_heap_images"),
		f("corrupt crashed_or_hung")
	printf "  fuzz executions: %d\n", f("fuzz executions")
	np = 0
	for (k in plants) np++
	printf "  planted bugs caught: %d of 7 (+ %d harness self-checks)\n",
		np, c("selfchecks_caught")
	lost = c("lost") + f("faultinj lost")
	printf "  acknowledged writes lost: %d, invariant violations: %d\n",
		lost, c("violations")
	bad = 0
	if (lost || c("violations") || f("corrupt crashed_or_hung")) {
		print "FAIL: data lost, an invariant broken or a crash"; bad = 1 }
	if (np < 7) { print "FAIL: a planted bug was not caught"; bad = 1 }
	if (st < min_states) {
		printf "FAIL: %d crash states, fewer than %d\n", st, min_states
		bad = 1 }
	if (c("random_workloads") < min_random) {
		printf "FAIL: %d random workloads, fewer than %d\n",
			c("random_workloads"), min_random
		bad = 1 }
	exit bad
}' "$log"
