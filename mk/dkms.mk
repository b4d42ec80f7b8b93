# SPDX-License-Identifier: GPL-2.0
# mk/dkms.mk - the module, installed the DKMS way (included by the Makefile).
#
#   make dkms-src        copy the module's sources (Kbuild, kmod/, include/uapi/,
#                        dkms.conf) into $(DESTDIR)/usr/src/vdi-$(VERSION)/:
#                        what a distribution package ships, and what
#                        "dkms add -m vdi -v $(VERSION)" expects
#   make dkms-install    (root, DESTDIR empty) dkms-src, then dkms add, build and
#                        install for the running kernel (KVER=<kver> for another
#                        one): vdi.ko lands in /lib/modules/<kver>/updates/dkms/,
#                        and DKMS rebuilds it for every kernel installed later
#                        (AUTOINSTALL).  Nothing is loaded: "modprobe vdi", the
#                        modules-load.d entry of "make install" at boot, or
#                        libvdi's first call (libkmod) does that
#   make dkms-uninstall  dkms remove --all, then delete /usr/src/vdi-$(VERSION)
#   make dkms-check      build with DKMS for every kernel in KVERS, check the
#                        result, remove it again (scripts/dkms-check.sh; TAP in
#                        build/dkms.tap)
#
# dkms.conf's PACKAGE_VERSION must equal $(VERSION); dkms-src checks it.

DKMS        ?= dkms
DKMS_NAME   := vdi
DKMS_SRCDIR  = $(DESTDIR)/usr/src/$(DKMS_NAME)-$(VERSION)
# exactly the module: what Kbuild and kmod/*.c include, nothing of userlib/
DKMS_FILES  := Kbuild dkms.conf \
	$(patsubst $(ROOT)/%,%,$(sort $(wildcard $(ROOT)/kmod/*.c $(ROOT)/kmod/*.h))) \
	$(patsubst $(ROOT)/%,%,$(sort $(shell cd $(ROOT) && find include/uapi -type f -name '*.h' 2>/dev/null)))
DKMS_KVER   ?= $(if $(KVER_SET),$(KVER),$(shell uname -r))
# KVER has a default in the Makefile (the first of KVERS, for vm-shell);
# dkms-install wants the running kernel unless KVER is given explicitly
KVER_SET     = $(filter command line environment,$(origin KVER))

.PHONY: dkms-src dkms-install dkms-uninstall dkms-check dkms-version-check

dkms-version-check:
	@v=$$(sed -n 's/^PACKAGE_VERSION="\{0,1\}\([^"]*\)"\{0,1\}$$/\1/p' $(ROOT)/dkms.conf); \
	[ "$$v" = "$(VERSION)" ] || { echo "dkms.conf: PACKAGE_VERSION=$$v but the Makefile's VERSION is $(VERSION)" >&2; exit 1; }

# The directory belongs to this package: stale files (a source deleted from
# kmod/) must not survive an update, hence rm -rf first.
dkms-src: dkms-version-check
	rm -rf $(DKMS_SRCDIR)
	cd $(ROOT) && for f in $(DKMS_FILES); do \
		install -D -m 0644 "$$f" "$(DKMS_SRCDIR)/$$f" || exit 1; \
	done

dkms-install:
	@test -z "$(DESTDIR)" || { echo "dkms-install installs into this machine: DESTDIR must be empty (use dkms-src)" >&2; exit 1; }
	@command -v $(DKMS) >/dev/null || { echo "no dkms: apt-get install dkms" >&2; exit 1; }
	$(MAKE) --no-print-directory dkms-src DESTDIR=
	@# re-running replaces the previous build of this version
	$(DKMS) remove -m $(DKMS_NAME) -v $(VERSION) --all >/dev/null 2>&1 || true
	$(DKMS) add -m $(DKMS_NAME) -v $(VERSION)
	$(DKMS) build -m $(DKMS_NAME) -v $(VERSION) -k $(DKMS_KVER)
	$(DKMS) install -m $(DKMS_NAME) -v $(VERSION) -k $(DKMS_KVER)

dkms-uninstall:
	@test -z "$(DESTDIR)" || { echo "dkms-uninstall works on this machine: DESTDIR must be empty" >&2; exit 1; }
	if command -v $(DKMS) >/dev/null && [ -n "$$($(DKMS) status -m $(DKMS_NAME) -v $(VERSION) 2>/dev/null)" ]; then \
		$(DKMS) remove -m $(DKMS_NAME) -v $(VERSION) --all; fi
	rm -rf /usr/src/$(DKMS_NAME)-$(VERSION)

dkms-check:
	$(need-kvers)
	@$(S)/dkms-check.sh $(KVERS)
