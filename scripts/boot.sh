#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# boot.sh KVER VMLINUZ INITRD LOG - boot the test VM under qemu (TCG: Debian's
# stock kernels hang under KVM on this host) and record its serial console in
# LOG; LOG.status gets "rc=<qemu exit> seconds=<wall> timeout=<limit>".
# Exit 0 if qemu ended by itself (poweroff or panic), 1 on timeout/error;
# whether the tests passed is for scripts/tap-summary.sh to say.
#
# Env: VM_TIMEOUT (s, 900)  VM_MEM (MiB, 1024)  VM_SMP (2)  VM_CPU (max)
#      VM_APPEND (extra kernel command line)  VM_SHELL=1 (interactive)
#
# Command line: quiet keeps the console to errors.  No panic_on_warn and no
# oops=panic: a WARN or an oops fails the run through /init's dmesg and taint
# checks, while the remaining tests still run (an oops kills only the process
# in the faulting syscall).  panic=-1 + -no-reboot make qemu exit at once on a
# real panic (the summary then reports the VM as stopped early);
# tsc=reliable keeps a precise clocksource under TCG; printk.devkmsg=on lets
# /init mark the log.  -cpu max gives the guest SMEP/SMAP, so a stray user
# pointer dereference in the module faults instead of passing silently.
set -uo pipefail

[ $# -eq 4 ] || { echo "usage: $0 KVER VMLINUZ INITRD LOG" >&2; exit 2; }
KVER=$1 KERNEL=$2 INITRD=$3 LOG=$4
VM_TIMEOUT=${VM_TIMEOUT:-900}
APPEND="console=ttyS0 quiet panic=-1 tsc=reliable printk.devkmsg=on ${VM_APPEND:-}"
for f in "$KERNEL" "$INITRD"; do
	[ -f "$f" ] || { echo "boot: $f missing" >&2; exit 1; }
done

# shellcheck disable=SC2054 # commas belong to the -accel option
QEMU=(qemu-system-x86_64 -accel tcg,thread=multi -cpu "${VM_CPU:-max}"
      -smp "${VM_SMP:-2}" -m "${VM_MEM:-1024}"
      -nographic -nodefaults -no-reboot
      -kernel "$KERNEL" -initrd "$INITRD")

if [ "${VM_SHELL:-0}" = 1 ]; then
	echo "boot: $KVER, interactive (Ctrl-A X quits qemu)"
	exec "${QEMU[@]}" -serial mon:stdio -append "$APPEND RIG_MODE=shell"
fi

echo "vm $KVER: booting (log $LOG, limit $VM_TIMEOUT s)"
t0=$EPOCHREALTIME
timeout -k 10 "$VM_TIMEOUT" "${QEMU[@]}" -serial stdio -append "$APPEND" \
	</dev/null >"$LOG" 2>&1
rc=$?
dt=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
echo "rc=$rc seconds=$dt timeout=$VM_TIMEOUT" > "$LOG.status"
case $rc in
0)	echo "vm $KVER: finished in $dt s"; exit 0 ;;
124|137) echo "vm $KVER: TIMEOUT: qemu killed after $VM_TIMEOUT s (see $LOG)" ;;
*)	echo "vm $KVER: qemu failed (exit $rc) after $dt s (see $LOG)"; tail -n 5 "$LOG" ;;
esac
exit 1
