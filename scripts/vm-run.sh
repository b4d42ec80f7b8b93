#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# vm-run.sh KVER KO VMLINUZ - make vm-run (mk/vm-run.mk): boot KVER with the
# module KO loaded, libvdi and the tools in /bin and the files of $FILES in
# /files, run "sh -c $VM_RUN_CMD" there, print its output (stdout and stderr, as
# the VM's console shows them) as it comes, and exit with its status.
#
# Env: VM_RUN_CMD (make vm-run's CMD)  FILES (host paths)  B (build dir)  TOOLS (programs for /bin)
#      LIBVDI_SO  LIBSQLVDI_SO  VM_TIMEOUT, VM_MEM, VM_SMP (scripts/boot.sh)
# The log is $B/vm-run/vm-KVER.log, the status also in $B/vm-run/rc.
# Exit: the command's status; 1 (with a message) if the VM did not get to
# the end of it - a panic, a hang, VM_TIMEOUT.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ $# -eq 3 ] || { echo "usage: $0 KVER KO VMLINUZ" >&2; exit 2; }
KVER=$1 KO=$2 VMLINUZ=$3
RB=${B:?}/vm-run
LOG=$RB/vm-$KVER.log

[ -n "${VM_RUN_CMD:-}" ] || { echo "vm-run: no command: make vm-run CMD='...' [FILES='...']" >&2; exit 2; }
for f in ${FILES:-}; do
	[ -e "$f" ] || { echo "vm-run: FILES: $f: no such file or directory" >&2; exit 2; }
done

# Staged under build/vm-run/, so it never disturbs the tests' initramfs;
# our libraries are copied there for initramfs.sh to find them in "its" $B
# (it resolves each program's libraries with LD_LIBRARY_PATH=$B): libvdi.so.1
# for the tools and programs built with -lvdi, libsqlvdi.so for a binary of
# FILES built against the SQL Server VDI SDK.
mkdir -p "$RB"
rm -f "$RB/rc" "$LOG"
cp "${LIBVDI_SO:?}" "${LIBSQLVDI_SO:?}" "$RB/"
B=$RB EXTRA_BINS="${TOOLS:-}" EXTRA_FILES="${FILES:-}" VM_RUN_CMD=$VM_RUN_CMD \
	"$ROOT/scripts/initramfs.sh" "$KVER" "$KO" "$RB/initramfs-$KVER.cpio.gz" >/dev/null ||
	exit 1

: > "$LOG"
echo "vm-run: booting $KVER in qemu (log $LOG)" >&2
VM_APPEND="RIG_MODE=run" "$ROOT/scripts/boot.sh" "$KVER" "$VMLINUZ" \
	"$RB/initramfs-$KVER.cpio.gz" "$LOG" >/dev/null &
vm=$!
# the lines between the markers, as they come; the end marker may follow
# output that has no newline of its own
tail -n +1 -f --pid=$vm "$LOG" | sed -u -n -e 's/\r$//' \
	-e '/^# vdi-run: begin$/,/# vdi-run: end rc=[0-9]*$/{' \
	-e '/^# vdi-run: begin$/d' -e '/^# vdi-run: end rc=[0-9]*$/d' \
	-e 's/# vdi-run: end rc=[0-9]*$//' -e 'p' -e '}' -e '/Kernel panic/p'
wait $vm

rc=$(tr -d '\r' < "$LOG" | sed -n 's/.*# vdi-run: end rc=\([0-9]*\)$/\1/p' | tail -n 1)
if [ -z "$rc" ]; then
	echo "vm-run: the VM did not get to the end of the command (see $LOG):" >&2
	tr -d '\r' < "$LOG" | tail -n 20 >&2
	exit 1
fi
echo "$rc" > "$RB/rc"
[ "$rc" = 0 ] || echo "vm-run: the command exited with status $rc" >&2
exit "$rc"
