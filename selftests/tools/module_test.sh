# SPDX-License-Identifier: GPL-2.0
# vdi tools without the module: libvdi loads it on demand (libkmod, as
# modprobe would); where it is not installed, the tools say so clearly.
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

if [ -n "$(ls /sys/module/vdi/holders 2>/dev/null)" ] ||
	[ "$(cat /sys/module/vdi/refcnt 2>/dev/null || echo 0)" != 0 ]; then
	skip "libvdi loads the module on demand" "module in use"
	skip "no module installed: a clear message" "module in use"
else
	t "libvdi loads the module on demand" autoload
	t "no module installed: a clear message" not_installed
fi
t "the module is loaded again" reload
finish
