#!/bin/sh
# shellcheck shell=dash
# SPDX-License-Identifier: GPL-2.0
# profile.sh - where the time of make bench's jobs goes, in the bench VM:
# each job of bench/mainjob.sh once, and one short vdi-bench, under
#     perf record -a -e cpu-clock -g
# (cpu-clock is a software event: qemu's TCG gives the guest no hardware
# counters; -a so that the idle CPU shows, as "swapper").  The samples go
# through perf script, gzip and base64 onto the console between the lines
#     # perf-script: begin NAME
#     # perf-script: end NAME
# and scripts/flamegraph.py folds them on the host into build/flame-NAME.svg
# and the top entries.  The profiled runs are not the timed ones (those are
# mainjob.sh's and vdi-bench's, without perf).
#
# perf is the host's (Debian's linux-perf, $HOSTBIN/perf with its
# libraries); without it this says so and skips.
#
# Env: HOSTBIN (/files)  PROFILE_HZ (sampling rate, 999)  PROFILE_JOBS
#      (default: backup1 restore1 backup4 restore4 cp; alt-backup1 ... with
#      MAINJOB_ALT, see mainjob.sh)  PROFILE_BENCH_MIB
#      (the vdi-bench run's VDI_BENCH_MIB, 256; 0: no vdi-bench profile)
set -u

HOSTBIN=${HOSTBIN:-/files}
PERF=$HOSTBIN/perf
HZ=${PROFILE_HZ:-999}
JOBS=${PROFILE_JOBS:-backup1 restore1 backup4 restore4 cp}
BENCH_MIB=${PROFILE_BENCH_MIB:-256}
W=${PROFILE_DIR:-/tmp/profile}

say() { echo "# profile: $*"; }

if [ ! -x "$PERF" ]; then
	say "no perf in the image (install linux-perf on the host: scripts/deps.sh): no profiles"
	echo "1..0 # SKIP no perf"
	exit 0
fi
mkdir -p "$W"
# perf's build-id cache and config under a writable HOME
export HOME=$W

# record NAME CMD...: CMD under perf, its samples onto the console
record() {
	name=$1
	shift
	if ! "$PERF" record -q -a -e cpu-clock -F "$HZ" -g -N -o "$W/perf.data" \
		-- "$@" > "$W/cmd.out" 2>&1; then
		say "$name: perf record or the command failed:"
		sed 's/^/#   /' "$W/cmd.out" | tail -n 20
		return 1
	fi
	echo "# perf-script: begin $name"
	"$PERF" script -i "$W/perf.data" -F comm,tid,cpu,time,ip,sym,dso 2> "$W/script.err" |
		gzip -c | base64
	echo "# perf-script: end $name"
	[ -s "$W/script.err" ] && sed 's/^/#   perf script: /' "$W/script.err" | head -n 5
	rm -f "$W/perf.data"
	return 0
}

fail=0
mainjob.sh --prepare || exit 1
for j in $JOBS; do
	case $j in	# a restore needs its backup's files: made unprofiled
	restore*|alt-restore*)
		mainjob.sh --one "$(echo "$j" | sed 's/restore/backup/')" > /dev/null ||
			fail=1 ;;
	esac
	# the job alone under perf; its check (cmp) after
	record "$j" mainjob.sh --one "$j" || fail=1
	mainjob.sh --check "$j" || fail=1
done
mainjob.sh --clean
if [ "$BENCH_MIB" != 0 ]; then
	# its figures go to a file: they must not mix with the timed run's
	record vdi-bench env VDI_BENCH_RUNS=1 VDI_BENCH_MIB="$BENCH_MIB" vdi-bench ||
		fail=1
fi
rm -rf "$W"
echo "1..1"
if [ $fail = 0 ]; then echo "ok 1 profile"; else echo "not ok 1 profile"; fi
