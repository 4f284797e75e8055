#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# shim-msync.sh -- how many msync calls one SQLite transaction costs through
# the LD_PRELOAD shim in durable mode (pmem file on disk, no
# PMEM_IS_PMEM_FORCE): strace counts them for a run of N transactions and
# for the same script with none; prints the difference per transaction.
# The figure bench/README.md quotes. Needs strace and sqlite3.
#
# Usage: bench/shim-msync.sh BUILD_DIR [N] [DIR]   (N: 200, DIR: /var/tmp)
set -euo pipefail

build=${1:?usage: shim-msync.sh BUILD_DIR [N] [DIR]}
n=${2:-200}
dir=${3:-/var/tmp}
shim=$build/shim/libvems_preload.so
vemsctl=$build/tools/vemsctl
work=$(mktemp -d "$dir/shim-msync.XXXXXX")
trap 'rm -rf "$work"' EXIT
unset PMEM_IS_PMEM_FORCE

"$vemsctl" create "$work/pool" --pmem-size 64M --block-size 256M >/dev/null
script() {
	echo "PRAGMA synchronous=FULL;"
	echo "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT);"
	for ((i = 0; i < $1; i++)); do
		echo "BEGIN; INSERT INTO t(b) VALUES('row $i of the benchmark," \
			"a hundred bytes or so of text'); COMMIT;"
	done
}
count() { # msync calls of one sqlite3 run of $1 transactions on db $2
	script "$1" >"$work/sql"
	strace -f -c -e trace=msync -o "$work/st" env LD_PRELOAD="$shim" \
		VEMS_POOL="$work/pool" VEMS_PREFIX=/vems-msync \
		sqlite3 "/vems-msync/$2" <"$work/sql" >/dev/null
	awk '$NF == "msync" { print $4 }' "$work/st"
}
c0=$(count 0 empty)
cn=$(count "$n" full)
echo "msync per transaction: $(((cn - c0) / n)) ($cn for $n transactions," \
	"$c0 for none)"
