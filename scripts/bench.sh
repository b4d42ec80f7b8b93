#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# bench.sh - make bench: boot one kernel (BENCH_KVER, default Debian's 6.1)
# with vdi-bench as its only program, then turn its "bench {json}" lines into
# build/bench.json (raw figures, median and spread, and the ratios at top
# level), a table on stdout, and build/bench.svg.  Only same-boot ratios
# mean anything: absolute times under TCG on a shared machine do not.
# Env: B, BENCH_KVER, VDI_BENCH_RUNS, VDI_BENCH_MIB, VDI_SPIN_US (passed to
# the VM).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$ROOT/build}
KVERS=$("$ROOT/scripts/kvers.sh")
KVER=${BENCH_KVER:-${KVERS%%[[:space:]]*}}
LOG=$B/bench-$KVER.log
INITRD=$B/bench-initramfs-$KVER.cpio.gz

for p in python3 gnuplot; do
	command -v "$p" >/dev/null && continue
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq python3 gnuplot-nox >/dev/null
	break
done

# The bench program runs as the image's only "test", with its knobs and no
# time limit worth the name.
rm -rf "$B/bench-tests" && mkdir -p "$B/bench-tests"
cat > "$B/bench-tests/vdi-bench.sh" <<SH
#!/bin/sh
${VDI_SPIN_US:+VDI_SPIN_US=$VDI_SPIN_US }VDI_BENCH_RUNS=${VDI_BENCH_RUNS:-5} VDI_BENCH_MIB=${VDI_BENCH_MIB:-1024} exec /bin/vdi-bench
SH
chmod +x "$B/bench-tests/vdi-bench.sh"
EXTRA_BINS="$B/vdi-bench" TEST_TIMEOUT=3000 "$ROOT/scripts/initramfs.sh" \
	"$KVER" "$B/mod-$KVER/vdi.ko" "$INITRD" "$B/bench-tests/vdi-bench.sh"
VM_TIMEOUT=3600 "$ROOT/scripts/boot.sh" "$KVER" "$B/kernels/vmlinuz-$KVER" \
	"$INITRD" "$LOG"

python3 "$ROOT/scripts/bench-report.py" "$LOG" "$KVER" "$B/bench.json" \
	"$B/bench"
gnuplot "$B/bench.gp"
echo "bench: wrote $B/bench.json and $B/bench.svg"
