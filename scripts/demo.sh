#!/bin/sh
# shellcheck shell=dash
# SPDX-License-Identifier: GPL-2.0
# demo.sh - vdi end to end, as "make demo" shows it: back up a data set
# through 4 virtual devices, restore it, prove the restored bytes identical,
# and print the throughput of both.  The backup application is vdi-client
# (VDI's client role), the database engine is played by vdi-engine (the
# server role); they talk only through /dev/vdi.
#
# Runs on the host when the module is installed there (make demo) or as
# /bin/demo.sh in the test VM (RIG_MODE=demo, busybox sh).  Needs
# vdi-client, vdi-engine and vdi-gen on PATH.
#
# Env: DEMO_SIZE (256M)  DEMO_DEVICES (4)  DEMO_DIR (a new directory under
#      /tmp, removed at the end)
set -u

SIZE=${DEMO_SIZE:-256M}
NDEV=${DEMO_DEVICES:-4}
W=${DEMO_DIR:-$(mktemp -d /tmp/vdi-demo.XXXXXX)} || exit 1
SET=vdi-demo-$$
DEVS=$SET
i=2
while [ $i -le "$NDEV" ]; do DEVS="$DEVS $SET-$i"; i=$((i + 1)); done

say() { echo "demo: $*"; }
fail() {
	say "FAILED: $*"
	for f in "$W"/*.log; do
		[ -s "$f" ] && sed "s|^|demo:   ${f##*/}: |" "$f"
	done
	rm -rf "$W"
	exit 1
}
# the engine's "MB/s" figure from its summary line
rate() { sed -n 's/.* \([0-9.]*\) MB\/s$/\1/p' "$1" | tail -n 1; }

say "kernel $(uname -r), $(nproc) CPUs; $SIZE of generated data, $NDEV devices, files in $W"
# shellcheck disable=SC2086 # DEVS is a list
set -- $DEVS

# ---- backup: the client stores each device's stream in $W/<device>.vdi
say "backup:  vdi-client backup -d $W $*  &"
say "         vdi-engine backup --generate $SIZE $*"
vdi-client backup -t 60 -d "$W" "$@" 2> "$W/client-backup.log" &
cpid=$!
vdi-engine backup -t 60 --generate "$SIZE" "$@" 2> "$W/engine-backup.log" ||
	{ kill $cpid 2> /dev/null; wait $cpid; fail "vdi-engine backup"; }
wait $cpid || fail "vdi-client backup"
BSUM=$(sed -n 's/^checksum \([0-9a-f]*\) .*/\1/p' "$W/engine-backup.log")
grep -v '^checksum' "$W/engine-backup.log" | sed 's/^/demo:   /'
for d in "$@"; do
	say "  $(wc -c < "$W/$d.vdi") bytes in $d.vdi"
done

# ---- restore: into a file, then vdi-gen --check compares it byte for byte
# with the generated data (without a pipe in the timed part: pipes are slow
# under qemu's emulation and would be what the restore figure measures)
say "restore: vdi-client restore -d $W $*  &"
say "         vdi-engine restore -o $W/restored $*"
vdi-client restore -t 60 -d "$W" "$@" 2> "$W/client-restore.log" &
cpid=$!
vdi-engine restore -t 60 -o "$W/restored" "$@" 2> "$W/engine-restore.log" ||
	{ kill $cpid 2> /dev/null; wait $cpid; fail "vdi-engine restore"; }
wait $cpid || fail "vdi-client restore"
grep -v '^checksum' "$W/engine-restore.log" | sed 's/^/demo:   /'
RSUM=$(sed -n 's/^checksum \([0-9a-f]*\) .*/\1/p' "$W/engine-restore.log")
[ -n "$BSUM" ] && [ "$BSUM" = "$RSUM" ] || fail "checksums differ: backup $BSUM, restore $RSUM"
say "compare: vdi-gen --check $SIZE < $W/restored"
vdi-gen --check "$SIZE" < "$W/restored" > "$W/check.out" 2> "$W/check.log" ||
	fail "the restored data differs: $(cat "$W/check.out" "$W/check.log")"

n=$(sed -n 's/^identical: \([0-9]*\) bytes$/\1/p' "$W/check.out")
say "identical: the $n bytes restored are the generated source, byte for byte (checksum $RSUM both ways)"
say "throughput: backup $(rate "$W/engine-backup.log") MB/s, restore $(rate "$W/engine-restore.log") MB/s"
rm -rf "$W"
say "PASS"
