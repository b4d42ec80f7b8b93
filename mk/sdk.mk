# SPDX-License-Identifier: GPL-2.0
# mk/sdk.mk - SQL Server on Linux's VDI SDK, binary drop-in: the SDK-style
# client of the drop-in test, and the host checks of the SDK headers and of
# libsqlvdi.so (built with the library, see the Makefile's libvdi section).
#
#   make sdk-client   build/sdk/vdi-sdk-client: built against
#                     selftests/sdk/sdk_abi.h (the SDK's layout and signatures,
#                     no code), linked with -lsqlvdi only; the VM's /bin gets
#                     it, selftests/tools/sdk_binary_test.sh runs it
#   make sdk-check    scripts/sdk-check.sh: libsqlvdi.so's exported symbols
#                     against the list the SDK's signatures imply, and one
#                     compile test per source-compatibility rule, each with a
#                     negative control; TAP in build/sdk.tap (make check)

SDK_CLIENT := $(B)/sdk/vdi-sdk-client

.PHONY: sdk-client sdk-check
sdk-client: $(SDK_CLIENT)
selftests: $(SDK_CLIENT)

# -rpath-link: libsqlvdi.so's own libvdi.so.1 is in build/, not installed
$(SDK_CLIENT): $(ROOT)/selftests/sdk/sdk_client.cc $(ROOT)/selftests/sdk/sdk_abi.h \
		$(LIBSQLVDI_SO)
	@mkdir -p $(@D); rm -f $@
	$(CXX) -std=c++11 -O2 -g -Wall -Wextra -Werror -I$(ROOT)/selftests/sdk \
		-o $@ $< -L$(B) -Wl,-rpath-link,$(B) -lsqlvdi

# the drop-in test needs the client in the VM's /bin
$(B)/selftests/tools-sdk_binary: $(SDK_CLIENT)
EXTRA_BINS += $(if $(ONLY_BUILT_TESTS),$(wildcard $(SDK_CLIENT)),$(SDK_CLIENT))
$(B)/initramfs-%.cpio.gz: $(if $(ONLY_BUILT_TESTS),,$(SDK_CLIENT))

# build/ksrc: sdk.compile.sdk_test compiles lib_sdk_test.cc, which includes
# the kernel's kselftest_harness.h
sdk-check: $(LIBSQLVDI_SO) $(SDK_CLIENT) $(B)/ksrc/.stamp
	@$(S)/sdk-check.sh
