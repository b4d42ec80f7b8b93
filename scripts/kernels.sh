#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# kernels.sh - fetch the two kernels the tests boot, and the trees to build
# vdi.ko against, without installing any kernel package into the host:
#   1. Debian's default 6.1 kernel: the one linux-headers-amd64 depends on;
#   2. the newest 6.12 one, linux-headers-6.12.N+deb12-amd64.
# Both as apt's candidates (the package lists, not what is installed).  For
# each kernel K the same steps: "apt-get download" of
#   linux-headers-K, its linux-headers-*-common and linux-kbuild-* (the
#   build tree), and linux-image-K-unsigned (only its boot/ is used),
# then into $KDIR:
#   K/                    the three build packages unpacked with dpkg-deb -x
#                         (usr/src/linux-headers-K, ...-common,
#                         usr/lib/linux-kbuild-*, lib/modules/K/build), their
#                         links made relative and the headers' Makefile made
#                         to include its -common Makefile by a relative path:
#                         the tree works from wherever build/ is, and never
#                         reaches the host's kernel trees (/usr/src,
#                         /usr/lib/linux-kbuild-*, /lib/modules)
#   headers-K             -> K/usr/src/linux-headers-K: make -C it M=...
#   vmlinuz-K, config-K, System.map-K   from the image's boot/
#   kvers                 the two kernel versions, one per line (kvers.sh)
#   *.deb                 the downloaded packages (a rerun downloads nothing)
# Idempotent: a kernel whose tree ($KDIR/K/.vdi-tree) and vmlinuz are there
# is not fetched again.  Apt's package lists are updated only when they do
# not know the kernels or a download fails.
#
# Env: B (build dir, default <repo>/build; the kernels go to $B/kernels, where
# kvers.sh, kbuild.sh and dkms-check.sh look for them)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$ROOT/build}
KDIR=$B/kernels
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

say() { echo "kernels: $*"; }
die() { echo "kernels: ERROR: $*" >&2; exit 1; }

# The trees hold amd64 kbuild programs (fixdep, modpost, objtool) and build
# for amd64 kernels: only an amd64 host runs them.
arch=$(dpkg --print-architecture)
[ "$arch" = amd64 ] || die "this is a $arch machine: the test kernels and their kbuild programs are amd64"

SUDO=
[ "$(id -u)" = 0 ] || SUDO="sudo -E"
UPDATED=0
apt_update() {
	[ "$UPDATED" = 1 ] && return 0
	say "apt-get update"
	$SUDO apt-get update -qq || die "apt-get update failed"
	UPDATED=1
}

# field PKG NAME: a field of apt's candidate version of PKG (empty if none)
field() {
	apt-cache show --no-all-versions "$1" 2>/dev/null | sed -n "s/^$2: //p" | head -n1
}

# ------------------------------------------------------------ which kernels
pick() {
	K61=$(field linux-headers-amd64 Depends | tr ',' '\n' |
		sed -n 's/^ *linux-headers-\(6\.1\.[^ ]*-amd64\).*/\1/p' | head -n1)
	K612=$(apt-cache pkgnames linux-headers-6.12. 2>/dev/null |
		sed -n 's/^linux-headers-\(6\.12\.[0-9]*+deb12-amd64\)$/\1/p' | sort -V | tail -n1)
}
pick
if [ -z "$K61" ] || [ -z "$K612" ]; then	# stale or empty package lists
	apt_update
	pick
fi
[ -n "$K61" ] || die "apt knows no linux-headers-amd64 depending on a 6.1 kernel (is bookworm in the apt sources?)"
[ -n "$K612" ] || die "no linux-headers-6.12.*+deb12-amd64 package in the apt sources (is bookworm-security / the 6.12 kernel repo configured?)"
KVERS=("$K61" "$K612")

mkdir -p "$KDIR"

# deb_of PKG VERSION: the downloaded .deb of PKG=VERSION in $KDIR, if any
deb_of() {
	local d
	for d in "$KDIR/$1"_*.deb; do
		[ -f "$d" ] && [ "$(dpkg-deb -f "$d" Version)" = "$2" ] && { echo "$d"; return 0; }
	done
	return 0
}

# download PKG=VERSION...: into $KDIR, those not there yet
download() {
	local want=() pv tmp
	for pv in "$@"; do
		[ -n "$(deb_of "${pv%%=*}" "${pv#*=}")" ] || want+=("$pv")
	done
	[ ${#want[@]} = 0 ] && return 0
	say "apt-get download ${want[*]}"
	tmp=$(mktemp -d "$KDIR/dl.XXXXXX")
	# sandbox user root: _apt cannot write into a root-owned build dir
	dl() { (cd "$tmp" && apt-get -q -o APT::Sandbox::User=root download "${want[@]}"); }
	if ! dl; then
		apt_update
		dl || { rm -rf "$tmp"; die "cannot download ${want[*]}"; }
	fi
	mv "$tmp"/*.deb "$KDIR/" && rmdir "$tmp"
}

# make_relative ROOT: every absolute link in ROOT (lib/modules/K/build ->
# /usr/src/...) points to the same place inside ROOT instead; no link may
# lead out of ROOT or nowhere
make_relative() {
	local root=$1 l t dest real
	while IFS= read -r -d '' l; do
		t=$(readlink "$l")
		case $t in
		/*)	dest=$root$t
			[ -e "$dest" ] || die "${l#"$root"/} -> $t: not in the packages"
			ln -sfn "$(realpath -s -m --relative-to="$(dirname "$l")" "$dest")" "$l" ;;
		esac
	done < <(find "$root" -type l -print0)
	while IFS= read -r -d '' l; do
		real=$(realpath -m "$l")
		[ -e "$real" ] || die "${l#"$root"/} -> $(readlink "$l"): dangling"
		case $real/ in
		"$(realpath "$root")"/*) ;;
		*) die "${l#"$root"/} -> $(readlink "$l"): leads out of the tree" ;;
		esac
	done < <(find "$root" -type l -print0)
}

# unpack K HEADERS_DEB COMMON_DEB KBUILD_DEB: the build tree $KDIR/K
unpack() {
	local k=$1 tmp=$KDIR/$1.tmp d mk cc exe missing
	shift
	rm -rf "$tmp"; mkdir -p "$tmp"
	for d in "$@"; do
		dpkg-deb -x "$d" "$tmp" || die "cannot unpack $d"
	done
	rm -rf "$tmp/usr/share/doc" "$tmp/usr/share/lintian"
	make_relative "$tmp"

	# The headers' Makefile is one line, "include /usr/src/<-common>/Makefile":
	# the same file, found from the Makefile's own directory.
	mk=$tmp/usr/src/linux-headers-$k/Makefile
	[ -f "$mk" ] || die "linux-headers-$k has no usr/src/linux-headers-$k/Makefile"
	sed -i 's|^include /usr/src/\([^/]*\)/Makefile$|include $(dir $(realpath $(lastword $(MAKEFILE_LIST))))../\1/Makefile|' "$mk"
	if grep -n '/usr/\|/lib/modules' "$mk" >&2; then
		die "linux-headers-$k's Makefile still names a host path (above)"
	fi
	[ -f "$tmp/usr/src/$(sed -n 's|^include .*\.\./\([^/]*\)/Makefile$|\1|p' "$mk")/Makefile" ] ||
		die "linux-headers-$k's Makefile includes no Makefile of the tree"

	# What the tree runs must be on the host: its compiler (CC, as dkms
	# reads it from .kernelvariables), the shared libraries of its programs,
	# pahole where it makes BTF for modules.  deps.sh installs them.
	cc=$(printf 'show-%%:\n\t@echo $($*)\ninclude %s\n' "$tmp/usr/src/linux-headers-$k/.kernelvariables" |
		make -s -f - show-CC 2>/dev/null | awk '{ print $NF }')
	[ -n "$cc" ] && command -v "$cc" >/dev/null || die "$k: its compiler '${cc:-?}' is missing (deps.sh installs gcc-12)"
	missing=$(find "$tmp/usr/lib" -type f -perm -u+x -print0 | while IFS= read -r -d '' exe; do
		[ "$(head -c4 "$exe" | tr -d '\0')" = $'\x7fELF' ] || continue
		ldd "$exe" 2>/dev/null | sed -n "s|^\s*\(\S*\) => not found|${exe#"$tmp"/}: \1|p"
	done)
	[ -z "$missing" ] || die "$k: libraries the kbuild programs need are missing:"$'\n'"$missing"
	if grep -qx 'CONFIG_DEBUG_INFO_BTF_MODULES=y' "$tmp/usr/src/linux-headers-$k/.config" &&
	   [ -f "$tmp/usr/src/linux-headers-$k/vmlinux" ] && ! command -v pahole >/dev/null; then
		die "$k: pahole is missing (its modules get BTF; deps.sh installs pahole)"
	fi

	for d in "$@"; do dpkg-deb -f "$d" Package Version | paste -sd= | sed 's/^Package: //; s/=Version: /=/'; done \
		> "$tmp/.vdi-tree"
	rm -rf "${KDIR:?}/$k"
	mv "$tmp" "$KDIR/$k"
}

# ------------------------------------------------------------ per kernel
for k in "${KVERS[@]}"; do
	if [ -f "$KDIR/$k/.vdi-tree" ] && [ -s "$KDIR/vmlinuz-$k" ] &&
	   [ -f "$KDIR/headers-$k/Makefile" ]; then
		say "kernel $k: tree and vmlinuz present"
		continue
	fi
	ver=$(field "linux-headers-$k" Version)
	deps=$(field "linux-headers-$k" Depends | tr ',|' '\n\n' | sed 's/^ *//; s/ .*//')
	common=$(grep -x 'linux-headers-.*-common' <<<"$deps" | head -n1) || true
	kbuild=$(grep -x 'linux-kbuild-.*' <<<"$deps" | head -n1) || true
	[ -n "$ver" ] && [ -n "$common" ] && [ -n "$kbuild" ] ||
		die "linux-headers-$k: no version, -common or linux-kbuild dependency in apt's lists"
	kbver=$(field "$kbuild" Version)
	[ -n "$kbver" ] || die "$kbuild: not in apt's lists"
	image=linux-image-$k-unsigned
	download "linux-headers-$k=$ver" "$common=$ver" "$kbuild=$kbver" "$image=$ver"

	if [ ! -f "$KDIR/$k/.vdi-tree" ] || [ ! -f "$KDIR/headers-$k/Makefile" ]; then
		say "kernel $k: unpacking linux-headers-$k, $common, $kbuild"
		unpack "$k" "$(deb_of "linux-headers-$k" "$ver")" "$(deb_of "$common" "$ver")" \
			"$(deb_of "$kbuild" "$kbver")"
		ln -sfn "$k/usr/src/linux-headers-$k" "$KDIR/headers-$k"
	fi

	if [ ! -s "$KDIR/vmlinuz-$k" ]; then
		deb=$(deb_of "$image" "$ver")
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
	fi
done

printf '%s\n' "${KVERS[@]}" > "$KDIR/kvers.tmp" && mv -f "$KDIR/kvers.tmp" "$KDIR/kvers"
say "${KVERS[*]} (build trees $KDIR/headers-<kver>)"
