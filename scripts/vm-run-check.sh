#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# vm-run-check.sh - check make vm-run (mk/vm-run.mk) with one VM boot: a file
# of FILES arrives in /files, CMD's output comes back (a $ reaching the VM's
# shell as a $), the module, libvdi and the tools work in the VM (a backup
# through them), a binary of FILES built against the SQL Server VDI SDK
# finds libsqlvdi.so there (vdi-sdk-client, mk/sdk.mk, backs up from the
# engine), and CMD's exit status 3 comes back: make fails, says it, and
# build/vm-run/rc holds 3.
# TAP on stdout and in $B/vm-run.tap; exit status 0 if all passed.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$ROOT/build}
TAP=$B/vm-run.tap
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT

N=0 FAILED=0 OUT=()
tap() { OUT+=("$1"); echo "$1"; }
ok() { N=$((N + 1)); tap "ok $N $1"; }
nok() { N=$((N + 1)); FAILED=$((FAILED + 1)); tap "not ok $N $1"; }
diag() { while IFS= read -r l; do tap "# $l"; done < "$1"; }

token=$RANDOM$RANDOM$RANDOM
echo "token $token" > "$T/token.txt"
# The SDK binary (mk/sdk.mk): built here, so that if it does not build,
# the other checks still run and vm-run.sdk says why.
SDK_CLIENT=$B/sdk/vdi-sdk-client
files=$T/token.txt
if make --no-print-directory -C "$ROOT" sdk-client > "$T/sdk-build" 2>&1; then
	files+=" $SDK_CLIENT"
fi
# shellcheck disable=SC2016 # the $ is for the VM's shell
cmd='cat token.txt; x=7; echo "dollar $x";
vdi-client backup -t 20 -o /dev/null vr 2> c.err & vdi-engine backup -t 20 --generate 1M vr; wait $! || cat c.err;
if [ -f vdi-sdk-client ]; then
./vdi-sdk-client backup vs sdk.bak 2> s.err & vdi-engine backup -t 20 --generate 1M vs 2> se.err || cat se.err;
if wait $!; then echo "sdk binary: $(cat s.err)"; else cat s.err; fi;
fi;
exit 3'
make --no-print-directory -C "$ROOT" vm-run CMD="$cmd" FILES="$files" \
	> "$T/out" 2> "$T/err"
rc=$?
cat "$T/out" "$T/err" > "$T/all"

if grep -qx "token $token" "$T/out" && grep -qx 'dollar 7' "$T/out"; then
	ok "vm-run.output # FILES in /files, CMD's output back, \$ passed as is"
else
	nok "vm-run.output # the file's content or the echo did not come back"
	diag "$T/all"
fi
if grep -q '^vdi-engine: backup of 1.0 MiB through 1 device' "$T/all"; then
	ok "vm-run.tools # a backup through the module, libvdi and the tools"
else
	nok "vm-run.tools # no backup in the VM"
	diag "$T/all"
fi
if grep -q '^sdk binary: vdi-sdk-client: backup: [1-9][0-9]* bytes$' "$T/out"; then
	ok "vm-run.sdk # an SDK binary of FILES runs on libsqlvdi.so"
else
	nok "vm-run.sdk # the SDK binary in FILES did not back up (no libsqlvdi.so in the VM?)"
	diag "$T/sdk-build"
	diag "$T/all"
fi
if [ $rc != 0 ] && grep -qx 'vm-run: the command exited with status 3' "$T/err" &&
   [ "$(cat "$B/vm-run/rc" 2>/dev/null)" = 3 ]; then
	ok "vm-run.status # exit 3: make fails, says so, build/vm-run/rc is 3"
else
	nok "vm-run.status # make exit $rc, rc file '$(cat "$B/vm-run/rc" 2>/dev/null)'"
	diag "$T/all"
fi

{ echo "1..$N"; printf '%s\n' "${OUT[@]}"; } > "$TAP"
[ "$FAILED" = 0 ]
