# SPDX-License-Identifier: GPL-2.0
# vdi tools: whose set is this?  Another user (nobody) takes the set's name
# first, with mode 0666; vdi-engine refuses that set before it sends a byte
# (backup) or takes one (restore), unless --owner names that user.
# (lib.sh comes first; see there.)

# The squatter runs as nobody: /dev/vdi must be open to it whatever mode
# the rig gave the node; put back at the end.
NODE_MODE=$(stat -c %a /dev/vdi 2>/dev/null)
chmod 666 /dev/vdi
chmod 755 "$W"

# as_nobody CMD...: run a command line as nobody, in the test's directory;
# its pid goes to nobody.pid
as_nobody() {
	run_to "$TO" su -s /bin/sh nobody -c \
		"cd '$PWD' && echo \$\$ > nobody.pid && exec $*"
}

# squat OP SET: nobody's vdi-client OP, mode 0666, in the background (CPID)
squat() {
	chmod 777 .
	rm -f nobody.pid
	as_nobody vdi-client "$1" --mode 0666 -t 20 "$2" 2> c.err &
	CPID=$!
	# the client has created the set once its file exists (backup) or it
	# has opened its input (restore: give it a moment)
	if [ "$1" = backup ]; then
		size_at_least "$2.vdi.partial" 0 10 ||
			{ say "the squatter did not start"; show c.err; return 1; }
	else
		sleep 1
	fi
}

refused_backup() {
	squat backup sq || return 1
	run_to "$TO" vdi-engine backup -t 5 --generate 1M sq 2> e.err
	expect_rc 1 $? "engine (root) on nobody's set" || { show e.err; return 1; }
	expect_msg e.err "uid 65534" || return 1
	expect_msg e.err "ours .--owner USER" || return 1
	wait $CPID
	expect_fail $? "squatter's client" || { show c.err; return 1; }
	# it got nothing: no file, not even a partial one
	[ ! -e sq.vdi ] && [ ! -e sq.vdi.partial ] ||
		{ say "the squatter kept data"; ls -l; return 1; }
	show e.err; show c.err
}

# --owner names the user whose backups these are: then it works, both
# ways, by name and by uid; a restore from nobody's set is refused by
# default too (it would feed us nobody's data)
owner_named() {
	squat backup own || return 1
	run_to "$TO" vdi-engine backup -t 20 --owner nobody --generate 1M own \
		2> e.err
	expect_rc 0 $? "engine --owner nobody" || { show e.err; return 1; }
	wait $CPID
	expect_rc 0 $? "nobody's client" || { show c.err; return 1; }
	[ -f own.vdi ] || { say "no own.vdi"; ls -l; return 1; }

	squat restore own || return 1
	run_to "$TO" vdi-engine restore -t 5 -o out own 2> r.err
	expect_rc 1 $? "engine restore from nobody's set" || { show r.err; return 1; }
	expect_msg r.err "uid 65534" || return 1
	[ ! -e out ] && [ ! -e out.partial ] || { say "output left behind"; return 1; }
	wait $CPID

	squat restore own || return 1
	run_to "$TO" vdi-engine restore -t 20 --owner 65534 -o out own 2> r2.err
	expect_rc 0 $? "engine restore --owner 65534" || { show r2.err; return 1; }
	wait $CPID
	expect_rc 0 $? "nobody's client (restore)" || { show c.err; return 1; }
	vdi-gen --check 1M < out > check.out 2>&1 || { show check.out; return 1; }
	show r.err
}

# --owner any: the check is off (the old behaviour, stated)
owner_any() {
	squat backup any || return 1
	run_to "$TO" vdi-engine backup -t 20 --owner any --generate 64K any \
		2> e.err
	expect_rc 0 $? "engine --owner any" || { show e.err; return 1; }
	wait $CPID
	expect_rc 0 $? "nobody's client" || { show c.err; return 1; }
}

# an unknown user is a bad command line; -v says whose set it serves
owner_options() {
	vdi-engine backup --owner no-such-user x > /dev/null 2> e.err
	expect_rc 2 $? "--owner no-such-user" || return 1
	expect_msg e.err "no user 'no-such-user'" || return 1
	vdi-engine backup --owner 4294967295 x > /dev/null 2> e2.err
	expect_rc 2 $? "--owner 4294967295" || return 1
	vdi-engine --help > help.out 2>&1
	expect_msg help.out " [-]-owner USER " || return 1
	run_to "$TO" vdi-client backup --mode 0640 -t 20 mine 2> c.err &
	CPID=$!
	run_to "$TO" vdi-engine backup -v -t 20 --generate 64K mine 2> v.err
	expect_rc 0 $? "engine -v" || { show v.err; return 1; }
	wait $CPID
	expect_msg v.err "set 'mine' belongs to uid 0, group 0, mode 640" ||
		return 1
	show e.err
}

# clean FUNCTION: run a test, then end the squatter it may have left
clean() {
	CPID=
	"$1"
	r=$?
	[ -s nobody.pid ] && kill -TERM "$(cat nobody.pid)" 2>/dev/null
	if [ -n "$CPID" ] && ! exited "$CPID" 5; then
		[ -s nobody.pid ] && kill -9 "$(cat nobody.pid)" 2>/dev/null
		kill -9 "$CPID" 2>/dev/null
	fi
	wait 2>/dev/null
	return $r
}

t "engine refuses a set another user took, sends nothing" clean refused_backup
t "--owner USER / UID accepts that user's set, backup and restore" clean owner_named
t "--owner any accepts any set" clean owner_any
t "--owner: bad values; -v says whose set it is" clean owner_options
[ -n "$NODE_MODE" ] && chmod "$NODE_MODE" /dev/vdi
finish
