#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# test_vemsctl.sh -- end-to-end test of vemsctl: every command, every exit code
#
# Usage: test_vemsctl.sh PATH/TO/vemsctl
# Pools are made under $VEMS_TEST_DIR (default /dev/shm, else /tmp).
# Prints one "ok"/"not ok" line per check and "N passed, N failed" last;
# exits 1 if any check failed.
set -euo pipefail

V=${1:?usage: test_vemsctl.sh PATH/TO/vemsctl}
base=${VEMS_TEST_DIR:-/dev/shm}
[[ -d $base && -w $base ]] || base=/tmp
export PMEM_IS_PMEM_FORCE=${PMEM_IS_PMEM_FORCE:-1}
# CI may run this with standard input closed; script(1) needs one
exec </dev/null

dir=$(mktemp -d "$base/test_vemsctl.XXXXXX")
bgpid=
cleanup() {
	[[ -n $bgpid ]] && kill "$bgpid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
pool=$dir/pool

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok - $*"; }
not_ok() { failed=$((failed + 1)); echo "not ok - $*"; }

# expect WANT DESCRIPTION -- COMMAND...: COMMAND must exit with WANT.
# Its stdout is kept in $dir/out, its stderr in $dir/err.
expect() {
	local want=$1 desc=$2 rc=0
	shift 3
	"$@" >"$dir/out" 2>"$dir/err" </dev/null || rc=$?
	if [[ $rc == "$want" ]]; then
		ok "$desc (exit $rc)"
	else
		not_ok "$desc: exit $rc, want $want"
		sed 's/^/#   stderr: /' "$dir/err" | head -5
	fi
}

# check DESCRIPTION -- COMMAND...: COMMAND must succeed (a plain assertion).
check() {
	local desc=$1
	shift 2
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

json_ok() { python3 -m json.tool "$1" >/dev/null; }

# The object count from "stats --json".
objects() {
	"$V" stats "$pool" --json |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["objects"])'
}

# Waits until process $1 has file $2 open or mapped (it owns the pool then).
wait_open() {
	local i seen
	for i in $(seq 100); do
		# no "| grep -q" here: with pipefail its early exit fails the
		# pipeline when the writer is still writing
		seen=$({ ls -l "/proc/$1/fd" && cat "/proc/$1/maps"; } 2>/dev/null ||
			true)
		if [[ $seen == *"$2"* ]]; then
			return 0
		fi
		sleep 0.05
	done
	return 1
}

echo "# vemsctl: $V; pools in $dir"

# --- help, version -------------------------------------------------------
expect 0 "--version" -- "$V" --version
check "--version names the library" -- grep -q libvems "$dir/out"
expect 0 "--help" -- "$V" --help
check "--help documents exit code 3" -- grep -q "^  3 " "$dir/out"
expect 0 "-h" -- "$V" -h
for c in create info check ls put get rm stats; do
	expect 0 "$c --help" -- "$V" "$c" --help
	check "$c --help shows usage and exit codes" -- \
		grep -q "^Usage: vemsctl $c" "$dir/out"
	expect 0 "$c -h" -- "$V" "$c" -h
	expect 0 "help $c" -- "$V" help "$c"
done

# --- usage errors: exit 2, nothing touched ------------------------------
expect 2 "no arguments" -- "$V"
expect 2 "unknown command" -- "$V" frobnicate
expect 2 "unknown top-level option" -- "$V" --frobnicate
expect 2 "help for an unknown command" -- "$V" help frobnicate
expect 2 "info without POOL" -- "$V" info
expect 2 "info with an extra argument" -- "$V" info "$pool" extra
expect 2 "info with an unknown option" -- "$V" info "$pool" --bogus
expect 2 "info with an option of another command" -- \
	"$V" info "$pool" --pmem-size 64M
expect 2 "ls with too many arguments" -- "$V" ls "$pool" a b
expect 2 "put without NAME" -- "$V" put "$pool"
expect 2 "put with an empty NAME" -- "$V" put "$pool" "" /dev/null
expect 2 "put with a NAME too long" -- \
	"$V" put "$pool" "$(printf 'n%.0s' $(seq 4096))" /dev/null
expect 2 "get without NAME" -- "$V" get "$pool"
expect 2 "rm without NAME" -- "$V" rm "$pool"
expect 2 "rm with too many arguments" -- "$V" rm "$pool" a b
expect 2 "stats --json=x" -- "$V" stats "$pool" --json=x
expect 2 "create without POOL" -- "$V" create --pmem-size 64M
expect 2 "create without --pmem-size (not a device)" -- \
	"$V" create "$pool" --block "$dir/blk"
check "... says what is missing" -- grep -q -- "--pmem-size" "$dir/err"
expect 2 "create --pmem-size without a value" -- "$V" create "$pool" \
	--pmem-size
for bad in 64X 64MB x -1 "" " 64M" 1.5G 64M5 18446744073709551616 \
	99999999999P; do
	expect 2 "create --pmem-size '$bad'" -- \
		"$V" create "$pool" --pmem-size "$bad" --block "$dir/blk"
done
expect 2 "create --extent 3K (the library's check)" -- \
	"$V" create "$pool" --pmem-size 64M --block "$dir/blk" --extent 3K
expect 2 "create --pmem-size 1M (below the minimum)" -- \
	"$V" create "$pool" --pmem-size 1M --block "$dir/blk"
check "usage errors created no file" -- \
	test ! -e "$pool" -a ! -e "$dir/blk"

# --- pools that cannot be opened: exit 3 with the library's sentence ----
expect 3 "info of a missing pool" -- "$V" info "$dir/missing"
check "the reason is printed as 'vemsctl: <sentence>'" -- \
	grep -q "^vemsctl: " "$dir/err"
head -c 1048576 /dev/urandom >"$dir/foreign"
expect 3 "ls of a foreign file" -- "$V" ls "$dir/foreign"
check "the foreign file is unchanged" -- \
	test "$(stat -c %s "$dir/foreign")" = 1048576
: >"$dir/empty"
expect 3 "stats of an empty file" -- "$V" stats "$dir/empty"
expect 3 "check of a directory" -- "$V" check "$dir"
expect 3 "get from a missing pool" -- "$V" get "$dir/missing" x

# --- create, info ---------------------------------------------------------
expect 0 "create" -- "$V" create "$pool" --pmem-size 64M \
	--block "$dir/blk" --block-size 256MiB --extent 64K
check "the block file exists" -- test -f "$dir/blk"
expect 1 "create over an existing pool" -- "$V" create "$pool" \
	--pmem-size 64M --block "$dir/blk2"
check "... creates no block file" -- test ! -e "$dir/blk2"
expect 0 "info" -- "$V" info "$pool"
check "info shows the extent size" -- grep -q "^extent size: *65536" \
	"$dir/out"
expect 0 "info --json" -- "$V" info --json "$pool"
check "info --json is valid JSON" -- json_ok "$dir/out"
check "info --json has the geometry" -- python3 -c '
import json, sys
i = json.load(open(sys.argv[1]))
assert i["extent_size"] == 65536, i
assert i["pmem_size"] == 64 << 20, i
assert i["block_size"] == 256 << 20, i
assert i["format_version"] >= 1, i' "$dir/out"

# --- put / get round trips ----------------------------------------------
head -c 100003 /dev/urandom >"$dir/small"
head -c $((12 * 1024 * 1024 + 4097)) /dev/urandom >"$dir/big"
head -c 777777 /dev/urandom >"$dir/piped"
: >"$dir/zero"

expect 0 "put a small file" -- "$V" put "$pool" dir/small "$dir/small"
expect 0 "get it to a file" -- "$V" get "$pool" dir/small "$dir/small.out"
check "small: bytes identical" -- cmp "$dir/small" "$dir/small.out"

expect 0 "put a 12 MiB file" -- "$V" put "$pool" dir/big "$dir/big"
check "no progress bar when stderr is not a terminal" -- \
	test ! -s "$dir/err"
expect 0 "get it to a file" -- "$V" get "$pool" dir/big "$dir/big.out"
check "big: bytes identical" -- cmp "$dir/big" "$dir/big.out"
check "no progress bar on get either" -- test ! -s "$dir/err"
expect 0 "get it to stdout" -- "$V" get "$pool" dir/big
check "big via stdout: bytes identical" -- cmp "$dir/big" "$dir/out"
expect 0 "get it with '-'" -- "$V" get "$pool" dir/big -
check "big via '-': bytes identical" -- cmp "$dir/big" "$dir/out"

rc=0
"$V" put "$pool" piped <"$dir/piped" || rc=$?
check "put from stdin (no FILE)" -- test $rc = 0
rc=0
head -c 9437184 /dev/urandom | tee "$dir/piped2" |
	"$V" put "$pool" piped2 - 2>"$dir/err" || rc=$?
check "put of 9 MiB from a pipe with '-'" -- test $rc = 0
check "no progress bar from a pipe" -- test ! -s "$dir/err"
expect 0 "get piped" -- "$V" get "$pool" piped "$dir/piped.out"
check "piped: bytes identical" -- cmp "$dir/piped" "$dir/piped.out"
expect 0 "get piped2" -- "$V" get "$pool" piped2 "$dir/piped2.out"
check "piped2: bytes identical" -- cmp "$dir/piped2" "$dir/piped2.out"

expect 0 "put an empty file" -- "$V" put "$pool" zero "$dir/zero"
expect 0 "get it" -- "$V" get "$pool" zero "$dir/zero.out"
check "zero: empty" -- cmp "$dir/zero" "$dir/zero.out"

expect 0 "put a name starting with '-' after --" -- \
	"$V" put "$pool" -- -dash "$dir/small"
expect 0 "get it" -- "$V" get "$pool" -- -dash "$dir/dash.out"
check "-dash: bytes identical" -- cmp "$dir/small" "$dir/dash.out"

# replacing a name: the new content, and the old object is gone
n0=$(objects)
head -c 54321 /dev/urandom >"$dir/small2"
expect 0 "put over an existing name" -- "$V" put "$pool" dir/small \
	"$dir/small2"
expect 0 "get it" -- "$V" get "$pool" dir/small "$dir/small2.out"
check "replaced: the new bytes" -- cmp "$dir/small2" "$dir/small2.out"
check "the replaced object was removed" -- test "$(objects)" = "$n0"

expect 1 "get of a missing name" -- "$V" get "$pool" nosuch "$dir/nosuch"
check "no output file left for a missing name" -- test ! -e "$dir/nosuch"
# a get that fails half-way (the output may not grow past 1 MiB: EFBIG,
# SIGXFSZ ignored) leaves an existing output file as it was, and no
# temporary file
printf 'keep me\n' >"$dir/existing"
chmod 640 "$dir/existing"
expect 1 "get that fails while writing" -- bash -c \
	'trap "" XFSZ; ulimit -f 1024; exec "$@"' _ \
	"$V" get "$pool" dir/big "$dir/existing"
check "... leaves the existing file unchanged" -- \
	test "$(cat "$dir/existing")" = "keep me"
check "... and no temporary file" -- \
	test -z "$(find "$dir" -name '*.vemsctl-*')"
expect 0 "get over an existing file" -- "$V" get "$pool" dir/small \
	"$dir/existing"
check "... replaces its bytes" -- cmp "$dir/small2" "$dir/existing"
check "... and keeps its mode" -- \
	test "$(stat -c %a "$dir/existing")" = 640
expect 1 "put of a missing file" -- "$V" put "$pool" x "$dir/nosuchfile"
expect 1 "get into a missing directory" -- \
	"$V" get "$pool" dir/small "$dir/no/such/file"

# names JSON cannot carry raw: escaped, and still valid JSON
weird=(quo\"te back\\slash $'new\nline' $'tab\tc' $'ctl\x01' \
	$'bad\xff\xfe' 'ünï ✓')
for n in "${weird[@]}"; do
	printf '%s' "$n" | "$V" put "$pool" "weird/$n" || not_ok "put weird"
done

# --- ls -------------------------------------------------------------------
expect 0 "ls" -- "$V" ls "$pool"
check "ls lists dir/big with its size" -- \
	grep -qE "^[0-9]+:[0-9]+ +$((12 * 1024 * 1024 + 4097))  dir/big$" \
	"$dir/out"
check "ls lists every name" -- test "$(wc -l <"$dir/out")" = \
	$((6 + ${#weird[@]}))
expect 0 "ls with a prefix" -- "$V" ls "$pool" dir/
check "the prefix selects dir/big and dir/small only" -- \
	test "$(awk '{print $3}' "$dir/out" | tr '\n' ' ')" = \
	"dir/big dir/small "
expect 0 "ls --json" -- "$V" ls "$pool" --json
check "ls --json is valid JSON (python3 -m json.tool)" -- json_ok "$dir/out"
check "ls --json has every name, size and oid" -- python3 -c '
import json, sys
ls = json.load(open(sys.argv[1]))
names = {e["name"]: e for e in ls}
assert names["dir/big"]["size"] == 12 * 1024 * 1024 + 4097, names
assert names["zero"]["size"] == 0
assert names["weird/quo\"te"]["size"] == 6
assert names["weird/new\nline"]["size"] == 8
assert names["weird/ünï ✓"]["size"] == len("ünï ✓".encode())
assert any(e.get("name_hex") == b"weird/bad\xff\xfe".hex() for e in ls)
assert all(isinstance(e["oid"]["id"], int) for e in ls)
assert len(ls) == len(sys.argv[2:]) + 6, len(ls)' "$dir/out" "${weird[@]}"
expect 0 "ls --json with a prefix matching nothing" -- \
	"$V" ls "$pool" nothing/ --json
check "... is an empty JSON array" -- python3 -c '
import json, sys; assert json.load(open(sys.argv[1])) == []' "$dir/out"
expect 0 "ls --json with a prefix" -- "$V" ls --json "$pool" weird/
check "... is valid JSON with the weird names only" -- python3 -c '
import json, sys
ls = json.load(open(sys.argv[1]))
assert len(ls) == 7 and all(e["name"].startswith("weird/") for e in ls)
' "$dir/out"

# --- stats, check ---------------------------------------------------------
expect 0 "stats" -- "$V" stats "$pool"
check "stats shows objects" -- grep -qE "^objects: +[0-9]+$" "$dir/out"
expect 0 "stats --json" -- "$V" stats "$pool" --json
check "stats --json is valid JSON" -- json_ok "$dir/out"
check "stats --json counts every object and name" -- python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert s["objects"] == 6 + 7 and s["names"] == 6 + 7, s
assert s["pmem_bytes_used"] >= 12 << 20, s
# the weird/ ones (their names as bytes) are small objects, kept inline
assert s["inline_objects"] >= 1 and s["inline_bytes"] > 0, s
assert "inline_evictions" in s and "bytes_block_read" in s, s' "$dir/out"
expect 0 "check" -- "$V" check "$pool"
check "check reads all data" -- grep -q "no problems found" "$dir/out"
expect 0 "check --metadata-only" -- "$V" check "$pool" --metadata-only

# --- rm -------------------------------------------------------------------
n0=$(objects)
expect 0 "rm" -- "$V" rm "$pool" dir/big
expect 1 "get after rm" -- "$V" get "$pool" dir/big "$dir/gone"
check "rm removed the object" -- test "$(objects)" = $((n0 - 1))
expect 1 "rm of a missing name" -- "$V" rm "$pool" dir/big
"$V" ls "$pool" >"$dir/out"
check "ls no longer lists it" -- bash -c "! grep -q ' dir/big$' '$dir/out'"

# --- one owner at a time; an interrupted put leaves nothing behind --------
mkfifo "$dir/fifo"
"$V" put "$pool" slow <"$dir/fifo" 2>"$dir/slow.err" &
bgpid=$!
exec 3>"$dir/fifo"
head -c 100000 /dev/urandom >"$dir/slow"
cat "$dir/slow" >&3
check "a put holds the pool open" -- wait_open "$bgpid" "$pool"
expect 3 "info while another process has the pool open" -- \
	"$V" info "$pool"
check "... says the pool is busy" -- grep -q "^vemsctl: " "$dir/err"
exec 3>&-
rc=0
wait "$bgpid" || rc=$?
bgpid=
check "the put finishes at end of input" -- test $rc = 0
expect 0 "get slow" -- "$V" get "$pool" slow "$dir/slow.out"
check "slow: bytes identical" -- cmp "$dir/slow" "$dir/slow.out"

n0=$(objects)
"$V" put "$pool" stopped <"$dir/fifo" 2>"$dir/stop.err" &
bgpid=$!
exec 3>"$dir/fifo"
head -c 5000 /dev/urandom >&3
wait_open "$bgpid" "$pool" || true
kill -TERM "$bgpid"
exec 3>&-
rc=0
wait "$bgpid" || rc=$?
bgpid=
check "SIGTERM stops a put with exit 143" -- test $rc = 143
check "the interrupted put left no object" -- test "$(objects)" = "$n0"
"$V" ls "$pool" >"$dir/out"
check "... and no name" -- bash -c "! grep -qE ' (stopped|\.vemsctl-put\..*)$' '$dir/out'"

# --- progress bar on a terminal -------------------------------------------
if command -v script >/dev/null; then
	"$V" put "$pool" dir/big "$dir/big"
	script -qec "'$V' get '$pool' dir/big /dev/null" /dev/null \
		>"$dir/tty" 2>&1 || true
	check "a progress bar on a terminal for 12 MiB" -- \
		grep -q "100%" "$dir/tty"
	script -qec "'$V' get '$pool' dir/small /dev/null" /dev/null \
		>"$dir/tty" 2>&1 || true
	check "no progress bar for a small object" -- \
		bash -c "! grep -q '%' '$dir/tty'"
fi

# --- objects with no name: ls --all, rm --oid -----------------------------
# an object no name refers to, made through the library (python's ctypes,
# with libvems preloaded: dlopen of it alone fails on its static TLS)
lib=$(ldd "$V" | awk '/libvems\.so/ {print $3}')
cat >"$dir/mkobj.py" <<'PY'
import ctypes, sys
L = ctypes.CDLL(sys.argv[1])
class Oid(ctypes.Structure):
    _fields_ = [("partition", ctypes.c_uint64), ("id", ctypes.c_uint64)]
p = ctypes.c_void_p()
assert L.vems_pool_open(ctypes.byref(p), sys.argv[2].encode(), None) == 0
o = Oid(5, 77)
assert L.vems_obj_create(p, ctypes.byref(o)) == 0
assert L.vems_pool_close(ctypes.byref(p)) == 0
PY
syms=$(nm -D "$lib" 2>/dev/null || true) # (no "| grep -q": pipefail)
if [[ $syms =~ __(asan|tsan|ubsan)_ ]]; then
	# a sanitized libvems cannot be preloaded into python (its runtime
	# must come first): the plain builds run these
	echo "ok - # skip unnamed objects: $lib is sanitized"
else
	n0=$(objects)
	check "an unnamed object made" -- \
		env LD_PRELOAD="$lib" python3 "$dir/mkobj.py" "$lib" "$pool"
	"$V" ls "$pool" >"$dir/out"
	check "ls does not show it" -- bash -c "! grep -q '^5:77 ' '$dir/out'"
	expect 0 "ls --all" -- "$V" ls --all "$pool"
	check "ls --all shows it as (no name)" -- grep -qE '^5:77 +0  \(no name\)$' "$dir/out"
	expect 0 "ls --all --json" -- "$V" ls "$pool" --all --json
	check "... as \"name\": null" -- python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
u = [e for e in v if e["name"] is None]
assert len(u) == 1 and u[0]["oid"] == {"partition": 5, "id": 77}, u
assert len(v) > 1' "$dir/out"
	expect 2 "rm with both NAME and --oid" -- "$V" rm "$pool" x --oid 5:77
	expect 2 "rm --oid with a bad ID" -- "$V" rm "$pool" --oid 5-77
	expect 2 "rm with neither" -- "$V" rm "$pool"
	expect 0 "rm --oid 5:77" -- "$V" rm "$pool" --oid 5:77
	check "the object is gone" -- test "$(objects)" = "$n0"
	expect 1 "rm --oid of a missing object" -- "$V" rm "$pool" --oid 5:77
	"$V" ls --all "$pool" >"$dir/out"
	check "ls --all no longer shows it" -- bash -c "! grep -q '^5:77 ' '$dir/out'"
fi

# --- check --json ----------------------------------------------------------
expect 0 "check --json" -- "$V" check "$pool" --json
check "... a clean report" -- python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
assert v["ok"] is True and v["problems"] == [] and v["problem_count"] == 0
assert v["objects"] >= 1 and v["data_bytes_read"] > 0, v' "$dir/out"
expect 0 "check --json --metadata-only" -- "$V" check "$pool" --json --metadata-only
check "... reads no data" -- python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
assert v["ok"] is True and v["data_bytes_read"] is None, v' "$dir/out"

# --- backup, remove, restore -----------------------------------------------
"$V" ls "$pool" >"$dir/before"
"$V" get "$pool" slow "$dir/slow.bk"
expect 0 "backup" -- "$V" backup "$pool" "$dir/bk"
check "... the manifest and both files" -- test -s "$dir/bk/vems-backup" -a \
	-s "$dir/bk/pool" -a -e "$dir/bk/blk"
expect 1 "backup into a directory that has them" -- "$V" backup "$pool" "$dir/bk"
check "... says --force replaces them" -- grep -q -- "--force" "$dir/err"
echo later | "$V" put "$pool" later
expect 0 "remove" -- "$V" remove "$pool"
check "... both files gone" -- test ! -e "$pool" -a ! -e "$dir/blk"
expect 3 "remove of a missing pool" -- "$V" remove "$pool"
expect 1 "restore of a directory that is no backup" -- "$V" restore "$dir"
expect 0 "restore" -- "$V" restore "$dir/bk"
"$V" ls "$pool" >"$dir/after"
check "restored: the names of the backup, not the later put" -- \
	cmp "$dir/before" "$dir/after"
expect 0 "get slow from the restored pool" -- "$V" get "$pool" slow "$dir/slow.rs"
check "... bytes identical" -- cmp "$dir/slow.bk" "$dir/slow.rs"
expect 1 "restore over existing files" -- "$V" restore "$dir/bk"
"$V" put "$pool" holder <"$dir/fifo" 2>/dev/null &
bgpid=$!
exec 3>"$dir/fifo"
wait_open "$bgpid" "$pool" || true
expect 3 "remove of a pool another process has open" -- "$V" remove "$pool"
expect 3 "restore --force over a pool another process has open" -- \
	"$V" restore "$dir/bk" --force
check "... the pool is still there" -- test -e "$pool" -a -e "$dir/blk"
exec 3>&-
wait "$bgpid" || true
bgpid=
expect 0 "restore --force" -- "$V" restore "$dir/bk" --force

expect 0 "check at the end" -- "$V" check "$pool"

echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
