# SPDX-License-Identifier: GPL-2.0
# vdi tools: the module's figures as vdi-engine and vdi-client print them
# (tools/stats-report.c): at the end of a run, every --stats N seconds, the
# verdict on the slow side (made slow on purpose with --delay-ms), and the
# byte counts against what the client stored.
# (lib.sh comes first; see there.)

# bk SET "CLIENT_OPTS" "ENGINE_OPTS" SIZE [DEVICES...]: a backup of SIZE
# bytes of generated data; c.err and e.err hold the tools' stderr, CRC and
# ERC their exit statuses.
bk() {
	sn=$1 copt=$2 eopt=$3 size=$4
	shift 4
	# shellcheck disable=SC2086 # the option strings are word lists
	{
		run_to "$TO" vdi-client backup $copt -t 20 "$sn" "$@" 2> c.err &
		cpid=$!
		run_to "$TO" vdi-engine backup $eopt -t 20 --generate "$size" \
			"$sn" "$@" 2> e.err
		ERC=$?
		wait $cpid
		CRC=$?
	}
}

# both_ok: the backup of bk succeeded on both sides
both_ok() {
	expect_rc 0 "$ERC" "engine" || { show e.err; show c.err; return 1; }
	expect_rc 0 "$CRC" "client" || { show c.err; show e.err; return 1; }
}

# row FILE PROG DEV COLUMN: a column of DEV's row of the last report in FILE
# (1: bytes, 2: MiB/s, 3: sent, 4: completed, 5: queued-ms, 6: held-ms,
# 7: reaping-ms, 8: busy, 9: io-errors, 10: peak-queued)
row() {
	awk -v p="$2:" -v d="$3" -v c="$4" \
		'$1 == p && $2 == d { v = $(c + 2) } END { print v }' "$1"
}

# stored DEV: the bytes the client stored for DEV (its checksum line)
stored() {
	sed -n "s/^checksum [0-9a-f]* \([0-9]*\) bytes device $1\$/\1/p" c.err
}

# A slow client's storage: each Read or Write held 20 ms longer.  The
# engine always has commands queued: the client is the slow side, and both
# tools say so from the same figures.
slow_client() {
	bk sc "--delay-ms 20" "-m 256K" 4M
	both_ok || return 1
	for f in e.err c.err; do
		expect_msg $f '^vdi-(engine|client): verdict: client storage: [0-9]+% of the time the engine waited on the client$' ||
			return 1
	done
	held=$(row e.err vdi-engine sc 6)
	# at least the 20 ms of the delay, on average (a few commands, such as
	# GetPosition, are not delayed: 15)
	[ "${held%%.*}" -ge 15 ] 2>/dev/null ||
		{ say "held-ms '$held', expected 15 or more"; show e.err; return 1; }
	show e.err
}

# A slow engine: 100 ms before each Read or Write it sends.  The client has
# nothing to do most of the time: the engine is the slow side.
slow_engine() {
	bk se "" "-m 64K --delay-ms 100" 1M
	both_ok || return 1
	for f in e.err c.err; do
		expect_msg $f '^vdi-(engine|client): verdict: engine: [0-9]+% of the time the client waited with nothing queued$' ||
			return 1
	done
	show c.err
}

# A normal run through 2 devices: one row per device and one for all, the
# bytes of each device's row are what the client stored for that device
# (header, data, padding and trailer), the same on both sides, every
# command sent was completed; the restore reads the same bytes back.
figures() {
	vdi-gen 3000017 > src 2> /dev/null || return 1
	run_to "$TO" vdi-client backup -t 20 fg fg.1 2> c.err &
	cpid=$!
	run_to "$TO" vdi-engine backup -t 20 -i src fg fg.1 2> e.err
	ERC=$?
	wait $cpid
	CRC=$?
	both_ok || return 1
	expect_msg e.err "^vdi-engine: figures of set 'fg' after [0-9.]+ s: done$" ||
		return 1
	expect_msg c.err "^vdi-client: figures of set 'fg' after [0-9.]+ s: done$" ||
		return 1
	sum=0
	for dev in fg fg.1; do
		want=$(stored $dev)
		[ -n "$want" ] || { say "no checksum line for $dev"; show c.err; return 1; }
		[ "$want" = "$(wc -c < $dev.vdi)" ] ||
			{ say "$dev.vdi is not $want bytes"; return 1; }
		for p in vdi-engine vdi-client; do
			f=e.err
			[ $p = vdi-client ] && f=c.err
			got=$(row $f $p $dev 1)
			[ "$got" = "$want" ] ||
				{ say "$p: $dev moved '$got' bytes, the client stored $want"; show $f; return 1; }
			[ "$(row $f $p $dev 3)" = "$(row $f $p $dev 4)" ] ||
				{ say "$p: $dev: sent and completed differ"; show $f; return 1; }
		done
		sum=$((sum + want))
	done
	got=$(row e.err vdi-engine '(all)' 1)
	[ "$got" = "$sum" ] || { say "(all): $got bytes, expected $sum"; show e.err; return 1; }
	# the restore: Read completions count the same bytes
	run_to "$TO" vdi-client restore -t 20 fg fg.1 2> c.err &
	cpid=$!
	run_to "$TO" vdi-engine restore -t 20 -o out fg fg.1 2> r.err
	ERC=$?
	wait $cpid
	CRC=$?
	both_ok || return 1
	cmp src out || { say "the restored file differs"; return 1; }
	for dev in fg fg.1; do
		got=$(row r.err vdi-engine $dev 1) want=$(wc -c < $dev.vdi)
		[ "$got" = "$want" ] ||
			{ say "restore: $dev read '$got' bytes, its file has $want"; show r.err; return 1; }
	done
	show e.err
}

# --stats 1 on a run of more than 2 s (a client 100 ms slow on each of its
# 33 Writes): at least 2 reports while it runs (state "ready"), on both
# sides, then the final one ("done").
periodic() {
	bk pe "--delay-ms 100 --stats 1" "-m 256K --stats 1" 8M
	both_ok || return 1
	for f in e.err c.err; do
		n=$(grep -cE "^vdi-(engine|client): figures of set 'pe' after [0-9.]+ s: ready$" $f)
		[ "$n" -ge 2 ] || { say "${f%.err}: $n reports while it ran, expected 2 or more"; show $f; return 1; }
		expect_msg $f "figures of set 'pe' after [0-9.]+ s: done$" || return 1
	done
	show e.err
}

# A report due in 60 s neither delays the end nor comes after it; nor does
# a slow side's delay stretch the exit.
no_hang() {
	t0=$(date +%s)
	bk nh "--stats 60" "--stats 60" 1M
	both_ok || return 1
	t=$(($(date +%s) - t0))
	[ "$t" -lt 20 ] || { say "the run took $t s"; return 1; }
	if grep -q ': ready$' e.err c.err; then
		say "a periodic report in a run shorter than its interval"
		show e.err
		return 1
	fi
}

# --quiet-stats: no figures at the end; the checksums as ever.
quiet() {
	bk qs "--quiet-stats" "--quiet-stats" 1M
	both_ok || return 1
	if grep -qE 'figures|verdict' e.err c.err; then
		say "figures printed with --quiet-stats"
		show e.err; show c.err
		return 1
	fi
	[ -n "$(checksum_of e.err)" ] || { say "no checksum"; show e.err; return 1; }
	[ -n "$(stored qs)" ] || { say "no client checksum"; show c.err; return 1; }
}

# A failed run: the figures of the aborted set, taken before its close,
# with the reason (the engine's SignalAbort) on both sides.
aborted() {
	bk ab "" "--inject abort-mid-stream=1M" 8M
	expect_rc 1 "$ERC" "engine" || { show e.err; return 1; }
	expect_fail "$CRC" "client" || { show c.err; return 1; }
	for f in e.err c.err; do
		expect_msg $f "figures of set 'ab' after [0-9.]+ s: aborted$" || return 1
		expect_msg $f "^vdi-(engine|client): aborted: SignalAbort by the engine( \(pid [0-9]+\))?$" ||
			return 1
	done
	show c.err
}

# The client's summary after an abort counts what the module counts: the
# bytes of the completions it accepted.  The client holds each Write 200 ms,
# so the engine's SignalAbort comes while it holds one, whose completion
# is then refused: its bytes are not among those that moved.
aborted_moved() {
	bk am "--delay-ms 200" "-m 256K --inject abort-mid-stream=1M" 8M
	expect_rc 1 "$ERC" "engine" || { show e.err; return 1; }
	expect_fail "$CRC" "client" || { show c.err; return 1; }
	said=$(sed -n 's/^vdi-client: .* after [0-9]* commands*, \([0-9]*\) bytes.*/\1/p' c.err)
	figs=$(row c.err vdi-client am 1)
	[ -n "$said" ] && [ "$said" = "$figs" ] ||
		{ say "the client says $said bytes moved, the module $figs"; show c.err; return 1; }
	show c.err
}

# Bad values are usage errors (2), before anything happens.
bad_values() {
	r=0
	for tool in vdi-engine vdi-client; do
		for o in "--stats 0" "--stats x" "--stats -1" "--stats 86401" \
			"--stats=" "--delay-ms x" "--delay-ms -1" \
			"--delay-ms 10001"; do
			# shellcheck disable=SC2086 # an option and its value
			$tool backup $o bv > /dev/null 2> err
			rc=$?
			if [ $rc != 2 ] || ! grep -q -- "${o%%[ =]*}" err; then
				say "'$tool backup $o': exit status $rc, expected 2 and a message:"
				show err
				r=1
			fi
		done
	done
	run_to "$TO" vdi-engine sql --stats 0 "BACKUP DATABASE d TO VIRTUAL_DEVICE='x'" \
		> /dev/null 2> err
	expect_rc 2 $? "vdi-engine sql --stats 0" || { show err; r=1; }
	return $r
}

t "a slow client is blamed on the client storage" slow_client
t "a slow engine is blamed on the engine" slow_engine
t "per-device figures: bytes as stored, both sides, backup and restore" figures
t "--stats 1: reports while the run lasts" periodic
t "--stats 60 does not hold up the end" no_hang
t "--quiet-stats: no figures" quiet
t "an aborted run: the figures and the abort's reason" aborted
t "after an abort, the client's summary counts the module's bytes" aborted_moved
t "--stats and --delay-ms: bad values are usage errors" bad_values
finish
