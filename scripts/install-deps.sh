#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# install-deps.sh -- installs the Debian packages libvems is built and tested
# with (Debian 12). Extra package names may be given as arguments.
#
# Does nothing when every package is installed already. When some are missing
# and this is not root, it lists them and goes on (the build will tell).
set -euo pipefail

pkgs=(cmake ninja-build pkg-config gcc libc6-dev libpmem-dev libpmemobj-dev
	liburing-dev libisal-dev libcmocka-dev python3
	sqlite3 git fio tar "$@") # the last four: the shim tests run them

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if ((${#missing[@]} == 0)); then
	echo "install-deps: all ${#pkgs[@]} packages are installed"
	exit 0
fi
if [[ $(id -u) != 0 ]]; then
	echo "install-deps: not root; missing packages: ${missing[*]}" >&2
	exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
