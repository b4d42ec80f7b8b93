# SPDX-License-Identifier: GPL-2.0
# vdi tools: the feature sets a client declares (pipe, disk, tape) and what
# the engine sends for each (tools/README.md, "What the engine sends"):
# backups and restores byte for byte, a tape's filemarks and block
# addresses, VDC_Complete.  (lib.sh comes first; see there.)

# u64 FILE OFFSET: the little-endian u64 at OFFSET
u64() { od -An -tu8 -j "$2" -N8 "$1" | tr -d ' '; }
fsize() { stat -c %s "$1"; }

# rt SET NDEV SIZE CLIENT_OPTS ENGINE_OPTS: back up SIZE bytes of vdi-gen
# data through NDEV devices and restore them, byte for byte; stderr in
# cb.err eb.err cr.err er.err
rt() {
	sn=$1 n=$2 size=$3 copt=$4 eopt=$5
	d=$(devs "$sn" "$n")
	vdi-gen "$size" > src 2> /dev/null || return 1
	# shellcheck disable=SC2086 # the option strings are word lists
	{
		run_to "$TO" vdi-client backup -v $copt -t 20 $d 2> cb.err &
		cpid=$!
		run_to "$TO" vdi-engine backup -v $eopt -t 20 -i src $d 2> eb.err
		erc=$?
		wait $cpid
		crc=$?
	}
	expect_rc 0 $erc "engine backup" || { show eb.err; show cb.err; return 1; }
	expect_rc 0 $crc "client backup" || { show cb.err; return 1; }
	# shellcheck disable=SC2086
	{
		run_to "$TO" vdi-client restore -v $copt -t 20 $d 2> cr.err &
		cpid=$!
		run_to "$TO" vdi-engine restore -v $eopt -t 20 -o out $d 2> er.err
		erc=$?
		wait $cpid
		crc=$?
	}
	expect_rc 0 $erc "engine restore" || { show er.err; show cr.err; return 1; }
	expect_rc 0 $crc "client restore" || { show cr.err; return 1; }
	cmp src out || { say "the restored file differs"; return 1; }
}

# tape_file FILE: the footer and mark index of a tape backup: two marks,
# after the 64 KiB header and at the end of the data
tape_file() {
	f=$1 sz=$(fsize "$1")
	[ "$(tail -c 32 "$f" | head -c 8)" = VDITAPE1 ] ||
		{ say "$f: no tape footer"; return 1; }
	len=$(u64 "$f" $((sz - 24))) marks=$(u64 "$f" $((sz - 16)))
	[ "$marks" = 2 ] || { say "$f: $marks marks, expected 2"; return 1; }
	[ $((len + 16 + 32)) = "$sz" ] ||
		{ say "$f: $len bytes of data do not fit its size $sz"; return 1; }
	m0=$(u64 "$f" "$len") m1=$(u64 "$f" $((len + 8)))
	[ "$m0" = 65536 ] || { say "$f: first mark at $m0, not 65536"; return 1; }
	[ "$m1" = "$len" ] || { say "$f: last mark at $m1, not $len"; return 1; }
}

tape_one() {
	rt tp 1 3158073 --tape "" || return 1
	tape_file tp.vdi || return 1
	# the header (block 0), its mark (1): the data begins at address 2
	expect_msg eb.err "set 'tp': 1 device, tape-like" || return 1
	expect_msg eb.err "device 'tp': data from block address 2 to " || return 1
	expect_msg er.err "device 'tp': data from block address 2 to " || return 1
	# 3158073 + 64 bytes of trailer in 64K blocks: 49 blocks, then the mark
	expect_msg eb.err "data from block address 2 to 52$" || return 1
}

tape_three() {
	rt tq 3 2000001 --tape "-b 512 -m 64K" || return 1
	for x in tq tq.1 tq.2; do tape_file $x.vdi || return 1; done
	# 512-byte blocks: the header is 128 of them
	expect_msg eb.err "device 'tq.2': data from block address 129 to " ||
		return 1
}

tape_empty() {
	rt te 2 0 --tape "" || return 1
	tape_file te.vdi && tape_file te.1.vdi
}

# a tape file restored as a pipe, a pipe file restored as a tape: said so
tape_mismatch() {
	vdi-gen 100000 > src 2> /dev/null
	run_to "$TO" vdi-client backup --tape -t 20 tm 2> cb.err &
	cpid=$!
	run_to "$TO" vdi-engine backup -t 20 -i src tm 2> eb.err || { show eb.err; return 1; }
	wait $cpid || { show cb.err; return 1; }
	run_to "$TO" vdi-client restore -t 5 tm 2> cr.err
	expect_fail $? "pipe restore of a tape file" || return 1
	expect_msg cr.err "holds a tape-like backup .*restore it with --tape" ||
		return 1
	# ... also through stdin, which --tape does not take
	run_to "$TO" vdi-client restore -i - -t 5 tm < tm.vdi 2> cr.err
	expect_fail $? "pipe restore of a tape file from stdin" || return 1
	expect_msg cr.err "standard input holds a tape-like backup" || return 1
	run_to "$TO" vdi-client backup -t 20 pm 2> cb.err &
	cpid=$!
	run_to "$TO" vdi-engine backup -t 20 -i src pm 2> eb.err || { show eb.err; return 1; }
	wait $cpid || { show cb.err; return 1; }
	run_to "$TO" vdi-client restore --tape -t 5 pm 2> cr.err
	expect_fail $? "tape restore of a pipe file" || return 1
	expect_msg cr.err "not written by vdi-client --tape" || return 1
	# a damaged mark index is found before anything is served
	sz=$(fsize tm.vdi)
	printf 'Z' | dd of=tm.vdi bs=1 seek=$((sz - 40)) conv=notrunc 2> /dev/null
	run_to "$TO" vdi-client restore --tape -t 5 tm 2> cr.err
	expect_fail $? "restore of a damaged tape file" || return 1
	expect_msg cr.err "mark index is damaged" || return 1
}

# a tape's mark index goes at its file's end: no tape onto a device or
# FIFO (written in place), refused before the engine moves anything
tape_in_place() {
	run_to "$TO" vdi-client backup --tape -o /dev/null -t 5 tn 2> cb.err
	expect_fail $? "a tape backup onto /dev/null" || return 1
	expect_msg cb.err "/dev/null is not a regular file: --tape" || return 1
	mkfifo tf.vdi
	run_to "$TO" vdi-client backup --tape -t 5 tf 2> cb.err
	expect_fail $? "a tape backup onto a FIFO" || return 1
	expect_msg cb.err "tf.vdi is not a regular file" || return 1
}

# VDC_Complete: asked for by default and granted by the engine (backups);
# --no-complete: neither
complete_on() {
	rt co 2 1000000 "" "" || return 1
	expect_msg cb.err 'VDC_Complete enabled' || return 1
	expect_msg eb.err "pipe-like with VDC_Complete" || return 1
	if grep -q 'VDC_Complete' er.err cr.err; then
		say "a restore with VDC_Complete"; return 1
	fi
}

complete_off() {
	rt cf 1 1000000 --no-complete "" || return 1
	if grep -q 'VDC_Complete' cb.err eb.err; then
		say "VDC_Complete without the client asking"; show eb.err
		return 1
	fi
}

disk_complete() {
	rt dc 2 2500000 --disk "-m 64K" || return 1
	expect_msg eb.err "disk-like \(positions\) with VDC_Complete" || return 1
	[ "$(fsize dc.vdi)" -gt 65536 ] || { say "dc.vdi too small"; return 1; }
}

t "features: tape, 1 device, marks and block addresses" tape_one
t "features: tape, 3 devices, 512-byte blocks, 64K transfers" tape_three
t "features: tape, empty stream, 2 devices" tape_empty
t "features: tape and pipe files are not mixed up; a damaged index" \
	tape_mismatch
t "features: no tape onto a device or FIFO" tape_in_place
t "features: VDC_Complete asked for and granted" complete_on
t "features: --no-complete" complete_off
t "features: disk, 2 devices, VDC_Complete" disk_complete

finish
