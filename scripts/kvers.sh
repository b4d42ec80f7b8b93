#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# kvers.sh - print the kernel versions the rig tests against, one per line:
#   1. Debian's default 6.1 kernel (the one linux-headers-amd64 depends on);
#   2. the newest 6.12 one, linux-headers-6.12.N+deb12-amd64.
# scripts/kernels.sh (run by deps.sh) chose them and wrote them to
# $B/kernels/kvers; a kernel is printed only once its build tree
# $B/kernels/headers-<kver> is there.  Never the host's installed headers.
# Cheap (the Makefile calls it on every run); prints nothing before
# scripts/deps.sh ran.
# Env: B (build dir, default <repo>/build)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
KDIR=${B:-$ROOT/build}/kernels
[ -f "$KDIR/kvers" ] || exit 0
while read -r k; do
	[ -n "$k" ] && [ -f "$KDIR/headers-$k/Makefile" ] && [ -f "$KDIR/$k/.vdi-tree" ] && echo "$k"
done < "$KDIR/kvers"
exit 0
