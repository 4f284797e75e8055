#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# programs.sh -- unmodified Debian programs on files kept in a vems pool by
# the LD_PRELOAD shim, compared byte for byte with the same programs on an
# ordinary directory
#
# Usage: programs.sh [--only NAME[,NAME...]] [--list] SHIM VEMSCTL
#   SHIM     libvems_preload.so; or "none": both sides on ordinary
#            directories (a self-test of this script, where all must pass)
#   VEMSCTL  vemsctl, to create and check the pools (unused with SHIM=none)
#
# Every scenario runs twice: on the reference side in an ordinary directory
# under $TMPDIR, on the vems side under a prefix served by the shim, on a
# pool of its own (so that one failure does not cascade into the next
# scenario). Each side writes a transcript: every command (its paths made
# ROOT/..., OUT/... and IN/...), its stdout, stderr and exit status, and
# listings and sha256 sums of the trees it left, read back through the shim.
# The two transcripts must be identical; the vems pool must then pass
# "vemsctl check".
#
# Prints "ok NAME", "FAIL NAME" with a unified diff of the transcripts
# (reference "-", vems "+"), or "skip NAME" when a program is missing.
# Exits 0 when all ran and passed, 1 when any failed, 77 when none failed
# but some were skipped, 2 on a usage error.
# Environment:
#   VEMS_TEST_DIR        where pools go (default /dev/shm, else /tmp)
#   SHIMTEST_KEEP=1      keep the temporary directories (their paths are
#                        printed)
#   SHIMTEST_DIFF_LINES  at most this many diff lines a failure (200)
#   SHIMTEST_TIMEOUT     seconds one command may take (60)
#   VEMS_SHIM_PRELOAD_FIRST  libraries preloaded before the shim, e.g. the
#                        ASan runtime when the shim was built with ASan
#                        (then on the reference side too, without the shim)
# shellcheck disable=SC2317 # the scenarios and filters are called by name
set -euo pipefail

usage() {
	echo "usage: programs.sh [--only NAME[,NAME...]] [--list] SHIM VEMSCTL" >&2
	exit 2
}

# Scenarios, in the order they run; each is a function sc_NAME below.
all=(cp cat dd sha256sum ls mv rm mkdir rmdir find tar sqlite3 fio git
	python)

only='' args=()
while (($#)); do
	case $1 in
	--only) only=${2:?--only needs NAME[,NAME...]}; shift 2 ;;
	--only=*) only=${1#--only=}; shift ;;
	--list) printf '%s\n' "${all[@]}"; exit 0 ;;
	-h | --help)
		# the comment at the top of this file
		sed -n '3,/^[^#]/{/^#/!d; /shellcheck/d; s/^# \{0,1\}//; p}' "$0"
		exit 0
		;;
	--) shift; args+=("$@"); break ;;
	-*) usage ;;
	*) args+=("$1"); shift ;;
	esac
done
((${#args[@]} == 2)) || usage
SHIM=${args[0]} VEMSCTL=${args[1]}

selected=()
if [[ -n $only ]]; then
	IFS=, read -ra selected <<<"$only"
	for s in "${selected[@]}"; do
		[[ " ${all[*]} " == *" $s "* ]] || {
			echo "programs.sh: no scenario '$s' (--list shows them)" >&2
			exit 2
		}
	done
else
	selected=("${all[@]}")
fi

if [[ $SHIM != none ]]; then
	[[ -f $SHIM ]] || { echo "programs.sh: no shim at $SHIM" >&2; exit 2; }
	[[ -x $VEMSCTL ]] || { echo "programs.sh: no vemsctl at $VEMSCTL" >&2; exit 2; }
	SHIM=$(realpath "$SHIM")
	VEMSCTL=$(realpath "$VEMSCTL")
fi

# What every scenario needs; a missing one skips the whole run.
for p in cp cat dd sha256sum ls mv rm mkdir rmdir touch find xargs sort \
	sed awk diff timeout realpath head; do
	command -v "$p" >/dev/null || {
		echo "programs.sh: skipped: '$p' is not installed"
		exit 77
	}
done

# The same bytes, names, orders and messages on both sides.
export LC_ALL=C TZ=UTC
umask 022
# CI may run this with standard input closed; programs get /dev/null
exec </dev/null

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TMO=${SHIMTEST_TIMEOUT:-60}
pbase=${VEMS_TEST_DIR:-/dev/shm}
[[ -d $pbase && -w $pbase ]] || pbase=/tmp
W=$(mktemp -d "${TMPDIR:-/tmp}/shim-programs.XXXXXX")
PD=$(mktemp -d "$pbase/shim-programs.XXXXXX")
cleanup() {
	if [[ ${SHIMTEST_KEEP:-} == 1 ]]; then
		echo "# kept $W (transcripts) and $PD (pools)"
	else
		rm -rf "$W" "$PD"
	fi
}
trap cleanup EXIT
# whatever a program leaves in its cwd (fio: verify state) goes with it
cd "$W"
# A path that is not on the real file system: served from the pool.
PREFIX=/vems-programs-$$-$RANDOM
[[ ! -e $PREFIX ]] || { echo "programs.sh: $PREFIX exists" >&2; exit 2; }

# --- the two sides ---------------------------------------------------------
#
# A scenario body sees: R, the root it works in (ref: an ordinary directory;
# vems: under the prefix); O, a directory of its own outside the prefix
# (inputs for this side, copies taken out); IN, inputs shared by both sides
# (never written). It runs programs on R only through run, rec or tree:
# they add the shim on the vems side. (Bash's own redirections and globs
# cannot see the prefix: the shell is not preloaded.) One program at a time
# touches the prefix, as the pool has one owner at a time.

RUN=()		# the command prefix of this side: env [LD_PRELOAD=... VEMS_...]
SIDE='' NOTES=''
R='' O='' Rre='' Ore=''

# re STRING: STRING as a sed regular expression that matches only it
re() { printf '%s' "$1" | sed 's/[][\.*^$|]/\\&/g'; }

# norm: this side's paths in a stream replaced by ROOT and OUT, the
# shared inputs' by IN
norm() { sed -e "s|$Rre|ROOT|g" -e "s|$Ore|OUT|g" -e "s|$INre|IN|g"; }

# run CMD...: CMD on this side, bounded by $TMO seconds (a hung shim, a
# lock never released, shows as "exit 124" instead of a hung test)
run() { timeout -k 5 "$TMO" "${RUN[@]}" "$@"; }

# rec [-s] [-f FILTER] CMD...: runs CMD on this side and adds to the
# transcript (stdout) the command line, its stdout (-s: only its sha256 and
# length, for binary output; -f: through the shell function FILTER first),
# its stderr and its exit status. Never fails: a failing command is a
# difference between the transcripts, not the end of the scenario.
rec() {
	local sum='' filter=cat rc=0
	while :; do
		case $1 in
		-s) sum=1; shift ;;
		-f) filter=$2; shift 2 ;;
		*) break ;;
		esac
	done
	printf '$ %s\n' "$*" | norm
	run "$@" >"$O.stdout" 2>"$O.stderr" || rc=$?
	if [[ -n $sum ]]; then
		printf 'stdout: %s bytes, sha256 %s\n' "$(wc -c <"$O.stdout")" \
			"$(sha256sum <"$O.stdout" | cut -d' ' -f1)"
	else
		{ "$filter" <"$O.stdout" || echo "[filter $filter failed]"; } |
			norm
		if [[ -s $O.stdout && $(tail -c1 "$O.stdout" | wc -l) == 0 ]]; then
			echo "[no newline at the end]"
		fi
	fi
	norm <"$O.stderr" | sed 's/^/stderr: /'
	echo "exit $rc"
}

# tree DIR: what DIR holds, read on this side: every entry's type (and a
# file's size; a directory's size is the file system's own) and every
# file's sha256, in name order
tree() {
	rec -f csort find "$1" -mindepth 1 \( -type f -printf '%P f %s\n' \) \
		-o -printf '%P %y\n'
	run find "$1" -type f -print0 2>/dev/null | sort -z >"$O.list" || true
	# only sha256sum reads the prefix (xargs is not preloaded); xargs
	# starts its sha256sum runs one after another
	printf '$ sha256sum (every file of %s)\n' "$1" | norm
	local rc=0
	xargs -0 -r timeout -k 5 "$TMO" "${RUN[@]}" sha256sum -- <"$O.list" \
		>"$O.stdout" 2>"$O.stderr" || rc=$?
	sort -k2 "$O.stdout" | norm
	norm <"$O.stderr" | sed 's/^/stderr: /'
	echo "exit $rc"
}

# filters for rec -f
csort() { sort; }
# ls -l --time-style=+%s: no "total" lines (blocks of directories are the
# file system's own), no time column, no directory sizes
lsnorm() {
	awk '$1 == "total" { next }
	     { $6 = ""; if ($1 ~ /^d/) $5 = "-"; print }'
}

# note: lines on stdin for the verdict's output ("# note: vems: ..."), not
# for the transcript: what is worth knowing but not a difference
note() { sed "s/^/# note: $SIDE: /" >>"$NOTES"; }

# side_setup SIDE NAME: sets R, O and RUN for SIDE (ref or vems) of
# scenario NAME; the vems side gets a new pool
side_setup() {
	local side=$1 name=$2
	SIDE=$side NOTES=$W/$name/notes
	O=$W/$name/$side-out
	mkdir -p "$O"
	RUN=(env)
	if [[ -n ${VEMS_SHIM_PRELOAD_FIRST:-} ]]; then
		# A sanitizer runtime, on both sides: it has its own opinions of
		# the programs (ASan's aligned_alloc refuses a size that is not
		# a multiple of the alignment, as cat -n and dd bs=1 ask), and
		# those must not differ between the sides. The programs are
		# not ours: their leaks are not reported, their refused
		# allocations fail as allocations do (no report, no abort).
		RUN+=("LD_PRELOAD=$VEMS_SHIM_PRELOAD_FIRST${LD_PRELOAD:+:$LD_PRELOAD}"
			"ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0:allocator_may_return_null=1")
	fi
	if [[ $side == ref || $SHIM == none ]]; then
		R=$W/$name/$side-root
	else
		local pool=$PD/$name.pmem
		rm -f "$pool" "$pool.blk"
		"$VEMSCTL" create "$pool" --pmem-size 256M >/dev/null
		R=$PREFIX/$name
		RUN+=("LD_PRELOAD=${VEMS_SHIM_PRELOAD_FIRST:+$VEMS_SHIM_PRELOAD_FIRST:}$SHIM${LD_PRELOAD:+:$LD_PRELOAD}"
			"VEMS_POOL=$pool" "VEMS_PREFIX=$PREFIX"
			VEMS_LOCK_TIMEOUT=10 PMEM_IS_PMEM_FORCE=1)
	fi
	Rre=$(re "$R") Ore=$(re "$O")
}

# --- inputs shared by both sides ------------------------------------------

IN=$W/in INre=$(re "$W/in")
mkdir -p "$IN"

# gentree DIR NFILES SEED: a tree of NFILES files of 0..5000 printable
# bytes (one in 13 empty; every 100th 10..100 KB) in nested directories,
# some empty, a few names with spaces, UTF-8 or a leading dash; the same
# tree for the same arguments
gentree() {
	mkdir -p "$1"
	awk -v root="$1" -v n="$2" -v seed="$3" '
	function mkdirs(list) { if (list != "") system("mkdir -p" list) }
	BEGIN {
		srand(seed)
		for (i = 0; i < 12000; i++)
			bytes = bytes sprintf("%c", 32 + int(rand() * 95))
		nd = 0
		for (i = 0; i < 12; i++) {
			d[nd++] = sprintf("d%02d", i)
			for (j = 0; j < 4; j++) {
				d[nd++] = sprintf("d%02d/s%d", i, j)
				if ((i + j) % 3 == 0)
					d[nd++] = sprintf("d%02d/s%d/t/u/v", i, j)
			}
		}
		d[nd++] = "with space"
		d[nd++] = "\303\274n\303\257c\303\266de"
		list = ""
		for (i = 0; i < nd; i++)
			list = list " \"" root "/" d[i] "\""
		list = list " \"" root "/empty/e1\" \"" root "/d00/s1/empty\""
		mkdirs(list)
		for (i = 0; i < n; i++) {
			dir = (i % 5 == 0) ? "" : d[int(rand() * nd)] "/"
			ext = (i % 7 == 0) ? ".txt" : (i % 11 == 0) ? ".tmp" : ".dat"
			name = sprintf("f%04d%s", i, ext)
			if (i % 97 == 5) name = "-dash " name
			if (i % 89 == 3) name = "n\303\244me " name
			size = (i % 13 == 0) ? 0 : int(rand() * 5001)
			f = root "/" dir name
			printf "" >f
			if (i % 100 == 50) {
				size = 10000 + int(rand() * 90000)
				for (k = size; k > 0; k -= 10000)
					printf "%s", substr(bytes, 1 + i % 100,
						k < 10000 ? k : 10000) >f
			} else if (size > 0)
				printf "%s", substr(bytes, 1 + int(rand() * 6000),
					size) >f
			close(f)
		}
	}'
}

head -c $((5 * 1024 * 1024 + 1237)) /dev/urandom >"$IN/big"
head -c 12345 /dev/urandom >"$IN/small"
printf 'alpha\nbeta\ngamma\n' >"$IN/a.txt"
printf 'line %d\n' $(seq 1 500) >"$IN/b.txt"
gentree "$IN/stree" 60 7

# --- scenarios ---------------------------------------------------------------

sc_cp() {
	rec cp "$IN/big" "$R/big"		# in from outside
	rec cp "$R/big" "$R/big.copy"		# within the prefix
	rec mkdir "$R/sub"
	rec cp "$R/big" "$IN/small" "$R/sub"	# several into a directory
	rec cp "$IN/small" "$R/big.copy"	# over a larger file
	rec cp "$R/sub/small" "$R/sub/small.2"
	rec cp -p "$IN/a.txt" "$R/a.p"		# times, mode, owner too
	rec cp -r "$IN/stree" "$R/stree"	# a tree
	rec cp "$R/big" "$O/big.out"		# out again
	rec sha256sum "$O/big.out"
	rec cp "$R/nosuch" "$R/x"
	rec cp "$R/sub" "$R/x"			# omitting directory
	rec cp "$R/big" "$R/nodir/x"
	tree "$R"
}

sc_cat() {
	rec cp "$IN/a.txt" "$IN/b.txt" "$IN/big" "$R"
	rec mkdir "$R/dir"
	rec touch "$R/empty"
	rec cat "$R/a.txt"
	rec cat "$R/a.txt" "$R/b.txt" "$R/empty" "$R/a.txt"
	rec cat -n "$R/b.txt"
	rec -s cat "$R/big"
	rec -s cat "$R/big" "$R/a.txt" "$R/big"
	rec cat "$R/nosuch"
	rec cat "$R/dir"
	# a pipeline where only cat touches the prefix
	printf '$ cat ROOT/big | sha256sum\n'
	{ run cat "$R/big" | sha256sum; } || echo "exit $?"
	# and one where only tee does
	printf '$ tee ROOT/tee.txt <IN/b.txt | sha256sum\n'
	{ run tee "$R/tee.txt" <"$IN/b.txt" | sha256sum; } || echo "exit $?"
	tree "$R"
}

sc_dd() {
	rec dd if="$IN/big" of="$R/d4k" bs=4k conv=fsync status=noxfer
	rec dd if="$IN/big" of="$R/d1m" bs=1M conv=fsync status=noxfer
	# seek= into an existing file: overwrite in place (notrunc), cut
	# there (no notrunc), past the end (a hole), a new file with a hole
	rec dd if="$IN/small" of="$R/d4k" bs=4k seek=7 conv=notrunc,fsync \
		status=noxfer
	rec dd if="$IN/small" of="$R/d1m" bs=1M seek=2 conv=fsync \
		status=noxfer
	rec dd if="$IN/small" of="$R/d1m" bs=1M seek=6 conv=notrunc,fsync \
		status=noxfer
	rec dd if="$IN/small" of="$R/sparse" bs=4k seek=1000 count=2 \
		conv=fsync status=noxfer
	rec dd if="$IN/a.txt" of="$R/d4k" bs=1 seek=4097 count=5 \
		conv=notrunc status=noxfer
	rec dd if=/dev/zero of="$R/zero" bs=1M count=3 oflag=dsync \
		status=noxfer
	rec dd if="$IN/small" of="$R/zero" bs=4k seek=1 count=1 \
		conv=notrunc,fdatasync status=noxfer
	# reading: skip=, count=, the whole, a hole
	rec -s dd if="$R/d4k" bs=4k skip=5 count=10 status=noxfer
	rec -s dd if="$R/d1m" bs=1M status=noxfer
	rec -s dd if="$R/sparse" bs=64k skip=50 status=noxfer
	tree "$R"
}

sc_sha256sum() {
	rec cp "$IN/a.txt" "$IN/big" "$IN/small" "$R"
	rec touch "$R/empty"
	rec sha256sum "$R/a.txt" "$R/big" "$R/small" "$R/empty"
	rec sha256sum -b "$R/big"
	# check lists naming files in the prefix, outside and inside it
	(cd "$IN" && sha256sum a.txt big small) | sed "s|  |  $R/|" \
		>"$O/SUMS"
	rec sha256sum -c "$O/SUMS"
	rec cp "$O/SUMS" "$R/SUMS"
	rec sha256sum -c "$R/SUMS"
	rec dd if=/dev/zero of="$R/small" bs=1 seek=100 count=1 conv=notrunc \
		status=none
	rec sha256sum -c "$R/SUMS"
	rec sha256sum "$R/nosuch"
	rec rm "$R/SUMS"	# it names ROOT: not the same bytes on both sides
	tree "$R"
}

sc_ls() {
	local s names=()
	rec mkdir "$R/l" "$R/l/sub" "$R/l/sub2" "$R/l/sub/deeper"
	for s in 0 1 511 4095 4096 4097 100000; do
		head -c "$s" "$IN/big" >"$O/f$s"
		names+=("$R/l/f$s")
	done
	rec cp "$O/f0" "$O/f1" "$O/f511" "$O/f4095" "$O/f4096" "$O/f4097" \
		"$O/f100000" "$R/l"
	rec cp "$IN/a.txt" "$R/l/sub/a.txt"
	rec ls "$R/l"
	rec ls -a "$R/l"
	rec ls -A1 "$R/l"
	rec ls -R "$R/l"
	rec -f lsnorm ls -l --time-style=+%s "$R/l"
	rec -f lsnorm ls -la --time-style=+%s "$R/l/sub"
	rec -f lsnorm ls -ld --time-style=+%s "$R/l" "$R/l/f4096"
	rec -f lsnorm ls -l --time-style=+%s "${names[@]}"
	rec ls -s1 "${names[@]}"	# blocks: size rounded up to 4 KiB
	rec ls -S1 "${names[@]}"
	rec ls -p "$R/l"
	rec ls -d "$R/l/sub" "$R/l/f1"
	rec ls "$R/nosuch"
	rec ls "$R/l/f1/"
	tree "$R"
}

sc_mv() {
	rec cp "$IN/a.txt" "$R/a"
	rec cp "$IN/b.txt" "$R/b"
	rec cp "$IN/small" "$R/c"
	rec mv "$R/a" "$R/a2"			# rename
	rec mv "$R/c" "$R/b"			# over an existing file
	rec mkdir -p "$R/d1/e"
	rec cp "$IN/small" "$R/d1/e/f"
	rec mv "$R/d1" "$R/d2"			# a directory, with contents
	rec mv "$R/a2" "$R/d2/"			# into a directory
	rec mv "$R/d2/e/f" "$R/d2/e/g"
	rec mkdir "$R/d3" "$R/empty"
	rec mkdir -p "$R/d4/d3/x"
	rec mv "$R/d3" "$R/d4"			# onto a non-empty directory
	rec mv "$R/empty" "$R/d3"		# onto an empty one
	rec mv "$R/d2" "$R/d2/e"		# into itself
	rec mv "$R/b" "$R/d4"
	rec mv "$R/nosuch" "$R/x"
	# across file systems: copy and remove
	cp "$IN/small" "$O/out1"
	rec mv "$O/out1" "$R/in1"
	rec mv "$R/in1" "$O/out2"
	rec sha256sum "$O/out2"
	rec ls "$O"
	tree "$R"
}

sc_rm() {
	rec cp -r "$IN/stree" "$R/t"
	rec cp -r "$IN/stree" "$R/t2"
	rec rm "$R/t"				# a directory without -r
	rec rm -r "$R/t"
	rec ls -A "$R"
	rec mkdir -p "$R/e/f/g/h" "$R/e/f2"
	rec rm -r "$R/e"			# directories only
	rec -f csort rm -rv "$R/t2"
	rec rm "$R/nosuch"
	rec rm -f "$R/nosuch"
	rec rm -rf "$R/nosuch"
	rec cp "$IN/a.txt" "$R/a"
	rec rm "$R/a"
	rec ls -A "$R"
	tree "$R"
}

sc_mkdir() {
	rec mkdir -p "$R/a/b/c"
	rec ls "$R/a"
	rec ls -R "$R/a"
	rec mkdir "$R/a"			# exists
	rec mkdir -p "$R/a/b/c"			# nothing to do
	rec mkdir "$R/x/y"			# no parent
	rec mkdir -pv "$R/a/b2/c2/d2"
	rec cp "$IN/a.txt" "$R/file"
	rec mkdir -p "$R/file/sub"		# a file in the way
	rec mkdir "$R/file"
	rec mkdir "$R/m1" "$R/m2" "$R/m3"
	rec ls "$R"
	tree "$R"
}

sc_rmdir() {
	rec mkdir -p "$R/d/e"
	rec cp "$IN/a.txt" "$R/d/e/f"
	rec rmdir "$R/d"			# not empty
	rec rmdir "$R/d/e"
	rec rm "$R/d/e/f"
	rec rmdir "$R/d/e"
	rec rmdir "$R/d"
	rec rmdir "$R/nosuch"
	rec cp "$IN/a.txt" "$R/file"
	rec rmdir "$R/file"			# not a directory
	rec mkdir -p "$R/p/q/r"
	rec rmdir -p "$R/p/q/r"			# up to ROOT, which holds "file"
	rec rmdir --ignore-fail-on-non-empty "$R"
	rec ls -A "$R"
	tree "$R"
}

sc_find() {
	rec cp -r "$IN/stree" "$R/t"
	rec -f csort find "$R/t"
	rec -f csort find "$R/t" -name '*.txt'
	rec -f csort find "$R/t" -iname 'F00*'
	rec -f csort find "$R/t" -type f
	rec -f csort find "$R/t" -type d
	rec -f csort find "$R/t" -type f -size +2k
	rec -f csort find "$R/t" -type f -size -1k
	rec -f csort find "$R/t" -size +20k -size -60k
	rec -f csort find "$R/t" -empty
	rec -f csort find "$R/t" -maxdepth 1
	rec -f csort find "$R/t" -mindepth 3 -type d -name 's*'
	rec -f csort find "$R/t" -path '*/s1/*' -type f
	rec -f csort find "$R/t" -type f -name 'f00*' -printf '%P %s %y %d\n'
	rec find "$R/t" -name '*.tmp' -delete
	rec -f csort find "$R/t" -name '*.tmp'
	rec find "$R/nosuch"
	tree "$R"
}

sc_tar() {
	rec mkdir "$R/dst"
	rec tar -C "$R/dst" -xf "$IN/x.tar"
	tree "$R/dst"
	rec tar -C "$R/dst" -cf "$R/y.tar" .
	rec -f csort tar -tf "$R/y.tar"
	mkdir "$O/back"
	rec tar -C "$O/back" -xf "$R/y.tar"
	tree "$O/back"
	# and what came back is the source tree (names, types, bytes)
	if diff -r "$IN/tree" "$O/back" >"$O/srcdiff" 2>&1; then
		echo "extracted again: the source tree"
	else
		echo "extracted again: NOT the source tree"
		head -20 "$O/srcdiff" | norm
	fi
	# extracting over the files already there
	rec tar -C "$R/dst" -xf "$IN/x.tar"
	rec -f csort find "$R/dst" -type f -printf '%P %s\n'
}

sc_sqlite3() {
	export HOME=$O/home
	mkdir -p "$HOME"
	# rollback journal: big transactions, an update and a delete, one
	# rolled back, many small autocommit ones
	{
		echo "PRAGMA journal_mode=DELETE;"
		echo "CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER, b TEXT);"
		for k in 0 1 2; do
			echo "BEGIN;"
			echo "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1"
			echo "  FROM c WHERE x < 2000) INSERT INTO t(a, b)"
			echo "  SELECT (x * 7919 + $k) % 100003,"
			echo "         printf('%0*d', 20 + x % 300, x) FROM c;"
			echo "COMMIT;"
		done
		echo "BEGIN; UPDATE t SET a = a + 1 WHERE id % 3 = 0;"
		echo "DELETE FROM t WHERE id % 17 = 0; COMMIT;"
		echo "BEGIN; DELETE FROM t WHERE id % 2 = 0; ROLLBACK;"
		for k in $(seq 1 60); do
			echo "INSERT INTO t(a, b) VALUES ($k, 'single $k');"
		done
		echo "CREATE INDEX ta ON t(a);"
		echo "PRAGMA integrity_check;"
	} >"$O/rollback.sql"
	rec sqlite3 "$R/r.db" <"$O/rollback.sql"
	rec sqlite3 "$R/r.db" "PRAGMA journal_mode;" "PRAGMA integrity_check;" \
		"SELECT count(*), sum(a), sum(length(b)), max(id) FROM t;"
	rec sqlite3 "$R/r.db" "VACUUM;" "PRAGMA integrity_check;"
	rec sqlite3 "$R/r.db" \
		"SELECT count(*), sum(a), sum(length(b)), max(id) FROM t;"
	# WAL, without shared memory: exclusive locking before journal_mode
	{
		echo "PRAGMA locking_mode=EXCLUSIVE;"
		echo "PRAGMA journal_mode=WAL;"
		echo "CREATE TABLE w(id INTEGER PRIMARY KEY, a INTEGER, b BLOB);"
		for k in 0 1 2 3; do
			echo "BEGIN;"
			echo "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1"
			echo "  FROM c WHERE x < 1500) INSERT INTO w(a, b)"
			echo "  SELECT x + $k, zeroblob(10 + x % 500) FROM c;"
			echo "COMMIT;"
			((k != 1)) || echo "PRAGMA wal_checkpoint(TRUNCATE);"
		done
		echo "UPDATE w SET a = -a WHERE id % 5 = 0;"
		echo "PRAGMA integrity_check;"
	} >"$O/wal.sql"
	rec sqlite3 "$R/w.db" <"$O/wal.sql"
	rec sqlite3 "$R/w.db" "PRAGMA locking_mode=EXCLUSIVE;" \
		"PRAGMA journal_mode;" "PRAGMA integrity_check;" \
		"SELECT count(*), sum(a), sum(length(b)) FROM w;"
	tree "$R"
}

# fio's files hold times, its output timings: the transcript has its exit
# status, its error counts and any line that speaks of verification; the
# whole output only when fio failed; its other complaints on stderr (a
# posix_fadvise the shim refuses, say) are notes, not failures
fio_run() {
	local rc=0
	printf '$ fio %s\n' "$*" | norm
	# (--verify_state_save=0: no state files left in the cwd)
	run fio --verify_state_save=0 "$@" >"$O.stdout" 2>"$O.stderr" || rc=$?
	echo "exit $rc"
	grep -Eo 'err= *[0-9]+' "$O.stdout" | sed 's/ //g' | sort | uniq -c
	grep -Ehi 'verif|bad (magic|header)|crc32c' "$O.stdout" "$O.stderr" |
		norm || true
	if ((rc != 0)); then
		norm <"$O.stdout"
		norm <"$O.stderr" | sed 's/^/stderr: /'
	elif [[ -s $O.stderr ]]; then
		norm <"$O.stderr" | sed 's/^/fio said: /' | note
	fi
}
sc_fio() {
	# fio's jobs are processes forked, not exec'ed: the parent hands the
	# pool over at fork (the shim's fork_prepare)
	local common=(--size=16M --verify=crc32c --verify_fatal=1
		--group_reporting)
	# psync (pread/pwrite), random 4k writes; then a second fio run only
	# verifies what the first left
	fio_run --name=psync --ioengine=psync --rw=randwrite --bs=4k \
		--filename="$R/psync.dat" "${common[@]}"
	fio_run --name=psync --ioengine=psync --rw=randwrite --bs=4k \
		--filename="$R/psync.dat" "${common[@]}" --verify_only
	# sync (read/write), sequential 64k writes with an fsync every 8
	fio_run --name=sync --ioengine=sync --rw=write --bs=64k --fsync=8 \
		--end_fsync=1 --filename="$R/sync.dat" "${common[@]}"
	rec -f csort find "$R" -mindepth 1 -printf '%P %y %s\n'
}

sc_git() {
	export HOME=$O/home GIT_CONFIG_NOSYSTEM=1 GIT_PAGER=cat
	export GIT_AUTHOR_NAME="A U Thor" GIT_AUTHOR_EMAIL=author@example.com
	export GIT_COMMITTER_NAME="C O Mitter"
	export GIT_COMMITTER_EMAIL=committer@example.com
	# fixed dates: the same commit IDs on both sides
	export GIT_AUTHOR_DATE="@1700000000 +0000"
	export GIT_COMMITTER_DATE="@1700000000 +0000"
	# no background maintenance: a git child would wait for the pool
	export GIT_CONFIG_COUNT=3
	export GIT_CONFIG_KEY_0=maintenance.auto GIT_CONFIG_VALUE_0=false
	export GIT_CONFIG_KEY_1=gc.auto GIT_CONFIG_VALUE_1=0
	export GIT_CONFIG_KEY_2=init.defaultBranch GIT_CONFIG_VALUE_2=main
	mkdir -p "$HOME"
	local g=(git -C "$R/repo")
	rec git init "$R/repo"
	rec cp "$IN/a.txt" "$R/repo/a.txt"
	rec mkdir "$R/repo/src"
	rec cp "$IN/small" "$IN/b.txt" "$R/repo/src"
	rec "${g[@]}" add .
	rec "${g[@]}" commit -q -m "first commit"
	rec "${g[@]}" status --porcelain
	rec cp "$IN/b.txt" "$R/repo/a.txt"
	rec "${g[@]}" status --porcelain
	rec "${g[@]}" commit -q -a -m "second commit"
	rec "${g[@]}" mv src/b.txt src/c.txt
	rec "${g[@]}" rm -q a.txt
	rec "${g[@]}" commit -q -m "third commit"
	rec "${g[@]}" log --format=%s
	rec "${g[@]}" log --format='%H %T'
	rec "${g[@]}" status --porcelain
	rec "${g[@]}" fsck --strict --no-progress
	rec -s "${g[@]}" cat-file -p HEAD:src/small
	rec "${g[@]}" diff --stat HEAD~2 HEAD
	tree "$R/repo/src"
}

sc_python() {
	rec "$PY" "$here/pyfiles.py" "$R"
	tree "$R"
}

# --- running them ------------------------------------------------------------

# needs NAME: the programs scenario NAME needs beyond the coreutils
needs() {
	case $1 in
	tar) echo tar ;;
	sqlite3) echo sqlite3 ;;
	fio) echo fio ;;
	git) echo git ;;
	python) echo python3 ;;
	esac
}

# Python: Debian's own if it is there (the same one on both sides anyway)
PY=/usr/bin/python3
[[ -x $PY ]] || PY=$(command -v python3 || true)

# prepare NAME: inputs only scenario NAME uses
prepare() {
	case $1 in
	tar)
		if [[ ! -f $IN/x.tar ]]; then
			gentree "$IN/tree" 2100 11
			tar -C "$IN/tree" -cf "$IN/x.tar" .
		fi
		;;
	esac
}

# scenario NAME: both sides, the comparison, the verdict
passed=0 failed=0 skipped=0
scenario() {
	local name=$1 d=$W/$1 side rc why='' t0 times=''
	mkdir -p "$d"
	prepare "$name"
	for side in ref vems; do
		side_setup "$side" "$name"
		t0=$(date +%s%N)
		# a subshell each: a scenario's exports and failures stay
		# there; errexit catches a failing step of the harness itself
		# (rec never fails)
		set +e
		(
			set -eE
			trap 'echo "harness step failed (line $LINENO): $BASH_COMMAND"' ERR
			rec mkdir "$R"
			"sc_$name"
		) >"$d/$side.log" 2>&1
		rc=$?
		set -e
		times+=" $side $((($(date +%s%N) - t0) / 1000000)) ms"
		if ((rc != 0)); then
			why+="the $side side stopped (exit $rc): $(tail -1 "$d/$side.log"); "
		fi
		if [[ $side == vems && $SHIM != none ]]; then
			if ! "$VEMSCTL" check "$PD/$name.pmem" >"$d/check" 2>&1
			then
				why+="vemsctl check failed: $(tr '\n' ' ' <"$d/check"); "
			fi
			# the files were in the pool, not on the real file
			# system (this shell is not preloaded: it sees the
			# real one)
			"$VEMSCTL" ls "$PD/$name.pmem" >"$d/ls" 2>&1 || true
			if ! grep -q " $name/\$" "$d/ls"; then
				why+="the pool has no directory $name/; "
			fi
			if [[ -e $PREFIX ]]; then
				why+="$PREFIX was made on the real file system; "
				rm -rf "$PREFIX"
			fi
		fi
		rm -f "$PD/$name.pmem" "$PD/$name.pmem.blk"
	done
	if ! diff -u --label "ref ($name)" --label "vems ($name)" "$d/ref.log" \
		"$d/vems.log" >"$d/diff"; then
		why+="the transcripts differ; "
	fi
	if [[ -z $why ]]; then
		passed=$((passed + 1))
		echo "ok $name"
	else
		failed=$((failed + 1))
		echo "FAIL $name: ${why%; }"
		local n max=${SHIMTEST_DIFF_LINES:-200}
		n=$(wc -l <"$d/diff")
		head -n "$max" "$d/diff"
		((n <= max)) ||
			echo "... ($((n - max)) more diff lines; SHIMTEST_KEEP=1 keeps them)"
	fi
	if [[ -s $d/notes ]]; then
		cat "$d/notes"
	fi
	echo "#$times"
}

echo "# shim: $SHIM; prefix $PREFIX; pools in $PD; work in $W"
for name in "${selected[@]}"; do
	missing=
	for p in $(needs "$name"); do
		command -v "$p" >/dev/null || missing+=" $p"
	done
	if [[ $name == python && -z $PY ]]; then
		missing+=" python3"
	fi
	if [[ -n $missing ]]; then
		skipped=$((skipped + 1))
		echo "skip $name: not installed:$missing"
		continue
	fi
	scenario "$name"
done
echo "# $passed passed, $failed failed, $skipped skipped"
if ((failed)); then
	exit 1
elif ((skipped)); then
	exit 77
fi
exit 0
