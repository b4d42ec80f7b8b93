#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# debug/build-kernel.sh - the small x86_64 debug kernel of "make check-debug"
# (KASAN, lockdep, kmemleak, failslab + fail_page_alloc, UBSAN, DEBUG_LIST,
# DEBUG_ATOMIC_SLEEP), built from Debian's linux-source-6.1 and cached.
#
#   1. extract /usr/src/linux-source-6.1.tar.xz into $DK/linux-source-6.1
#      (once; never into the repository)
#   2. make ARCH=x86_64 tinyconfig + debug/debug.config, olddefconfig, and
#      check that every line of the fragment survived
#   3. make bzImage modules ("modules" writes Module.symvers, which an
#      out-of-tree module build needs)
#   4. $DK/bzImage and $DK/release (the kernel release, "6.1.N-vdi-debug")
#
# Cached: steps 2-3 run again only when the fragment, this script or the
# tarball changed ($DK/.key); kbuild's own incremental build does the rest.
# The tree then doubles as the headers to build vdi.ko against
# (KHDR=$DK/linux-source-6.1 scripts/kbuild.sh).
#
# Env: B (build dir, <repo>/build)  DK ($B/debug-kernel)  JOBS (nproc)
#      KSRC_TARBALL (/usr/src/linux-source-6.1.tar.xz)
# Prints the step timings; the full build output is in $DK/build.log.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$ROOT/build}
DK=${DK:-$B/debug-kernel}
JOBS=${JOBS:-$(nproc)}
TARBALL=${KSRC_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
FRAG=$ROOT/debug/debug.config
K=$DK/linux-source-6.1
LOG=$DK/build.log

say() { echo "debug-kernel: $*"; }
die() { echo "debug-kernel: ERROR: $*" >&2; exit 1; }
secs() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }'; }

[ -f "$TARBALL" ] || die "$TARBALL missing (scripts/deps.sh installs linux-source-6.1)"
for t in make gcc flex bison bc xz cpio; do
	command -v $t >/dev/null || die "$t missing (scripts/deps.sh installs it)"
done
[ -f /usr/include/libelf.h ] || die "libelf-dev missing (ORC unwinder, scripts/deps.sh)"
mkdir -p "$DK"

# ---------------------------------------------------------------- extract
if [ ! -f "$K/Makefile" ]; then
	t0=$EPOCHREALTIME
	say "extracting $TARBALL"
	rm -rf "$K" "$K.tmp"; mkdir -p "$K.tmp"
	# many xz blocks: -T0 decompresses on every core (~2x faster than tar xJ)
	xz -T0 -dc "$TARBALL" | tar -x -C "$K.tmp" --strip-components=1
	[ -f "$K.tmp/Makefile" ] || die "$TARBALL has no top-level Makefile"
	mv "$K.tmp" "$K"
	rm -f "$DK/.key"
	say "extracted in $(secs "$t0")"
fi

key=$( { cat "$FRAG" "$0"; stat -c '%n %s %Y' "$TARBALL"; gcc --version | head -n1; } |
	sha256sum | cut -d' ' -f1)
if [ "$(cat "$DK/.key" 2>/dev/null)" = "$key" ] && [ -s "$DK/bzImage" ] &&
   [ -s "$K/Module.symvers" ] && [ -s "$DK/release" ]; then
	say "cached: $(cat "$DK/release") ($DK/bzImage)"
	exit 0
fi
rm -f "$DK/.key" "$DK/bzImage" "$DK/release"

# LOCALVERSION= on every make: no "+" from a git tree around build/
KMAKE=(make -C "$K" ARCH=x86_64 LOCALVERSION=)

# ---------------------------------------------------------------- configure
t0=$EPOCHREALTIME
: > "$LOG"
"${KMAKE[@]}" -s tinyconfig >>"$LOG" 2>&1		# ARCH=x86_64: else 32-bit
(cd "$K" && ARCH=x86_64 scripts/kconfig/merge_config.sh -m .config "$FRAG") >>"$LOG" 2>&1
"${KMAKE[@]}" -s olddefconfig >>"$LOG" 2>&1
bad=0
while read -r l; do
	case $l in
	CONFIG_*)
		grep -qxF -- "$l" "$K/.config" || { say "config: '$l' not honoured: $(grep "^${l%%=*}=\|^# ${l%%=*} " "$K/.config" || echo unset)"; bad=1; } ;;
	"# CONFIG_"*" is not set")
		s=${l#\# }; s=${s%% *}
		grep -q "^$s=" "$K/.config" && { say "config: $s is still set"; bad=1; } ;;
	esac
done < "$FRAG"
[ $bad = 0 ] || die "the fragment did not survive olddefconfig (see above)"
say "configured in $(secs "$t0")"

# ---------------------------------------------------------------- build
t0=$EPOCHREALTIME
say "building bzImage + modules with $JOBS jobs (log: $LOG)"
if ! "${KMAKE[@]}" -s -j"$JOBS" bzImage modules >>"$LOG" 2>&1; then
	tail -n 40 "$LOG" >&2
	die "kernel build failed"
fi
[ -s "$K/Module.symvers" ] || die "no Module.symvers after the build"
rel=$("${KMAKE[@]}" -s kernelrelease)
cp "$K/arch/x86/boot/bzImage" "$DK/bzImage.tmp" && mv "$DK/bzImage.tmp" "$DK/bzImage"
echo "$rel" > "$DK/release"
echo "$key" > "$DK/.key"
say "built $rel in $(secs "$t0"): bzImage $(stat -c %s "$DK/bzImage") bytes"
