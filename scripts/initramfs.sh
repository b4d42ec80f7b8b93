#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# initramfs.sh KVER KO OUT.cpio.gz [TEST...] - the test VM's initramfs:
#   /bin/busybox (static; /init installs the applet links), /init
#   (scripts/vm-init.sh), /dev/console, /etc/{passwd,group,rig.conf},
#   /vdi.ko, /lib/modules/KVER/extra/vdi.ko + modules.dep(.bin) (for
#   modprobe / libkmod), every TEST program of the project in /tests, and the
#   kernel tests (vdi_*_test) in /kselftest, run by the kselftest runner (below).
# Env: B  TEST_TIMEOUT (s per project test program, 120)
#      KSFT_DIR (the kselftest framework: <linux-source-6.1>/tools/testing/
#        selftests, default $B/ksrc/...)  KSFT_TIMEOUT (s per kernel test
#        program, instead of the timeout of selftests/settings)
#      EXTRA_BINS (programs copied to /bin, not run: demo/bench tools)
#      EXTRA_FILES (files or directories copied into /files by basename:
#        make vm-run's FILES)  VM_RUN_CMD (its text is /etc/vm-run.cmd: the
#        command make vm-run runs; mk/vm-run.mk)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$ROOT/build}
[ $# -ge 3 ] || { echo "usage: $0 KVER KO OUT [TEST...]" >&2; exit 2; }
KVER=$1 KO=$2 OUT=$3; shift 3
BUSYBOX=${BUSYBOX:-/bin/busybox}
S=$B/initramfs-$KVER	# staging dir

[ -f "$KO" ] || { echo "initramfs: $KO missing" >&2; exit 1; }
if ldd "$BUSYBOX" >/dev/null 2>&1; then	# ldd fails on static programs
	echo "initramfs: $BUSYBOX is not static (install busybox-static)" >&2; exit 1
fi

rm -rf "$S"
mkdir -p "$S"/{bin,dev,etc,proc,sys,tmp,root,tests,lib/modules/"$KVER"/extra}
cp "$BUSYBOX" "$S/bin/busybox"
cp "$ROOT/scripts/vm-init.sh" "$S/init"
chmod 755 "$S/init"
if [ "$(id -u)" = 0 ]; then	# /init reopens /dev/console after devtmpfs anyway
	mknod -m 600 "$S/dev/console" c 5 1
	mknod -m 666 "$S/dev/null" c 1 3
fi

cat > "$S/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$S/etc/group" <<'G'
root:x:0:
nogroup:x:65534:
G
cat > "$S/etc/rig.conf" <<C
RIG_KVER='$KVER'
RIG_TEST_TIMEOUT=${TEST_TIMEOUT:-120}
C

# the module, without debug info (kallsyms symbolizes traces anyway)
strip --strip-debug -o "$S/vdi.ko" "$KO"
cp "$S/vdi.ko" "$S/lib/modules/$KVER/extra/vdi.ko"
echo "extra/vdi.ko" > "$S/lib/modules/$KVER/modules.order"
touch "$S/lib/modules/$KVER/modules.builtin" "$S/lib/modules/$KVER/modules.builtin.modinfo"
depmod -b "$S" "$KVER"

# The kernel ABI tests (vdi_*_test: selftests/Makefile's TEST_GEN_PROGS, the
# kselftest target "vdi") go into /kselftest as kselftest_install ("make -C
# tools/testing/selftests TARGETS=vdi install") lays them out:
# run_kselftest.sh and kselftest/ (runner.sh...) of the framework,
# kselftest-list.txt ("vdi:<program>" for each one given here), vdi/ with the
# programs and selftests/config and settings.  The others go into /tests.
KSFT_PROGS=()
for t in "$@"; do
	case ${t##*/} in
	vdi_*_test) KSFT_PROGS+=("$t") ;;
	*) cp "$t" "$S/tests/" ;;
	esac
done
KSFT_TIMEOUT_BIN=
if [ ${#KSFT_PROGS[@]} -gt 0 ]; then
	F=${KSFT_DIR:-$B/ksrc/tools/testing/selftests}
	K=$S/kselftest
	if [ ! -f "$F/run_kselftest.sh" ] || [ ! -f "$F/kselftest/runner.sh" ]; then
		echo "initramfs: no kselftest framework in $F (run scripts/ksrc.sh)" >&2; exit 1
	fi
	mkdir -p "$K/kselftest" "$K/vdi"
	cp "$F/run_kselftest.sh" "$K/"
	cp "$F/kselftest/runner.sh" "$F/kselftest/prefix.pl" "$F/kselftest/module.sh" "$K/kselftest/"
	cp "$ROOT/selftests/config" "$ROOT/selftests/settings" "$K/vdi/"
	if [ -n "${KSFT_TIMEOUT:-}" ]; then
		[[ $KSFT_TIMEOUT =~ ^[1-9][0-9]*$ ]] ||
			{ echo "initramfs: KSFT_TIMEOUT=$KSFT_TIMEOUT: not a number of seconds" >&2; exit 1; }
		grep -q '^timeout=' "$K/vdi/settings" ||
			{ echo "initramfs: selftests/settings has no timeout= line" >&2; exit 1; }
		sed -i "s/^timeout=.*/timeout=$KSFT_TIMEOUT/" "$K/vdi/settings"
	fi
	for t in "${KSFT_PROGS[@]}"; do
		cp "$t" "$K/vdi/"
		echo "vdi:${t##*/}"
	done > "$K/kselftest-list.txt"
	# The runner limits each program with "/usr/bin/timeout --foreground",
	# which busybox's timeout lacks (without it, it would run them with no
	# limit): the host's, from coreutils, with its libraries.  It needs
	# nothing else busybox lacks: without /usr/bin/perl it prefixes the
	# programs' output with sed.
	KSFT_TIMEOUT_BIN=/usr/bin/timeout
	"$KSFT_TIMEOUT_BIN" --foreground 5 true ||
		{ echo "initramfs: $KSFT_TIMEOUT_BIN has no --foreground (coreutils' timeout is needed)" >&2; exit 1; }
	mkdir -p "$S/usr/bin"
	cp "$KSFT_TIMEOUT_BIN" "$S/usr/bin/timeout"
fi
for x in ${EXTRA_BINS:-}; do cp "$x" "$S/bin/"; done
mkdir -p "$S/files"
for x in ${EXTRA_FILES:-}; do cp -R -L "$x" "$S/files/"; done
if [ -n "${VM_RUN_CMD+set}" ]; then printf '%s\n' "$VM_RUN_CMD" > "$S/etc/vm-run.cmd"; fi

# Dynamically linked programs (libvdi's tests, the tools) get their shared
# libraries at the same paths; libvdi.so.1 from the build goes to the
# loader's multiarch directory.
copy_libs() {
	local lib dest
	LD_LIBRARY_PATH=$B ldd "$1" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }
		$1 ~ /^\// { print $1 }' | while read -r lib; do
		case $lib in
		"$B"/*) dest=/usr/lib/x86_64-linux-gnu/${lib##*/} ;;
		*) dest=$lib ;;
		esac
		[ -e "$S$dest" ] && continue
		mkdir -p "$S${dest%/*}"
		cp -L "$lib" "$S$dest"
	done
}
for f in "$@" ${EXTRA_BINS:-} ${EXTRA_FILES:-} $KSFT_TIMEOUT_BIN; do
	if [ -f "$f" ] && ldd "$f" >/dev/null 2>&1; then copy_libs "$f"; fi
done

(cd "$S" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -1 > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "initramfs: $OUT ($(du -k "$OUT" | cut -f1) KiB, $(($# - ${#KSFT_PROGS[@]})) test programs, ${#KSFT_PROGS[@]} kernel tests)"
