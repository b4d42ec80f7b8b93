# SPDX-License-Identifier: GPL-2.0
# vdi tools: the T-SQL front end, "vdi-engine sql" and vdi-sqlcmd, with
# vdi-client as the backup application: every WITH option for its effect
# where one can be seen, the data directory, DATABASE and LOG, the
# refusals.  (lib.sh comes first; see there.  The parser itself has its
# unit test, tools-tsql_parse.)

# client_bg OPTS...: vdi-client in the background, stderr in c.err; $cpid
# is vdi-client itself (timeout execs it), so that tc can stop it
client_bg() {
	(exec timeout -s KILL "$TO" vdi-client "$@" 2> c.err) &
	cpid=$!
}

client_rc() {
	wait $cpid
	crc=$?
	cpid=
	expect_rc 0 $crc "vdi-client" || { show c.err; return 1; }
}

# tc FUNCTION: run a test; a client or sqlcmd it left running (after a
# failure) is stopped, so that no set outlives the test
cpid='' spid=''
tc() {
	"$@"
	r=$?
	for p in $cpid $spid; do
		kill "$p" 2>/dev/null && { exited "$p" 5 || kill -9 "$p"; }
	done
	return $r
}

# le32 FILE OFFSET: a little-endian u32 of FILE (the stream header)
le32() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }

# the client's view of the set: "engine connected: block size B, max
# transfer M, buffer area K KiB"
client_cfg() {
	sed -n 's/.*engine connected: block size \([0-9]*\), max transfer \([0-9]*\), buffer area \([0-9]*\) KiB.*/\1 \2 \3/p' c.err
}

# the brief's statement, through vdi-sqlcmd as a rig would run sqlcmd
sqlcmd_backup_restore() {
	mkdir data
	vdi-gen 3M > data/db.mdf 2> gen.err || return 1
	cp data/db.mdf orig
	client_bg backup -v -t 20 s1 s2
	VDI_DATA_DIR=$D/data run_to "$TO" vdi-sqlcmd -S x -U sa -P p -d master \
		-Q "BACKUP DATABASE db TO VIRTUAL_DEVICE='s1', VIRTUAL_DEVICE='s2' WITH MAXTRANSFERSIZE=131072, BUFFERCOUNT=4, BLOCKSIZE=4096, FORMAT, INIT, CHECKSUM, STATS=25" \
		> b.out 2> b.err
	rc=$?
	expect_rc 0 $rc "sqlcmd backup" || { show b.err; show c.err; return 1; }
	client_rc || return 1
	# STATS=25, and SQL Server's closing lines (3 MiB = 384 pages)
	for p in 25 50 75 100; do
		expect_msg b.out "^$p percent processed\.$" || return 1
	done
	[ "$(grep -c 'percent processed' b.out)" = 4 ] ||
		{ say "not 4 STATS lines"; show b.out; return 1; }
	expect_msg b.out "^Processed 384 pages for database 'db', file 'db' on file 1\.$" || return 1
	expect_msg b.out '^BACKUP DATABASE successfully processed 384 pages in [0-9.]+ seconds \([0-9.]+ MB/sec\)\.$' || return 1
	# BLOCKSIZE and MAXTRANSFERSIZE: the client's configuration, and the
	# stream's header on both devices
	# shellcheck disable=SC2046 # three numbers
	set -- $(client_cfg)
	[ "$1" = 4096 ] && [ "$2" = 131072 ] ||
		{ say "client saw block size '$1', max transfer '$2'"; show c.err; return 1; }
	for x in s1 s2; do
		[ "$(le32 $x.vdi 24)" = 4096 ] && [ "$(le32 $x.vdi 28)" = 131072 ] ||
			{ say "$x.vdi header: block $(le32 $x.vdi 24) chunk $(le32 $x.vdi 28)"; return 1; }
	done
	[ "$(le32 s2.vdi 16)" = 1 ] && [ "$(le32 s2.vdi 20)" = 2 ] ||
		{ say "s2.vdi is not stripe 2 of 2"; return 1; }

	# the database exists: RESTORE refuses it without REPLACE (before it
	# touches VDI: no client needed), and leaves it alone
	VDI_DATA_DIR=$D/data run_to "$TO" vdi-sqlcmd -S x -Q \
		"RESTORE DATABASE db FROM VIRTUAL_DEVICE='s1', VIRTUAL_DEVICE='s2'" \
		> r0.out 2> r0.err
	rc=$?
	expect_rc 1 $rc "restore without REPLACE" || return 1
	expect_msg r0.err "database 'db' exists .*only WITH REPLACE" || return 1
	cmp -s orig data/db.mdf || { say "the refused restore changed db.mdf"; return 1; }

	# WITH REPLACE: the database comes back byte for byte
	echo "not the database" > data/db.mdf
	client_bg restore -v -t 20 s1 s2
	VDI_DATA_DIR=$D/data run_to "$TO" vdi-sqlcmd -S x -U sa -P p -Q \
		"RESTORE DATABASE db FROM VIRTUAL_DEVICE = N's1', VIRTUAL_DEVICE = N's2' WITH REPLACE, STATS = 50, CHECKSUM" \
		> r.out 2> r.err
	rc=$?
	expect_rc 0 $rc "sqlcmd restore" || { show r.err; show c.err; return 1; }
	client_rc || return 1
	cmp orig data/db.mdf || { say "the restored database differs"; return 1; }
	[ ! -e data/db.mdf.partial ] || { say "db.mdf.partial left behind"; return 1; }
	# the restore learns the size from the backup: STATS along the way
	expect_msg r.out '^50 percent processed\.$' || return 1
	expect_msg r.out '^100 percent processed\.$' || return 1
	expect_msg r.out '^RESTORE DATABASE successfully processed 384 pages' || return 1
	# no MAXTRANSFERSIZE: a restore asks for the largest (reads any backup)
	# shellcheck disable=SC2046 # three numbers
	set -- $(client_cfg)
	[ "$2" = 4194304 ] || { say "restore's max transfer '$2', not 4194304"; show c.err; return 1; }
	# the engine's checksum (CHECKSUM: always on) is the same both ways
	[ "$(checksum_of b.err)" = "$(checksum_of r.err)" ] &&
		[ "$(checksum_of gen.err)" = "$(checksum_of r.err)" ] ||
		{ say "checksums differ"; show b.err; show r.err; return 1; }
}

# BUFFERCOUNT: the buffer area the client is given follows it
buffercount() {
	vdi-gen 1M > db.mdf 2> /dev/null || return 1
	client_bg backup -v -t 20 bc
	run_to "$TO" vdi-engine sql -D . -t 20 \
		"BACKUP DATABASE db TO VIRTUAL_DEVICE='bc' WITH BUFFERCOUNT = 7, MAXTRANSFERSIZE = 65536, BLOCKSIZE = 512" \
		> b.out 2> b.err
	rc=$?
	expect_rc 0 $rc "engine sql" || { show b.err; return 1; }
	client_rc || return 1
	# 7 buffers of 64 KiB and the 64 KiB header buffer, each with up to
	# a block of alignment slack (the default, 4 buffers: about 320 KiB)
	# shellcheck disable=SC2046 # three numbers
	set -- $(client_cfg)
	[ "$1" = 512 ] && [ "$2" = 65536 ] && [ "${3:-0}" -ge 512 ] && [ "$3" -lt 576 ] ||
		{ say "client saw block size '$1', max transfer '$2', buffer area '$3' KiB (want 512..575)"; show c.err; return 1; }
}

# vdi-engine sql itself: --data-dir, STATS without a value (10), the
# compatibility flags NOFORMAT, NOINIT, NO_CHECKSUM, lower case, comments
engine_sql_defaults() {
	mkdir dd
	vdi-gen 2M > dd/Sales.mdf 2> /dev/null || return 1
	cp dd/Sales.mdf orig
	client_bg backup -t 20 e1
	# "--": the statement begins with a comment, not an option
	run_to "$TO" vdi-engine sql --data-dir dd -t 20 -- \
		"-- a rig's comment
		 backup database [Sales] to virtual_device='e1'
		 with stats, noformat, noinit, no_checksum;" > b.out 2> b.err
	rc=$?
	expect_rc 0 $rc "engine sql backup" || { show b.err; return 1; }
	client_rc || return 1
	[ "$(grep -c 'percent processed' b.out)" = 10 ] ||
		{ say "STATS without a value: not 10 lines"; show b.out; return 1; }
	expect_msg b.out '^10 percent processed\.$' || return 1
	rm dd/Sales.mdf
	client_bg restore -t 20 e1
	# the statement on stdin ('-'); no file yet: no REPLACE needed
	echo "RESTORE DATABASE Sales FROM VIRTUAL_DEVICE='e1'" |
		run_to "$TO" vdi-engine sql --data-dir dd -t 20 - > r.out 2> r.err
	rc=$?
	expect_rc 0 $rc "engine sql restore" || { show r.err; return 1; }
	client_rc || return 1
	cmp orig dd/Sales.mdf || { say "the restored database differs"; return 1; }
	# STATS not given: no percent lines, but the closing line
	! grep -q 'percent processed' r.out || { say "percent lines without STATS"; return 1; }
	expect_msg r.out '^RESTORE DATABASE successfully processed 256 pages' || return 1
}

# LOG: the log file db_log.ldf, and SQL Server's LOG messages
log_backup_restore() {
	vdi-gen 300K > db_log.ldf 2> /dev/null || return 1
	cp db_log.ldf orig
	client_bg backup -t 20 lg
	VDI_DATA_DIR=$D run_to "$TO" vdi-sqlcmd -Q "BACKUP LOG db TO VIRTUAL_DEVICE='lg'" \
		> b.out 2> b.err
	rc=$?
	expect_rc 0 $rc "BACKUP LOG" || { show b.err; return 1; }
	client_rc || return 1
	expect_msg b.out "^Processed 38 pages for database 'db', file 'db_log' on file 1\.$" || return 1
	expect_msg b.out '^BACKUP LOG successfully processed 38 pages' || return 1
	rm db_log.ldf
	[ ! -e db.mdf ] || { say "a db.mdf appeared"; return 1; }
	client_bg restore -t 20 lg
	VDI_DATA_DIR=$D run_to "$TO" vdi-sqlcmd -Q "RESTORE LOG db FROM VIRTUAL_DEVICE='lg'" \
		> r.out 2> r.err
	rc=$?
	expect_rc 0 $rc "RESTORE LOG" || { show r.err; return 1; }
	client_rc || return 1
	cmp orig db_log.ldf || { say "the restored log differs"; return 1; }
	[ ! -e db.mdf ] || { say "RESTORE LOG wrote db.mdf"; return 1; }
	expect_msg r.out '^RESTORE LOG successfully processed 38 pages' || return 1
}

# refuse STATEMENT PATTERN: vdi-sqlcmd exits 1 and says PATTERN, the
# engine's own exit status for a refused statement is 2 (bad command line)
refuse() {
	VDI_DATA_DIR=$D run_to "$TO" vdi-sqlcmd -S x -U sa -P p -Q "$1" > o 2> e
	rc=$?
	expect_rc 1 $rc "vdi-sqlcmd -Q \"$1\"" || { show e; return 1; }
	expect_msg e "$2" || return 1
}

refusals() {
	echo data > db.mdf
	refuse "BACKUP DATABASE db TO VIRTUAL_DEVICE='x' WITH COMPRESSION" \
		'column 47: WITH option COMPRESSION is not supported' || return 1
	refuse "BACKUP DATABASE db TO DISK='/tmp/db.bak'" \
		'DISK devices are not supported' || return 1
	refuse "RESTORE DATABASE db FROM VIRTUAL_DEVICE='x' WITH FORMAT" \
		'FORMAT is not an option of RESTORE' || return 1
	refuse "RESTORE DATABASE db FROM VIRTUAL_DEVICE='x' WITH INIT" \
		'INIT is not an option of RESTORE' || return 1
	refuse "BACKUP DATABASE db TO VIRTUAL_DEVICE='x' WITH REPLACE" \
		'REPLACE is not an option of BACKUP' || return 1
	refuse "BACKUP DATABASE db TO VIRTUAL_DEVICE='x' WITH MAXTRANSFERSIZE=1000" \
		'multiple of 65536' || return 1
	refuse "BACKUP DATABASE db TO VIRTUAL_DEVICE='x' WITH BLOCKSIZE=3000" \
		'power of 2' || return 1
	refuse "BACKUP DATABASE db TO VIRTUAL_DEVICE='x' WITH BUFFERCOUNT=0" \
		'1 to 256' || return 1
	refuse "BACKUP DATABASE db TO VIRTUAL_DEVICE='x' WITH STATS=0" \
		'1 to 100' || return 1
	refuse "BACKUP DATABASE [../etc] TO VIRTUAL_DEVICE='x'" \
		"may not contain '/'" || return 1
	refuse "BACKUP DATABASE nodb TO VIRTUAL_DEVICE='x'" \
		"database 'nodb' has no data file" || return 1
	refuse "BACKUP DATABASE db TO VIRTUAL_DEVICE='x'; SELECT 1" \
		'one statement' || return 1
	# a restore writes only a file of its own: not through a database
	# file that is a directory or a symlink (even WITH REPLACE), nor into
	# a data directory that is none
	mkdir dir.mdf
	ln -s db.mdf lnk.mdf
	refuse "RESTORE DATABASE dir FROM VIRTUAL_DEVICE='x' WITH REPLACE" \
		'dir\.mdf exists and is not a file' || return 1
	refuse "RESTORE DATABASE lnk FROM VIRTUAL_DEVICE='x' WITH REPLACE" \
		'lnk\.mdf exists and is not a file' || return 1
	[ -d dir.mdf ] && [ -L lnk.mdf ] && [ "$(cat db.mdf)" = data ] &&
		[ ! -e dir.mdf.partial ] && [ ! -e lnk.mdf.partial ] ||
		{ say "a refused restore changed the data directory"; ls -l; return 1; }
	run_to "$TO" vdi-engine sql -D db.mdf "RESTORE DATABASE db FROM VIRTUAL_DEVICE='x'" 2> e1
	expect_rc 1 $? "vdi-engine sql -D FILE" || { show e1; return 1; }
	expect_msg e1 'data directory db\.mdf: not a directory' || return 1
	expect_msg e1 '^vdi-engine: RESTORE DATABASE is terminating abnormally\.$' || return 1
	# the engine: 2 for a refused statement
	run_to "$TO" vdi-engine sql "BACKUP DATABASE db TO VIRTUAL_DEVICE='x' WITH COPY_ONLY" 2> e2
	rc=$?
	expect_rc 2 $rc "vdi-engine sql, refused" || { show e2; return 1; }
	expect_msg e2 'COPY_ONLY is not supported' || return 1
	# -Q -: the statement '-', not "read stdin" (that is vdi-engine sql's
	# convention, not sqlcmd's): the engine never reads the rig's stdin
	echo "SELECT 1" | VDI_DATA_DIR=$D run_to "$TO" vdi-sqlcmd -Q - > o 2> e
	expect_rc 1 $? "vdi-sqlcmd -Q -" || { show e; return 1; }
	expect_msg e 'no statement' || return 1
	# vdi-sqlcmd: unknown and unsupported options
	vdi-sqlcmd -j -Q "x" 2> e3
	expect_rc 1 $? "vdi-sqlcmd -j" || return 1
	expect_msg e3 'unknown option -j' || return 1
	vdi-sqlcmd -S x 2> e4
	expect_rc 1 $? "vdi-sqlcmd without -Q" || return 1
	expect_msg e4 'give -Q' || return 1
}

# a rig that calls "sqlcmd": the compat directory first on PATH (a link to
# vdi-sqlcmd, as make install makes it), a script of GO batches (-i), -o
sqlcmd_name_and_script() {
	mkdir compat
	ln -s "$(command -v vdi-sqlcmd)" compat/sqlcmd
	vdi-gen 1M > db.mdf 2> /dev/null || return 1
	cp db.mdf orig
	cat > rig.sql <<-'EOF'
	-- backup, then restore over it
	BACKUP DATABASE db TO VIRTUAL_DEVICE='g1' WITH STATS = 50
	GO
	RESTORE DATABASE db FROM VIRTUAL_DEVICE='g2'
	    WITH REPLACE
	go
	EOF
	# the client backs up to g1, then restores the same stream as g2
	client_bg backup -t 20 g1
	(export PATH="$D/compat:$PATH" VDI_DATA_DIR="$D"
	 exec timeout -s KILL "$TO" sqlcmd -S . -U sa -P x -b -i rig.sql -o rig.out) &
	spid=$!
	client_rc || return 1
	mv g1.vdi g2.vdi
	client_bg restore -t 20 g2
	wait $spid
	rc=$?
	spid=
	expect_rc 0 $rc "sqlcmd -i rig.sql" || { show rig.out; show c.err; return 1; }
	client_rc || return 1
	cmp orig db.mdf || { say "the database differs after backup + restore"; return 1; }
	expect_msg rig.out '^BACKUP DATABASE successfully processed' || return 1
	expect_msg rig.out '^RESTORE DATABASE successfully processed' || return 1
	expect_msg rig.out '^50 percent processed\.$' || return 1
	# -b stops at the first failed batch; without it the next one runs,
	# and the exit status is 1 either way
	printf "BACKUP DATABASE db TO VIRTUAL_DEVICE='x' WITH ZAP\nGO\nBACKUP DATABASE db TO VIRTUAL_DEVICE='x' WITH ZOP\n" > bad.sql
	PATH=$D/compat:$PATH sqlcmd -b -i bad.sql -o b1.out
	expect_rc 1 $? "sqlcmd -b -i bad.sql" || return 1
	PATH=$D/compat:$PATH sqlcmd -i bad.sql -o b2.out
	expect_rc 1 $? "sqlcmd -i bad.sql" || return 1
	grep -q ZAP b1.out && ! grep -q ZOP b1.out ||
		{ say "-b did not stop after the first batch"; show b1.out; return 1; }
	grep -q ZAP b2.out && grep -q ZOP b2.out ||
		{ say "without -b the second batch did not run"; show b2.out; return 1; }
}

# stub_engine: $D/engine, a stand-in for vdi-engine that appends its
# arguments to $D/runs ("sql -- " and the batch, then a line "=="), and
# fails a batch that says FAIL: vdi-sqlcmd's batching, seen exactly
stub_engine() {
	cat > engine <<-'EOF'
	#!/bin/sh
	printf '%s %s %s\n==\n' "$1" "$2" "$3" >> "${0%/*}/runs"
	case "$3" in *FAIL*) exit 1 ;; esac
	exit 0
	EOF
	chmod +x engine
	: > runs
}

# GO n runs the batch n times; the last batch needs no GO; blank batches
# are not sent; CRLF lines; a -- comment after GO n; GOTO is no separator
sqlcmd_go_count() {
	stub_engine
	printf 'A\nGO 3\n\n  go\r\nB GOTO\r\n  Go  2  -- twice\nC\n' > s.sql
	VDI_ENGINE=$D/engine vdi-sqlcmd -i s.sql > o 2> e
	expect_rc 0 $? "vdi-sqlcmd -i s.sql" || { show e; return 1; }
	printf 'sql -- A\n\n==\nsql -- A\n\n==\nsql -- A\n\n==\nsql -- B GOTO\r\n\n==\nsql -- B GOTO\r\n\n==\nsql -- C\n\n==\n' > want
	cmp -s want runs || { say "the engine was not run as GO says:"; show runs; return 1; }
}

# a GO line with a bad count (0, too big, overflowing, not a number) is
# refused before any batch runs, never sent to the engine as T-SQL
sqlcmd_go_bad() {
	stub_engine
	for go in 'GO 0' 'GO 1001' 'GO 18446744073709551618' 'GO x'; do
		printf 'A\nGO\nB\n%s\nC\n' "$go" > s.sql
		VDI_ENGINE=$D/engine vdi-sqlcmd -i s.sql > o 2> e
		expect_rc 1 $? "vdi-sqlcmd with '$go'" || { show e; return 1; }
		expect_msg e "s\.sql, line 4: .*'$go'" || return 1
		[ ! -s runs ] || { say "'$go': the engine ran:"; show runs; return 1; }
	done
}

# -i: every file is read before the first batch runs, so a missing one
# stops the rig before anything moved; an engine that cannot run; -? late
sqlcmd_files_and_help() {
	stub_engine
	printf 'A\nGO\n' > a.sql
	VDI_ENGINE=$D/engine vdi-sqlcmd -b -i a.sql,missing.sql > o 2> e
	expect_rc 1 $? "vdi-sqlcmd -i a.sql,missing.sql" || return 1
	expect_msg e 'missing\.sql: No such file' || return 1
	[ ! -s runs ] || { say "a.sql ran although missing.sql is missing"; show runs; return 1; }
	VDI_ENGINE=$D/no-engine vdi-sqlcmd -Q "A" > o 2> e
	expect_rc 1 $? "vdi-sqlcmd with no engine" || return 1
	expect_msg e "cannot run $D/no-engine" || return 1
	vdi-sqlcmd -S x -U sa -? > o 2> e
	expect_rc 0 $? "vdi-sqlcmd -S x -U sa -?" || { show e; return 1; }
	expect_msg o '^Usage: ' || return 1
}

# SIGTERM to vdi-sqlcmd reaches the engine, here waiting for its set: both
# end at once, with status 1
sqlcmd_signal() {
	echo data > db.mdf
	(export VDI_DATA_DIR="$D"
	 exec vdi-sqlcmd -Q "BACKUP DATABASE db TO VIRTUAL_DEVICE='nobody_here'" > o 2> e) &
	spid=$!
	sleep 2
	kill -TERM $spid
	exited $spid 10 || { say "vdi-sqlcmd still running 10 s after SIGTERM"; show e; kill -9 $spid; return 1; }
	wait $spid
	rc=$?
	spid=''
	expect_rc 1 $rc "vdi-sqlcmd after SIGTERM" || { show e; return 1; }
	# the engine's own words, or (a slow start) its death by the signal
	expect_msg e 'vdi-engine: interrupted by signal 15|vdi-engine was killed by signal 15' || return 1
	expect_msg e 'vdi-sqlcmd: interrupted by signal 15' || return 1
}

t sql.sqlcmd_backup_restore_all_options tc sqlcmd_backup_restore
t sql.buffercount tc buffercount
t sql.engine_data_dir_defaults tc engine_sql_defaults
t sql.log tc log_backup_restore
t sql.refusals tc refusals
t sql.sqlcmd_name_script_batches tc sqlcmd_name_and_script
t sql.sqlcmd_sigterm_reaches_engine tc sqlcmd_signal
t sql.sqlcmd_go_count tc sqlcmd_go_count
t sql.sqlcmd_go_bad_count tc sqlcmd_go_bad
t sql.sqlcmd_files_and_help tc sqlcmd_files_and_help
finish
