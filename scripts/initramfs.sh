#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# initramfs.sh KVER KO OUT.cpio.gz [TEST...] - the test VM's initramfs:
#   /bin/busybox (static; /init installs the applet links), /init
#   (scripts/vm-init.sh), /dev/console, /etc/{passwd,group,rig.conf},
#   /vdi.ko, /lib/modules/KVER/extra/vdi.ko + modules.dep(.bin) (for
#   modprobe / libkmod), and every TEST program in /tests.
# Env: B  TEST_TIMEOUT (s per test program, 120)
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

for t in "$@"; do cp "$t" "$S/tests/"; done
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
for f in "$@" ${EXTRA_BINS:-} ${EXTRA_FILES:-}; do
	if [ -f "$f" ] && ldd "$f" >/dev/null 2>&1; then copy_libs "$f"; fi
done

(cd "$S" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -1 > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "initramfs: $OUT ($(du -k "$OUT" | cut -f1) KiB, $# test programs)"
