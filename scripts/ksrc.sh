#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# ksrc.sh - extract the few kernel source files the rig uses from Debian's
# linux-source-6.1 package into $B/ksrc (once; they are never copied into the
# repository):
#   tools/testing/selftests/kselftest_harness.h, kselftest.h   (selftests)
#   tools/testing/selftests/Makefile, lib.mk, run_kselftest.sh, kselftest/
#     and scripts/subarch.include: the kselftest framework, which builds
#     selftests/ as the target "vdi" (selftests/Makefile includes ../lib.mk)
#     and runs it in the VM (run_kselftest.sh, kselftest/runner.sh)
#   scripts/checkpatch.pl, spelling.txt, const_structs.checkpatch (lint)
# The stamp holds the list: when the list changes, the files are extracted
# again.
# Env: B (build dir, default <repo>/build)  KSRC_TARBALL
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$ROOT/build}
OUT=$B/ksrc
TARBALL=${KSRC_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
FILES=(tools/testing/selftests/kselftest_harness.h
       tools/testing/selftests/kselftest.h
       tools/testing/selftests/Makefile
       tools/testing/selftests/lib.mk
       tools/testing/selftests/run_kselftest.sh
       tools/testing/selftests/kselftest/runner.sh
       tools/testing/selftests/kselftest/prefix.pl
       tools/testing/selftests/kselftest/module.sh
       scripts/subarch.include
       scripts/checkpatch.pl
       scripts/spelling.txt
       scripts/const_structs.checkpatch)

if [ "$(cat "$OUT/.stamp" 2>/dev/null)" = "${FILES[*]}" ]; then
	touch "$OUT/.stamp"	# newer than this script: make asks no more
	exit 0
fi
[ -f "$TARBALL" ] || { echo "ksrc: $TARBALL missing (run scripts/deps.sh)" >&2; exit 1; }

echo "ksrc: extracting ${#FILES[@]} files from $TARBALL"
rm -rf "$OUT.tmp"; mkdir -p "$OUT.tmp"
top=$(tar -tf "$TARBALL" 2>/dev/null | head -n1 | cut -d/ -f1) || true
# the .xz has many blocks: xz -T0 decompresses on every core
xz -T0 -dc "$TARBALL" |
	tar -x -C "$OUT.tmp" --strip-components=1 --wildcards "${FILES[@]/#/$top/}"
for f in "${FILES[@]}"; do
	[ -s "$OUT.tmp/$f" ] || { echo "ksrc: $f not in $TARBALL" >&2; exit 1; }
done
chmod +x "$OUT.tmp/scripts/checkpatch.pl"
rm -rf "$OUT"; mv "$OUT.tmp" "$OUT"
echo "${FILES[*]}" > "$OUT/.stamp"
