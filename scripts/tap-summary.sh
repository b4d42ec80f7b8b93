#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# tap-summary.sh KVER... - print the results of "make check" and judge them.
#
# Reads $B/{lint,build,dkms,install,man,sdk,kselftest,vm-run,host}.tap (those present) and, per
# kernel, the VM's serial log $B/vm-KVER.log (+ .status from scripts/boot.sh).  Prints each
# section's TAP under a "# lint" / "# build" / "# kernel KVER" header, then
# EXACTLY one last line
#   N passed, N failed
# over everything.  Counted: top-level TAP result lines ("ok N ..." /
# "not ok N ..." at column 0) of the lint, of each test program of /tests,
# and of the VM's /init ("rig.*"); and, between /init's "# ==== kselftest"
# markers, the results of each kernel test program run by the kselftest
# runner, which nests them as "# ok N ..." lines under its own "ok N
# selftests: vdi: <program>".  That line of the runner counts only when it
# says more than the program's results: a failure they do not explain (a
# timeout, a signal, an exit status other than the harness's 1 for "a test
# failed"), or a program that reported no result.  "ok N # SKIP" counts as
# passed (and is reported as skipped).  Added as failures here:
#   - a program of /tests that exited non-zero (not 4 = all skipped, not a
#     signal: /init reports those) without printing any "not ok";
#   - a test program whose plan "1..N" promised more results than it printed
#     (unless it was killed: that is its failure);
#   - a runner whose plan promised more programs than it reported;
#   - a VM that did not reach the end of /init (panic, hang, timeout), or
#     produced no result at all.
# Exit status: 0 only if nothing failed and every kernel produced results.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$ROOT/build}
TOTAL_P=0 TOTAL_F=0 BAD=0

# summarize FILE LABEL VM: print the TAP; sets P F S (passed, failed,
# skipped) and INCOMPLETE (0 no, 1 VM stopped early, 2 VM never ran /init)
summarize() {
	local out
	out=$(tr -d '\r' < "$1" | awk -v label="$2" -v vm="$3" '
	function result(line) {
		if (line ~ /^not ok/) { f++; if (cur != "") cf++ }
		else { p++; if (line ~ /# *[Ss][Kk][Ii][Pp]/) s++ }
		if (cur != "") cr++
	}
	function synth(msg) { print "not ok - " msg; f++ }
	BEGIN { p = f = s = 0; started = !vm; done = 0; cur = ""; any = 0; ksft = 0 }
	vm && /# vdi-rig: start/ { started = 1; sub(/^.*# vdi-rig: start/, "# vdi-rig: start") }
	!started { next }
	{ print }
	# ---- the kernel tests, through the kselftest runner
	/^# ==== kselftest: begin$/ { ksft = 1; kplan = -1; kdone = 0; next }
	/^# ==== kselftest: end rc=/ {
		if (kplan > kdone)
			synth("rig.kselftest # the runner planned " kplan " programs, reported " kdone)
		ksft = 0; cur = ""; next
	}
	ksft && cur == "" && /^1\.\.[0-9]+$/ { kplan = substr($1, 4) + 0; next }
	ksft && /^# selftests: [^ ]+: [^ ]+$/ { cur = $4; plan = -1; cr = 0; cf = 0; next }
	ksft && cur != "" && /^# 1\.\.[0-9]+/ { plan = substr($2, 4) + 0; next }
	ksft && cur != "" && /^# (not )?ok [0-9]+( |$)/ { result(substr($0, 3)); any = 1; next }
	ksft && /^(not )?ok [0-9]+ selftests: / {
		kdone++; any = 1
		killed = $0 ~ /# TIMEOUT|# exit=(1(29|[3-9][0-9])|2[0-9][0-9])$/
		if ($1 == "not") {
			if (cf == 0 || $0 !~ /# exit=1$/) f++
		} else if (cr == 0) {
			p++; if ($0 ~ /# *[Ss][Kk][Ii][Pp]/) s++
		}
		if (!killed && plan > cr)
			synth("selftests: vdi: " cur " # planned " plan " tests, reported " cr)
		cur = ""; next
	}
	ksft { next }
	# ---- the programs of /tests, between the markers of /init
	/^# ==== selftest .*: begin$/ {
		cur = $4; sub(/:$/, "", cur); plan = -1; cr = 0; cf = 0; next
	}
	/^# ==== selftest .*: end rc=/ {
		rc = $0; sub(/.* rc=/, "", rc); sub(/ .*/, "", rc); rc += 0
		if (rc != 0 && rc != 4 && rc < 128 && cf == 0)
			synth("rig.selftest." cur " # exited with status " rc " but reported no failing test")
		if (rc < 128 && plan > cr)
			synth("rig.selftest." cur " # planned " plan " tests, reported " cr)
		cur = ""; next
	}
	cur != "" && /^1\.\.[0-9]+/ { plan = substr($1, 4) + 0 }
	/^(not )?ok [0-9]+( |$)/ { result($0); any = 1 }
	/# vdi-rig: done/ { done = 1 }
	END {
		if (vm && !started)
			synth("vm # the VM never reached /init (see the log tail below)")
		else if (vm && !done)
			synth("vm # the VM stopped before /init finished" (cur != "" ? " (while running " cur ")" : "") " - panic, hang or timeout")
		if (!any)
			synth(label " # no test results at all")
		# incomplete: 0 no, 1 stopped early (log printed above), 2 no /init
		printf "@@rig-summary@@ %d %d %d %d\n", p, f, s, (vm && !started) || !any ? 2 : (vm && !done)
	}')
	printf '%s\n' "$out" | grep -v '^@@rig-summary@@ '
	read -r _ P F S INCOMPLETE < <(printf '%s\n' "$out" | grep '^@@rig-summary@@ ' | tail -n1)
}

for sec in lint build dkms install man sdk kselftest vm-run host; do
	[ -f "$B/$sec.tap" ] || continue
	echo "# $sec"
	summarize "$B/$sec.tap" "$sec" 0
	echo "# $sec: $P passed, $F failed"
	TOTAL_P=$((TOTAL_P + P)) TOTAL_F=$((TOTAL_F + F))
done

for k in "$@"; do
	log=$B/vm-$k.log
	echo "# kernel $k"
	if [ ! -f "$log" ]; then
		echo "not ok - vm # no VM log $log: the module, tests or initramfs did not build (see above)"
		TOTAL_F=$((TOTAL_F + 1)); BAD=1
		echo "# kernel $k: 0 passed, 1 failed"
		continue
	fi
	summarize "$log" "kernel $k" 1
	status=$(cat "$log.status" 2>/dev/null || true)
	if [ "$INCOMPLETE" != 0 ]; then
		BAD=1
		case " $status" in
		*" rc=124 "*|*" rc=137 "*) echo "# qemu was killed at the time limit (${status##*timeout=} s)" ;;
		esac
		if [ "$INCOMPLETE" = 2 ]; then
			echo "# last lines of $log:"
			tr -d '\r' < "$log" | tail -n 40 | sed 's/^/#   /'
		fi
	fi
	secs=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$status")
	echo "# kernel $k: $P passed, $F failed, $S skipped${secs:+, VM ${secs} s}"
	TOTAL_P=$((TOTAL_P + P)) TOTAL_F=$((TOTAL_F + F))
done

echo "$TOTAL_P passed, $TOTAL_F failed"
[ "$TOTAL_F" -eq 0 ] && [ "$BAD" -eq 0 ]
