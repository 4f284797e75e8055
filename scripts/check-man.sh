#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# check-man.sh -- checks the manual pages in man/:
#  (a) every symbol of lib/libvems.map's global list has a page man/SYMBOL.3,
#      either a full page or a one-line ".so man3/PAGE.3" alias of one, and
#      the page it resolves to names the symbol in NAME (.Nm) and declares
#      it in SYNOPSIS (.Fn or .Fo); every man/*.3 is named after a symbol;
#  (b) "mandoc -T lint -W warning" reports nothing on any page (style
#      messages are not asked for). Alias pages are linted in a copy laid
#      out as man1/ man3/ man7/, so that their .so resolves; the one warning
#      every alias gets by design (".so is fragile, better use ln(1)") is
#      the only message ignored;
#  (c) prints a one-line summary.
# Exits non-zero, naming each problem, if any check fails.
#
# Usage: bash scripts/check-man.sh   (from anywhere; it finds the repository)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mandir=$root/man
map=$root/lib/libvems.map
fail=0

problem() {
	echo "check-man: $*" >&2
	fail=1
}

command -v mandoc >/dev/null || {
	echo "check-man: mandoc not found (Debian: apt-get install mandoc)" >&2
	exit 1
}
[[ -d $mandir ]] || {
	echo "check-man: no $mandir" >&2
	exit 1
}

# The global list of the version script: the lines "name;" between
# "global:" and "local:".
mapfile -t symbols < <(awk '
	/global:/ { g = 1; next }
	/local:/ { g = 0 }
	g && match($0, /^[ \t]*[A-Za-z_][A-Za-z0-9_]*;/) {
		s = substr($0, RSTART, RLENGTH)
		gsub(/[ \t;]/, "", s)
		print s
	}' "$map")
if ((${#symbols[@]} == 0)); then
	echo "check-man: no symbols found in $map" >&2
	exit 1
fi

# Prints the target of an alias page (".so man3/X.3" -> X.3), or nothing
# for a full page.
so_target() {
	sed -n '1s|^\.so[ \t]\{1,\}man[0-9]/\([^ \t/]*\)[ \t]*$|\1|p' "$1"
}

# Prints the lines of section $2 of page $1 (from ".Sh $2" to the next .Sh).
section() {
	awk -v want="$2" '
		/^\.Sh[ \t]/ {
			name = $0
			sub(/^\.Sh[ \t]+/, "", name)
			gsub(/"/, "", name)
			on = (name == want)
			next
		}
		on' "$1"
}

# (a) coverage
declare -A is_symbol=()
nfull=0 nalias=0
for s in "${symbols[@]}"; do
	is_symbol[$s]=1
	page=$mandir/$s.3
	if [[ ! -f $page ]]; then
		problem "$s: no page man/$s.3"
		continue
	fi
	target=$page
	if grep -q '^\.so' "$page"; then
		t=$(so_target "$page")
		if [[ -z $t || $(grep -c '' "$page") -ne 1 ]]; then
			problem "man/$s.3: an alias page must be the one line" \
				"'.so man3/PAGE.3'"
			continue
		fi
		target=$mandir/$t
		if [[ ! -f $target ]]; then
			problem "man/$s.3: its target man/$t does not exist"
			continue
		fi
		if grep -q '^\.so' "$target"; then
			problem "man/$s.3: its target man/$t is an alias too"
			continue
		fi
		nalias=$((nalias + 1))
	else
		nfull=$((nfull + 1))
	fi
	rel=${target#"$mandir"/}
	if ! section "$target" NAME |
		grep -Eq "^\.Nm[ \t]+$s([ \t]|$)"; then
		problem "$s: man/$rel does not name it in NAME (.Nm $s)"
	fi
	if ! section "$target" SYNOPSIS |
		grep -Eq "^\.(Fn|Fo)[ \t]+$s([ \t]|$)"; then
		problem "$s: man/$rel does not declare it in SYNOPSIS" \
			"(.Fn/.Fo $s)"
	fi
done
shopt -s nullglob
for page in "$mandir"/*.3; do
	n=$(basename "$page" .3)
	[[ -n ${is_symbol[$n]:-} ]] ||
		problem "man/$n.3: not an exported symbol of lib/libvems.map"
done

# (b) mandoc lint, in a copy laid out as a manual tree
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
pages=()
for page in "$mandir"/*.[1-9]; do
	sec=${page##*.}
	mkdir -p "$tree/man$sec"
	cp "$page" "$tree/man$sec/"
	pages+=("man$sec/$(basename "$page")")
done
if ((${#pages[@]} == 0)); then
	problem "no pages in man/"
fi
nlint=0
for p in "${pages[@]}"; do
	rc=0
	out=$(cd "$tree" && mandoc -T lint -W warning "$p" 2>&1) || rc=$?
	out=$(printf '%s\n' "$out" |
		grep -Ev "^mandoc: $p:1:[0-9]+: WARNING: \.so is fragile, better use ln\(1\): so man[0-9]/[^ ]+$" |
		sed '/^$/d' || true)
	if [[ -n $out ]] || ((rc > 2)); then
		problem "mandoc lint: man/${p#man?/} (exit $rc):"
		[[ -z $out ]] || printf '%s\n' "$out" | sed 's/^/    /' >&2
	fi
	nlint=$((nlint + 1))
done

if ((fail)); then
	echo "check-man: FAILED" >&2
	exit 1
fi
echo "check-man: ok: ${#symbols[@]} symbols of lib/libvems.map documented" \
	"($nfull full pages, $nalias aliases); mandoc lint clean on" \
	"$nlint pages"
