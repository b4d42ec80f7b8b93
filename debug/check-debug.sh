#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# debug/check-debug.sh TEST... - the body of "make check-debug" (mk/debug.mk):
#
#   1. the debug kernel (debug/build-kernel.sh; cached in $B/debug-kernel)
#   2. vdi.ko built against it, W=1 (scripts/kbuild.sh, KHDR=that tree)
#   3. an initramfs with every TEST program that exists (scripts/initramfs.sh:
#      the static ABI tests, run by the kselftest runner with the limit of
#      DEBUG_TEST_TIMEOUT instead of selftests/settings', libvdi's dynamic
#      tests with their libraries,
#      libvdi's threaded tests built with ThreadSanitizer, tsan-*: a TSan
#      report makes the program exit 66, so the test fails)
#   4. boot it under qemu TCG (scripts/boot.sh) with the long versions of the
#      stress tests (VDI_STRESS=long on the kernel command line reaches the
#      tests as environment through /init) and kasan_multi_shot
#   5. judge the log (scripts/tap-summary.sh, B=$B/debug): every test result,
#      /init's rmmod, kmemleak, dmesg (KASAN, lockdep, UBSAN, sleeping in
#      atomic, WARN, oops) and taint checks; the last line of output is
#      "N passed, N failed"
#
# Results of steps 1-3 are TAP in $B/debug/build.tap (debug.kernel,
# debug.module, debug.selftest.NAME when a test program is missing).
# Env: B  DEBUG_VM_TIMEOUT (s, 1800)  DEBUG_TEST_TIMEOUT (s per test, 600)
#      DEBUG_VM_MEM (MiB, 1024)  DEBUG_STRESS (long)  FUZZ_SEED (random)
#      DEBUG_APPEND (more kernel command line)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$ROOT/build}
S=$ROOT/scripts
DK=${DK:-$B/debug-kernel}
D=$B/debug
mkdir -p "$D"
rm -f "$D"/vm-*.log "$D"/vm-*.log.status "$D/build.tap"

T0=$EPOCHREALTIME
secs() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
N=0 RES=()
result() {	# result ok|not-ok NAME [COMMENT]
	N=$((N + 1))
	local l
	if [ "$1" = ok ]; then l="ok $N $2"; else l="not ok $N $2"; fi
	[ -n "${3:-}" ] && l+=" # $3"
	RES+=("$l")
	echo "check-debug: $l"
}
diag() { while IFS= read -r l; do RES+=("# $l"); done; }
write_tap() { { echo "1..$N"; printf '%s\n' "${RES[@]}"; } > "$D/build.tap"; }
summary() {
	write_tap
	echo "check-debug: kernel ${KBUILD_S:-?} s, module ${MBUILD_S:-?} s, VM ${VM_S:-?} s, total $(secs "$T0") s"
	B=$D "$S/tap-summary.sh" ${KVER:+"$KVER"}
	exit $?
}

# ---------------------------------------------------------------- 1. kernel
t0=$EPOCHREALTIME
if B=$B DK=$DK "$ROOT/debug/build-kernel.sh"; then
	KVER=$(cat "$DK/release")
	KBUILD_S=$(secs "$t0")
	result ok debug.kernel "$KVER, $KBUILD_S s"
else
	KBUILD_S=$(secs "$t0")
	result not-ok debug.kernel "debug/build-kernel.sh failed"
	tail -n 30 "$DK/build.log" 2>/dev/null | diag
	KVER=
	summary
fi

# ---------------------------------------------------------------- 2. module
t0=$EPOCHREALTIME
MOD=$D/mod
if KHDR=$DK/linux-source-6.1 "$S/kbuild.sh" "$KVER" "$MOD" W=1 > "$D/module.log" 2>&1 &&
   [ -f "$MOD/vdi.ko" ]; then
	MBUILD_S=$(secs "$t0")
	vm=$(modinfo -F vermagic "$MOD/vdi.ko" 2>/dev/null)
	if [ "${vm%% *}" = "$KVER" ]; then
		result ok debug.module "vermagic '$vm', $MBUILD_S s"
	else
		result not-ok debug.module "vermagic '$vm', expected $KVER"
	fi
else
	MBUILD_S=$(secs "$t0")
	result not-ok debug.module "module build failed"
	tail -n 30 "$D/module.log" | diag
	KVER=
	summary
fi

# ---------------------------------------------------------------- 3. initramfs
TESTS=()
for t in "$@"; do
	if [ -x "$t" ]; then
		TESTS+=("$t")
	else
		result not-ok "debug.selftest.${t##*/}" "not built (see make check's build results)"
	fi
done
if ! TEST_TIMEOUT=${DEBUG_TEST_TIMEOUT:-600} KSFT_TIMEOUT=${DEBUG_TEST_TIMEOUT:-600} \
	"$S/initramfs.sh" "$KVER" "$MOD/vdi.ko" \
	"$D/initramfs.cpio.gz" "${TESTS[@]}" > "$D/initramfs.log" 2>&1; then
	result not-ok debug.initramfs "scripts/initramfs.sh failed"
	diag < "$D/initramfs.log"
	KVER=
	summary
fi
rm -rf "$B/initramfs-$KVER"	# initramfs.sh's staging dir

# ---------------------------------------------------------------- 4. boot
SEED=${FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
APPEND="kasan_multi_shot log_buf_len=16M VDI_STRESS=${DEBUG_STRESS:-long} VDI_FUZZ_SEED=$SEED ${DEBUG_APPEND:-}"
echo "check-debug: booting $KVER ($APPEND); rerun the same fuzzing with FUZZ_SEED=$SEED"
t0=$EPOCHREALTIME
VM_TIMEOUT=${DEBUG_VM_TIMEOUT:-1800} VM_MEM=${DEBUG_VM_MEM:-1024} VM_SMP=2 \
	VM_APPEND="$APPEND" "$S/boot.sh" "$KVER" "$DK/bzImage" "$D/initramfs.cpio.gz" "$D/vm-$KVER.log"
VM_S=$(secs "$t0")
summary
