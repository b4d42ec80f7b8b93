#!/bin/sh
# shellcheck shell=dash
# SPDX-License-Identifier: GPL-2.0
# Helpers of the vdi tools' tests (busybox sh in the test VM).  mk/tools.mk
# puts this file in front of each selftests/tools/*_test.sh to make one test
# program: TAP on stdout ("ok N name" / "not ok N name", plan at the end),
# diagnostics as "# " lines, exit status 1 if anything failed.
#
# Each test is a function run in a subshell with its own directory $D under
# $W; it returns non-zero (after saying why with "say") to fail.

export PATH=/bin:/sbin:/usr/bin:/usr/sbin:$PATH
W=$(mktemp -d /tmp/vdi-tools.XXXXXX) || exit 1
N=0
FAILED=0
# the longest any one tool may run before it counts as hung
TO=${TOOLS_TEST_TIMEOUT:-30}

say() { echo "# $*"; }
# show a file (a tool's stderr) as TAP diagnostics
show() { [ -s "$1" ] && sed "s|^|#   ${1##*/}: |" "$1"; return 0; }

# t NAME FUNCTION [ARGS...]: run one test
t() {
	name=$1
	shift
	N=$((N + 1))
	D=$W/$N
	mkdir -p "$D"
	if (cd "$D" && "$@"); then
		echo "ok $N $name"
	else
		echo "not ok $N $name"
		FAILED=$((FAILED + 1))
	fi
}

skip() { N=$((N + 1)); echo "ok $N $1 # SKIP $2"; }

finish() {
	echo "1..$N"
	rm -rf "$W"
	[ "$FAILED" = 0 ]
}

# run_to SECS CMD...: run with a time limit (SIGKILL)
run_to() { timeout -s KILL "$@"; }

# exited PID SECS: true if PID is gone within SECS seconds
exited() {
	i=0
	while kill -0 "$1" 2>/dev/null; do
		[ $i -ge $(($2 * 10)) ] && return 1
		sleep 0.1
		i=$((i + 1))
	done
	return 0
}

# size_at_least FILE BYTES SECS: wait until FILE exists with BYTES or more
size_at_least() {
	i=0
	while [ "$(stat -c %s "$1" 2>/dev/null || echo -1)" -lt "$2" ]; do
		[ $i -ge $(($3 * 10)) ] && return 1
		sleep 0.1
		i=$((i + 1))
	done
	return 0
}

# expect_rc WANT GOT WHAT
expect_rc() {
	[ "$2" = "$1" ] && return 0
	say "$3: exit status $2, expected $1"
	return 1
}

# expect_fail GOT WHAT: a failure is any status but 0 (and not a signal)
expect_fail() {
	[ "$1" != 0 ] && [ "$1" -lt 128 ] && return 0
	say "$2: exit status $1, expected a failure (1)"
	return 1
}

# expect_msg FILE PATTERN: the tool said it (extended regex, any case)
expect_msg() {
	grep -qiE "$2" "$1" && return 0
	say "${1##*/} does not say /$2/:"
	show "$1"
	return 1
}

# the checksum line of a tool's stderr: "<hex> <bytes>"
checksum_of() { sed -n 's/^checksum \([0-9a-f]*\) \([0-9]*\) bytes$/\1 \2/p' "$1"; }

# extra device names for a set: devs SET N -> "SET SET.1 ... SET.N-1"
devs() {
	out=$1
	i=1
	while [ "$i" -lt "$2" ]; do out="$out $1.$i"; i=$((i + 1)); done
	echo "$out"
}
