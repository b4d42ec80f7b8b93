# SPDX-License-Identifier: GPL-2.0
# vdictl against known workloads: status with the module loaded, list and
# show of a backup whose client is stuck (its output is a FIFO nobody
# reads) and of the same set done (held by a secondary client,
# vdi-set-hold), top, --json parsed by vdi-json-check, the scope of
# another uid (nobody), abort by the owner and refusal to a stranger.
# The module's absence and "vdictl load": module_test.sh.
# (lib.sh comes first; see there.)

# nobody runs vdictl and vdi-client: /dev/vdi must be open to it whatever
# mode the rig gave the node; put back at the end.
NODE_MODE=$(stat -c %a /dev/vdi 2>/dev/null)
chmod 666 /dev/vdi
chmod 755 "$W"

# jget FILE PATH: the value at PATH of the JSON document in FILE
jget() { vdi-json-check --get "$2" < "$1"; }

# jis FILE PATH WANT: it is WANT, else say what it is
jis() {
	got=$(jget "$1" "$2") && [ "$got" = "$3" ] && return 0
	say "${1##*/}: $2 is '$got', expected '$3'"
	return 1
}

# as_nobody CMD...: a command line as nobody, in the test's directory
as_nobody() {
	run_to "$TO" su -s /bin/sh nobody -c "cd '$PWD' && exec $*"
}

# exe_is PID NAME: PID is a running NAME
exe_is() {
	case $(readlink "/proc/$1/exe" 2>/dev/null) in
	*/"$2") return 0 ;;
	esac
	say "pid '$1' is not $2 but '$(readlink "/proc/$1/exe" 2>/dev/null)'"
	return 1
}

# stuck_backup SET [nobody|root [ENGINE_OPTS]]: a backup its client cannot
# finish.  The
# client's output is the FIFO cf, whose reader (RPID) never reads: once
# the pipe is full the client blocks in write() holding a Write, and the
# engine's next commands wait in the queue: the engine waits on the
# client, as with a slow tape.  CPID and EPID are the client's and the
# engine's jobs (their -t and run_to bound them).  Returns once vdictl
# shows device 0 with a command held and one queued (its show --json in
# w.json), with C and S the pids it gives for the client and the engine,
# checked to be vdi-client's and vdi-engine's.
stuck_backup() {
	sb_set=$1
	mkfifo cf && chmod 666 cf
	# shellcheck disable=SC2217 # holds the read end open, reading nothing
	sleep "$TO" < cf &
	RPID=$!
	if [ "${2-}" = nobody ]; then
		chmod 777 .
		as_nobody vdi-client backup -t 20 -o cf "'$sb_set'" 2> c.err &
		CPID=$!
		run_to "$TO" vdi-engine backup -t 20 --owner nobody \
			--generate 8M "$sb_set" 2> e.err &
	else
		run_to "$TO" vdi-client backup -t 20 -o cf "$sb_set" 2> c.err &
		CPID=$!
		# shellcheck disable=SC2086 # a word list
		run_to "$TO" vdi-engine backup -t 20 ${3-} --generate 8M "$sb_set" \
			2> e.err &
	fi
	EPID=$!
	i=0
	while [ $i -lt 200 ]; do
		if vdictl show --json "$sb_set" > w.json 2> w.err &&
		   [ "$(jget w.json devices.0.held)" -ge 1 ] 2>/dev/null &&
		   [ "$(jget w.json devices.0.queued)" -ge 1 ] 2>/dev/null; then
			C=$(jget w.json set.client_pid) S=$(jget w.json set.server_pid)
			exe_is "$C" vdi-client && exe_is "$S" vdi-engine
			return
		fi
		sleep 0.1
		i=$((i + 1))
	done
	say "the backup never got stuck on its client"
	show w.err; show c.err; show e.err
	return 1
}

# finish_backup: the reader reads (out.bin), the backup ends; both tools
# must succeed
finish_backup() {
	run_to "$TO" cat cf > out.bin
	kill "$RPID" 2>/dev/null
	wait "$EPID"
	erc=$?
	wait "$CPID"
	crc=$?
	expect_rc 0 $erc "engine" || { show e.err; show c.err; return 1; }
	expect_rc 0 $crc "client" || { show c.err; return 1; }
}

# hold SET: a secondary client holds the set (HPID)
hold() {
	vdi-set-hold "$1" "$TO" > hold.out 2> hold.err &
	HPID=$!
	i=0
	while ! grep -q '^held$' hold.out 2>/dev/null; do
		[ $i -ge 100 ] && { say "vdi-set-hold did not hold $1"; show hold.err; return 1; }
		sleep 0.1
		i=$((i + 1))
	done
}

# no_sets_within SECS: vdictl list says "no sets"
no_sets_within() {
	i=0
	while :; do
		vdictl list > nl.out 2>&1
		[ "$(cat nl.out)" = "no sets" ] && return 0
		[ $i -ge $(($1 * 10)) ] && { say "sets are left:"; show nl.out; return 1; }
		sleep 0.1
		i=$((i + 1))
	done
}

# --------------------------------------------------------------- status
status_loaded() {
	vdictl status > s.out 2> s.err
	expect_rc 0 $? "vdictl status" || { show s.err; return 1; }
	show s.out
	expect_msg s.out '^module: +loaded \(live\)' || return 1
	expect_msg s.out '^api: +1\.[2-9]' || return 1
	expect_msg s.out '^features:.* stats' || return 1
	mode=$(stat -c %a /dev/vdi)
	expect_msg s.out "^node: +/dev/vdi: character device [0-9]+:[0-9]+, crw-rw-rw- \\(0$mode\\), owner root, group root; you may open it" || return 1
	expect_msg s.out '^limits: +64 devices per set' || return 1
	vdictl --json status > s.json 2> s.err
	expect_rc 0 $? "vdictl --json status" || { show s.err; return 1; }
	vdi-json-check < s.json || return 1
	jis s.json module.loaded true && jis s.json node.mode "0$mode" &&
		jis s.json node.type char && jis s.json api.major 1 &&
		jis s.json limits.max_devices 64 || return 1
	n=0
	for p in /sys/module/vdi/parameters/*; do
		name=${p##*/} v=$(cat "$p")
		grep -qE "^ +$name +$v\$" s.out ||
			{ say "status does not list $name = $v"; return 1; }
		case $v in Y) v=true ;; N) v=false ;; esac
		jis s.json "parameters.$name" "$v" || return 1
		n=$((n + 1))
	done
	[ $n -ge 5 ] || { say "only $n parameters in sysfs"; return 1; }
	jis s.json limits.max_queue_depth "$(cat /sys/module/vdi/parameters/max_queue_depth)"
}

list_none() {
	vdictl list > l.out 2> l.err
	expect_rc 0 $? "vdictl list" || { show l.err; return 1; }
	[ "$(cat l.out)" = "no sets" ] || { say "not 'no sets':"; show l.out; return 1; }
	vdictl list --json > l.json && vdi-json-check < l.json &&
		[ "$(vdi-json-check --len sets < l.json)" = 0 ] ||
		{ say "list --json:"; show l.json; return 1; }
}

# --------------------------------------------------------------- a backup
# list and show of a backup stuck on its client; its figures stand still
# while the client is stopped; then the same set done, held by a secondary
# client: the counts of the whole run, against the file it produced
stuck_then_done() {
	stuck_backup hb || return 1
	id=$(jget w.json set.id)
	vdictl list > l.out 2> l.err
	expect_rc 0 $? "list" || { show l.err; return 1; }
	show l.out
	expect_msg l.out '^ID +STATE +OWNER +CLIENT +SERVER +DEVS +BYTES +BUSY +VERDICT +NAME$' &&
	expect_msg l.out "^$id +ready +root +$C +$S +1 +[0-9.]+(B|KiB|MiB) +.* hb\$" || return 1

	vdictl show hb > sh.out 2> sh.err
	expect_rc 0 $? "show hb" || { show sh.err; return 1; }
	show sh.out
	for re in "^set hb \\(id $id\\)\$" '^  state: +ready$' \
		"^  owner: +root \\(uid 0\\), group root \\(gid 0\\), mode 0600\$" \
		"^  client: +pid $C, 0 secondary set fds\$" "^  engine: +pid $S\$" \
		'^  config: +1 device, pipe-like' '^  abort: +not aborted$' \
		"^  figures of set 'hb' after [0-9.]+ s: ready\$" \
		'^    device +bytes +MiB/s +sent +completed +queued-ms +held-ms' \
		'^    hb +[0-9]+ +[0-9.]+ +[1-9][0-9]* ' \
		'^  verdict: ' \
		'^device 0 hb: active, opened by the engine and the client$' \
		'^    now: +queued [1-9][0-9]*, held [1-9]' \
		'^    by code: +VDC_Write [1-9]' \
		'^    completed: +ERROR_SUCCESS \(0\) [1-9]' \
		'^    times: +queued [0-9.]+ ms, held [0-9.]+ ms, reaping [0-9.]+ ms$' \
		'^    client: +busy [0-9]+% \([0-9.]+ ms\), idle [0-9]+%'; do
		expect_msg sh.out "$re" || return 1
	done
	# by id, three ways: the same set
	for sel in "#$id" "--id $id"; do
		# shellcheck disable=SC2086 # --id N is two words
		vdictl show $sel > id.out 2>&1 && head -n 1 id.out | grep -qx "set hb (id $id)" ||
			{ say "show $sel:"; show id.out; return 1; }
	done
	vdictl show --json --name hb > sh.json 2> sh.err && vdi-json-check < sh.json ||
		{ show sh.err; return 1; }
	jis sh.json set.id "$id" && jis sh.json set.state ready &&
		jis sh.json set.client_pid "$C" && jis sh.json set.server_pid "$S" &&
		jis sh.json set.user root && jis sh.json set.linked true &&
		jis sh.json devices.0.name hb && jis sh.json devices.0.client_open true &&
		jis sh.json set.abort.reason none || return 1
	[ "$(vdi-json-check --len devices < sh.json)" = 1 ] || return 1

	# the client stopped: nothing moves
	kill -STOP "$C"
	sleep 0.3
	vdictl show --json hb > a.json
	sleep 0.5
	vdictl show --json hb > b.json
	kill -CONT "$C"
	for f in sent taken completed reaped bytes_written queued held; do
		jis b.json "devices.0.$f" "$(jget a.json "devices.0.$f")" ||
			{ say "$f moved while the client was stopped"; return 1; }
	done

	hold hb || return 1
	sleep 1		# stuck a while more: the client is the slow side
	finish_backup || return 1
	vdictl show --json "#$id" > d.json 2> d.err && vdi-json-check < d.json ||
		{ show d.err; return 1; }
	vdictl show hb > d.out 2>&1
	show d.out
	size=$(stat -c %s out.bin)
	n=$(jget d.json devices.0.sent)
	jis d.json set.state 'done' && jis d.json set.linked false &&
		jis d.json set.secondaries 1 && jis d.json set.client_pid null &&
		jis d.json devices.0.bytes_written "$size" &&
		jis d.json devices.0.bytes_read 0 &&
		jis d.json devices.0.taken "$n" && jis d.json devices.0.completed "$n" &&
		jis d.json devices.0.reaped "$n" &&
		jis d.json devices.0.queued 0 && jis d.json devices.0.held 0 &&
		jis d.json devices.0.state closed &&
		jis d.json devices.0.sent_by_code.VDC_Flush 1 &&
		jis d.json devices.0.sent_by_code.VDC_Complete 1 &&
		jis d.json devices.0.completions.0.name ERROR_SUCCESS &&
		jis d.json devices.0.completions.0.count "$n" &&
		jis d.json set.verdict.side client || return 1
	# header, 8 MiB of data in 1 MiB Writes, trailer: at least 10 Writes
	[ "$(jget d.json devices.0.sent_by_code.VDC_Write)" -ge 10 ] ||
		{ say "too few Writes"; return 1; }
	expect_msg d.out '^  state: +done \(its name is released: a process still holds the set\)$' &&
	expect_msg d.out '^  verdict: +client storage: [0-9]+% of the time the engine waited on the client$' &&
	expect_msg d.out '^  client: +gone' || return 1
	vdictl list > l2.out 2>&1
	expect_msg l2.out "^$id +done +root +- +- +1 +.* +client +hb \\(released\\)\$" || { show l2.out; return 1; }
	kill "$HPID"
	no_sets_within 5
}

# --------------------------------------------------------------- scope
# another uid sees none of root's sets, cannot read or abort one by id;
# the backup goes on and completes
stranger() {
	stuck_backup st || return 1
	id=$(jget w.json set.id)
	as_nobody vdictl list > n.out 2>&1
	expect_rc 0 $? "nobody's list" || { show n.out; return 1; }
	[ "$(cat n.out)" = "no sets" ] || { say "nobody sees:"; show n.out; return 1; }
	as_nobody vdictl list --json > n.json 2>&1 &&
		[ "$(vdi-json-check --len sets < n.json)" = 0 ] || { show n.json; return 1; }
	as_nobody vdictl show st > ns.out 2>&1
	expect_rc 1 $? "nobody's show st" && expect_msg ns.out "^vdictl: no set named 'st'" || return 1
	as_nobody vdictl show "'#$id'" > ni.out 2>&1
	expect_rc 1 $? "nobody's show #$id" &&
		expect_msg ni.out "^vdictl: set #$id is another user's" || return 1
	as_nobody vdictl abort "'#$id'" > na.out 2>&1
	expect_rc 1 $? "nobody's abort #$id" &&
		expect_msg na.out "^vdictl: set #$id is another user's: only its owner or root may abort it$" ||
		return 1
	show na.out
	as_nobody vdictl abort st > nn.out 2>&1
	expect_rc 1 $? "nobody's abort st" || return 1
	# untouched: root still sees it ready, and it completes
	vdictl show --json st > r.json && jis r.json set.state ready &&
		jis r.json set.abort.reason none || return 1
	finish_backup
}

# nobody's own backup: nobody sees and aborts it; root sees it too, and a
# secondary holds it to show the abort's cause
owner_abort() {
	stuck_backup ab nobody || return 1
	id=$(jget w.json set.id)
	as_nobody vdictl list > n.out 2>&1
	expect_msg n.out "^$id +ready +nobody +$C +$S +1 .* ab\$" || { show n.out; return 1; }
	vdictl list > r.out 2>&1
	expect_msg r.out "^$id +ready +nobody " || { show r.out; return 1; }
	hold ab || return 1
	as_nobody vdictl abort ab > a.out 2> a.err
	expect_rc 0 $? "nobody's abort of its set" || { show a.err; return 1; }
	show a.out
	expect_msg a.out "^aborted set 'ab' \\(#$id\\), which was ready: its client and engine get VD_E_ABORT$" ||
		return 1
	wait "$EPID"
	expect_rc 1 $? "engine after the abort" || { show e.err; return 1; }
	# the client is in write() to cf: an abort cannot end that, a reader can
	run_to "$TO" cat cf > /dev/null &
	wait "$CPID"
	expect_rc 1 $? "client after the abort" || { show c.err; return 1; }
	kill "$RPID" 2>/dev/null
	# both say who aborted it, from the figures' abort reason
	expect_msg c.err "^vdi-client: the backup was aborted by an administrator \\(vdictl abort; VD_E_ABORT\\) " &&
	expect_msg e.err "^vdi-engine: the backup was aborted by an administrator \\(vdictl abort; VD_E_ABORT\\) " ||
		{ show c.err; show e.err; return 1; }
	show c.err; show e.err
	vdictl show --json ab > d.json 2>&1 && jis d.json set.state aborted &&
		jis d.json set.abort.reason admin && jis d.json set.abort.device null ||
		{ show d.json; return 1; }
	vdictl show ab > d.out 2>&1
	expect_msg d.out '^  abort: +an administrator \(vdictl abort\)$' ||
		return 1
	# again: said so, nothing else
	vdictl abort ab > a2.out 2>&1
	expect_rc 0 $? "a second abort" && expect_msg a2.out "was already aborted" || return 1
	kill "$HPID"
	no_sets_within 5
}

# --------------------------------------------------------------- JSON, top
# a name of quotes, brackets, UTF-8 and a byte that is not UTF-8: JSON
# escapes it (U+FFFD for the byte, and name_hex); text shows \xff
odd_names_and_top() {
	nm=$(printf 'q"u\047o{}[]: \303\251\345\220\215\377')
	want=$(printf 'q"u\047o{}[]: \303\251\345\220\215\357\277\275')
	# 64 KiB transfers: the figures move in small steps (for top's MiB/s)
	stuck_backup "$nm" root "--max-transfer 64K" || return 1
	vdictl list --json > l.json 2> l.err && vdi-json-check < l.json ||
		{ show l.err; return 1; }
	jis l.json sets.0.name "$want" &&
		jis l.json sets.0.name_hex 712275276f7b7d5b5d3a20c3a9e5908dff || return 1
	vdictl show --json "$nm" > s.json 2> s.err && vdi-json-check < s.json ||
		{ show s.err; return 1; }
	jis s.json devices.0.name "$want" || return 1
	vdictl list > l.out 2>&1
	grep -qF "$(printf 'q"u\047o{}[]: \303\251\345\220\215')\\xff" l.out ||
		{ say "list does not show the name with \\xff:"; show l.out; return 1; }
	# show's every line, its figures' table and abort text too: not a
	# raw byte that is not UTF-8
	vdictl show "$nm" > s.out 2>&1
	grep -qF "figures of set '$(printf 'q"u\047o{}[]: \303\251\345\220\215')\\xff'" s.out &&
		! grep -q "$(printf '\377')" s.out ||
		{ say "show prints the name's byte \\377 as it is:"; show s.out; return 1; }

	vdictl top -n 2 -d 0.5 > t.out 2> t.err
	expect_rc 0 $? "top -n 2" || { show t.err; return 1; }
	show t.out
	[ "$(grep -c '^vdictl top - ' t.out)" = 2 ] || { say "not 2 frames"; return 1; }
	! grep -q "$(printf '\033')" t.out || { say "escape codes, not a tty"; return 1; }
	expect_msg t.out '^ +ID +DEV +STATE +QUEUED +HELD +MiB/s +BYTES +BUSY +VERDICT +DEVICE$' &&
	expect_msg t.out '^ +[0-9]+ +0 +ready +[1-9][0-9]* +[1-9][0-9]* +- ' &&
	expect_msg t.out '^ +[0-9]+ +0 +ready +[1-9][0-9]* +[1-9][0-9]* +[0-9]+\.[0-9] ' || return 1
	# now a reader that takes at most 512 KiB per 0.25 s: the client moves
	# at 2 MiB/s or less, and top must see it move
	(while :; do dd bs=65536 count=8 2>/dev/null; sleep 0.25; done) < cf > /dev/null &
	PACED=$!
	vdictl --json top -n 3 -d 1 > t.json 2> t.err
	expect_rc 0 $? "top --json" || { show t.err; return 1; }
	[ "$(wc -l < t.json)" = 3 ] || { say "not 3 lines"; show t.json; return 1; }
	vdi-json-check --lines < t.json || return 1
	show t.json
	sed -n 1p t.json > t1.json
	jis t1.json sets.0.devices.0.mib_per_s null || return 1
	for l in 2 3; do
		sed -n ${l}p t.json > tl.json
		jis tl.json sets.0.name "$want" || return 1
		r=$(jget tl.json sets.0.devices.0.mib_per_s)
		echo "$r" | grep -qE '^[0-9]+\.[0-9]{3}$' &&
			awk -v r="$r" 'BEGIN { exit !(r > 0 && r <= 4) }' ||
			{ say "refresh $l: $r MiB/s, not in (0, 4]"; return 1; }
	done
	kill "$PACED"
	finish_backup
}

# /dev/vdi closed to the user: list fails saying so, status still works
no_access() {
	chmod 600 /dev/vdi
	chmod 755 .
	as_nobody vdictl list > n.out 2>&1
	r=$?
	as_nobody vdictl status > s.out 2>&1
	rs=$?
	chmod 666 /dev/vdi
	expect_rc 1 $r "nobody's list, node 0600" &&
		expect_msg n.out '^vdictl: .*/dev/vdi: Permission denied' || { show n.out; return 1; }
	expect_rc 0 $rs "nobody's status, node 0600" || { show s.out; return 1; }
	expect_msg s.out '^node: .*crw------- \(0600\), owner root, group root; you may not open it$' &&
		expect_msg s.out '^api: +unknown: /dev/vdi: Permission denied$' &&
		expect_msg s.out '^parameters:' || { show s.out; return 1; }
	show n.out
}

# --------------------------------------------------------------- usage
usage() {
	for a in "" frob show "list x" "abort --json x" "top -n 0" "top -d 0" \
		"show #x" "show a b" "status --id 3" "--frob list" "list -n 2"; do
		# shellcheck disable=SC2086 # word lists
		vdictl $a > u.out 2> u.err
		expect_rc 2 $? "vdictl $a" && expect_msg u.err "^vdictl: " || return 1
	done
	vdictl show nosuch > n.out 2>&1
	expect_rc 1 $? "show nosuch" && expect_msg n.out "^vdictl: no set named 'nosuch'" || return 1
	vdictl abort '#999999' > n.out 2>&1
	expect_rc 1 $? "abort #999999" && expect_msg n.out "^vdictl: no set #999999" || return 1
	vdictl --help > h.out 2>&1
	expect_rc 0 $? "--help" && expect_msg h.out '^Usage: vdictl' || return 1
}

# clean FUNCTION: run a test, then end what it may have left running
clean() {
	RPID='' CPID='' EPID='' HPID='' C='' S='' PACED=''
	"$1"
	r=$?
	for p in $PACED $HPID $RPID $C $S $CPID $EPID; do
		kill -CONT "$p" 2>/dev/null
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	return $r
}

t "vdictl status: module, node, API, parameters (--json too)" clean status_loaded
t "vdictl list: no sets" clean list_none
t "a backup stuck on its client: list, show, stopped; then done: its counts" clean stuck_then_done
t "another uid sees nothing, may not abort; the backup completes" clean stranger
t "the owner (nobody) aborts its set; the cause shows" clean owner_abort
t "odd names in JSON and text; top and top --json" clean odd_names_and_top
t "/dev/vdi closed to the user: list fails, status says why" clean no_access
t "bad command lines (2), unknown sets (1)" clean usage
[ -n "$NODE_MODE" ] && chmod "$NODE_MODE" /dev/vdi
finish
