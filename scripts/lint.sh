#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# lint.sh KVER... - static checks of the kernel module, as TAP:
#   lint.checkpatch        checkpatch.pl --no-tree -f on kmod/*.[ch] and the
#                          uapi header: any ERROR or WARNING fails
#   lint.build.KVER        fresh W=1 build + sparse (C=2) against each
#                          kernel's build tree (build/kernels/headers-KVER,
#                          scripts/kbuild.sh): any warning in our sources (or
#                          from modpost) fails
# Prints the TAP, writes it to $B/lint.tap too; exits 1 if anything failed.
# Env: B  CHECKPATCH_IGNORE (comma separated types, from the Makefile)
#      CHECKPATCH_FILE_IGNORE (space separated FILE:TYPE,TYPE entries)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$ROOT/build}
CHECKPATCH=$B/ksrc/scripts/checkpatch.pl
TAP=$B/lint.tap
[ $# -ge 1 ] || { echo "usage: $0 KVER..." >&2; exit 2; }
[ -x "$CHECKPATCH" ] || { echo "lint: $CHECKPATCH missing (run scripts/ksrc.sh)" >&2; exit 1; }
command -v sparse >/dev/null || { echo "lint: sparse missing (run scripts/deps.sh)" >&2; exit 1; }
mkdir -p "$B"
: > "$TAP.tmp"
n=0 failed=0
result() {	# result OK|FAIL NAME [details file]
	n=$((n + 1))
	if [ "$1" = OK ]; then
		echo "ok $n $2" >> "$TAP.tmp"
	else
		failed=1
		echo "not ok $n $2" >> "$TAP.tmp"
		[ -n "${3:-}" ] && sed 's/^/# /' "$3" >> "$TAP.tmp"
	fi
}

# --- kernel builds (in the background while checkpatch runs)
pids=()
for k in "$@"; do
	out=$B/lint-$k
	mkdir -p "$out"
	find "$out" \( -name '*.o' -o -name '*.ko' \) -delete	# recompile all: W=1 warnings are per compile
	"$ROOT/scripts/kbuild.sh" "$k" "$out" W=1 C=2 > "$B/lint-$k.log" 2>&1 &
	pids+=($!)
done

# --- checkpatch (files named in CHECKPATCH_FILE_IGNORE run alone, with
#     their own exceptions added)
cd "$ROOT" || exit 1
checkpatch() {	# checkpatch IGNORE FILE...
	local ign=$1; shift
	"$CHECKPATCH" --no-tree -q --terse --show-types --color=never \
		${ign:+--ignore "$ign"} -f "$@"
}
files=$(ls kmod/*.c kmod/*.h include/uapi/linux/vdi.h 2>/dev/null)
if [ -z "$files" ]; then
	echo "lint: no sources to check" > "$B/checkpatch.log"
	result FAIL lint.checkpatch "$B/checkpatch.log"
else
	rc=0 common=()
	{
		for f in $files; do
			special=
			for e in ${CHECKPATCH_FILE_IGNORE:-}; do
				[ "${e%%:*}" = "$f" ] && special=${e#*:}
			done
			if [ -n "$special" ]; then
				checkpatch "${CHECKPATCH_IGNORE:+$CHECKPATCH_IGNORE,}$special" "$f" || rc=1
			else
				common+=("$f")
			fi
		done
		if [ ${#common[@]} -gt 0 ]; then
			checkpatch "${CHECKPATCH_IGNORE:-}" "${common[@]}" || rc=1
		fi
	} > "$B/checkpatch.log" 2>&1
	if grep -qE ' (ERROR|WARNING):' "$B/checkpatch.log" || [ $rc -ne 0 ]; then
		grep -v '^total: ' "$B/checkpatch.log" > "$B/checkpatch.log.ours"
		result FAIL lint.checkpatch "$B/checkpatch.log.ours"
	else
		result OK lint.checkpatch
	fi
fi

# --- collect the builds
i=0
for k in "$@"; do
	wait "${pids[$i]}"; rc=$?; i=$((i + 1))
	log=$B/lint-$k.log out=$B/lint-$k
	# our warnings: gcc/sparse lines located in the mirrored sources, and modpost
	{ grep -F "$out/" "$log" | grep -E ': (warning|error):'
	  grep -E '^(WARNING|ERROR): modpost:' "$log"; } > "$log.ours"
	if [ $rc -ne 0 ]; then
		{ echo "build failed (exit $rc):"; tail -n 40 "$log"; } > "$log.ours"
		result FAIL "lint.build.$k" "$log.ours"
	elif [ -s "$log.ours" ]; then
		result FAIL "lint.build.$k" "$log.ours"
	else
		result OK "lint.build.$k"
	fi
done

{ echo "1..$n"; cat "$TAP.tmp"; } > "$TAP"; rm -f "$TAP.tmp"
cat "$TAP"
exit $failed
