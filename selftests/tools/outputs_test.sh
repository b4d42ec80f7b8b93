# SPDX-License-Identifier: GPL-2.0
# vdi tools: outputs that are not regular files - a character device such
# as /dev/null, a FIFO - are written in place.  A regular file is written
# as FILE.partial and renamed at the end; renaming over a device node would
# replace the node (as root: /dev/null becomes a regular file).
# (lib.sh comes first; see there.)

# If a broken tool replaced /dev/null, put the device back for what follows.
devnull_intact() {
	[ -c /dev/null ] && [ ! -e /dev/null.partial ] && return 0
	say "/dev/null is no longer a character device (or /dev/null.partial exists):"
	ls -l /dev/null /dev/null.partial 2>&1 | sed 's/^/#   /'
	rm -f /dev/null /dev/null.partial
	mknod -m 666 /dev/null c 1 3
	return 1
}

# vdi-client backup -o /dev/null: the backup succeeds, /dev/null stays
client_devnull() {
	run_to "$TO" vdi-client backup -t 20 -o /dev/null cdn 2> cb.err &
	cpid=$!
	run_to "$TO" vdi-engine backup -t 20 --generate 2M cdn 2> eb.err
	erc=$?
	wait $cpid
	crc=$?
	devnull_intact || return 1
	expect_rc 0 $erc "engine backup" || { show eb.err; show cb.err; return 1; }
	expect_rc 0 $crc "client backup" || { show cb.err; return 1; }
	# header + 2 MiB + trailer went through, checksummed on the way
	expect_msg cb.err '^checksum [0-9a-f]+ 2228224 bytes device cdn$'
}

# vdi-engine restore -o /dev/null: likewise
engine_devnull() {
	run_to "$TO" vdi-client backup -t 20 edn 2> cb.err &
	cpid=$!
	run_to "$TO" vdi-engine backup -t 20 --generate 1M edn 2> eb.err
	erc=$?
	wait $cpid
	expect_rc 0 $erc "engine backup" || { show eb.err; show cb.err; return 1; }
	run_to "$TO" vdi-client restore -t 20 edn 2> cr.err &
	cpid=$!
	run_to "$TO" vdi-engine restore -t 20 -o /dev/null edn 2> er.err
	erc=$?
	wait $cpid
	crc=$?
	devnull_intact || return 1
	expect_rc 0 $erc "engine restore" || { show er.err; show cr.err; return 1; }
	expect_rc 0 $crc "client restore" || { show cr.err; return 1; }
	[ "$(checksum_of eb.err)" = "$(checksum_of er.err)" ] ||
		{ say "checksums differ"; show eb.err; show er.err; return 1; }
}

# the client's -d DIR, where DIR/<device>.vdi is a FIFO: a reader gets the
# device's stream, which restores byte for byte
client_fifo() {
	mkfifo cf.vdi
	run_to "$TO" cat cf.vdi > stream 2> cat.err &
	rpid=$!
	run_to "$TO" vdi-client backup -t 20 -d . cf 2> cb.err &
	cpid=$!
	run_to "$TO" vdi-engine backup -t 20 --generate 1M cf 2> eb.err
	erc=$?
	wait $cpid
	crc=$?
	wait $rpid
	rrc=$?
	expect_rc 0 $erc "engine backup" || { show eb.err; show cb.err; return 1; }
	expect_rc 0 $crc "client backup" || { show cb.err; return 1; }
	[ -p cf.vdi ] || { say "cf.vdi is no longer a FIFO"; ls -l; return 1; }
	[ ! -e cf.vdi.partial ] || { say "cf.vdi.partial left behind"; return 1; }
	expect_rc 0 $rrc "the FIFO's reader" || { show cat.err; return 1; }
	run_to "$TO" vdi-client restore -t 20 -i stream cf 2> cr.err &
	cpid=$!
	run_to "$TO" vdi-engine restore -t 20 cf 2> er.err |
		vdi-gen --check 1M > check.out 2>&1
	wait $cpid
	crc=$?
	expect_rc 0 $crc "client restore" || { show cr.err; show er.err; return 1; }
	expect_msg check.out '^identical'
}

# vdi-engine restore -o FIFO: the reader gets the data
engine_fifo() {
	run_to "$TO" vdi-client backup -t 20 ef 2> cb.err &
	cpid=$!
	run_to "$TO" vdi-engine backup -t 20 --generate 3M ef 2> eb.err
	erc=$?
	wait $cpid
	expect_rc 0 $erc "engine backup" || { show eb.err; show cb.err; return 1; }
	mkfifo out
	run_to "$TO" vdi-gen --check 3M < out > check.out 2>&1 &
	rpid=$!
	run_to "$TO" vdi-client restore -t 20 ef 2> cr.err &
	cpid=$!
	run_to "$TO" vdi-engine restore -t 20 -o out ef 2> er.err
	erc=$?
	wait $cpid
	crc=$?
	wait $rpid
	expect_rc 0 $erc "engine restore" || { show er.err; show cr.err; return 1; }
	expect_rc 0 $crc "client restore" || { show cr.err; return 1; }
	[ -p out ] || { say "out is no longer a FIFO"; ls -l; return 1; }
	[ ! -e out.partial ] || { say "out.partial left behind"; return 1; }
	expect_msg check.out '^identical'
}

# held_backup SET FILE: start "vdi-client backup -o FILE SET" ($cpid) and
# its engine ($epid) on 1 MiB whose input stays open (the backup cannot
# end) until the test touches "looked", however slowly the engine starts:
# a fixed "sleep 1" lost that race under TCG, the backup done before the
# first look.  Returns once FILE.partial exists (1: it never did).
held_backup() {
	mkfifo src
	run_to "$TO" vdi-client backup -t 20 -o "$2" "$1" 2> cb.err &
	cpid=$!
	run_to "$TO" vdi-engine backup -t 20 -i src "$1" 2> eb.err &
	epid=$!
	(vdi-gen 1M 2> /dev/null
	 i=0
	 while [ ! -e looked ] && [ $i -lt $((TO * 10)) ]; do
		sleep 0.1
		i=$((i + 1))
	 done) > src &
	size_at_least "$2.partial" 1 20 && return 0
	touch looked
	say "no $2.partial"
	show cb.err
	return 1
}

# a regular file is still written as FILE.partial and renamed: while the
# backup runs only the .partial exists
client_regular() {
	held_backup rg reg.bin || return 1
	[ ! -e reg.bin ] || { touch looked; say "reg.bin exists before the end"; return 1; }
	touch looked
	wait $epid
	erc=$?
	wait $cpid
	crc=$?
	expect_rc 0 $erc "engine backup" || { show eb.err; return 1; }
	expect_rc 0 $crc "client backup" || { show cb.err; return 1; }
	[ -f reg.bin ] && [ ! -e reg.bin.partial ] || { say "reg.bin not renamed"; ls -l; return 1; }
}

# vdi-engine restore -o LINK, LINK a symlink to /dev/null: the device is
# written in place through the link, and the link stays a link
engine_symlink_devnull() {
	ln -s /dev/null lnk
	run_to "$TO" vdi-client backup -t 20 esl 2> cb.err &
	cpid=$!
	run_to "$TO" vdi-engine backup -t 20 --generate 1M esl 2> eb.err
	erc=$?
	wait $cpid
	expect_rc 0 $erc "engine backup" || { show eb.err; show cb.err; return 1; }
	run_to "$TO" vdi-client restore -t 20 esl 2> cr.err &
	cpid=$!
	run_to "$TO" vdi-engine restore -t 20 -o lnk esl 2> er.err
	erc=$?
	wait $cpid
	crc=$?
	devnull_intact || return 1
	expect_rc 0 $erc "engine restore" || { show er.err; show cr.err; return 1; }
	expect_rc 0 $crc "client restore" || { show cr.err; return 1; }
	[ -L lnk ] && [ "$(readlink lnk)" = /dev/null ] ||
		{ say "lnk is no longer the link to /dev/null"; ls -l; return 1; }
	[ ! -e lnk.partial ] || { say "lnk.partial left behind"; return 1; }
	[ "$(checksum_of eb.err)" = "$(checksum_of er.err)" ] ||
		{ say "checksums differ"; show eb.err; show er.err; return 1; }
}

# an output that is a directory: refused with the reason before the engine
# waits for its set, and nothing created beside it
engine_output_dir() {
	mkdir out
	run_to "$TO" vdi-engine restore -t 20 -o out nobody_here 2> er.err
	expect_rc 1 $? "engine restore -o DIR" || { show er.err; return 1; }
	expect_msg er.err 'out: Is a directory' || return 1
	! grep -q "no set named" er.err || { say "it waited for the set first"; show er.err; return 1; }
	[ -d out ] && [ ! -e out.partial ] || { say "out changed or out.partial made"; ls -l; return 1; }
}

# the last step fails: DIR/FILE became a non-empty directory while the data
# came in, so renaming FILE.partial over it fails.  The data in FILE.partial
# is complete and synced: it must be kept and said so, not removed.
client_rename_fails() {
	held_backup rf rf.bin || return 1
	mkdir rf.bin && touch rf.bin/in-the-way
	touch looked
	wait $epid
	wait $cpid
	expect_rc 1 $? "client backup" || { show cb.err; return 1; }
	expect_msg cb.err 'rf.bin.partial.*complete' || return 1
	# header (64 KiB) + 1 MiB + padding and trailer (64 KiB blocks)
	size_at_least rf.bin.partial $((65536 + 1048576 + 65536)) 1 ||
		{ say "rf.bin.partial removed or short"; ls -l; show cb.err; return 1; }
}

# the same for the engine's restore -o FILE.  The engine opens its output
# before it looks for the set: FILE becomes a directory in its way before
# the client (and so the data) comes.
engine_rename_fails() {
	run_to "$TO" vdi-client backup -t 20 erf 2> cb.err &
	cpid=$!
	run_to "$TO" vdi-engine backup -t 20 --generate 1M erf 2> eb.err
	erc=$?
	wait $cpid
	expect_rc 0 $erc "engine backup" || { show eb.err; show cb.err; return 1; }
	run_to "$TO" vdi-engine restore -t 20 -o res.bin erf 2> er.err &
	epid=$!
	size_at_least res.bin.partial 0 20 || { say "no res.bin.partial"; show er.err; return 1; }
	mkdir res.bin && touch res.bin/in-the-way
	run_to "$TO" vdi-client restore -t 20 erf 2> cr.err &
	cpid=$!
	wait $epid
	erc=$?
	wait $cpid
	expect_rc 1 $erc "engine restore" || { show er.err; return 1; }
	expect_msg er.err 'res.bin.partial.*complete' || return 1
	[ "$(stat -c %s res.bin.partial 2>/dev/null)" = 1048576 ] ||
		{ say "res.bin.partial removed or not 1 MiB"; ls -l; show er.err; return 1; }
}

# FILE.partial is a symlink (planted, or left by someone else): refused,
# and what it points to is not truncated or written
client_partial_symlink() {
	echo precious > target
	ln -s target ps.bin.partial
	run_to "$TO" vdi-client backup -t 5 -o ps.bin ps 2> cb.err
	expect_rc 1 $? "client backup" || { show cb.err; return 1; }
	expect_msg cb.err 'ps.bin.partial.*symbolic link' || return 1
	[ "$(cat target)" = precious ] || { say "the link's target was written"; return 1; }
	[ ! -e ps.bin ] || { say "ps.bin made"; return 1; }
}

t "client backup -o /dev/null: written in place, node kept" client_devnull
t "engine restore -o /dev/null: written in place, node kept" engine_devnull
t "client backup -d DIR with DIR/<device>.vdi a FIFO: the reader gets it" client_fifo
t "engine restore -o FIFO: the reader gets the data" engine_fifo
t "a regular file is still FILE.partial until the end" client_regular
t "engine restore -o a symlink to /dev/null: in place, the link kept" engine_symlink_devnull
t "engine restore -o DIR: refused at once, nothing made" engine_output_dir
t "client: the rename fails at the end: the complete FILE.partial is kept" client_rename_fails
t "engine: the rename fails at the end: the complete FILE.partial is kept" engine_rename_fails
t "FILE.partial a symlink: refused, its target untouched" client_partial_symlink
finish
