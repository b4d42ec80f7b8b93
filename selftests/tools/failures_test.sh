# SPDX-License-Identifier: GPL-2.0
# vdi tools: every failure ends both sides with a clear message and a
# non-zero exit status, promptly, leaving no file that looks complete.
# (lib.sh comes first; see there.)  The messages are shown as diagnostics.

# start_backup SET SOURCE: a client and an engine that backs up SOURCE,
# both in the background (CPID, EPID); the source is a fifo fed 2 MiB and
# then held open, so the backup is mid-way when SOURCE_PID goes
mid_backup() {
	mkfifo src
	vdi-client backup -t 20 "$1" 2> c.err &
	CPID=$!
	vdi-engine backup -t 20 -i src "$1" 2> e.err &
	EPID=$!
	(vdi-gen 2M 2> /dev/null; exec sleep 60) > src &
	FEED=$!
	if ! size_at_least "$1.vdi.partial" 2162688 20; then	# header + 2 MiB
		say "the backup did not get going"
		show c.err; show e.err
		kill -9 $CPID $EPID $FEED 2> /dev/null
		return 1
	fi
}

# moved_of FILE: "COMMANDS BYTES POSITION" from the summary a tool gives
# when its peer dies: "... after N commands, B bytes, last position P ..."
moved_of() {
	sed -n 's/.* after \([0-9]*\) commands*, \([0-9]*\) bytes, last position \([0-9]*\).*/\1 \2 \3/p' "$1"
}

# check_moved FILE MIN_COMMANDS MIN_BYTES MIN_POSITION: the summary is there
# and plausible: at least that much, the last transfer began before the
# end of what moved, and no command moved more than 4 MiB (the largest
# transfer)
check_moved() {
	# shellcheck disable=SC2046 # three words: commands, bytes, position
	set -- "$1" "$2" "$3" "$4" $(moved_of "$1")
	if [ -z "$7" ]; then
		say "${1##*/} has no summary of what moved:"
		show "$1"
		return 1
	fi
	if [ "$5" -lt "$2" ] || [ "$6" -lt "$3" ] || [ "$7" -lt "$4" ] ||
	   [ "$7" -ge "$6" ] || [ "$6" -gt $(($5 * 4194304)) ]; then
		say "${1##*/}: $5 commands, $6 bytes, last position $7: expected" \
			"at least $2 commands, $3 bytes, position $4, and position < bytes"
		return 1
	fi
}

bad_options() {
	r=0
	for cmd in "vdi-engine" "vdi-engine frob x" "vdi-engine backup" \
		"vdi-engine backup --block-size 1000 x" \
		"vdi-engine backup --max-transfer 100K x" \
		"vdi-engine backup --buffers 0 x" \
		"vdi-engine restore --generate 1M x" \
		"vdi-engine backup -i f --generate 1M x" \
		"vdi-engine backup x x" "vdi-client backup -o f a b" \
		"vdi-client restore --disk -i - x" "vdi-client backup --mode 0777 x" \
		"vdi-client backup --timeout -1 x" "vdi-gen 1Q"; do
		# shellcheck disable=SC2086 # a command line
		$cmd > /dev/null 2> err
		rc=$?
		if [ $rc != 2 ] || ! [ -s err ]; then
			say "'$cmd': exit status $rc, expected 2 and a message"
			r=1
		fi
	done
	show err	# the last one, as a sample
	return $r
}

engine_timeout() {
	run_to "$TO" vdi-engine backup -t 1 --generate 1K nosuchset 2> e.err
	expect_rc 1 $? "engine" && expect_msg e.err "no set named 'nosuchset'" &&
		show e.err
}

client_timeout() {
	run_to "$TO" vdi-client backup -t 1 lonely 2> c.err
	expect_rc 1 $? "client" && expect_msg c.err "no engine opened" || return 1
	[ ! -e lonely.vdi ] && [ ! -e lonely.vdi.partial ] ||
		{ say "files left behind"; return 1; }
	show c.err
}

# a second client with a set name in use fails at once; SIGTERM ends the
# first one cleanly
name_taken() {
	mkdir first second
	(cd first && exec vdi-client backup -t 20 taken 2> ../c1.err) &
	c1=$!
	size_at_least first/taken.vdi.partial 0 10 ||
		{ say "first client did not start"; show c1.err; return 1; }
	(cd second && run_to 10 vdi-client backup -t 5 taken 2> ../c2.err)
	expect_rc 1 $? "second client" || return 1
	expect_msg c2.err "already exists" || return 1
	[ -e first/taken.vdi.partial ] || { say "the first client's file is gone"; return 1; }
	kill -TERM $c1
	exited $c1 5 || { say "SIGTERM did not end the client"; kill -9 $c1; return 1; }
	wait $c1
	expect_rc 1 $? "first client after SIGTERM" || return 1
	expect_msg c1.err "interrupted" || return 1
	[ ! -e first/taken.vdi.partial ] || { say "partial file left behind"; return 1; }
	show c2.err; show c1.err
}

device_count() {
	run_to "$TO" vdi-client backup -t 20 dc dc.1 dc.2 2> c.err &
	cpid=$!
	run_to "$TO" vdi-engine backup -t 20 --generate 1M dc 2> e.err
	erc=$?
	wait $cpid
	crc=$?
	expect_rc 1 $erc "engine" && expect_rc 1 $crc "client" || return 1
	expect_msg e.err "has 3 devices" && expect_msg c.err "abort" || return 1
	show e.err; show c.err
}

engine_killed() {
	mid_backup ek || return 1
	kill -9 $EPID
	exited $CPID 5 || { say "the client did not notice"; kill -9 $CPID $FEED; return 1; }
	kill -9 $FEED 2> /dev/null
	wait $CPID
	expect_fail $? "client" || return 1
	expect_msg c.err "went away or aborted" || return 1
	# the client wrote the header and 2 MiB: 3 commands, the last at 1 MiB
	# past the header
	check_moved c.err 3 2162688 1114112 || return 1
	[ ! -e ek.vdi ] && [ ! -e ek.vdi.partial ] || { say "files left behind"; return 1; }
	show c.err
}

client_killed() {
	mid_backup ck || return 1
	kill -9 $CPID
	# the engine is waiting for input: it must still notice at once
	exited $EPID 5 || { say "the engine did not notice"; kill -9 $EPID $FEED; return 1; }
	kill -9 $FEED 2> /dev/null
	wait $EPID
	expect_fail $? "engine" || return 1
	expect_msg e.err "client went away or aborted" || return 1
	# the client had completed the header and the first 1 MiB chunk at
	# least (it wrote the second): 2 commands, the last at the header's end
	check_moved e.err 2 1114112 65536 || return 1
	show e.err
}

engine_sigterm() {
	mid_backup es || return 1
	kill -TERM $EPID
	exited $EPID 5 && exited $CPID 5 || { say "not ended"; kill -9 $EPID $CPID $FEED; return 1; }
	kill -9 $FEED 2> /dev/null
	wait $EPID
	erc=$?
	wait $CPID
	crc=$?
	expect_rc 1 $erc "engine" && expect_rc 1 $crc "client" || return 1
	expect_msg e.err "interrupted" && expect_msg c.err "abort" || return 1
	show e.err; show c.err
}

# the client's disk fills up: ERROR_DISK_FULL, the engine aborts the backup
disk_full() {
	mkdir full
	mount -t tmpfs -o size=1m tmpfs full || { say "cannot mount a tmpfs"; return 1; }
	run_to "$TO" vdi-client backup -t 20 -d full df df.1 2> c.err &
	cpid=$!
	run_to "$TO" vdi-engine backup -t 20 --generate 8M df df.1 2> e.err
	erc=$?
	wait $cpid
	crc=$?
	left=$(ls full)
	umount full
	expect_rc 1 $erc "engine" && expect_rc 1 $crc "client" || return 1
	expect_msg e.err "storage is full" && expect_msg c.err "disk full" || return 1
	[ -z "$left" ] || { say "left in the full fs: $left"; return 1; }
	show e.err; show c.err
}

# the engine restores from a file that was cut short: it says so
truncated() {
	run_to "$TO" vdi-client backup -t 20 tr 2> c.err &
	cpid=$!
	run_to "$TO" vdi-engine backup -t 20 --generate 3M tr 2> e.err
	wait $cpid
	head -c 2000000 tr.vdi > tr.cut && mv tr.cut tr.vdi
	run_to "$TO" vdi-client restore -t 20 tr 2> c.err &
	cpid=$!
	run_to "$TO" vdi-engine restore -t 20 -o out tr 2> e.err
	erc=$?
	wait $cpid
	crc=$?
	expect_rc 1 $erc "engine" && expect_rc 1 $crc "client" || return 1
	expect_msg e.err "incomplete or damaged" || return 1
	[ ! -e out ] && [ ! -e out.partial ] || { say "output left behind"; return 1; }
	show e.err
}

# --mode: an engine running as another user needs the client's permission
# run a command line as user nobody
as_nobody() { run_to "$TO" su -s /bin/sh nobody -c "$*"; }
access() {
	chmod 755 "$W" .
	run_to "$TO" vdi-client backup -t 3 acc 2> c.err &
	cpid=$!
	size_at_least acc.vdi.partial 0 10
	as_nobody vdi-engine backup -t 5 --generate 1M acc 2> e.err
	expect_rc 1 $? "engine as nobody, mode 0600" || { show e.err; return 1; }
	expect_msg e.err "access denied" || return 1
	wait $cpid
	run_to "$TO" vdi-client backup --mode 0666 -t 20 acc 2> c2.err &
	cpid=$!
	as_nobody vdi-engine backup -t 20 --generate 1M acc 2> e2.err
	erc=$?
	wait $cpid
	crc=$?
	expect_rc 0 $erc "engine as nobody, mode 0666" || { show e2.err; return 1; }
	expect_rc 0 $crc "client, mode 0666" || { show c2.err; return 1; }
	show e.err
}

# --server-timeout is the module's watchdog: a client that stops completing
# commands (SIGSTOP) has its set aborted after 2 x MS; the engine ends
server_timeout() {
	vdi-client --help > help.out
	expect_msg help.out "VDI module aborts the set" || return 1
	if grep -qi "the engine aborts" help.out; then
		say "--help says the engine aborts on --server-timeout"
		return 1
	fi
	vdi-client backup -t 20 --server-timeout 300 st 2> c.err &
	cpid=$!
	vdi-engine backup -t 20 --generate 4G st 2> e.err &
	epid=$!
	size_at_least st.vdi.partial 1048576 20 ||
		{ say "the backup did not get going"; kill -9 $cpid $epid; return 1; }
	kill -STOP $cpid
	t0=$(date +%s)
	exited $epid 10 || { say "the engine did not end"; kill -9 $cpid $epid; return 1; }
	wait $epid
	erc=$?
	t1=$(date +%s)
	kill -CONT $cpid
	exited $cpid 5 || { say "the client did not end"; kill -9 $cpid; return 1; }
	wait $cpid
	crc=$?
	expect_fail $erc "engine" && expect_fail $crc "client" || return 1
	expect_msg e.err "aborted" && expect_msg c.err "abort" || return 1
	say "the engine ended $((t1 - t0)) s after the client stopped"
	[ ! -e st.vdi ] && [ ! -e st.vdi.partial ] || { say "files left behind"; return 1; }
	show e.err; show c.err
}

t "bad options: exit status 2 and a message" bad_options
t "engine gives up waiting for the set" engine_timeout
t "client gives up waiting for the engine" client_timeout
t "set name taken; SIGTERM ends a client cleanly" name_taken
t "engine and client disagree on the device count" device_count
t "engine killed mid-backup: client aborts, no file left" engine_killed
t "client killed mid-backup: engine exits promptly" client_killed
t "engine interrupted mid-backup (SIGTERM)" engine_sigterm
t "client's disk full: both fail, engine aborts" disk_full
t "restore of a truncated device fails clearly" truncated
t "engine as another user: denied, then allowed by --mode" access
t "--server-timeout: the module's watchdog aborts a stalled client" server_timeout
finish
