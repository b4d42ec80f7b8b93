# SPDX-License-Identifier: GPL-2.0
# mk/kselftest.mk - selftests/ as the kselftest target "vdi" in a kernel tree.
#
#   make kselftest-check   copy selftests/ into a scratch copy of the
#                          extracted linux-source-6.1 tree (build/ksrc) at
#                          tools/testing/selftests/vdi, and there build it
#                          (make -C tools/testing/selftests TARGETS=vdi) and
#                          install it (kselftest_install); the tests are not
#                          run on this machine (scripts/kselftest-check.sh;
#                          TAP in build/kselftest.tap, make check)
#
# The kernel tests' build in this repository and their run in the VMs are
# in the Makefile (KSFT_MAKE) and scripts/initramfs.sh, scripts/vm-init.sh.

.PHONY: kselftest-check

kselftest-check: $(B)/ksrc/.stamp
	@$(S)/kselftest-check.sh
