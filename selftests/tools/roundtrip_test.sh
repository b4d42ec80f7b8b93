# SPDX-License-Identifier: GPL-2.0
# vdi tools: backups and restores that must work, byte for byte.
# (lib.sh comes first; see there.)

# rt SET NDEV SIZE CLIENT_OPTS ENGINE_OPTS [ENGINE_RESTORE_OPTS]: back up
# SIZE bytes of vdi-gen data from a file through NDEV devices, restore to a
# file, compare; the engine's checksums of both ways and vdi-gen's agree.
rt() {
	sn=$1 n=$2 size=$3 copt=$4 eopt=$5 ropt=${6-$5}
	d=$(devs "$sn" "$n")
	vdi-gen "$size" > src 2> gen.err || return 1
	# shellcheck disable=SC2086 # the option strings are word lists
	{
		run_to "$TO" vdi-client backup $copt -t 20 $d 2> cb.err &
		cpid=$!
		run_to "$TO" vdi-engine backup $eopt -t 20 -i src $d 2> eb.err
		erc=$?
		wait $cpid
		crc=$?
	}
	expect_rc 0 $erc "engine backup" || { show eb.err; show cb.err; return 1; }
	expect_rc 0 $crc "client backup" || { show cb.err; return 1; }
	for x in $d; do
		[ -f "$x.vdi" ] || { say "no $x.vdi"; ls -l; return 1; }
	done
	if ls ./*.partial > /dev/null 2>&1; then
		say "partial files left behind"
		return 1
	fi
	# shellcheck disable=SC2086
	{
		run_to "$TO" vdi-client restore $copt -t 20 $d 2> cr.err &
		cpid=$!
		run_to "$TO" vdi-engine restore $ropt -t 20 -o out $d 2> er.err
		erc=$?
		wait $cpid
		crc=$?
	}
	expect_rc 0 $erc "engine restore" || { show er.err; show cr.err; return 1; }
	expect_rc 0 $crc "client restore" || { show cr.err; return 1; }
	cmp src out || { say "the restored file differs"; return 1; }
	[ ! -e out.partial ] || { say "out.partial left behind"; return 1; }
	g=$(checksum_of gen.err) b=$(checksum_of eb.err) r=$(checksum_of er.err)
	if [ -z "$g" ] || [ "$g" != "$b" ] || [ "$b" != "$r" ]; then
		say "checksums: vdi-gen '$g', backup '$b', restore '$r'"
		return 1
	fi
}

# the engine on stdin / stdout, checked with vdi-gen --check
engine_stdio() {
	vdi-gen 2M 2> gen.err | run_to "$TO" vdi-engine backup -t 20 sio 2> eb.err &
	epid=$!
	run_to "$TO" vdi-client backup -t 20 sio 2> cb.err
	crc=$?
	wait $epid
	erc=$?
	expect_rc 0 $erc "engine backup" || { show eb.err; return 1; }
	expect_rc 0 $crc "client backup" || { show cb.err; return 1; }
	run_to "$TO" vdi-client restore -t 20 sio 2> cr.err &
	cpid=$!
	{ run_to "$TO" vdi-engine restore -t 20 sio 2> er.err; echo $? > erc; } |
		vdi-gen --check 2M > check.out 2>&1
	wait $cpid
	crc=$?
	expect_rc 0 "$(cat erc)" "engine restore" || { show er.err; return 1; }
	expect_rc 0 $crc "client restore" || { show cr.err; return 1; }
	expect_msg check.out '^identical' || return 1
	[ "$(checksum_of gen.err)" = "$(checksum_of er.err)" ] ||
		{ say "checksums differ"; return 1; }
}

# the client on stdout / stdin (-o - / -i -), the engine generating data
client_stdio() {
	run_to "$TO" vdi-client backup -t 20 -o - cio > dev.bin 2> cb.err &
	cpid=$!
	run_to "$TO" vdi-engine backup -t 20 --generate 1M cio 2> eb.err
	erc=$?
	wait $cpid
	crc=$?
	expect_rc 0 $erc "engine backup" || { show eb.err; return 1; }
	expect_rc 0 $crc "client backup" || { show cb.err; return 1; }
	# the device's stream: a 64 KiB header, then the data and trailer
	[ "$(stat -c %s dev.bin)" -gt 1048576 ] || { say "dev.bin too short"; return 1; }
	run_to "$TO" vdi-client restore -t 20 -i - cio < dev.bin 2> cr.err &
	cpid=$!
	run_to "$TO" vdi-engine restore -t 20 -o out cio 2> er.err
	erc=$?
	wait $cpid
	crc=$?
	expect_rc 0 $erc "engine restore" || { show er.err; return 1; }
	expect_rc 0 $crc "client restore" || { show cr.err; return 1; }
	vdi-gen --check 1M < out > /dev/null 2>&1 || { say "restored data differs"; return 1; }
}

# --generate through 4 devices; every checksum agrees; the client prints one
# per device
generated() {
	d=$(devs gen 4)
	# shellcheck disable=SC2086
	{
		run_to "$TO" vdi-client backup -t 20 $d 2> cb.err &
		cpid=$!
		run_to "$TO" vdi-engine backup -t 20 --generate 7M $d 2> eb.err
		erc=$?
		wait $cpid
		crc=$?
	}
	expect_rc 0 $erc "engine backup" || { show eb.err; return 1; }
	expect_rc 0 $crc "client backup" || { show cb.err; return 1; }
	[ "$(grep -c '^checksum [0-9a-f]* [0-9]* bytes device ' cb.err)" = 4 ] ||
		{ say "the client did not print 4 device checksums"; show cb.err; return 1; }
	# shellcheck disable=SC2086
	{
		run_to "$TO" vdi-client restore -t 20 $d 2> cr.err &
		cpid=$!
		{ run_to "$TO" vdi-engine restore -t 20 $d 2> er.err; echo $? > erc; } |
			vdi-gen --check 7M > check.out 2> gen.err
		wait $cpid
		crc=$?
	}
	expect_rc 0 "$(cat erc)" "engine restore" || { show er.err; return 1; }
	expect_rc 0 $crc "client restore" || { show cr.err; return 1; }
	expect_msg check.out '^identical' || return 1
	b=$(checksum_of eb.err) r=$(checksum_of er.err) g=$(checksum_of gen.err)
	if [ -z "$b" ] || [ "$b" != "$r" ] || [ "$r" != "$g" ]; then
		say "checksums: backup '$b', restore '$r', vdi-gen '$g'"
		return 1
	fi
}

# a directory tree through tar (-C), 2 devices, disk-like
tree() {
	mkdir -p tree/a/b tree/emptydir out
	echo hello > tree/a/b/f
	vdi-gen 300K > tree/big 2> /dev/null
	: > tree/empty
	ln -s a/b/f tree/link
	chmod 600 tree/a/b/f
	run_to "$TO" vdi-client backup --disk -t 20 tr tr.1 2> cb.err &
	cpid=$!
	run_to "$TO" vdi-engine backup -t 20 -C tree tr tr.1 2> eb.err
	erc=$?
	wait $cpid
	crc=$?
	expect_rc 0 $erc "engine backup" || { show eb.err; return 1; }
	expect_rc 0 $crc "client backup" || { show cb.err; return 1; }
	run_to "$TO" vdi-client restore --disk -t 20 tr tr.1 2> cr.err &
	cpid=$!
	run_to "$TO" vdi-engine restore -t 20 -C out tr tr.1 2> er.err
	erc=$?
	wait $cpid
	crc=$?
	expect_rc 0 $erc "engine restore" || { show er.err; return 1; }
	expect_rc 0 $crc "client restore" || { show cr.err; return 1; }
	diff -r tree out > diff.out 2>&1 || { say "trees differ"; show diff.out; return 1; }
	[ -L out/link ] && [ -d out/emptydir ] && [ -f out/empty ] ||
		{ say "link, empty dir or empty file missing"; return 1; }
	[ "$(stat -c %a out/a/b/f)" = 600 ] || { say "mode not kept"; return 1; }
}

# back up 3 devices, then restore with the names in another order, or with
# too few: both sides fail, the engine says why
mixed_up() {
	d=$(devs mx 3)
	# shellcheck disable=SC2086
	{
		run_to "$TO" vdi-client backup -t 20 $d 2> cb.err &
		cpid=$!
		run_to "$TO" vdi-engine backup -t 20 --generate 3M $d 2> eb.err
		erc=$?
		wait $cpid
	}
	expect_rc 0 $erc "engine backup" || { show eb.err; return 1; }
	run_to "$TO" vdi-client restore -t 20 mx mx.1 mx.2 2> cr.err &
	cpid=$!
	run_to "$TO" vdi-engine restore -t 20 -o out mx mx.2 mx.1 2> er.err
	erc=$?
	wait $cpid
	crc=$?
	expect_fail $erc "engine, devices out of order" || return 1
	expect_fail $crc "client, devices out of order" || return 1
	expect_msg er.err "order" || return 1
	expect_msg cr.err "abort" || return 1
	[ ! -e out ] && [ ! -e out.partial ] || { say "output left behind"; return 1; }
	run_to "$TO" vdi-client restore -t 20 mx 2> cr2.err &
	cpid=$!
	run_to "$TO" vdi-engine restore -t 20 -o out mx 2> er2.err
	erc=$?
	wait $cpid
	expect_fail $erc "engine, too few devices" || return 1
	expect_msg er2.err "written to 3 devices" || return 1
}

t "roundtrip: pipe, 1 device, 3 MiB + 12345 bytes" rt p1 1 3158073 "" ""
t "roundtrip: pipe, 3 devices, 2 buffers" rt p3 3 5243657 "" "--buffers 2"
t "roundtrip: disk, 1 device" rt k1 1 3158073 "--disk" ""
t "roundtrip: disk, 3 devices, 512-byte blocks, 64K transfers" \
	rt k3 3 2000001 "--disk" "-b 512 -m 64K"
t "roundtrip: empty stream, 2 devices" rt e2 2 0 "" ""
t "roundtrip: 1000 bytes over 3 devices" rt s3 3 1000 "" ""
t "roundtrip: whole chunks, 4 MiB over 2 devices" rt w2 2 4M "" "-m 1M"
t "roundtrip: trailer spills into the next chunk" rt sp 1 1048566 "" ""
t "roundtrip: block size = chunk size = 64K" rt bc 2 300001 "" "-b 64K -m 64K"
t "roundtrip: restore with a larger --max-transfer" rt mt 2 3M "" "-m 128K" "-m 4M"
t "engine on stdin and stdout" engine_stdio
t "client on stdout and stdin" client_stdio
t "generated data, 4 devices, checksums agree" generated
t "directory tree through tar, disk-like" tree
t "restore with devices mixed up fails clearly" mixed_up
finish
