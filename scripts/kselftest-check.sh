#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# kselftest-check.sh - selftests/ as the kselftest target "vdi" in a kernel
# tree (make check).  A scratch copy of the extracted linux-source-6.1 tree
# ($B/ksrc: the selftests framework, scripts/subarch.include) gets selftests/
# at tools/testing/selftests/vdi, copied as the README says (cp -rL), and
# there:
#   kselftest.link     a copy made with "cp -r" instead (the header's link
#                      left dangling): make stops and says how to copy
#   kselftest.build    "make -C tools/testing/selftests TARGETS=vdi" builds
#                      every selftests/vdi_*_test.c
#   kselftest.install  "... TARGETS=vdi install" (kselftest_install) gives
#                      exactly the files scripts/initramfs.sh puts in the
#                      VM's /kselftest: run_kselftest.sh, kselftest/
#                      (runner.sh, prefix.pl, module.sh), kselftest-list.txt,
#                      vdi/ with the programs, config and settings; and
#                      "run_kselftest.sh --list" names vdi:<program> for each
# The tests themselves run in the VMs (make check), never here: they need the
# module, and vdi_node_test loads it.
# TAP on stdout and in $B/kselftest.tap; exit status 0 if all passed.  The
# scratch tree is removed.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$ROOT/build}
TAP=$B/kselftest.tap
KT=$B/kselftest-tree
trap 'rm -rf "$KT"' EXIT

N=0 FAILED=0 OUT=()
tap() { OUT+=("$1"); echo "$1"; }
ok() { N=$((N + 1)); tap "ok $N $1"; }
nok() { N=$((N + 1)); FAILED=$((FAILED + 1)); tap "not ok $N $1"; }
diag() { while IFS= read -r l; do tap "# $l"; done; }
finish() { { echo "1..$N"; printf '%s\n' "${OUT[@]}"; } > "$TAP"; [ "$FAILED" = 0 ]; exit; }

[ -f "$B/ksrc/tools/testing/selftests/lib.mk" ] || {
	nok "kselftest.tree # no kselftest framework in $B/ksrc (scripts/ksrc.sh)"
	finish
}
rm -rf "$KT"
cp -a "$B/ksrc" "$KT"
KS=$KT/tools/testing/selftests
T=$KS/vdi
LOG=$B/kselftest-check.log
: > "$LOG"
kmake() { make --no-print-directory -C "$KS" TARGETS=vdi "$@" >> "$LOG" 2>&1; }

PROGS=()
for f in "$ROOT"/selftests/vdi_*_test.c; do
	f=${f##*/}
	PROGS+=("${f%.c}")
done

# ---- a copy whose header link dangles
cp -r "$ROOT/selftests" "$T"
if ! kmake && grep -q 'include/linux/vdi.h is missing or a dangling link: copy selftests/ with "cp -rL"' "$LOG"; then
	ok "kselftest.link # cp -r (link left dangling): make stops, says cp -rL"
else
	nok "kselftest.link # a copy made with cp -r did not stop make with the Makefile's message"
	tail -n 20 "$LOG" | diag
fi
rm -rf "$T"

# ---- build
cp -rL "$ROOT/selftests" "$T"
: > "$LOG"
missing=()
if kmake -j2; then
	for p in "${PROGS[@]}"; do [ -x "$T/$p" ] || missing+=("$p"); done
	if [ ${#missing[@]} = 0 ]; then
		ok "kselftest.build # make -C tools/testing/selftests TARGETS=vdi: ${#PROGS[@]} programs"
	else
		nok "kselftest.build # built, but missing: ${missing[*]}"
	fi
else
	nok "kselftest.build # make -C tools/testing/selftests TARGETS=vdi failed"
	grep -E 'error|Error|\*\*\*' "$LOG" | head -n 40 | diag
	finish
fi

# ---- install (kselftest_install's default place: kselftest_install/)
I=$KS/kselftest_install
if kmake install; then
	files=$( { printf '%s\n' run_kselftest.sh kselftest-list.txt kselftest/runner.sh \
			kselftest/prefix.pl kselftest/module.sh vdi/config vdi/settings
		printf 'vdi/%s\n' "${PROGS[@]}"; } | LC_ALL=C sort)
	got_files=$(cd "$I" && find . ! -type d | sed 's|^\./||' | LC_ALL=C sort)
	want=$(printf 'vdi:%s\n' "${PROGS[@]}")
	got=$("$I/run_kselftest.sh" --list 2>&1)
	if [ "$got_files" = "$files" ] && [ "$got" = "$want" ]; then
		ok "kselftest.install # TARGETS=vdi install: the VM's layout; run_kselftest.sh --list names the ${#PROGS[@]} programs"
	else
		nok "kselftest.install # not the layout the VM gets, or not every program listed"
		# "<" a file the VM gets that the install lacks, ">" the other way
		diff <(echo "$files") <(echo "$got_files") | sed -n 's/^[<>]/files: &/p' | diag
		printf 'run_kselftest.sh --list: %s\n' "$got" | diag
	fi
else
	nok "kselftest.install # make -C tools/testing/selftests TARGETS=vdi install failed"
	tail -n 20 "$LOG" | diag
fi
finish
