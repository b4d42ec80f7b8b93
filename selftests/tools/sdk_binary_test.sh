# SPDX-License-Identifier: GPL-2.0
# The SDK binary drop-in: vdi-sdk-client is built against a header with the
# layout and signatures of SQL Server on Linux's VDI SDK (no code of ours)
# and linked with -lsqlvdi only, as a vendor's binary is; it runs here on
# our libsqlvdi.so against vdi-engine.  Each case backs up a file and
# restores it, and the restored file must be the same, byte for byte.
# (lib.sh comes first; see there.)

# sdk_rt SET SIZE CLIENT_OPTS: back up SIZE bytes with one client run and
# restore them with another, as the SDK's sample does
sdk_rt() {
	sn=$1 size=$2 copt=$3
	vdi-gen "$size" > src 2> gen.err || return 1
	# shellcheck disable=SC2086 # the option string is a word list
	run_to "$TO" vdi-sdk-client $copt backup "$sn" dev.bak 2> cb.err &
	cpid=$!
	run_to "$TO" vdi-engine backup -t 20 -i src "$sn" 2> eb.err
	erc=$?
	wait $cpid
	crc=$?
	expect_rc 0 $erc "engine backup" || { show eb.err; show cb.err; return 1; }
	expect_rc 0 $crc "SDK client backup" || { show cb.err; return 1; }
	# shellcheck disable=SC2086
	run_to "$TO" vdi-sdk-client $copt restore "$sn" dev.bak 2> cr.err &
	cpid=$!
	run_to "$TO" vdi-engine restore -t 20 -o out "$sn" 2> er.err
	erc=$?
	wait $cpid
	crc=$?
	expect_rc 0 $erc "engine restore" || { show er.err; show cr.err; return 1; }
	expect_rc 0 $crc "SDK client restore" || { show cr.err; return 1; }
	same src out gen.err eb.err er.err
}

# sdk_twice SET SIZE CLIENT_OPTS: one client run, one set object: the
# backup, Close, Create again under the same name, the restore
sdk_twice() {
	sn=$1 size=$2 copt=$3
	vdi-gen "$size" > src 2> gen.err || return 1
	# shellcheck disable=SC2086
	run_to "$TO" vdi-sdk-client $copt roundtrip "$sn" dev.bak 2> c.err &
	cpid=$!
	run_to "$TO" vdi-engine backup -t 20 -i src "$sn" 2> eb.err
	erc=$?
	expect_rc 0 $erc "engine backup" || { show eb.err; show c.err; return 1; }
	# the old set's name is free once the client's Close ran (it then
	# reports the session)
	said c.err ': backup: ' 20 || { say "the client did not finish its backup"; show c.err; return 1; }
	run_to "$TO" vdi-engine restore -t 20 -o out "$sn" 2> er.err
	erc=$?
	wait $cpid
	crc=$?
	expect_rc 0 $erc "engine restore" || { show er.err; show c.err; return 1; }
	expect_rc 0 $crc "SDK client" || { show c.err; return 1; }
	[ "$(grep -c ': backup: \|: restore: ' c.err)" = 2 ] ||
		{ say "the client did not run two sessions"; show c.err; return 1; }
	same src out gen.err eb.err er.err
}

# said FILE PATTERN SECS: wait until FILE has a line matching PATTERN
said() {
	i=0
	until grep -q "$2" "$1" 2>/dev/null; do
		[ $i -ge $(($3 * 10)) ] && return 1
		sleep 0.1
		i=$((i + 1))
	done
}

# same SRC OUT GEN_ERR BACKUP_ERR RESTORE_ERR: byte for byte, and the
# checksums of vdi-gen and of both of the engine's runs agree
same() {
	cmp "$1" "$2" || { say "the restored file differs"; return 1; }
	g=$(checksum_of "$3") b=$(checksum_of "$4") r=$(checksum_of "$5")
	if [ -z "$g" ] || [ "$g" != "$b" ] || [ "$b" != "$r" ]; then
		say "checksums: vdi-gen '$g', backup '$b', restore '$r'"
		return 1
	fi
}

t "sdk binary: backup and restore, devices never deleted (the SDK sample)" \
	sdk_rt sb1 3158073 ""
t "sdk binary: device deleted before Close" \
	sdk_rt sb2 1048577 "--delete before-close"
t "sdk binary: device deleted after Close" \
	sdk_rt sb3 1048577 "--delete after-close"
t "sdk binary: a copied set object, the original deleted first" \
	sdk_rt sb4 1048577 "--copy-set"
t "sdk binary: Close, then Create again on the same object" \
	sdk_twice sb5 2000001 ""
t "sdk binary: Create again, devices deleted before Close, a copy" \
	sdk_twice sb6 2000001 "--delete before-close --copy-set"
t "sdk binary: Create again, devices deleted after Close" \
	sdk_twice sb7 65536 "--delete after-close"
finish
