# SPDX-License-Identifier: GPL-2.0
# mk/vm-run.mk - run a command of your own in the test VM.
#
#   make vm-run CMD='...' [FILES='...'] [KVER=<kver>]
#
# Boots KVER (default: the first of KVERS, 6.1) under qemu with the module
# loaded, libvdi and the tools (vdi-engine, vdi-client, vdi-gen) in /bin, and
# each of FILES (host paths, files or directories; no spaces) copied into
# /files under its own name, with its shared libraries: ours from the build
# (libvdi.so.1, and libsqlvdi.so for a binary built against the SQL Server
# VDI SDK), the others from the host.  Runs "sh -c CMD" as
# root in /files, stdin /dev/null, and prints its output (stdout and stderr,
# as they come on the VM's console).  Its exit status ends up in
# build/vm-run/rc and, when not 0, in a last line "vm-run: the command exited
# with status N" on stderr; make then fails (with its own status, 2: make has
# no other).  scripts/vm-run.sh, which does the work, exits with the status
# itself.  The whole console is in build/vm-run/vm-<kver>.log.
#
#   make vm-run FILES=build/selftests/tools-outputs CMD=./tools-outputs
#   make vm-run CMD='vdi-client backup -o /dev/null x & vdi-engine backup --generate 1G x'
#
# make check runs one vm-run (scripts/vm-run-check.sh, build/vm-run.tap).

.PHONY: vm-run vm-run-check

# CMD reaches the VM's shell as it is (a $ stays a $): in the environment
# as VM_RUN_CMD, from its unexpanded value.
vm-run: export VM_RUN_CMD := $(value CMD)
vm-run: $(B)/mod-$(KVER)/vdi.ko $(LIBVDI_SO) $(LIBSQLVDI_SO) $(TOOLS_ALL) \
		$(KDIR)/vmlinuz-$(KVER)
	$(need-kvers)
	@B=$(B) TOOLS="$(TOOLS_ALL)" LIBVDI_SO=$(LIBVDI_SO) \
		LIBSQLVDI_SO=$(LIBSQLVDI_SO) FILES="$(FILES)" \
		$(S)/vm-run.sh $(KVER) $< $(KDIR)/vmlinuz-$(KVER)

vm-run-check:
	@$(S)/vm-run-check.sh
