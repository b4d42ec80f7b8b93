# SPDX-License-Identifier: GPL-2.0
# vdi-engine --inject: every fault scenario against each VDI client under
# test, which must end (no hang: every run is under run_to) with the exit
# status and the message the scenario calls for.  (lib.sh comes first.)
#
# The clients under test: CLIENTS names them (default: "vdi", our
# vdi-client, and "sdk", the SDK-style client vdi-sdk-client built against
# the SDK's layout and linked with -lsqlvdi only, when it is in the VM).
# Each NAME has
#   CMD_NAME   a program (run_to runs it) taking vdi-client's command line
#        for what is used here: backup|restore, -t SEC (wait for the
#        engine), -v (say the configuration got), --command-timeout SEC,
#        --no-complete, --tape (as FEAT_NAME allows), then SET [DEVICE...];
#        it stores and reads ./<device>.vdi and exits 0 only when the engine
#        ended the set normally
#   FEAT_NAME  what it can do beyond one pipe-like device: multi (several
#        devices), tape, timeout (--command-timeout), complete (asks for
#        VDC_Complete and fails a device closed without it), cleanup
#        (removes its files after a failure), verbose (-v shows the
#        configuration)
#   and the extended regexes of what it says when
#   P_NAME_abort       the engine aborted (VD_E_ABORT)
#   P_NAME_timeout     GetCommand timed out (VD_E_TIMEOUT)
#   P_NAME_taken       Create failed: the name is in use (VD_E_PROTOCOL)
#   P_NAME_nocomplete  a device ended (VD_E_CLOSE) without VDC_Complete
#   P_NAME_config      (a function) its -v output shows max transfer $1
CMD_vdi=vdi-client
FEAT_vdi="multi tape timeout complete cleanup verbose"
P_vdi_abort='engine (went away or )?aborted the (backup|restore)|VD_E_ABORT'
P_vdi_timeout='no command from the engine .*VD_E_TIMEOUT'
P_vdi_taken="a set named '.*' already exists"
P_vdi_nocomplete='closed it without VDC_Complete: the backup is incomplete'
P_vdi_config() { echo "max transfer $1[^0-9]"; }

# vdi-sdk-client takes "[--timeout MS] backup|restore SET FILE" with one
# device and reports a failing call as "<call>: 0x<HRESULT>": an adapter
# gives it the command line above.
CMD_sdk=$W/sdk-client
FEAT_sdk="timeout"
P_sdk_abort=': 0x80770004$'				# VD_E_ABORT, from any call
P_sdk_timeout='GetCommand \(backup\): 0x80770003'		# VD_E_TIMEOUT
P_sdk_taken='Create: 0x8077000c'				# VD_E_PROTOCOL
cat > "$CMD_sdk" << 'EOF'
#!/bin/sh
op=$1 to=
shift
while [ $# -gt 1 ]; do
	case $1 in
	-t) shift ;;
	--command-timeout) to="--timeout $(($2 * 1000))"; shift ;;
	-v | --no-complete) ;;
	*) echo "sdk-client: $1: not for vdi-sdk-client" >&2; exit 2 ;;
	esac
	shift
done
# shellcheck disable=SC2086
exec vdi-sdk-client $to "$op" "$1" "./$1.vdi"
EOF
chmod 755 "$CMD_sdk"

if [ -z "${CLIENTS:-}" ]; then
	CLIENTS=vdi
	command -v vdi-sdk-client > /dev/null 2>&1 && CLIENTS="vdi sdk"
fi

# pat NAME KIND: the client's message pattern; cl NAME: its command
pat() { eval "echo \"\$P_$1_$2\""; }
cl() { eval "echo \"\$CMD_$1\""; }
# has NAME FEATURE: the client can do it
has() { eval "case \" \$FEAT_$1 \" in *\" $2 \"*) true ;; *) false ;; esac"; }
# dl NAME SET N: N devices of SET, or only SET for a one-device client
dl() { if has "$1" multi; then devs "$2" "$3"; else echo "$2"; fi; }

# no_backup_files NAME: a client that cleans up left neither .vdi nor
# .partial files after a failed backup
no_backup_files() {
	has "$1" cleanup || return 0
	if ls ./*.vdi ./*.partial > /dev/null 2>&1; then
		say "backup files left behind:"; ls -l
		return 1
	fi
}

# backup_with C INJECT SET [DEVICE...] -- [CLIENT_OPTS]: the client C backs
# up while the engine injects; sets crc/erc, stderr in c.err / e.err
backup_with() {
	c=$1 inj=$2
	shift 2
	devl=
	while [ "$1" != -- ]; do devl="$devl $1"; shift; done
	shift
	# shellcheck disable=SC2086 # word lists
	{
		run_to "$TO" "$(cl "$c")" backup -t 20 "$@" $devl 2> c.err &
		cpid=$!
		run_to "$TO" vdi-engine backup -t 20 --generate 6M \
			--inject "$inj" $devl 2> e.err
		erc=$?
		wait $cpid
		crc=$?
	}
}

# a good backup of 6M through the devices, for the restore scenarios
good_backup() {
	c=$1
	shift
	# shellcheck disable=SC2086
	{
		run_to "$TO" "$(cl "$c")" backup -t 20 "$@" 2> gc.err &
		cpid=$!
		run_to "$TO" vdi-engine backup -t 20 --generate 6M "$@" 2> ge.err
		erc=$?
		wait $cpid
		crc=$?
	}
	expect_rc 0 $erc "engine backup" || { show ge.err; return 1; }
	expect_rc 0 $crc "client backup" || { show gc.err; return 1; }
}

abort_backup() {
	# shellcheck disable=SC2046 # the device list
	backup_with "$1" abort-mid-stream=2M $(dl "$1" ab 2) -- || return 1
	expect_rc 1 $erc "engine" || { show e.err; return 1; }
	expect_msg e.err 'inject abort-mid-stream: SignalAbort after 2\.' ||
		return 1
	expect_fail $crc "client" || { show c.err; return 1; }
	expect_msg c.err "$(pat "$1" abort)" || return 1
	no_backup_files "$1"
}

abort_restore() {
	good_backup "$1" ar || return 1
	run_to "$TO" "$(cl "$1")" restore -t 20 ar 2> c.err &
	cpid=$!
	run_to "$TO" vdi-engine restore -t 20 -o out \
		--inject abort-mid-stream=1M ar 2> e.err
	erc=$?
	wait $cpid
	crc=$?
	expect_rc 1 $erc "engine" || { show e.err; return 1; }
	expect_msg e.err 'inject abort-mid-stream: SignalAbort' || return 1
	expect_fail $crc "client" || { show c.err; return 1; }
	expect_msg c.err "$(pat "$1" abort)" || return 1
	[ ! -e out ] && [ ! -e out.partial ] ||
		{ say "the engine left its output"; return 1; }
}

# a stream shorter than SIZE: the abort comes after all of the data
abort_short() {
	run_to "$TO" "$(cl "$1")" backup -t 20 as 2> c.err &
	cpid=$!
	run_to "$TO" vdi-engine backup -t 20 --generate 100K \
		--inject abort-mid-stream=1G as 2> e.err
	erc=$?
	wait $cpid
	crc=$?
	expect_rc 1 $erc "engine" || { show e.err; return 1; }
	expect_msg e.err 'all of it: the stream was shorter' || return 1
	expect_fail $crc "client" || { show c.err; return 1; }
	expect_msg c.err "$(pat "$1" abort)" || return 1
	no_backup_files "$1"
}

# a tape-like client, aborted between its marks
abort_tape() {
	backup_with "$1" abort-mid-stream=1M at -- --tape || return 1
	expect_rc 1 $erc "engine" || { show e.err; return 1; }
	expect_fail $crc "client" || { show c.err; return 1; }
	expect_msg c.err "$(pat "$1" abort)" || return 1
	no_backup_files "$1"
}

# close-device-early in a restore: the engine stops, the data is short
close_early_restore() {
	d=$(dl "$1" cr 2)
	# shellcheck disable=SC2086
	good_backup "$1" $d || return 1
	# shellcheck disable=SC2086
	run_to "$TO" "$(cl "$1")" restore -t 20 $d 2> c.err &
	cpid=$!
	# shellcheck disable=SC2086
	run_to "$TO" vdi-engine restore -t 20 -o out \
		--inject close-device-early=cr $d 2> e.err
	erc=$?
	wait $cpid
	crc=$?
	expect_rc 1 $erc "engine" || { show e.err; return 1; }
	expect_msg e.err "closed device 'cr' after .*the restore is incomplete" ||
		return 1
	# the client served what it was asked for and saw the normal end
	expect_rc 0 $crc "client" || { show c.err; return 1; }
	[ ! -e out ] && [ ! -e out.partial ] ||
		{ say "the engine kept an incomplete restore"; return 1; }
}

# silent [N]: the client's GetCommand timeout (2 s) ends it
silent() {
	t0=$(date +%s)
	backup_with "$1" "silent${2:+=$2}" si -- --command-timeout 2 ||
		return 1
	dt=$(($(date +%s) - t0))
	expect_rc 1 $erc "engine" || { show e.err; return 1; }
	expect_msg e.err 'inject silent: .* now silent' || return 1
	expect_msg e.err 'the client gave up after' || return 1
	expect_fail $crc "client" || { show c.err; return 1; }
	expect_msg c.err "$(pat "$1" timeout)" || return 1
	[ "$dt" -lt 20 ] || { say "it took $dt s"; return 1; }
	no_backup_files "$1"
}

# a client without a command timeout: the engine's own limit (-t) ends it
silent_engine_limit() {
	run_to "$TO" "$(cl "$1")" backup -t 20 sl 2> c.err &
	cpid=$!
	run_to "$TO" vdi-engine backup -t 3 --generate 1M --inject silent \
		sl 2> e.err
	erc=$?
	wait $cpid
	crc=$?
	expect_rc 1 $erc "engine" || { show e.err; return 1; }
	expect_msg e.err 'did not give up within 3 s' || return 1
	expect_fail $crc "client" || { show c.err; return 1; }
	expect_msg c.err "$(pat "$1" abort)" || return 1
	no_backup_files "$1"
}

# close-device-early: a client that asked for VDC_Complete sees it missing
close_early() {
	backup_with "$1" close-device-early ce ce.1 ce.2 -- || return 1
	expect_rc 1 $erc "engine" || { show e.err; return 1; }
	expect_msg e.err "inject close-device-early: closed device 'ce\.2' .*incomplete" ||
		return 1
	expect_fail $crc "client" || { show c.err; return 1; }
	expect_msg c.err "$(pat "$1" nocomplete)" || return 1
	grep -iE "$(pat "$1" nocomplete)" c.err | grep -q "ce\.2" ||
		{ say "the client did not name device ce.2"; show c.err; return 1; }
	no_backup_files "$1"
}

# ... one that did not cannot tell; the restore finds the damage
close_early_nocomplete() {
	d=$(dl "$1" ce 2)
	# shellcheck disable=SC2086
	backup_with "$1" close-device-early=ce $d -- --no-complete || return 1
	expect_rc 1 $erc "engine" || { show e.err; return 1; }
	expect_msg e.err "closed device 'ce' after" || return 1
	expect_rc 0 $crc "client (it cannot tell)" || { show c.err; return 1; }
	# shellcheck disable=SC2086
	run_to "$TO" "$(cl "$1")" restore -t 20 $d 2> cr.err &
	cpid=$!
	# shellcheck disable=SC2086
	run_to "$TO" vdi-engine restore -t 20 -o out $d 2> er.err
	erc=$?
	wait $cpid
	expect_rc 1 $erc "engine restore" || { show er.err; return 1; }
	expect_msg er.err 'incomplete or damaged' || return 1
	[ ! -e out ] || { say "a damaged restore was kept"; return 1; }
}

# max-transfer-tiny / -huge: a backup and restore that must succeed, with
# the client seeing the size
sizes() {
	c=$1 inj=$2 want=$3 d=$(dl "$1" mt 2)
	vdi-gen 3000017 > src 2> /dev/null || return 1
	# shellcheck disable=SC2086
	run_to "$TO" "$(cl "$c")" backup -v -t 20 $d 2> c.err &
	cpid=$!
	# shellcheck disable=SC2086
	run_to "$TO" vdi-engine backup -v -t 20 --inject "$inj" -i src $d \
		2> e.err
	erc=$?
	wait $cpid
	crc=$?
	expect_rc 0 $erc "engine backup" || { show e.err; return 1; }
	expect_rc 0 $crc "client backup" || { show c.err; return 1; }
	# the engine's own view of the size, whatever the client says
	expect_msg e.err "max transfer $want[^0-9]" || return 1
	if has "$c" verbose; then
		expect_msg c.err "$("P_${c}_config" "$want")" || return 1
	fi
	# shellcheck disable=SC2086
	run_to "$TO" "$(cl "$c")" restore -v -t 20 $d 2> cr.err &
	cpid=$!
	# shellcheck disable=SC2086
	run_to "$TO" vdi-engine restore -t 20 --inject "$inj" -o out $d \
		2> er.err
	erc=$?
	wait $cpid
	crc=$?
	expect_rc 0 $erc "engine restore" || { show er.err; return 1; }
	expect_rc 0 $crc "client restore" || { show cr.err; return 1; }
	if has "$c" verbose; then
		expect_msg cr.err "$("P_${c}_config" "$want")" || return 1
	fi
	cmp src out || { say "the restored data differs"; return 1; }
}

# name-taken: the engine squats on the name; the client's Create fails
name_taken() {
	# not through run_to (a function: $! would be its subshell): the
	# signal must reach the engine itself
	timeout -s KILL "$TO" vdi-engine backup --inject name-taken=25 nt \
		2> e.err &
	epid=$!
	i=0
	until grep -q 'holding it' e.err 2> /dev/null; do
		[ $i -ge 100 ] && { say "the engine never took the name"; show e.err; kill $epid; return 1; }
		sleep 0.1
		i=$((i + 1))
	done
	run_to "$TO" "$(cl "$1")" backup -t 5 nt 2> c.err
	crc=$?
	kill -TERM $epid
	exited $epid 10 || { say "the engine did not stop"; return 1; }
	wait $epid
	erc=$?
	expect_fail $crc "client" || { show c.err; return 1; }
	expect_msg c.err "$(pat "$1" taken)" || return 1
	expect_rc 1 $erc "engine" || { show e.err; return 1; }
	expect_msg e.err "released set name 'nt'" || return 1
	no_backup_files "$1" || return 1
	# released: the name is free again, a backup goes through
	good_backup "$1" nt
}

# sk NAME FEATURE TEST FUNCTION ARGS...: the test, if the client can
sk() {
	if has "$1" "$2"; then
		shift 2
		t "$@"
	else
		skip "$3" "$1: no '$2' (FEAT_$1)"
	fi
}

for C in $CLIENTS; do
	t "inject $C: abort-mid-stream, backup" abort_backup "$C"
	t "inject $C: abort-mid-stream, restore" abort_restore "$C"
	t "inject $C: abort-mid-stream, after a short stream" abort_short "$C"
	sk "$C" tape "inject $C: abort-mid-stream, tape-like" abort_tape "$C"
	sk "$C" timeout "inject $C: silent from the start" silent "$C"
	sk "$C" timeout "inject $C: silent after 3 commands" silent "$C" 3
	t "inject $C: silent, the engine's limit" silent_engine_limit "$C"
	sk "$C" complete "inject $C: close-device-early, VDC_Complete" \
		close_early "$C"
	t "inject $C: close-device-early, no VDC_Complete" \
		close_early_nocomplete "$C"
	t "inject $C: close-device-early, restore" close_early_restore "$C"
	t "inject $C: max-transfer-tiny" sizes "$C" max-transfer-tiny 65536
	t "inject $C: max-transfer-huge" sizes "$C" max-transfer-huge 4194304
	t "inject $C: name-taken" name_taken "$C"
done
case " $CLIENTS " in
*" sdk "*) ;;
*) skip "inject: the SDK-style client" "no vdi-sdk-client in this VM" ;;
esac

finish
