#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# sqlite_kill.sh -- SQLite through the shim survives SIGKILL: a Python
# writer (the sqlite3 module, i.e. libsqlite3's own open/pwrite/fsync calls
# through the shim) commits numbered rows one transaction each and reports
# each commit on a pipe outside the prefix; it is SIGKILLed after a random
# delay, and then, in a new process, PRAGMA integrity_check must say ok and
# every reported row must be there. In rollback-journal mode and in WAL
# mode with exclusive locking (no shared-memory mmap), ROUNDS times each
# (default 8), on one pool, which vemsctl check must find clean.
#
# Usage: sqlite_kill.sh SHIM VEMSCTL [ROUNDS]
set -euo pipefail
(($# >= 2)) || { echo "usage: sqlite_kill.sh SHIM VEMSCTL [ROUNDS]" >&2; exit 2; }
shim=$1 vemsctl=$2 rounds=${3:-8}
python3 -c 'import sqlite3' 2>/dev/null || {
	echo "skip: no python3 with sqlite3"
	exit 77
}
dir=${VEMS_TEST_DIR:-/dev/shm}
work=$(mktemp -d "$dir/shim-sqlkill.XXXXXX")
[[ -n ${SQLKILL_KEEP:-} ]] || trap 'rm -rf "$work"' EXIT
pool=$work/pool
prefix=/vems-sqlkill-$$
"$vemsctl" create "$pool" --pmem-size 64M >/dev/null
export PMEM_IS_PMEM_FORCE=1
shim_run() {
	env LD_PRELOAD="$shim" VEMS_POOL="$pool" VEMS_PREFIX="$prefix" \
		VEMS_LOCK_TIMEOUT=10 "$@"
}

cat >"$work/writer.py" <<'PY'
import os, sqlite3, sys
db, mode = sys.argv[1], sys.argv[2]
c = sqlite3.connect(db, isolation_level=None)
if mode == "wal":
    # before anything reads the database: no shared-memory wal-index
    c.execute("PRAGMA locking_mode=EXCLUSIVE")
    c.execute("PRAGMA journal_mode=WAL")
c.execute("PRAGMA synchronous=FULL")
c.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)")
n = (c.execute("SELECT max(id) FROM t").fetchone()[0] or 0)
while True:
    n += 1
    c.execute("BEGIN")
    c.execute("INSERT INTO t VALUES(?, ?)", (n, "x" * (n % 3000)))
    c.execute("COMMIT")
    os.write(3, b"%d\n" % n)  # after COMMIT returned: durable
PY
cat >"$work/check.py" <<'PY'
import sqlite3, sys
db, mode, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = sqlite3.connect(db, isolation_level=None)
if mode == "wal":
    c.execute("PRAGMA locking_mode=EXCLUSIVE")
ok = c.execute("PRAGMA integrity_check").fetchone()[0]
n, m = c.execute("SELECT count(*), coalesce(max(id), 0) FROM t").fetchone()
bad = c.execute("SELECT count(*) FROM t WHERE length(v) != id % 3000").fetchone()[0]
print(ok, n, m, bad)
sys.exit(0 if ok == "ok" and m >= want and n == m and bad == 0 else 1)
PY

failures=0
for mode in ${SQLKILL_MODES:-rollback wal}; do
	db=$prefix/$mode.db
	for ((r = 1; r <= rounds; r++)); do
		: >"$work/reported"
		# (env execs python3: $! is the writer itself)
		env LD_PRELOAD="$shim" VEMS_POOL="$pool" VEMS_PREFIX="$prefix" \
			VEMS_LOCK_TIMEOUT=10 python3 "$work/writer.py" "$db" \
			"$mode" 3>>"$work/reported" 2>"$work/writer.err" &
		pid=$!
		sleep "0.$((RANDOM % 4 + 2))$((RANDOM % 10))"
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		last=$(tail -n 1 "$work/reported")
		last=${last:-0}
		if out=$(shim_run python3 "$work/check.py" "$db" "$mode" "$last" 2>&1); then
			echo "ok $mode round $r: $last reported, check: $out"
		else
			echo "FAIL $mode round $r: $last reported, check: $out"
			cat "$work/writer.err"
			failures=$((failures + 1))
		fi
	done
done
"$vemsctl" check "$pool" >/dev/null || {
	echo "FAIL: vemsctl check"
	failures=$((failures + 1))
}
((failures == 0)) || exit 1
echo "# all passed"
