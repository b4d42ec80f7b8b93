#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# deps.sh - install what the test rig needs on a Debian bookworm machine, and
# fetch the two kernel images the tests boot.  Idempotent: checks first, runs
# "apt-get update" only when something is missing, downloads a kernel image
# only when its vmlinuz is not yet in $KDIR.
#
# The kernel images are NOT installed into the host: the matching
# linux-image-<kver>-unsigned .deb is downloaded with "apt-get download" and
# only boot/ is extracted from it (vmlinuz, config, System.map).
#
# Env: B (build dir, default <repo>/build)  KDIR (default $B/kernels)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$ROOT/build}
KDIR=${KDIR:-$B/kernels}
export DEBIAN_FRONTEND=noninteractive

PKGS=(qemu-system-x86 busybox-static cpio gzip xz-utils zstd kmod sparse
      gcc g++ make libc6-dev libkmod-dev pkg-config bc flex bison
      libelf-dev libssl-dev linux-source-6.1 linux-headers-amd64
      perl	# perl: checkpatch.pl needs more than perl-base
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

# newest linux-headers-6.12.N+deb12-amd64 apt knows about (empty if none)
newest_612() {
	apt-cache pkgnames linux-headers-6.12. 2>/dev/null |
		grep -E '^linux-headers-6\.12\.[0-9]+\+deb12-amd64$' | sort -V | tail -n1
}

# ------------------------------------------------------------ packages
missing=()
for p in "${PKGS[@]}"; do installed "$p" || missing+=("$p"); done

h612=$(newest_612)
if [ -z "$h612" ]; then		# stale or empty package lists
	apt_update
	h612=$(newest_612)
	[ -n "$h612" ] || die "no linux-headers-6.12.*+deb12-amd64 package in the apt sources (is bookworm-backports / the 6.12 kernel repo configured?)"
fi
installed "$h612" || missing+=("$h612")

if [ ${#missing[@]} -gt 0 ]; then
	say "installing: ${missing[*]}"
	apt_update
	# the 6.12 headers may have been superseded by the update
	new=$(newest_612)
	if [ -n "$new" ] && [ "$new" != "$h612" ]; then
		mapfile -t missing < <(printf '%s\n' "${missing[@]}" | grep -vxF "$h612")
		h612=$new
		installed "$h612" || missing+=("$h612")
	fi
	$SUDO apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "${missing[@]}" ||
		die "apt-get install failed"
else
	say "all packages present"
fi

# ------------------------------------------------------------ kernel images
mapfile -t KVERS < <("$ROOT/scripts/kvers.sh")
[ ${#KVERS[@]} = 2 ] || die "expected a 6.1 and a 6.12 kernel, kvers.sh says: ${KVERS[*]:-nothing}"

mkdir -p "$KDIR"
for k in "${KVERS[@]}"; do
	if [ -s "$KDIR/vmlinuz-$k" ]; then
		say "kernel $k: $KDIR/vmlinuz-$k present"
		continue
	fi
	ver=$(dpkg-query -W -f='${Version}' "linux-headers-$k")
	pkg="linux-image-$k-unsigned"
	deb=$(ls "$KDIR/${pkg}_"*.deb 2>/dev/null | head -n1 || true)
	if [ -z "$deb" ]; then
		say "kernel $k: apt-get download $pkg=$ver"
		tmp=$(mktemp -d "$KDIR/dl.XXXXXX")
		# sandbox user root: _apt cannot write into a root-owned build dir
		dl() { (cd "$tmp" && apt-get -q -o APT::Sandbox::User=root download "$pkg=$ver"); }
		if ! dl; then
			apt_update
			dl || { rm -rf "$tmp"; die "cannot download $pkg=$ver"; }
		fi
		mv "$tmp"/*.deb "$KDIR/" && rmdir "$tmp"
		deb=$(ls "$KDIR/${pkg}_"*.deb | head -n1)
	fi
	say "kernel $k: extracting boot/ from $(basename "$deb")"
	tmp=$(mktemp -d "$KDIR/x.XXXXXX")
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './boot/*' ||
		{ rm -rf "$tmp"; die "cannot extract $deb"; }
	for f in config System.map; do
		[ -f "$tmp/boot/$f-$k" ] && mv "$tmp/boot/$f-$k" "$KDIR/"
	done
	[ -s "$tmp/boot/vmlinuz-$k" ] || { rm -rf "$tmp"; die "$deb has no boot/vmlinuz-$k"; }
	mv "$tmp/boot/vmlinuz-$k" "$KDIR/"	# last: its presence means "done"
	rm -rf "$tmp"
done
say "kernels: ${KVERS[*]}"
