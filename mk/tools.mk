# SPDX-License-Identifier: GPL-2.0
# mk/tools.mk - the VDI tools: vdi-engine (server role), vdi-client (client
# role), vdictl (the administrator's: sets, figures, abort, load) and
# vdi-gen (test data), linked with libvdi.so.1 as a user would; and their
# tests, which the VMs run with the selftests.
#
#   make tools        build/tools/{vdi-engine,vdi-client,vdi-sqlcmd,vdictl,vdi-gen}
#   make tools-tests  build/selftests/tools-* (selftests/tools/*.sh, and the
#                     T-SQL parser's unit test tools-tsql_parse)
#   make tools-unit-check   run that unit test on the host, and hold
#                     vdi-json-check against python3's json
#
# The tools go into the initramfs' /bin (EXTRA_BINS, scripts/initramfs.sh
# copies libvdi.so.1 and the other shared libraries they need), the tests
# into /tests with the selftests.

# TOOLS_BINS are the programs "make install" installs (mk/install.mk);
# vdi-gen only makes test data for the demo and the tests.  vdi-sqlcmd is
# the sqlcmd-compatible front end of "vdi-engine sql" (install.mk also
# links it as sqlcmd in a directory of its own, off PATH).
TOOLS        := vdi-engine vdi-client vdi-sqlcmd vdictl
TOOLS_BINS   := $(foreach t,$(TOOLS),$(B)/tools/$(t))
TOOLS_GEN    := $(B)/tools/vdi-gen
TOOLS_ALL    := $(TOOLS_BINS) $(TOOLS_GEN)
TOOLS_CFLAGS ?= -O2 -g -Wall -Wextra -Wshadow -Wformat=2 \
	-Werror=implicit-function-declaration
TOOLS_COMMON := $(B)/tools/common.o
# vdi-engine is cut by concern into tools/engine-*.c (tools/engine.h lists
# them); a new engine-*.c file is part of it without a change here.
ENGINE_OBJS  := $(patsubst $(ROOT)/tools/%.c,$(B)/tools/%.o,\
	$(sort $(wildcard $(ROOT)/tools/engine-*.c)))
# vdictl likewise: tools/vdictl-*.c (tools/vdictl.h lists them)
VDICTL_OBJS  := $(patsubst $(ROOT)/tools/%.c,$(B)/tools/%.o,\
	$(sort $(wildcard $(ROOT)/tools/vdictl-*.c)))
# The module's figures in words (tools/stats-report.c): the engine and the
# client print them; other tools that show figures link it too.
TOOLS_STATS  := $(B)/tools/stats-report.o
TOOLS_OBJS   := $(TOOLS_COMMON) $(ENGINE_OBJS) $(VDICTL_OBJS) $(TOOLS_STATS) \
	$(patsubst %,%.o,$(filter-out $(B)/tools/vdi-engine $(B)/tools/vdictl,$(TOOLS_ALL))) \
	$(B)/tools/client-tape.o
.SECONDARY: $(TOOLS_OBJS)

.PHONY: tools tools-tests
all: tools
tools: $(TOOLS_ALL)

$(B)/tools/%.o: $(ROOT)/tools/%.c $(ROOT)/include/libvdi.h
	@mkdir -p $(@D)
	$(CC) $(LIB_CPPFLAGS) $(TOOLS_CFLAGS) -pthread -MMD -MP -MF $@.d -c -o $@ $<

# rm first: a failed link must not leave the previous program behind
$(B)/tools/vdi-engine: $(ENGINE_OBJS) $(TOOLS_COMMON) $(TOOLS_STATS) $(LIBVDI_SO)
	@rm -f $@
	$(CC) -o $@ $(ENGINE_OBJS) $(TOOLS_COMMON) $(TOOLS_STATS) -L$(B) -l:libvdi.so.1 -pthread

# vdictl loads the module itself ("vdictl load") through libkmod, as
# libvdi does when a program finds /dev/vdi missing
$(B)/tools/vdictl: $(VDICTL_OBJS) $(TOOLS_COMMON) $(TOOLS_STATS) $(LIBVDI_SO)
	@rm -f $@
	$(CC) -o $@ $(VDICTL_OBJS) $(TOOLS_COMMON) $(TOOLS_STATS) -L$(B) -l:libvdi.so.1 -lkmod -lm -pthread

# vdi-sqlcmd only runs vdi-engine: no libvdi, no common.o
$(B)/tools/vdi-sqlcmd: $(B)/tools/vdi-sqlcmd.o
	@rm -f $@
	$(CC) -o $@ $<

$(B)/tools/%: $(B)/tools/%.o $(TOOLS_COMMON) $(LIBVDI_SO)
	@rm -f $@
	$(CC) -o $@ $< $(TOOLS_COMMON) -L$(B) -l:libvdi.so.1 -pthread

# vdi-client --tape keeps its medium with client-tape.c
$(B)/tools/vdi-client: $(B)/tools/vdi-client.o $(B)/tools/client-tape.o $(TOOLS_COMMON) $(TOOLS_STATS) $(LIBVDI_SO)
	@rm -f $@
	$(CC) -o $@ $(filter %.o,$^) -L$(B) -l:libvdi.so.1 -pthread

-include $(wildcard $(B)/tools/*.d)

# The tests: each selftests/tools/<name>_test.sh, after lib.sh, is one test
# program (busybox sh, TAP): build/selftests/tools-<name>.  It needs the
# tools, so it is "built" only once they are: if they do not compile, make
# check reports it as a test program that does not compile.
TOOLTEST_SRCS := $(wildcard $(ROOT)/selftests/tools/*_test.sh)
TOOLTEST_BINS := $(sort $(foreach f,$(TOOLTEST_SRCS),$(B)/selftests/tools-$(patsubst %_test.sh,%,$(notdir $(f)))))

tools-tests: $(TOOLTEST_BINS)
selftests: tools-tests

$(B)/selftests/tools-%: $(ROOT)/selftests/tools/%_test.sh $(ROOT)/selftests/tools/lib.sh $(TOOLS_ALL)
	@mkdir -p $(@D); rm -f $@
	cat $(ROOT)/selftests/tools/lib.sh $< > $@.tmp && chmod 755 $@.tmp && mv $@.tmp $@

ALL_TEST_BINS += $(TOOLTEST_BINS)

# vdi-client's tape medium on its own (no VDI): build/selftests/tools-tape_unit
TOOLS_TAPE_UNIT := $(B)/selftests/tools-tape_unit
$(TOOLS_TAPE_UNIT): $(ROOT)/selftests/tools/tape_unit.c $(B)/tools/client-tape.o $(TOOLS_COMMON) $(LIBVDI_SO)
	@mkdir -p $(@D); rm -f $@
	$(CC) $(LIB_CPPFLAGS) $(TOOLS_CFLAGS) -I$(ROOT)/tools -o $@ $< \
		$(B)/tools/client-tape.o $(TOOLS_COMMON) -L$(B) -l:libvdi.so.1 -pthread
tools-tests: $(TOOLS_TAPE_UNIT)
ALL_TEST_BINS += $(TOOLS_TAPE_UNIT)

# vdi-json-check: the tests' JSON parser (busybox has none), for vdictl
# --json; static, into the VM's /bin, not a test program itself
JSON_CHECK := $(B)/selftests/bin/vdi-json-check
$(JSON_CHECK): $(ROOT)/selftests/tools/json_check.c
	@mkdir -p $(@D); rm -f $@
	$(CC) $(TOOLS_CFLAGS) -static -o $@ $<
tools-tests: $(JSON_CHECK)

# vdi-set-hold: holds a set open as a secondary client, so that vdictl's
# test can look at it after its client and engine have ended
SET_HOLD := $(B)/selftests/bin/vdi-set-hold
$(SET_HOLD): $(ROOT)/selftests/tools/set_hold.c $(ROOT)/include/libvdi.h $(LIBVDI_SO)
	@mkdir -p $(@D); rm -f $@
	$(CC) $(LIB_CPPFLAGS) $(TOOLS_CFLAGS) -o $@ $< -L$(B) -l:libvdi.so.1
tools-tests: $(SET_HOLD)

# The figures' report and ticker on their own (made-up snapshots, no VDI):
# build/selftests/tools-stats_report_unit
TOOLS_STATS_UNIT := $(B)/selftests/tools-stats_report_unit
$(TOOLS_STATS_UNIT): $(ROOT)/selftests/tools/stats_report_unit.c $(TOOLS_STATS) $(LIBVDI_SO)
	@mkdir -p $(@D); rm -f $@
	$(CC) $(LIB_CPPFLAGS) $(TOOLS_CFLAGS) -I$(ROOT)/tools -o $@ $< \
		$(TOOLS_STATS) -L$(B) -l:libvdi.so.1 -pthread
tools-tests: $(TOOLS_STATS_UNIT)
ALL_TEST_BINS += $(TOOLS_STATS_UNIT)

# Into the initramfs' /bin: the tools (those that exist, under
# ONLY_BUILT_TESTS as for the tests), the tests' helpers and the demo
# script (mk/demo.mk).
TOOLS_VM_BINS := $(TOOLS_ALL) $(JSON_CHECK) $(SET_HOLD)
EXTRA_BINS += $(if $(ONLY_BUILT_TESTS),$(wildcard $(TOOLS_VM_BINS)),$(TOOLS_VM_BINS)) \
	$(ROOT)/scripts/demo.sh
export EXTRA_BINS
$(B)/initramfs-%.cpio.gz: $(if $(ONLY_BUILT_TESTS),,$(TOOLS_VM_BINS))

# The T-SQL parser's unit test (selftests/tools/tsql_parse_test.c, linked
# with tools/engine-tsql.c): static, so the same program runs on the host
# (make tools-unit-check) and in the VMs with the other tests.
TSQL_UNIT := $(B)/selftests/tools-tsql_parse
$(TSQL_UNIT): $(ROOT)/selftests/tools/tsql_parse_test.c \
		$(ROOT)/tools/engine-tsql.c $(ROOT)/tools/engine-tsql.h
	@mkdir -p $(@D); rm -f $@
	$(CC) $(TOOLS_CFLAGS) -D_GNU_SOURCE -static -I$(ROOT)/tools -o $@ \
		$(ROOT)/selftests/tools/tsql_parse_test.c $(ROOT)/tools/engine-tsql.c

tools-tests: $(TSQL_UNIT)
ALL_TEST_BINS += $(TSQL_UNIT)

.PHONY: tools-unit-check
tools-unit-check: $(TSQL_UNIT) $(JSON_CHECK)
	$(TSQL_UNIT)
	$(S)/json-check-test.sh $(JSON_CHECK)
