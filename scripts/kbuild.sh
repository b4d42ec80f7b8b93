#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# kbuild.sh KVER OUTDIR [make args...] - build vdi.ko for one kernel.
# The module sources (Kbuild, kmod/, include/) are mirrored into OUTDIR, so
# each kernel gets its own objects; a file is copied only when its content
# changed (kbuild's incremental build keeps working), and files deleted from
# the repo are deleted from the mirror.  Then:
#   make -C $B/kernels/headers-KVER M=OUTDIR [make args] modules
# against the kernel's build tree that scripts/kernels.sh unpacked under
# build/ (never the host's /usr/src or /lib/modules).
# Env: B (build dir, default <repo>/build)
#      KHDR (the tree, default $B/kernels/headers-KVER; make check-debug
#      gives its debug kernel's)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 2 ] || { echo "usage: $0 KVER OUTDIR [make args]" >&2; exit 2; }
KVER=$1 OUT=$2; shift 2
KHDR=${KHDR:-${B:-$ROOT/build}/kernels/headers-$KVER}
[ -f "$KHDR/Makefile" ] || { echo "kbuild: $KHDR missing (run scripts/deps.sh)" >&2; exit 1; }
cd "$ROOT"
SRCS=()
for s in Kbuild kmod include; do [ -e "$s" ] && SRCS+=("$s"); done
[ -f Kbuild ] || { echo "kbuild: no Kbuild in $ROOT" >&2; exit 1; }

mkdir -p "$OUT"
# copy new/changed files
find "${SRCS[@]}" -type f ! -name '.*' -print0 |
while IFS= read -r -d '' f; do
	cmp -s "$f" "$OUT/$f" && continue
	mkdir -p "$OUT/$(dirname "$f")"
	cp "$f" "$OUT/$f"
done
# drop mirrored sources that no longer exist in the repo
(cd "$OUT" && find kmod include -type f \( -name '*.c' -o -name '*.h' \) -print0 2>/dev/null) |
while IFS= read -r -d '' f; do
	[ -e "$ROOT/$f" ] || rm -f "$OUT/$f"
done

exec make -C "$KHDR" M="$OUT" "$@" modules
