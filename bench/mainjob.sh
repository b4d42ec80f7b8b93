#!/bin/sh
# shellcheck shell=dash
# SPDX-License-Identifier: GPL-2.0
# mainjob.sh - the job users time, in the bench VM (make bench,
# scripts/bench.sh): a MAINJOB_MIB (256) MiB file on tmpfs backed up with
# "vdi-engine backup -i FILE" into "vdi-client backup -d DIR" (1 device,
# then 4), restored from there with "vdi-engine restore -o FILE", against
# cp of the same file, tmpfs to tmpfs.
#
#   mainjob.sh             every job VDI_BENCH_RUNS (5) times, interleaved
#                          (cp, backup and restore on 1 device, on 4,
#                          busybox cp, cat) so that each cp and the jobs it is
#                          set against see the same machine; prints one
#                          "bench {json}" line per figure as vdi-bench does
#                          (median, min, max, runs), then TAP
#   mainjob.sh --prepare   only make the source file
#   mainjob.sh --one JOB   JOB once (for bench/profile.sh's perf): cp,
#                          busybox-cp, cat, backup1, backup4, restore1,
#                          restore4 (restoreN needs backupN's files)
#   mainjob.sh --check JOB what --one JOB made is right (then removes it)
#   mainjob.sh --clean     remove the work directory
#
# Every restore is compared with the source (cmp): a run that is fast but
# wrong fails the bench instead of counting.  cp, cmp and date are the
# host's (GNU coreutils and diffutils, in $HOSTBIN with their libraries):
# busybox's cp copies 4 KiB at a time, its cmp a byte at a time, and its
# date has no nanoseconds.  busybox cp and cat are measured as context.
#
# Figures (seconds unless said): mainjob_cp_s, mainjob_busybox_cp_s,
# mainjob_cat_s, mainjob_{backup,restore}_{1,4}dev_s, and the ratios of
# each run's cp over its job, mainjob_{backup,restore}_vs_cp_{1,4}dev (x,
# higher is better: > 1 means the job beat cp).
#
# Env: VDI_BENCH_RUNS (5)  MAINJOB_MIB (256)  HOSTBIN (/files)
#      MAINJOB_DIR (/tmp/mainjob: on tmpfs, as the VM's /tmp is)
#      MAINJOB_ALT (a directory with another vdi-engine and vdi-client, e.g.
#        a build before a change: each run also times their backups and
#        restores, as jobs alt-backup1 ..., figures mainjob_alt_*: a
#        before/after comparison in one boot)
set -u

RUNS=${VDI_BENCH_RUNS:-5}
MIB=${MAINJOB_MIB:-256}
HOSTBIN=${HOSTBIN:-/files}
W=${MAINJOB_DIR:-/tmp/mainjob}
SRC=$W/src
SET=mainjob
ALT=${MAINJOB_ALT:-}
ENGINE=vdi-engine CLIENT=vdi-client

say() { echo "# mainjob: $*"; }
die() { say "FAILED: $*"; echo "not ok 1 mainjob # $*"; echo "1..1"; exit 1; }

# seconds, with nanoseconds from GNU date, else /proc/uptime's 10 ms
if [ -x "$HOSTBIN/date" ]; then
	now() { "$HOSTBIN/date" +%s.%N; }
else
	now() { cut -d' ' -f1 /proc/uptime; }
fi

# the device names of an N-device set: mainjob mainjob-2 ...
devices() {
	n=1 d=$SET
	while [ $n -lt "$1" ]; do n=$((n + 1)); d="$d $SET-$n"; done
	echo "$d"
}

# show a tool's log (its stderr) after a failure
show() { [ -s "$1" ] && sed "s|^|#   ${1##*/}: |" "$1"; return 0; }

prepare() {
	mkdir -p "$W" || die "cannot make $W"
	for p in cp cmp; do
		[ -x "$HOSTBIN/$p" ] || die "$HOSTBIN/$p missing: the host's $p is not in the image"
	done
	if [ ! -f "$SRC" ] || [ "$(stat -c %s "$SRC")" != $((MIB << 20)) ]; then
		vdi-gen "${MIB}M" > "$SRC" 2> /dev/null || die "vdi-gen ${MIB}M"
	fi
}

# ---- the jobs: each leaves its output for check(), which removes it
job_cp() { "$HOSTBIN/cp" "$SRC" "$W/cp.out"; }
job_busybox_cp() { busybox cp "$SRC" "$W/cp.out"; }
job_cat() { cat "$SRC" > /dev/null; }

# backup N: the client first (it creates the set), the engine polls for it
job_backup() {
	# shellcheck disable=SC2046 # devices is a list
	set -- $(devices "$1")
	rm -rf "$W/bk$#" && mkdir -p "$W/bk$#"
	$CLIENT backup -t 60 -d "$W/bk$#" "$@" 2> "$W/client.log" &
	cpid=$!
	$ENGINE backup -t 60 -i "$SRC" "$@" 2> "$W/engine.log"
	erc=$?
	wait $cpid
	crc=$?
	[ $erc = 0 ] && [ $crc = 0 ]
}

job_restore() {
	# shellcheck disable=SC2046 # devices is a list
	set -- $(devices "$1")
	$CLIENT restore -t 60 -d "$W/bk$#" "$@" 2> "$W/client.log" &
	cpid=$!
	$ENGINE restore -t 60 -o "$W/restored" "$@" 2> "$W/engine.log"
	erc=$?
	wait $cpid
	crc=$?
	[ $erc = 0 ] && [ $crc = 0 ]
}

# run JOB: the job's command by its name
run() {
	case $1 in
	alt-*)
		ENGINE=$ALT/vdi-engine CLIENT=$ALT/vdi-client run "${1#alt-}"
		return ;;
	cp) job_cp ;;
	busybox-cp) job_busybox_cp ;;
	cat) job_cat ;;
	backup1) job_backup 1 ;;
	backup4) job_backup 4 ;;
	restore1) job_restore 1 ;;
	restore4) job_restore 4 ;;
	*) die "no job '$1'" ;;
	esac
}

# check JOB: its output is the source, byte for byte; then remove it
check() {
	case $1 in
	alt-*) check "${1#alt-}" ;;
	cp|busybox-cp)
		"$HOSTBIN/cmp" "$SRC" "$W/cp.out" || die "$1: the copy differs from the source"
		rm -f "$W/cp.out" ;;
	backup*)
		n=${1#backup}
		# the restore that follows compares the bytes; here only
		# that the files are there, with at least the source's size
		[ "$(stat -c %s "$W/bk$n"/*.vdi | awk '{ s += $1 } END { print s + 0 }')" -gt $((MIB << 20)) ] ||
			die "$1: the backup files hold less than the source" ;;
	restore*)
		"$HOSTBIN/cmp" "$SRC" "$W/restored" ||
			die "$1: the restored file differs from the source"
		rm -f "$W/restored" ;;
	esac
}

# timed JOB: run it once, check it; its seconds in $T
timed() {
	t0=$(now)
	if ! run "$1"; then
		say "$1 failed:"
		show "$W/client.log"; show "$W/engine.log"
		die "$1 failed"
	fi
	t1=$(now)
	check "$1"
	T=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
}

# report NAME UNIT V1 V2 ...: the "bench {json}" line of vdi-bench
report() {
	name=$1 unit=$2
	shift 2
	printf '%s\n' "$@" | sort -g | awk -v name="$name" -v unit="$unit" -v runs="$*" '
		{ v[NR] = $1 }
		END {
			med = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			gsub(/ /, ",", runs)
			printf "bench {\"name\":\"%s\",\"unit\":\"%s\",\"median\":%.6g,\"min\":%.6g,\"max\":%.6g,\"runs\":[%s]}\n",
			       name, unit, med, v[1], v[NR], runs
		}'
}

# ratio A B: A / B
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f\n", a / b }'; }

case ${1:-} in
--prepare) prepare; exit 0 ;;
--clean) rm -rf "$W"; exit 0 ;;
--one)
	[ $# = 2 ] || die "usage: $0 --one JOB"
	prepare
	run "$2" || { show "$W/client.log"; show "$W/engine.log"; die "$2 failed"; }
	exit 0 ;;
--check)
	[ $# = 2 ] || die "usage: $0 --check JOB"
	check "$2"
	exit 0 ;;
"") ;;
*) die "usage: $0 [--prepare | --one JOB | --check JOB | --clean]" ;;
esac

prepare
echo "mainjob-start {\"runs\":$RUNS,\"mib\":$MIB,\"cpus\":$(nproc)}"
# T_<job>: its times, R_<job>: each run's cp time over the job's
JOBS="cp backup1 restore1 backup4 restore4 busybox-cp cat"
RATIOS="backup1 restore1 backup4 restore4"
if [ -n "$ALT" ]; then
	JOBS="$JOBS alt-backup1 alt-restore1 alt-backup4 alt-restore4"
	RATIOS="$RATIOS alt_backup1 alt_restore1 alt_backup4 alt_restore4"
fi
for v in $(echo "$JOBS" | tr - _); do eval "T_$v=''"; done
for v in $RATIOS; do eval "R_$v=''"; done
i=0
while [ $i -lt "$RUNS" ]; do
	i=$((i + 1))
	line=""
	for j in $JOBS; do
		timed "$j"
		v=$(echo "$j" | tr - _)
		eval "T_$v=\"\$T_$v $T\" last_$v=$T"
		line="$line $j=${T}s"
	done
	for j in $RATIOS; do
		eval "R_$j=\"\$R_$j \$(ratio \$last_cp \$last_$j)\""
	done
	say "run $i:$line"
	rm -rf "$W/bk1" "$W/bk4"
done

# shellcheck disable=SC2086,SC2154 # lists of numbers, set by eval
{
	report mainjob_cp_s s $T_cp
	report mainjob_busybox_cp_s s $T_busybox_cp
	report mainjob_cat_s s $T_cat
	report mainjob_backup_1dev_s s $T_backup1
	report mainjob_restore_1dev_s s $T_restore1
	report mainjob_backup_4dev_s s $T_backup4
	report mainjob_restore_4dev_s s $T_restore4
	report mainjob_backup_vs_cp_1dev x $R_backup1
	report mainjob_restore_vs_cp_1dev x $R_restore1
	report mainjob_backup_vs_cp_4dev x $R_backup4
	report mainjob_restore_vs_cp_4dev x $R_restore4
	if [ -n "$ALT" ]; then
		report mainjob_alt_backup_1dev_s s $T_alt_backup1
		report mainjob_alt_restore_1dev_s s $T_alt_restore1
		report mainjob_alt_backup_4dev_s s $T_alt_backup4
		report mainjob_alt_restore_4dev_s s $T_alt_restore4
		report mainjob_alt_backup_vs_cp_1dev x $R_alt_backup1
		report mainjob_alt_restore_vs_cp_1dev x $R_alt_restore1
		report mainjob_alt_backup_vs_cp_4dev x $R_alt_backup4
		report mainjob_alt_restore_vs_cp_4dev x $R_alt_restore4
	fi
}
rm -rf "$W"
echo "1..1"
echo "ok 1 mainjob"
