#!/bin/busybox sh
# shellcheck shell=dash
# SPDX-License-Identifier: GPL-2.0
# /init of the test VM (static busybox; see scripts/initramfs.sh).
#
# Loads /vdi.ko, runs every program of the project in /tests, each under
# "timeout -s KILL", between marker lines; then the kernel tests through the
# kselftest runner (/kselftest/run_kselftest.sh: initramfs.sh lays it out as
# kselftest_install does, coreutils' timeout included); then unloads the
# module, checks the kernel log and taint, and powers off.  Everything goes
# to the console (ttyS0) as TAP; the host parses it with
# scripts/tap-summary.sh.
#
# The rig's own results are "ok N rig.<what>" lines.  A program of /tests
# that is killed (timeout) or dies on a signal gets a "not ok N
# rig.selftest.<name>"; the runner reports its own ("not ok N selftests:
# vdi: <name> # TIMEOUT ..." or "# exit=<status>").
#
# Config: /etc/rig.conf (RIG_KVER, RIG_TEST_TIMEOUT).  Kernel command line
# words "NAME=value" arrive here as environment: RIG_MODE=shell gives an
# interactive shell after insmod instead of running the tests, RIG_MODE=demo
# runs /bin/demo.sh (make demo), RIG_MODE=run the command of make vm-run.

/bin/busybox --install -s /bin
export PATH=/bin HOME=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# the links udev makes elsewhere: the kselftest runner writes the programs'
# output to /dev/stdout (a plain file in devtmpfs without them)
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
# stdio even if the kernel found no /dev/console in the image
exec </dev/console >/dev/console 2>&1
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
# the module's tracepoints (vdi_trace_test, perf, trace-cmd in a vm-shell)
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
ulimit -c 0

RIG_TEST_TIMEOUT=120
[ -f /etc/rig.conf ] && . /etc/rig.conf
RIG_MODE=${RIG_MODE:-test}
N=0
pass() { N=$((N + 1)); echo "ok $N rig.$*"; }
fail() { N=$((N + 1)); echo "not ok $N rig.$*"; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }
comment() { sed 's/^/# /'; }
off() { echo "# vdi-rig: done uptime=$(uptime_s)"; sync; poweroff -f; sleep 10; }

echo; echo "# vdi-rig: start kernel=$(uname -r) cpus=$(nproc) uptime=$(uptime_s)"
if [ -n "$RIG_KVER" ] && [ "$(uname -r)" != "$RIG_KVER" ]; then
	fail "kernel # booted $(uname -r), expected $RIG_KVER"
fi
TAINT0=$(cat /proc/sys/kernel/tainted)
echo "vdi-rig: tests start" > /dev/kmsg
if [ -f /sys/kernel/debug/kmemleak ]; then	# debug kernels: forget boot-time objects
	echo scan > /sys/kernel/debug/kmemleak; echo clear > /sys/kernel/debug/kmemleak
fi

# ------------------------------------------------------------ load
LOADED=0
if insmod /vdi.ko > /tmp/insmod.out 2>&1; then
	i=0	# devtmpfs creates the node asynchronously
	while [ ! -c /dev/vdi ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	if [ -c /dev/vdi ]; then
		LOADED=1; pass insmod
	else
		fail "insmod # loaded, but no /dev/vdi"
	fi
else
	fail "insmod # insmod /vdi.ko failed"
	comment < /tmp/insmod.out
	dmesg | tail -n 20 | comment
fi

if [ "$RIG_MODE" = shell ]; then
	echo "# vdi-rig: shell; tests are in /tests and /kselftest (run_kselftest.sh), module is /vdi.ko; exit to power off"
	setsid cttyhack sh -l
	off
fi

# RIG_MODE=demo (make demo): run /bin/demo.sh (scripts/demo.sh) instead of
# the tests; the host reads its output and status between the markers.
if [ "$RIG_MODE" = demo ]; then
	echo "# vdi-demo: begin"
	rc=1
	if [ $LOADED = 1 ]; then
		(cd /tmp && /bin/demo.sh)
		rc=$?
	fi
	echo "# vdi-demo: end rc=$rc"
	off
fi

# RIG_MODE=run (make vm-run, mk/vm-run.mk): sh -c the command in
# /etc/vm-run.cmd, in /files (make vm-run's FILES), stdin /dev/null, output
# through a pipe (as on the host under make: no terminal, no progress
# lines); the host prints what comes between the markers and takes the
# status from the end marker, which may follow output without a final
# newline on the same line.
if [ "$RIG_MODE" = run ]; then
	echo "# vdi-run: begin"
	if [ $LOADED = 1 ]; then
		{
			(cd /files && exec sh -c "$(cat /etc/vm-run.cmd)" < /dev/null)
			echo $? > /tmp/vm-run.rc
		} 2>&1 | cat
		rc=$(cat /tmp/vm-run.rc)
		# a kernel report (a WARN of the module...) fails the run, as
		# in the tests, even when the command itself succeeded
		BAD_RUN='BUG:|WARNING:|Oops|general protection|Call Trace|KASAN|UBSAN|lockdep|possible circular|INFO: task .* blocked|soft lockup|rcu.*stall|refcount_t:|corruption|Kernel panic'
		TAINT1=$(cat /proc/sys/kernel/tainted)
		if dmesg | sed -n '/vdi-rig: tests start/,$p' | grep -qE "$BAD_RUN" ||
		   [ $(( (TAINT1 & ~TAINT0) & (32 | 128 | 512 | 16384) )) -ne 0 ]; then
			echo "vm-run: the kernel reported problems (taint $TAINT0 -> $TAINT1):"
			dmesg | sed -n '/vdi-rig: tests start/,$p' | grep -E -A20 "$BAD_RUN" | head -n 60
			[ "$rc" = 0 ] && rc=1
		fi
	else
		echo "vm-run: the module did not load: the command was not run"
		comment < /tmp/insmod.out
		rc=1
	fi
	echo "# vdi-run: end rc=$rc"
	off
fi

# ------------------------------------------------------------ tests
cd /tmp || cd /
for t in /tests/*; do
	[ -x "$t" ] || continue
	name=${t##*/}
	# The tests run as many uids, each with groups of its own: the node is
	# opened to every user, as an administrator does by overriding
	# 60-vdi.rules.  The module alone makes it 0600 (vdi_node_test checks
	# that); again before each program, as one may load the module again.
	if [ -c /dev/vdi ]; then chmod 0666 /dev/vdi; fi
	if [ $LOADED != 1 ]; then
		fail "selftest.$name # not run: module not loaded"
		continue
	fi
	echo "# ==== selftest $name: begin"
	t0=$(uptime_s)
	timeout -s KILL "$RIG_TEST_TIMEOUT" "$t"
	rc=$?
	dt=$(awk -v a="$t0" -v b="$(uptime_s)" 'BEGIN { printf "%.1f", b - a }')
	echo "# ==== selftest $name: end rc=$rc time=${dt}s"
	if [ $rc -eq 137 ] && awk -v d="$dt" -v t="$RIG_TEST_TIMEOUT" 'BEGIN { exit !(d >= t - 1) }'; then
		fail "selftest.$name # TIMEOUT: killed after $RIG_TEST_TIMEOUT s"
	elif [ $rc -gt 128 ]; then
		fail "selftest.$name # killed by signal $((rc - 128))"
	fi
done

# ------------------------------------------------------------ kernel tests
# The runner's TAP ("ok N selftests: vdi: <program>") with each program's
# own KTAP nested in it as "# " lines, between marker lines; tap-summary.sh
# reads both levels.
if [ -x /kselftest/run_kselftest.sh ]; then
	if [ $LOADED != 1 ]; then
		cut -d: -f2 /kselftest/kselftest-list.txt > /tmp/kselftests
		while read -r t; do
			fail "selftest.$t # not run: module not loaded"
		done < /tmp/kselftests
	else
		chmod 0666 /dev/vdi	# as for /tests above
		echo "# ==== kselftest: begin"
		t0=$(uptime_s)
		/kselftest/run_kselftest.sh
		rc=$?
		dt=$(awk -v a="$t0" -v b="$(uptime_s)" 'BEGIN { printf "%.1f", b - a }')
		echo "# ==== kselftest: end rc=$rc time=${dt}s"
	fi
fi

# ------------------------------------------------------------ unload + kernel health
if [ $LOADED = 1 ]; then
	if rmmod vdi > /tmp/rmmod.out 2>&1; then
		pass rmmod
	else
		fail "rmmod # rmmod vdi failed"
		comment < /tmp/rmmod.out
		grep '^vdi ' /proc/modules | comment
		ps | comment
	fi
fi

if [ -f /sys/kernel/debug/kmemleak ]; then	# debug kernels only
	sleep 6	# kmemleak reports objects older than 5 s, after two scans
	echo scan > /sys/kernel/debug/kmemleak; echo scan > /sys/kernel/debug/kmemleak
	if [ -s /sys/kernel/debug/kmemleak ]; then
		fail "kmemleak # unreferenced objects"
		head -n 200 /sys/kernel/debug/kmemleak | comment
	else
		pass kmemleak
	fi
fi

BAD='BUG:|WARNING:|Oops|general protection|Call Trace|KASAN|UBSAN|kmemleak|lockdep|possible circular|INFO: task .* blocked|soft lockup|hard LOCKUP|rcu.*stall|refcount_t:|list_(add|del) corruption|Kernel panic|invalid opcode'
dmesg | sed -n '/vdi-rig: tests start/,$p' > /tmp/dmesg.tests
# Failures a test injected on purpose (failslab, fail_page_alloc on the
# debug kernel) print their own report and, for an allocation without
# __GFP_NOWARN, an allocation-failure warning, each with a call trace:
# expected, so skipped up to the end of the trace - unless a real report
# starts inside it.
awk '{ l = $0; sub(/^\[ *[0-9.]+\] /, "", l) }
	l ~ /^FAULT_INJECTION: forcing a failure|page allocation failure: order:|vmalloc error: size/ { skip = 1; next }
	skip && l ~ /<\/TASK>/ { skip = 0; next }
	skip && l !~ /BUG:|WARNING:|Oops|general protection|KASAN:|UBSAN:|kmemleak:|possible circular|INFO: task|soft lockup|hard LOCKUP|refcount_t:|corruption|Kernel panic|invalid opcode/ { next }
	{ skip = 0; print }' /tmp/dmesg.tests > /tmp/dmesg.judged
if grep -qE "$BAD" /tmp/dmesg.judged; then
	fail "dmesg # kernel reported problems during the tests"
	echo "# offending lines:"
	grep -E "$BAD" /tmp/dmesg.judged | head -n 50 | comment
	echo "# kernel log since the tests started:"
	head -n 400 /tmp/dmesg.judged | comment
else
	pass dmesg
fi

# new taint: B bad page (32), D oops (128), W warning (512), L soft lockup (16384)
TAINT1=$(cat /proc/sys/kernel/tainted)
NEW=$(( (TAINT1 & ~TAINT0) & (32 | 128 | 512 | 16384) ))
if [ $NEW -ne 0 ]; then
	fail "taint # kernel taint went from $TAINT0 to $TAINT1"
else
	pass taint
fi

off
