#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# unit.sh -- the shim's own tests: shim_unit (POSIX semantics under the
# prefix, CMocka) run through the shim, then the shim's environment and its
# failures as a user meets them: a pool held by another process
# (VEMS_LOCK_TIMEOUT), a missing pool, a bad VEMS_PREFIX, VEMS_SHIM_DEBUG
# and VEMS_SHIM_STATS.
#
# Usage: unit.sh SHIM VEMSCTL SHIM_UNIT HOLDPOOL
set -euo pipefail
(($# == 4)) || { echo "usage: unit.sh SHIM VEMSCTL SHIM_UNIT HOLDPOOL" >&2; exit 2; }
shim=$1 vemsctl=$2 unit=$3 holdpool=$4
dir=${VEMS_TEST_DIR:-/dev/shm}
work=$(mktemp -d "$dir/shim-unit.XXXXXX")
trap 'rm -rf "$work"' EXIT
pool=$work/pool
prefix=/vems-unit-$$
"$vemsctl" create "$pool" --pmem-size 64M >/dev/null

export PMEM_IS_PMEM_FORCE=1
preload=${VEMS_SHIM_PRELOAD_FIRST:+$VEMS_SHIM_PRELOAD_FIRST:}$shim
shim_run() {
	env LD_PRELOAD="$preload" VEMS_POOL="$pool" VEMS_PREFIX="$prefix" \
		VEMS_LOCK_TIMEOUT="${LOCK_TIMEOUT:-10}" "$@"
}
failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

echo "== shim_unit"
if ! SHIM_UNIT_DIR=u shim_run "$unit"; then
	fail "shim_unit"
fi
"$vemsctl" check "$pool" >/dev/null || fail "vemsctl check after shim_unit"

echo "== the pool held by another process"
exec {hold_in}> >(exec "$holdpool" "$pool" >"$work/hold.out")
for _ in $(seq 100); do
	grep -q ready "$work/hold.out" 2>/dev/null && break
	sleep 0.1
done
holder=$(awk '/ready/ {print $2}' "$work/hold.out")
[[ -n $holder ]] || fail "holdpool did not start"
start=$SECONDS
if LOCK_TIMEOUT=1 shim_run cat "$prefix/u/of/a" >"$work/out" 2>"$work/err"; then
	fail "cat succeeded while another process held the pool"
fi
grep -q "Device or resource busy" "$work/err" ||
	fail "no EBUSY: $(cat "$work/err")"
grep -q "process $holder" "$work/err" ||
	fail "the message does not name the holder $holder: $(cat "$work/err")"
((SECONDS - start < 30)) || fail "the wait did not end at VEMS_LOCK_TIMEOUT"
# the holder lets go: a waiting opener gets the pool
shim_run sh -c 'cat "$0"' "$prefix/u/of/a" >"$work/out" 2>"$work/err" \
	{hold_in}>&- &
waiter=$!
sleep 0.3
exec {hold_in}>&-
wait "$waiter" || fail "the waiter failed after the holder closed: $(cat "$work/err")"
[[ $(cat "$work/out") == 12345 ]] || fail "the waiter read '$(cat "$work/out")'"

echo "== POSIX locks between processes (SQLite's)"
# A holds an exclusive transaction open and waits (it holds the pool only
# while in a call, so B gets it); B must find the database locked
if command -v sqlite3 >/dev/null && python3 -c 'import sqlite3' 2>/dev/null; then
	shim_run sqlite3 "$prefix/u/locks.db" 'CREATE TABLE t(a);' ||
		fail "sqlite3 create"
	exec {a_in}> >(exec env LD_PRELOAD="$preload" VEMS_POOL="$pool" \
		VEMS_PREFIX="$prefix" VEMS_LOCK_TIMEOUT=10 python3 -c '
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
c.execute("INSERT INTO t VALUES(1)")
print("locked", flush=True)
sys.stdin.read()
c.execute("COMMIT")
' "$prefix/u/locks.db" >"$work/a.out")
	for _ in $(seq 100); do
		grep -q locked "$work/a.out" 2>/dev/null && break
		sleep 0.1
	done
	grep -q locked "$work/a.out" || fail "the lock holder did not start"
	if shim_run sqlite3 -cmd '.timeout 0' "$prefix/u/locks.db" \
		'INSERT INTO t VALUES(2);' {a_in}>&- 2>"$work/err"; then
		fail "a second process wrote under another's exclusive lock"
	fi
	grep -q "database is locked" "$work/err" ||
		fail "not 'database is locked': $(cat "$work/err")"
	exec {a_in}>&-
	sleep 0.5
	n=$(shim_run sqlite3 "$prefix/u/locks.db" 'SELECT count(*) FROM t;' \
		2>&1) || true
	[[ $n == 1 ]] || fail "after the holder committed: '$n' rows, not 1"
else
	echo "skip: no sqlite3 or python3 sqlite3 module"
fi

echo "== errors of the environment"
if env LD_PRELOAD="$preload" VEMS_POOL="$work/none" VEMS_PREFIX="$prefix" \
	cat "$prefix/x" 2>"$work/err"; then
	fail "cat of a file in a missing pool succeeded"
fi
grep -q "cannot open pool $work/none" "$work/err" ||
	fail "missing pool: $(cat "$work/err")"
env LD_PRELOAD="$preload" VEMS_POOL="$pool" VEMS_PREFIX=relative \
	true 2>"$work/err"
grep -q "VEMS_PREFIX=relative: must be an absolute path" "$work/err" ||
	fail "relative prefix: $(cat "$work/err")"
env LD_PRELOAD="$preload" VEMS_POOL="$pool" true 2>"$work/err"
grep -q "VEMS_POOL and VEMS_PREFIX must both be set" "$work/err" ||
	fail "prefix missing: $(cat "$work/err")"

echo "== VEMS_SHIM_DEBUG, VEMS_SHIM_STATS"
VEMS_SHIM_DEBUG=1 shim_run cat "$prefix/u/of/a" >/dev/null 2>"$work/err"
grep -q "open $prefix/u/of/a flags" "$work/err" ||
	fail "debug log: $(cat "$work/err")"
VEMS_SHIM_STATS=1 shim_run cat "$prefix/u/of/a" /etc/hostname >/dev/null \
	2>"$work/err"
# cat opened one vems file and one real one, and read both
awk '$3 == "openat" || $3 == "open" || $3 == "open64" {
	v += $4; r += $5 } END { exit !(v >= 1 && r >= 1) }' "$work/err" ||
	fail "stats: $(cat "$work/err")"
awk '$3 == "read" { exit !($4 >= 1 && $5 >= 1) }' "$work/err" ||
	fail "stats of read: $(cat "$work/err")"

"$vemsctl" check "$pool" >/dev/null || fail "vemsctl check at the end"
if ((failures)); then
	echo "$failures failure(s)"
	exit 1
fi
echo "all passed"
