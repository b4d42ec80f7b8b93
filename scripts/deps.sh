#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# deps.sh - install the tools the test rig needs on a Debian bookworm machine
# (apt-get), then fetch the two kernels the tests boot and their build trees
# (scripts/kernels.sh).  Idempotent: checks first, runs "apt-get update" only
# when something is missing.
#
# No kernel is installed into the host: no linux-image, no linux-headers
# package (6.12's headers would pull in its image, and apt would put that
# kernel into /boot).  scripts/kernels.sh downloads the kernel packages with
# "apt-get download" and unpacks them under $B/kernels.
#
# Env: B (build dir, default <repo>/build)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$ROOT/build}
export DEBIAN_FRONTEND=noninteractive

PKGS=(qemu-system-x86 busybox-static cpio gzip xz-utils zstd kmod sparse
      gcc g++ make libc6-dev libkmod-dev pkg-config bc flex bison
      libelf-dev libssl-dev linux-source-6.1
      gcc-12 pahole	# what the kernels' build trees run: their CC, BTF
      perl	# checkpatch.pl needs more than perl-base
      rsync	# kselftest's lib.mk installs with it (make kselftest-check)
      linux-perf)	# make bench's profiles (perf record in the VM)

say() { echo "deps: $*"; }
die() { echo "deps: ERROR: $*" >&2; exit 1; }

SUDO=
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null && SUDO="sudo -E" ||
		die "not root and no sudo: cannot install packages"
fi

installed() {	# installed PKG -> 0 if dpkg says "install ok installed"
	[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

UPDATED=0
apt_update() {
	[ "$UPDATED" = 1 ] && return 0
	say "apt-get update"
	$SUDO apt-get update -qq || die "apt-get update failed"
	UPDATED=1
}

# ------------------------------------------------------------ packages
missing=()
for p in "${PKGS[@]}"; do installed "$p" || missing+=("$p"); done

if [ ${#missing[@]} -gt 0 ]; then
	say "installing: ${missing[*]}"
	apt_update
	$SUDO apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "${missing[@]}" ||
		die "apt-get install failed"
else
	say "all packages present"
fi

# ------------------------------------------------------------ kernels
B=$B "$ROOT/scripts/kernels.sh"
