# SPDX-License-Identifier: GPL-2.0
# mk/demo.mk - "make demo": vdi end to end in a minute or two.
#
#   make demo     back up 256 MiB of generated data through 4 virtual devices
#                 (vdi-client + vdi-engine, scripts/demo.sh), restore it, show
#                 it identical byte for byte, print both throughputs.  Where
#                 /dev/vdi exists (the module is installed: make dkms-install)
#                 it runs on this machine with the tools of build/tools;
#                 otherwise it boots Debian's 6.1 kernel in qemu (as make
#                 check does: deps first) with the module, libvdi and the
#                 tools in the initramfs, and runs the demo there.  Exits
#                 non-zero if anything fails.
#
# Knobs: DEMO_VM=1 (use the VM even with /dev/vdi here), DEMO_KVER (kernel,
# default the first of KVERS: 6.1), DEMO_SIZE (256M), DEMO_DEVICES (4),
# DEMO_MEM (VM MiB, 2048), DEMO_SMP (2).

DEMO_KVER ?= $(firstword $(KVERS))
DEMO_MEM  ?= 2048
DEMO_SMP  ?= 2
DEMO_B    := $(B)/demo

ifeq ($(strip $(TOOLS_ALL)),)
$(error mk/demo.mk: TOOLS_ALL is empty; mk/tools.mk must be read first)
endif

.PHONY: demo demo-vm

demo:
	@if [ -c /dev/vdi ] && [ -z "$(DEMO_VM)" ]; then \
		$(MAKE) --no-print-directory tools >/dev/null && \
		echo "demo: /dev/vdi is here: running on this machine" && \
		PATH="$(B)/tools:$$PATH" LD_LIBRARY_PATH="$(B)" $(S)/demo.sh; \
	else \
		$(S)/deps.sh && $(MAKE) --no-print-directory demo-vm; \
	fi

# The VM's initramfs: the module, the tools (libvdi and the C library come
# along: initramfs.sh copies what they link) and demo.sh, no tests.  Staged
# under build/demo/, so it never disturbs the test initramfs.
# (TOOLS_ALL comes from mk/tools.mk, which the Makefile reads first.)
$(DEMO_B)/initramfs-%.cpio.gz: $(B)/mod-%/vdi.ko $(LIBVDI_SO) $(TOOLS_ALL) $(S)/demo.sh $(S)/vm-init.sh FORCE
	@mkdir -p $(DEMO_B)
	@cp $(LIBVDI_SO) $(DEMO_B)/
	@B=$(DEMO_B) EXTRA_BINS="$(TOOLS_ALL) $(S)/demo.sh" $(S)/initramfs.sh $* $< $@ >/dev/null

# Boot, show the demo's lines as they come, and pass on its verdict.
demo-vm: $(DEMO_B)/initramfs-$(DEMO_KVER).cpio.gz $(KDIR)/vmlinuz-$(DEMO_KVER)
	$(need-kvers)
	@log=$(DEMO_B)/vm-$(DEMO_KVER).log; rm -f $$log; : > $$log; \
	echo "demo: booting $(DEMO_KVER) in qemu (log $$log)"; \
	VM_MEM=$(DEMO_MEM) VM_SMP=$(DEMO_SMP) VM_TIMEOUT=$${VM_TIMEOUT:-900} \
	VM_APPEND="RIG_MODE=demo $(if $(DEMO_SIZE),DEMO_SIZE=$(DEMO_SIZE)) $(if $(DEMO_DEVICES),DEMO_DEVICES=$(DEMO_DEVICES))" \
		$(S)/boot.sh $(DEMO_KVER) $(KDIR)/vmlinuz-$(DEMO_KVER) $< $$log >/dev/null & \
	vm=$$!; \
	tail -n +1 -f --pid=$$vm $$log | tr -d '\r' | \
		sed -u -n -e '/^# vdi-demo: begin/,/^# vdi-demo: end/{/^# vdi-demo:/d;p}' \
			-e '/Kernel panic/p'; \
	wait $$vm; vmrc=$$?; \
	if tr -d '\r' < $$log | grep -q '^# vdi-demo: end rc=0$$'; then exit 0; fi; \
	echo "demo: FAILED (qemu exit $$vmrc; see $$log)" >&2; \
	tr -d '\r' < $$log | grep -q '^# vdi-demo: end' || tr -d '\r' < $$log | tail -n 20 >&2; \
	exit 1
