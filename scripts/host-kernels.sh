#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# host-kernels.sh record|check [FILE] - the host's kernels are left alone.
#
#   record   write to FILE (default $B/host-before.txt) what decides which
#            kernels this machine has and boots: the linux-image* and
#            linux-headers* packages dpkg knows (state, name, version), every
#            entry under /boot (type, size, mtime, link target), and the
#            kernels with a directory in /lib/modules
#   check    record again ($B/host-after.txt) and compare with FILE, as TAP
#            on stdout and in $B/host.tap (for scripts/tap-summary.sh):
#              ok 1 host.kernel-images    no linux-image* package appeared,
#                                         went or changed
#              ok 2 host.kernel-headers   the same for linux-headers*
#              ok 3 host.boot             /boot as it was
#              ok 4 host.lib-modules      no kernel directory appeared in or
#                                         went from /lib/modules
#            each difference listed below its result; exit 1 if any.
#
# "make check" records at its start and checks at its end, before the
# summary; .ci/run records before "make demo" and checks after everything.
# Env: B (build dir, default <repo>/build)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$ROOT/build}
export LC_ALL=C
[ $# -ge 1 ] || { echo "usage: $0 record|check [FILE]" >&2; exit 2; }
MODE=$1 FILE=${2:-$B/host-before.txt}
mkdir -p "$B"

# snapshot: one line per thing, prefixed by the section it belongs to
snapshot() {
	dpkg-query -W -f='image ${db:Status-Abbrev} ${Package} ${Version}\n' 'linux-image*' 2>/dev/null |
		grep -v '^image un '
	dpkg-query -W -f='headers ${db:Status-Abbrev} ${Package} ${Version}\n' 'linux-headers*' 2>/dev/null |
		grep -v '^headers un '
	[ -d /boot ] && find /boot -mindepth 1 -printf 'boot %P %y %s %TY-%Tm-%Td %TT %l\n'
	[ -d /lib/modules ] && find /lib/modules -mindepth 1 -maxdepth 1 -printf 'modules %f\n'
	return 0
}

case $MODE in
record)
	snapshot | sort > "$FILE.tmp" && mv -f "$FILE.tmp" "$FILE"
	echo "host-kernels: recorded $(grep -c '^image ii ' "$FILE") kernel image packages, $(grep -c '^boot ' "$FILE") entries under /boot in $FILE"
	exit 0 ;;
check) ;;
*) echo "usage: $0 record|check [FILE]" >&2; exit 2 ;;
esac

TAP=$B/host.tap AFTER=$B/host-after.txt
N=0 FAILED=0 OUT=()
tap() { OUT+=("$1"); echo "$1"; }
result() {	# result NAME OK-COMMENT SECTION: compare one section
	local name=$1 comment=$2 sec=$3 diff
	N=$((N + 1))
	diff=$(diff <(grep "^$sec " "$FILE") <(grep "^$sec " "$AFTER") |
		sed -n "s/^< $sec /before: /p; s/^> $sec /after:  /p")
	if [ -z "$diff" ]; then
		tap "ok $N $name # $comment"
	else
		FAILED=$((FAILED + 1))
		tap "not ok $N $name # changed since $FILE was recorded"
		while IFS= read -r l; do tap "# $l"; done <<<"$diff"
	fi
}

if [ ! -s "$FILE" ]; then
	tap "not ok 1 host # no record $FILE (make check records one at its start)"
	N=1 FAILED=1
else
	snapshot | sort > "$AFTER"
	new=$(comm -13 <(grep '^image ii ' "$FILE") <(grep '^image ii ' "$AFTER") | awk '{ print $3 }' | paste -sd' ')
	result host.kernel-images "$(grep -c '^image ii ' "$AFTER") installed, as before" image
	[ -n "$new" ] && tap "# a kernel image was installed: $new"
	result host.kernel-headers "$(grep -c '^headers ii ' "$AFTER") installed, as before" headers
	result host.boot "$(grep -c '^boot ' "$AFTER") entries, names, sizes and mtimes as before" boot
	result host.lib-modules "$(grep -c '^modules ' "$AFTER") kernels, as before" modules
fi
{ echo "1..$N"; printf '%s\n' "${OUT[@]}"; } > "$TAP.tmp" && mv -f "$TAP.tmp" "$TAP"
echo "1..$N"
[ "$FAILED" = 0 ]
