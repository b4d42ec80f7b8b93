# SPDX-License-Identifier: GPL-2.0
# vdi-engine --inject: every fault scenario against each VDI client under
# test, which must end (no hang: every run is under run_to), with the exit
# status and the message the scenario calls for, and leave no backup file.
# (lib.sh comes first; see there.)
#
# The clients under test: CLIENTS names them (default: vdi, our vdi-client;
# "sdk" too when the SDK-style client program is in the VM, see below).
# Each NAME has
#   CMD_NAME   the command (a program: run_to runs it) taking vdi-client's
#        command line for what is used here: backup|restore, -t SEC (wait
#        for the engine), --command-timeout SEC (GetCommand's timeout),
#        --no-complete (do not ask for VDC_Complete), -v (say the
#        configuration got), then SET [DEVICE...]; it stores and reads
#        ./<device>.vdi, and exits 0 only for a complete backup / restore
#   and the extended regexes of what it says when
#   P_NAME_abort     the engine aborted (VD_E_ABORT)
#   P_NAME_timeout   GetCommand timed out (VD_E_TIMEOUT)
#   P_NAME_taken     Create failed: the name is in use (VD_E_PROTOCOL)
#   P_NAME_nocomplete  a device ended (VD_E_CLOSE) without VDC_Complete
#   P_NAME_config    (a function) its -v output shows max transfer $1
#   FEAT_NAME        what more it takes: "tape" (--tape, VDF_LikeTape)
CMD_vdi=vdi-client
FEAT_vdi=tape
P_vdi_abort='engine (went away or )?aborted the (backup|restore)|VD_E_ABORT'
P_vdi_timeout='no command from the engine .*VD_E_TIMEOUT'
P_vdi_taken="a set named '.*' already exists"
P_vdi_nocomplete='closed it without VDC_Complete: the backup is incomplete'
P_vdi_config() { echo "max transfer $1[^0-9]"; }

# The SDK-style client (branch sdk), once it is in the VM's /bin as
# vdi-sdk-client with the command line above.
CMD_sdk=vdi-sdk-client
FEAT_sdk=
P_sdk_abort='VD_E_ABORT'
P_sdk_timeout='VD_E_TIMEOUT'
P_sdk_taken='VD_E_PROTOCOL'
P_sdk_nocomplete='VDC_Complete'
P_sdk_config() { echo "max.?transfer.? *=? *$1[^0-9]"; }

if [ -z "${CLIENTS:-}" ]; then
	CLIENTS=vdi
	command -v "$CMD_sdk" > /dev/null 2>&1 && CLIENTS="vdi sdk"
fi

# pat NAME KIND: the client's message pattern; cl NAME: its command
pat() { eval "echo \"\$P_$1_$2\""; }
cl() { eval "echo \"\$CMD_$1\""; }
# has NAME FEATURE: the client takes it
has() { eval "case \" \$FEAT_$1 \" in *\" $2 \"*) true ;; *) false ;; esac"; }

# no_backup_files: a failed backup leaves neither .vdi nor .partial files
no_backup_files() {
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
	backup_with "$1" abort-mid-stream=2M ab ab.1 -- || return 1
	expect_rc 1 $erc "engine" || { show e.err; return 1; }
	expect_msg e.err 'inject abort-mid-stream: SignalAbort after 2\.' ||
		return 1
	expect_fail $crc "client" || { show c.err; return 1; }
	expect_msg c.err "$(pat "$1" abort)" || return 1
	no_backup_files
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
	no_backup_files
}

# a tape-like client, aborted between its marks
abort_tape() {
	backup_with "$1" abort-mid-stream=1M at -- --tape || return 1
	expect_rc 1 $erc "engine" || { show e.err; return 1; }
	expect_fail $crc "client" || { show c.err; return 1; }
	expect_msg c.err "$(pat "$1" abort)" || return 1
	no_backup_files
}

# close-device-early in a restore: the engine stops, the data is short
close_early_restore() {
	good_backup "$1" cr cr.1 || return 1
	run_to "$TO" "$(cl "$1")" restore -t 20 cr cr.1 2> c.err &
	cpid=$!
	run_to "$TO" vdi-engine restore -t 20 -o out \
		--inject close-device-early=cr cr cr.1 2> e.err
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
	no_backup_files
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
	no_backup_files
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
	no_backup_files
}

# ... one that did not cannot tell; the restore finds the damage
close_early_nocomplete() {
	backup_with "$1" close-device-early=ce ce ce.1 -- --no-complete ||
		return 1
	expect_rc 1 $erc "engine" || { show e.err; return 1; }
	expect_msg e.err "closed device 'ce' after" || return 1
	expect_rc 0 $crc "client (it cannot tell)" || { show c.err; return 1; }
	run_to "$TO" "$(cl "$1")" restore -t 20 ce ce.1 2> cr.err &
	cpid=$!
	run_to "$TO" vdi-engine restore -t 20 -o out ce ce.1 2> er.err
	erc=$?
	wait $cpid
	expect_rc 1 $erc "engine restore" || { show er.err; return 1; }
	expect_msg er.err 'incomplete or damaged' || return 1
	[ ! -e out ] || { say "a damaged restore was kept"; return 1; }
}

# max-transfer-tiny / -huge: a backup and restore that must succeed, with
# the client seeing the size
sizes() {
	c=$1 inj=$2 want=$3
	vdi-gen 3000017 > src 2> /dev/null || return 1
	run_to "$TO" "$(cl "$c")" backup -v -t 20 mt mt.1 2> c.err &
	cpid=$!
	run_to "$TO" vdi-engine backup -t 20 --inject "$inj" -i src mt mt.1 \
		2> e.err
	erc=$?
	wait $cpid
	crc=$?
	expect_rc 0 $erc "engine backup" || { show e.err; return 1; }
	expect_rc 0 $crc "client backup" || { show c.err; return 1; }
	expect_msg c.err "$("P_${c}_config" "$want")" || return 1
	run_to "$TO" "$(cl "$c")" restore -v -t 20 mt mt.1 2> cr.err &
	cpid=$!
	run_to "$TO" vdi-engine restore -t 20 --inject "$inj" -o out mt mt.1 \
		2> er.err
	erc=$?
	wait $cpid
	crc=$?
	expect_rc 0 $erc "engine restore" || { show er.err; return 1; }
	expect_rc 0 $crc "client restore" || { show cr.err; return 1; }
	expect_msg cr.err "$("P_${c}_config" "$want")" || return 1
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
	no_backup_files || return 1
	# released: the name is free again, a backup goes through
	good_backup "$1" nt
}

for C in $CLIENTS; do
	t "inject $C: abort-mid-stream, backup, 2 devices" abort_backup "$C"
	t "inject $C: abort-mid-stream, restore" abort_restore "$C"
	t "inject $C: abort-mid-stream, after a short stream" abort_short "$C"
	if has "$C" tape; then
		t "inject $C: abort-mid-stream, tape-like" abort_tape "$C"
	else
		skip "inject $C: abort-mid-stream, tape-like" "no --tape"
	fi
	t "inject $C: silent from the start" silent "$C"
	t "inject $C: silent after 3 commands" silent "$C" 3
	t "inject $C: silent, the engine's limit" silent_engine_limit "$C"
	t "inject $C: close-device-early, VDC_Complete" close_early "$C"
	t "inject $C: close-device-early, no VDC_Complete" \
		close_early_nocomplete "$C"
	t "inject $C: close-device-early, restore" close_early_restore "$C"
	t "inject $C: max-transfer-tiny" sizes "$C" max-transfer-tiny 65536
	t "inject $C: max-transfer-huge" sizes "$C" max-transfer-huge 4194304
	t "inject $C: name-taken" name_taken "$C"
done
case " $CLIENTS " in
*" sdk "*) ;;
*) skip "inject: the SDK-style client" "no $CMD_sdk in this VM" ;;
esac

finish
