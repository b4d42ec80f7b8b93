# SPDX-License-Identifier: GPL-2.0
# vdi tools without the module: libvdi loads it on demand (libkmod, as
# modprobe would); where it is not installed, the tools say so clearly.
# vdictl only looks (status: exit 3, the others fail) and loads only when
# told (vdictl load).
# Unloads vdi, so it runs alone; it loads the module again at the end.
# (lib.sh comes first; see there.)

KO=/vdi.ko	# the rig's copy (scripts/initramfs.sh)

unload() {
	rmmod vdi 2> rmmod.err || { say "rmmod vdi failed"; show rmmod.err; return 1; }
	i=0
	while [ -e /dev/vdi ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	[ ! -e /dev/vdi ] || { say "/dev/vdi is still there"; return 1; }
}

reload() {
	grep -q '^vdi ' /proc/modules || insmod $KO || modprobe vdi
	i=0
	while [ ! -c /dev/vdi ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	[ -c /dev/vdi ]
}

autoload() {
	unload || return 1
	run_to "$TO" vdi-client backup -t 1 autoload 2> c.err
	rc=$?
	grep -q '^vdi ' /proc/modules || { say "the module was not loaded"; show c.err; return 1; }
	# it got as far as waiting for an engine
	expect_rc 1 $rc "client" && expect_msg c.err "no engine opened"
}

# /lib/modules hidden by a tmpfs in a private mount namespace: to libkmod
# the module is not installed
not_installed() {
	unload || return 1
	for tool in "vdi-client backup -t 1 nomod" \
		"vdi-engine backup -t 1 --generate 1K nomod"; do
		unshare -m sh -c "mount -t tmpfs none /lib/modules && exec $tool" 2> err
		rc=$?
		expect_rc 1 $rc "${tool%% *} without the module" || { show err; return 1; }
		expect_msg err "cannot reach the VDI module: .*(not installed|No such file)" || return 1
		show err
	done
	! grep -q '^vdi ' /proc/modules || { say "the module got loaded"; return 1; }
}

loaded() { grep -q '^vdi ' /proc/modules; }

# vdictl with the module unloaded: status says so (exit 3) and loads
# nothing, the other commands fail with the same line; load refuses a
# user, says when the module is not installed, then loads it as root
vdictl_nomod() {
	! loaded || unload || return 1
	kr=$(uname -r | sed 's/[.+]/\\&/g')	# as a regular expression
	vdictl status > s.out 2>&1
	expect_rc 3 $? "vdictl status" || { show s.out; return 1; }
	show s.out
	expect_msg s.out '^module: +not loaded \(vdictl load\)$' &&
	expect_msg s.out "^ +installed: /lib/modules/$kr/extra/vdi\.ko\$" &&
	expect_msg s.out '^node: +/dev/vdi: missing$' || return 1
	vdictl --json status > s.json 2>&1
	expect_rc 3 $? "vdictl --json status" || return 1
	[ "$(vdi-json-check --get module.loaded < s.json)" = false ] &&
		[ "$(vdi-json-check --get api < s.json)" = null ] ||
		{ show s.json; return 1; }
	for c in list "show x" "show #1" top "abort x" "--json list"; do
		# shellcheck disable=SC2086 # word lists
		vdictl $c > c.out 2>&1
		expect_rc 1 $? "vdictl $c" || { show c.out; return 1; }
		[ "$(cat c.out)" = "vdictl: the vdi module is not loaded (vdictl load)" ] ||
			{ say "vdictl $c says:"; show c.out; return 1; }
	done
	! loaded || { say "vdictl loaded the module"; return 1; }

	chmod 755 "$W" .
	run_to "$TO" su -s /bin/sh nobody -c "vdictl load" > n.out 2>&1
	expect_rc 1 $? "nobody's vdictl load" || { show n.out; return 1; }
	expect_msg n.out "^vdictl: loading module vdi .*: Operation not permitted: loading a module needs root" ||
		return 1
	unshare -m sh -c "mount -t tmpfs none /lib/modules && exec vdictl load" > ni.out 2>&1
	expect_rc 1 $? "vdictl load, not installed" || { show ni.out; return 1; }
	expect_msg ni.out "^vdictl: module vdi is not installed for kernel $kr" || return 1
	! loaded || { say "the module got loaded"; return 1; }

	vdictl load > l.out 2>&1
	expect_rc 0 $? "vdictl load" || { show l.out; return 1; }
	show l.out
	expect_msg l.out "^loaded module vdi \(/lib/modules/$kr/extra/vdi\.ko\)\$" &&
		expect_msg l.out '^/dev/vdi is there$' || return 1
	loaded && [ -c /dev/vdi ] || { say "not loaded, or no /dev/vdi"; return 1; }
	vdictl load > l2.out 2>&1
	expect_rc 0 $? "vdictl load again" && expect_msg l2.out '^the vdi module is already loaded$' ||
		{ show l2.out; return 1; }
	vdictl status > s2.out 2>&1
	expect_rc 0 $? "vdictl status, loaded" || { show s2.out; return 1; }
}

if [ -n "$(ls /sys/module/vdi/holders 2>/dev/null)" ] ||
	[ "$(cat /sys/module/vdi/refcnt 2>/dev/null || echo 0)" != 0 ]; then
	skip "libvdi loads the module on demand" "module in use"
	skip "no module installed: a clear message" "module in use"
	skip "vdictl without the module: status, errors, load" "module in use"
else
	t "libvdi loads the module on demand" autoload
	t "no module installed: a clear message" not_installed
	t "vdictl without the module: status, errors, load" vdictl_nomod
fi
t "the module is loaded again" reload
finish
