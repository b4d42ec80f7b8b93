# SPDX-License-Identifier: GPL-2.0
# mk/debug.mk - the module under a debug kernel (included by the Makefile).
#
#   make check-debug     build (once; cached in build/debug-kernel/) a small
#                        x86_64 kernel from Debian's linux-source-6.1 with
#                        KASAN, lockdep, kmemleak, failslab/fail_page_alloc,
#                        UBSAN, DEBUG_LIST and DEBUG_ATOMIC_SLEEP
#                        (debug/debug.config), build vdi.ko against it, boot
#                        it under qemu and run every selftest, the stress
#                        tests in their long versions; fails on any test
#                        failure and on any KASAN / lockdep / UBSAN /
#                        kmemleak / sleeping-in-atomic / WARN / oops line.
#                        Last line: "N passed, N failed" (debug VM only)
#   make tsan-tests      libvdi's threaded tests built once more with
#                        ThreadSanitizer (build/selftests/tsan-*: the test
#                        and the library's sources in one program); a
#                        report makes the program exit 66, a failure.
#                        "make check" runs them on the stock kernels; not
#                        check-debug: TSan needs madvise(), which the tiny
#                        debug kernel leaves out.
#   make debug-kernel    only build the debug kernel
#   make debug-shell     interactive debug VM, module loaded, tests in /tests
#
# Knobs: FUZZ_SEED (replay the fuzzer: the seed check-debug printed),
# DEBUG_STRESS (long | short), DEBUG_VM_TIMEOUT (s, 1800), DEBUG_TEST_TIMEOUT
# (s per test program, 600), DEBUG_VM_MEM (MiB, 1024), DEBUG_APPEND (more
# kernel command line).  Logs: build/debug/vm-<release>.log, build.tap.
#
# The short versions of the stress tests run in "make check"; the tests read
# VDI_STRESS from their environment (the kernel command line's NAME=value
# words reach /init's children as environment).

DEBUG_KDIR := $(B)/debug-kernel

.PHONY: check-debug debug-kernel debug-shell tsan-tests

debug-kernel:
	@B=$(B) $(ROOT)/debug/build-kernel.sh

check-debug:
	@$(S)/deps.sh
	@$(MAKE) --no-print-directory ksrc lib
	@$(MAKE) --no-print-directory -k -j2 selftests || true
	@B=$(B) $(ROOT)/debug/check-debug.sh $(filter-out $(TSAN_BINS),$(ALL_TEST_BINS))

debug-shell: debug-kernel
	@$(MAKE) --no-print-directory ksrc lib selftests
	@KVER=$$(cat $(DEBUG_KDIR)/release) && \
	KHDR=$(DEBUG_KDIR)/linux-source-6.1 $(S)/kbuild.sh $$KVER $(B)/debug/mod W=1 && \
	TEST_TIMEOUT=600 KSFT_TIMEOUT=600 $(S)/initramfs.sh $$KVER $(B)/debug/mod/vdi.ko \
		$(B)/debug/initramfs.cpio.gz $(filter-out $(TSAN_BINS),$(ALL_TEST_BINS)) && \
	VM_SHELL=1 VM_SMP=2 VM_APPEND="kasan_multi_shot log_buf_len=16M $(DEBUG_APPEND)" \
		$(S)/boot.sh $$KVER $(DEBUG_KDIR)/bzImage $(B)/debug/initramfs.cpio.gz /dev/null

# ---------------------------------------------------------------- tests
# selftests/fuzz/*.c: the reliability tests through libvdi, linked with the
# shared library as libvdi's own tests are (and run in make check too: the
# initramfs carries them, their libraries with them).  selftests/fuzz/*.h
# are the helpers of every reliability test (vdi_stress.h).
RELTEST_SRCS := $(wildcard $(ROOT)/selftests/fuzz/*.c)
RELTEST_BINS := $(patsubst $(ROOT)/selftests/fuzz/%.c,$(B)/selftests/fuzz-%,$(RELTEST_SRCS))
LIBTEST_BINS += $(RELTEST_BINS)
selftests: $(RELTEST_BINS)
$(INITRDS): $(RELTEST_BINS)

$(B)/selftests/fuzz-%: $(ROOT)/selftests/fuzz/%.c $(LIBVDI_SO) $(B)/ksrc/.stamp
	@mkdir -p $(@D); rm -f $@
	$(CC) $(LIBTEST_FLAGS) -I$(ROOT)/selftests/fuzz -MMD -MP -MF $@.d -o $@ $< $(LIBTEST_LIBS)

-include $(wildcard $(B)/selftests/fuzz-*.d)

# ---------------------------------------------------------------- TSan
# libvdi's threaded tests with -fsanitize=thread, the library compiled in
# (not libvdi.so.1: its code must be instrumented too).  TSan runs in the
# VM as it is (gcc's libtsan.so.2 goes into the initramfs with the
# program); its defaults exit 66 at the end of a process that had a report,
# which fails the test (the harness runs each test in its own process).
# Nothing is suppressed: the one ordering TSan cannot see (a server command
# handed from the sender's thread to the agent's through the module) is
# annotated in userlib/server.c.  The threaded tests of both roles; not
# lib_agent_test, which counts the process's threads (TSan adds one) and
# reads its routines' records without a lock once they have run.
TSAN_TESTS := lib_threads_test lib_stress_test lib_server_threads_test
TSAN_BINS  := $(patsubst %,$(B)/selftests/tsan-%,$(TSAN_TESTS))
TSAN_LIB_SRCS := $(sort $(wildcard $(ROOT)/userlib/*.c))

tsan-tests: $(TSAN_BINS)
selftests: $(TSAN_BINS)
$(INITRDS): $(TSAN_BINS)
ALL_TEST_BINS += $(TSAN_BINS)

$(B)/selftests/tsan-%: $(ROOT)/selftests/libvdi/%.c $(TSAN_LIB_SRCS) \
		$(B)/ksrc/.stamp
	@mkdir -p $(@D); rm -f $@
	$(CC) $(LIBTEST_FLAGS) -O1 -fsanitize=thread -fPIE -pie -MMD -MP \
		-MF $@.d -o $@ $< $(TSAN_LIB_SRCS) -lkmod

-include $(wildcard $(B)/selftests/tsan-*.d)
