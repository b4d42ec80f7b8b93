#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# bench.sh - make bench: boot one kernel (BENCH_KVER, default Debian's 6.1)
# and run, in that one boot, vdi-bench, then the main job against cp
# (bench/mainjob.sh), then the profiles (bench/profile.sh: perf); turn the
# "bench {json}" lines into build/bench.json (raw figures, median and
# spread, and the ratios at top level), a table on stdout, and
# build/bench.svg; fold the profiles into build/flame-*.svg and their top
# entries (scripts/flamegraph.py).  Only same-boot ratios mean anything:
# absolute times under TCG on a shared machine do not.
# Env: B, BENCH_KVER, VDI_BENCH_RUNS, VDI_BENCH_MIB, VDI_SPIN_US (passed to
# the VM), BENCH_MEM (the VM's MiB, 3072: the main job keeps its 256 MiB
# source, a backup and a restored copy on tmpfs), BENCH_PROFILE (0: no
# profiles), MAINJOB_MIB (256), MAINJOB_ALT (a directory with another
# build's vdi-engine and vdi-client, e.g. from before a change: timed in
# the same runs, figures mainjob_alt_*; bench/mainjob.sh).
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
# The main job after it (the tests run in name order), then the profiles.
ALT_FILES=
if [ -n "${MAINJOB_ALT:-}" ]; then
	for p in vdi-engine vdi-client; do
		[ -x "$MAINJOB_ALT/$p" ] || { echo "bench: MAINJOB_ALT: no $MAINJOB_ALT/$p" >&2; exit 1; }
	done
	ALT_FILES=$(cd "$MAINJOB_ALT" && pwd)
fi
cat > "$B/bench-tests/vdi-mainjob.sh" <<SH
#!/bin/sh
${ALT_FILES:+MAINJOB_ALT=/files/${ALT_FILES##*/} }VDI_BENCH_RUNS=${VDI_BENCH_RUNS:-5} MAINJOB_MIB=${MAINJOB_MIB:-256} exec /bin/mainjob.sh
SH
# The host's programs the VM's jobs use, with their libraries, into /files
# (HOSTBIN): coreutils' cp (the cp users run: busybox's copies 4 KiB at a
# time) and date (nanoseconds), diffutils' cmp (busybox's compares a byte
# at a time), and perf for the profiles.
HOST_FILES=
for p in cp date cmp; do
	f=$(command -v "$p") || { echo "bench: no $p on this machine" >&2; exit 1; }
	HOST_FILES="$HOST_FILES $(readlink -f "$f")"
done
TESTS=("$B/bench-tests/vdi-bench.sh" "$B/bench-tests/vdi-mainjob.sh")
PERF=$(command -v perf || true)
# Debian's /usr/bin/perf may be a wrapper script choosing perf_<version>
# by the running kernel: carry the program itself
if [ -n "$PERF" ] && ! ldd "$PERF" >/dev/null 2>&1; then
	PERF=$(printf '%s\n' /usr/bin/perf_[0-9]* | sort -V | tail -n 1)
	[ -x "$PERF" ] || PERF=
fi
if [ "${BENCH_PROFILE:-1}" = 0 ]; then
	echo "bench: BENCH_PROFILE=0: no profiles"
elif [ -z "$PERF" ] || ! "$PERF" version >/dev/null 2>&1; then
	echo "bench: perf is not installed (Debian's linux-perf; scripts/deps.sh installs it): no profiles"
else
	HOST_FILES="$HOST_FILES $(readlink -f "$PERF")"
	cat > "$B/bench-tests/vdi-profile.sh" <<SH
#!/bin/sh
exec /bin/profile.sh
SH
	TESTS+=("$B/bench-tests/vdi-profile.sh")
fi
chmod +x "$B"/bench-tests/*.sh
EXTRA_BINS="$B/vdi-bench $B/tools/vdi-engine $B/tools/vdi-client $B/tools/vdi-gen $ROOT/bench/mainjob.sh $ROOT/bench/profile.sh" \
EXTRA_FILES="$HOST_FILES $ALT_FILES" TEST_TIMEOUT=3000 "$ROOT/scripts/initramfs.sh" \
	"$KVER" "$B/mod-$KVER/vdi.ko" "$INITRD" "${TESTS[@]}"
VM_MEM=${BENCH_MEM:-3072} VM_TIMEOUT=3600 "$ROOT/scripts/boot.sh" "$KVER" \
	"$B/kernels/vmlinuz-$KVER" "$INITRD" "$LOG"

python3 "$ROOT/scripts/bench-report.py" "$LOG" "$KVER" "$B/bench.json" \
	"$B/bench"
gnuplot "$B/bench.gp"
echo "bench: wrote $B/bench.json and $B/bench.svg"
if [ ${#TESTS[@]} = 3 ]; then
	rm -f "$B"/flame-*
	python3 "$ROOT/scripts/flamegraph.py" "$LOG" "$B" ||
		echo "bench: no flame graphs (see the '# profile:' lines of $LOG)"
fi
