#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# ksrc.sh - extract the few kernel source files the rig uses from Debian's
# linux-source-6.1 package into $B/ksrc (once; they are never copied into the
# repository):
#   tools/testing/selftests/kselftest_harness.h, kselftest.h   (selftests)
#   scripts/checkpatch.pl, spelling.txt, const_structs.checkpatch (lint)
# Env: B (build dir, default <repo>/build)  KSRC_TARBALL
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$ROOT/build}
OUT=$B/ksrc
TARBALL=${KSRC_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
FILES=(tools/testing/selftests/kselftest_harness.h
       tools/testing/selftests/kselftest.h
       scripts/checkpatch.pl
       scripts/spelling.txt
       scripts/const_structs.checkpatch)

[ -f "$OUT/.stamp" ] && exit 0
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
touch "$OUT/.stamp"
