# SPDX-License-Identifier: GPL-2.0
#
# vdi - top-level Makefile: builds the module for Debian's 6.1 and 6.12
# kernels, the selftests, and boots each kernel under qemu to run them.
# Nothing here loads a module into the host's kernel.
#
#   make check       everything, as CI runs it (.ci/run): deps, lint, modules,
#                    selftests, selftests/ built as a kselftest target in the
#                    linux-source-6.1 tree, initramfs, boot both kernels,
#                    summary; the last line of output is "N passed, N failed"
#   make deps        install the tool packages, fetch both kernels' images and
#                    build trees into build/kernels (scripts/deps.sh,
#                    scripts/kernels.sh); no kernel is installed into the host
#   make kernels     only fetch missing kernels (build/kernels/vmlinuz-<kver>)
#   make modules     build/mod-<kver>/vdi.ko for every kernel (W=1)
#   make lint        checkpatch + fresh W=1/sparse builds; fails on any warning
#   make selftests   every test program: build/selftests/vdi_*_test, the kernel
#                    ABI tests (selftests/Makefile: the kselftest target "vdi"),
#                    and the project's (libvdi-*, tools-*, ...: mk/*.mk)
#   make initramfs   build/initramfs-<kver>.cpio.gz
#   make vms         boot every kernel (make -j2 vms: side by side), logs build/vm-<kver>.log
#   make boot-<kver> boot one kernel;  make summary: judge the logs present
#   make vm-shell [KVER=<kver>]   interactive VM with the module loaded
#   make vm-run CMD='...' [FILES='...'] [KVER=<kver>]   run a command in the
#                    VM, print its output, fail if it fails (mk/vm-run.mk)
#   make clean       remove build/ (the kernel images are fetched again)
#
# Knobs: KVERS (kernels, default from scripts/kvers.sh), TEST_TIMEOUT (s per
# project test program, 120; the kernel tests' is selftests/settings),
# KSFT_TIMEOUT (s per kernel test program instead of selftests/settings'),
# VM_TIMEOUT (s per VM, 900), VM_JOBS (VMs at once in make check, 2), VM_MEM,
# VM_SMP, VM_CPU, VM_APPEND (see scripts/boot.sh), CHECKPATCH_IGNORE,
# CHECKPATCH_FILE_IGNORE, USERCFLAGS / USERLDFLAGS (more flags for the
# kernel tests, as lib.mk takes them).

ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
B    := $(ROOT)/build
S    := $(ROOT)/scripts
export B

.DEFAULT_GOAL := all
.DELETE_ON_ERROR:
.SUFFIXES:

# ---------------------------------------------------------------- kernels
# The 6.1 kernel linux-headers-amd64 depends on, and the newest 6.12 one:
# those whose build trees scripts/kernels.sh unpacked under build/kernels
# (the module is built against build/kernels/headers-<kver>, never against
# the host's /usr/src).  Empty on a fresh machine until "make deps" ran.
ifndef KVERS
KVERS := $(shell B=$(B) $(S)/kvers.sh)
endif
KDIR  := $(B)/kernels
# in recipes that run after deps.sh may have fetched the kernels: honour a
# KVERS given on the command line, else ask kvers.sh again
KVERS_SH = $(if $(filter command line environment,$(origin KVERS)),$(KVERS),$$($(S)/kvers.sh))

need-kvers = @test -n "$(strip $(KVERS))" || \
	{ echo "no kernel build trees in $(KDIR): run 'make deps' (or 'make check')" >&2; exit 1; }

MODULES  = $(foreach k,$(KVERS),$(B)/mod-$(k)/vdi.ko)
INITRDS  = $(foreach k,$(KVERS),$(B)/initramfs-$(k).cpio.gz)
VMLINUZS = $(foreach k,$(KVERS),$(KDIR)/vmlinuz-$(k))

# checkpatch.pl exceptions, one comment each.  Types ignored everywhere,
# comma separated (none so far):
CHECKPATCH_IGNORE ?=
# ... and in one file only, as space separated FILE:TYPE,TYPE entries:
#  kmod/compat.h: the one home of the kernel-version shims (6.1 and 6.12);
#    "#if LINUX_VERSION_CODE < KERNEL_VERSION(...)" trips LINUX_VERSION_CODE
#    (advice for in-tree code) and CONSTANT_COMPARISON (checkpatch takes the
#    all-caps macro on the left for a constant).
CHECKPATCH_FILE_IGNORE ?= kmod/compat.h:LINUX_VERSION_CODE,CONSTANT_COMPARISON
export CHECKPATCH_IGNORE CHECKPATCH_FILE_IGNORE

TEST_TIMEOUT ?= 120
VM_TIMEOUT   ?= 900
# make check boots the kernels side by side: ~25% faster on 2 cores, but each
# VM runs slower; VM_JOBS=1 if timing-sensitive tests get flaky
VM_JOBS      ?= 2
export TEST_TIMEOUT VM_TIMEOUT KSFT_TIMEOUT

# ---------------------------------------------------------------- selftests
# The kernel ABI tests, selftests/vdi_*_test.c, talk to /dev/vdi directly and
# link nothing of ours.  They are the kselftest target "vdi": selftests/
# Makefile (TEST_GEN_PROGS, "include ../lib.mk") builds them with the
# framework of Debian's linux-source-6.1, extracted into build/ksrc
# (scripts/ksrc.sh).  lib.mk is not in the repository: make finds "../lib.mk"
# through -I, as <ksrc>/tools/testing/selftests/kselftest/../lib.mk.  One
# sub-make per program, and lib.mk decides what to rebuild (hence FORCE; -q
# first, so that an up-to-date program says nothing): a program that does
# not compile fails alone under make -k.  In the VMs they run through the
# kselftest runner (scripts/initramfs.sh, scripts/vm-init.sh).
KSFT_DIR  := $(B)/ksrc/tools/testing/selftests
export KSFT_DIR
KSFT_MAKE  = $(MAKE) --no-print-directory -C $(ROOT)/selftests \
	-I $(KSFT_DIR)/kselftest OUTPUT=$(B)/selftests
LIBVDI    := $(B)/libvdi.a

SELFTEST_SRCS := $(wildcard $(ROOT)/selftests/vdi_*_test.c)
SELFTEST_BINS := $(sort $(patsubst $(ROOT)/selftests/%.c,$(B)/selftests/%,$(SELFTEST_SRCS)))

# ---------------------------------------------------------------- libvdi
# libvdi.so.1 (only the API exported: userlib/libvdi.map), libvdi.a, and
# the pkg-config file.  The library's own tests (selftests/libvdi/*.c, *.cc)
# link the shared library, as its users do; the initramfs carries it and
# every shared library they need.
LIB_SRCS   := $(wildcard $(ROOT)/userlib/*.c)
LIB_OBJS   := $(patsubst $(ROOT)/userlib/%.c,$(B)/userlib/%.o,$(LIB_SRCS))
LIBVDI_SO  := $(B)/libvdi.so.1
LIBVDI_PC  := $(B)/libvdi.pc
# libsqlvdi.so: the SDK's C++ library, binary-compatible, over libvdi.so.1
# (userlib/sqlvdi/).  Its soname is the SDK's file name, libsqlvdi.so: what
# an SDK binary records as NEEDED is not published; a library without a
# soname is recorded by its file name, so libsqlvdi.so is what it finds.
LIBSQLVDI_SO := $(B)/libsqlvdi.so
LIB_CFLAGS ?= -O2 -g -Wall -Wextra -Wshadow -Werror=implicit-function-declaration
LIB_CPPFLAGS := -I$(ROOT)/include -I$(ROOT)/include/uapi
VERSION    := 1.0.0
PREFIX     ?= /usr/local

LIBTEST_SRCS := $(wildcard $(ROOT)/selftests/libvdi/*.c $(ROOT)/selftests/libvdi/*.cc)
LIBTEST_BINS := $(sort $(foreach f,$(LIBTEST_SRCS),$(B)/selftests/libvdi-$(basename $(notdir $(f)))))
LIBTEST_FLAGS := -O2 -g -Wall -Wextra -pthread -isystem $(KSFT_DIR) \
	-I$(ROOT)/include -I$(ROOT)/include/uapi -I$(ROOT)/selftests
LIBTEST_LIBS := -L$(B) -l:libvdi.so.1 -pthread

# ---------------------------------------------------------------- top level
.PHONY: all deps ksrc modules lint selftests lib initramfs vms summary check \
	check-prepare kernels vm-shell clean FORCE

all: modules lib selftests

deps:
	$(S)/deps.sh

ksrc: $(B)/ksrc/.stamp
# again when ksrc.sh changes: it extracts again if its list of files changed
$(B)/ksrc/.stamp: $(S)/ksrc.sh
	$(S)/ksrc.sh

# CI entry point.  deps.sh first, then everything else in sub-makes (which
# see the kernels deps.sh may just have fetched).  A lint failure or a
# kernel whose module does not build does not stop the other steps: all of
# them end up as results in the summary, which decides the exit status.
# A test program that does not compile is a failed result (build.tap), and
# the VMs run the others (ONLY_BUILT_TESTS).  First and last, the host's
# kernels: scripts/host-kernels.sh records the linux-image / linux-headers
# packages, /boot and /lib/modules before anything runs and checks at the
# end that they are as they were (host.tap).  HOST_BEFORE=FILE: compare with
# a record made earlier instead (.ci/run makes one before "make demo").
HOST_BEFORE ?=
HOST_RECORD  = $(or $(HOST_BEFORE),$(B)/host-before.txt)
check:
	@$(if $(HOST_BEFORE),test -s $(HOST_BEFORE) || \
		{ echo "HOST_BEFORE=$(HOST_BEFORE): no such record" >&2; exit 1; },\
		$(S)/host-kernels.sh record $(HOST_RECORD))
	@$(S)/deps.sh
	@$(MAKE) --no-print-directory check-prepare
	@$(S)/lint.sh $(KVERS_SH) || true
	@$(S)/dkms-check.sh $(KVERS_SH) || true
	@$(MAKE) --no-print-directory -k -j2 selftests || true
	@$(MAKE) --no-print-directory -k install-check man-check sdk-check || true
	@$(MAKE) --no-print-directory kselftest-check || true
	@$(MAKE) --no-print-directory vm-run-check || true
	@n=0; for b in $(ALL_TEST_BINS); do n=$$((n + 1)); \
		if [ -x $$b ]; then echo "ok $$n build.selftest.$${b##*/}"; \
		else echo "not ok $$n build.selftest.$${b##*/} # does not compile"; fi; \
	done > $(B)/build.tap; \
	if [ $$n = 0 ]; then rm $(B)/build.tap; else sed -i "1i 1..$$n" $(B)/build.tap; fi
	@$(MAKE) --no-print-directory -k -j$(VM_JOBS) vms ONLY_BUILT_TESTS=1 || true
	@$(S)/host-kernels.sh check $(HOST_RECORD) || true
	@$(S)/tap-summary.sh $(KVERS_SH)

check-prepare: ksrc
	$(need-kvers)
	@rm -f $(B)/lint.tap $(B)/build.tap $(B)/dkms.tap $(B)/install.tap \
		$(B)/man.tap $(B)/sdk.tap $(B)/kselftest.tap $(B)/vm-run.tap \
		$(B)/host.tap \
		$(B)/vm-*.log $(B)/vm-*.log.status

# ---------------------------------------------------------------- module
# Each kernel builds in its own mirror of the sources (scripts/kbuild.sh);
# kbuild decides what to rebuild, hence FORCE.
modules: $(MODULES)
	$(need-kvers)

$(B)/mod-%/vdi.ko: FORCE
	+@$(S)/kbuild.sh $* $(B)/mod-$* W=1

lint: ksrc
	$(need-kvers)
	@$(S)/lint.sh $(KVERS)

# ---------------------------------------------------------------- libvdi
lib: $(LIBVDI_SO) $(LIBVDI) $(LIBVDI_PC) $(LIBSQLVDI_SO)

$(B)/userlib/%.o: $(ROOT)/userlib/%.c
	@mkdir -p $(@D)
	$(CC) $(LIB_CPPFLAGS) $(LIB_CFLAGS) -fPIC -fvisibility=hidden -pthread \
		-MMD -MP -MF $@.d -c -o $@ $<

$(LIBVDI_SO): $(LIB_OBJS) $(ROOT)/userlib/libvdi.map
	$(CC) -shared -Wl,-soname,libvdi.so.1 -Wl,-z,defs \
		-Wl,--version-script=$(ROOT)/userlib/libvdi.map \
		-o $@ $(LIB_OBJS) -lkmod -pthread
	ln -sf libvdi.so.1 $(B)/libvdi.so

# Only the SDK's symbols (sqlvdi.map); libvdi's C users never see C++.
$(LIBSQLVDI_SO): $(ROOT)/userlib/sqlvdi/sqlvdi.cc $(ROOT)/userlib/sqlvdi/sqlvdi.map \
		$(ROOT)/include/sqlvdi/vdi.h $(LIBVDI_SO)
	$(CXX) -O2 -g -Wall -Wextra -Werror -fPIC -I$(ROOT)/include -shared \
		-Wl,-soname,libsqlvdi.so -Wl,-z,defs \
		-Wl,--version-script=$(ROOT)/userlib/sqlvdi/sqlvdi.map \
		-o $@ $< -L$(B) -l:libvdi.so.1

$(LIBVDI): $(LIB_OBJS)
	rm -f $@; $(AR) rcs $@ $^

$(LIBVDI_PC): $(ROOT)/userlib/libvdi.pc.in
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@

-include $(wildcard $(B)/userlib/*.d)

# ---------------------------------------------------------------- selftests
selftests: $(SELFTEST_BINS) $(LIBTEST_BINS)

$(B)/selftests/libvdi-%: $(ROOT)/selftests/libvdi/%.c $(LIBVDI_SO) $(B)/ksrc/.stamp
	@mkdir -p $(@D); rm -f $@
	$(CC) $(LIBTEST_FLAGS) -MMD -MP -MF $@.d -o $@ $< $(LIBTEST_LIBS)

$(B)/selftests/libvdi-%: $(ROOT)/selftests/libvdi/%.cc $(LIBVDI_SO) $(B)/ksrc/.stamp
	@mkdir -p $(@D); rm -f $@
	$(CXX) -std=c++11 $(LIBTEST_FLAGS) -I$(ROOT)/include/sqlvdi -MMD -MP \
		-MF $@.d -o $@ $< $(LIBTEST_LIBS)

# The kernel tests (KSFT_MAKE above).  rm first: a failed compile must not
# leave the previous program behind.
$(SELFTEST_BINS): $(B)/ksrc/.stamp FORCE
	@mkdir -p $(@D)
	+@$(KSFT_MAKE) -q $@ 2>/dev/null || { rm -f $@; $(KSFT_MAKE) $@; }

-include $(wildcard $(B)/selftests/libvdi-*.d)

# ---------------------------------------------------------------- VMs
# Rebuilt every time (about a second): it also carries TEST_TIMEOUT.
# ONLY_BUILT_TESTS=1 (make check): take the test programs that exist, do not
# insist on building them all.
ALL_TEST_BINS   = $(SELFTEST_BINS) $(LIBTEST_BINS)
INITRAMFS_TESTS = $(if $(ONLY_BUILT_TESTS),$(wildcard $(ALL_TEST_BINS)),$(ALL_TEST_BINS))
initramfs: $(INITRDS)
	$(need-kvers)

$(B)/initramfs-%.cpio.gz: $(B)/mod-%/vdi.ko $(INITRAMFS_TESTS) FORCE
	@$(S)/initramfs.sh $* $< $@ $(INITRAMFS_TESTS)

kernels: $(VMLINUZS)
	$(need-kvers)
$(KDIR)/vmlinuz-%:
	$(S)/deps.sh

# boot-<kver>: boot one kernel, log in build/vm-<kver>.log
boot-%: $(B)/initramfs-%.cpio.gz $(KDIR)/vmlinuz-%
	@$(S)/boot.sh $* $(KDIR)/vmlinuz-$* $< $(B)/vm-$*.log

vms: $(foreach k,$(KVERS),boot-$(k))
	$(need-kvers)

summary:
	@$(S)/tap-summary.sh $(KVERS)

KVER ?= $(firstword $(KVERS))
vm-shell: $(B)/initramfs-$(KVER).cpio.gz $(KDIR)/vmlinuz-$(KVER)
	VM_SHELL=1 $(S)/boot.sh $(KVER) $(KDIR)/vmlinuz-$(KVER) $< /dev/null

# More targets (demo, install, bench, check-debug) live in mk/*.mk, one file
# per topic, each reusing the variables above and the boot-% flow.  Make
# expands a rule's prerequisites as it reads the rule, so a fragment whose
# variables other fragments name in prerequisites is read first: tools.mk
# (TOOLS_ALL: demo.mk; TOOLS_BINS: install.mk).  The others name only the
# variables above or their own.
MK_FIRST := $(ROOT)/mk/tools.mk
include $(MK_FIRST)
include $(filter-out $(MK_FIRST),$(sort $(wildcard $(ROOT)/mk/*.mk)))

clean:
	rm -rf $(B)

FORCE:
