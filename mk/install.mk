# SPDX-License-Identifier: GPL-2.0
# mk/install.mk - "make install" of the library, headers, tools, man pages and
# system glue (included by the Makefile).  The module itself goes in through
# DKMS: "make dkms-install" (mk/dkms.mk).
#
#   make install [DESTDIR=/stage] [PREFIX=/usr]   (PREFIX default /usr/local)
#   make uninstall [DESTDIR=...] [PREFIX=...]     same variables as install
#   make install-check    stage an install and an uninstall in a temporary
#                         DESTDIR and check every file (scripts/install-check.sh)
#   make man-check        every page formats without a warning, every exported
#                         function has one (scripts/man-check.sh)
#
# What goes where (PREFIX=/usr/local):
#   $(LIBDIR)        libvdi.so.1.0.0, libvdi.so.1 -> it (soname), libvdi.so ->
#                    libvdi.so.1 (for -lvdi), libvdi.a           LIBDIR=$(PREFIX)/lib
#                    libsqlvdi.so (the SDK's library, binary drop-in; its
#                    soname is its file name, as an SDK binary needs it)
#   $(PKGCONFIGDIR)  libvdi.pc, its prefix= being PREFIX (written at install
#                    time, so it always matches the PREFIX of this install)
#   $(INCLUDEDIR)    libvdi.h, linux/vdi.h (the UAPI), sqlvdi/vdi.h + vdierror.h
#   $(BINDIR)        vdi-engine, vdi-client, vdi-sqlcmd, vdictl (when
#                    mk/tools.mk defines TOOLS_BINS).  vdictl too, not sbin:
#                    users run it on their own sets (list, show, abort),
#                    and Debian's PATH for users has no sbin

#   $(SQLCMD_COMPAT_DIR)  sqlcmd -> $(BINDIR)/vdi-sqlcmd, for a test rig that
#                    calls "sqlcmd": PATH=$(SQLCMD_COMPAT_DIR):$$PATH.  Not in
#                    BINDIR, so it never hides a real sqlcmd.
#                    SQLCMD_COMPAT_DIR=$(LIBDIR)/vdi/sqlcmd-compat
#   $(MANDIR)        man1 (tools), man3 (one page per libvdi function), man7
#                    (vdi), man8 (vdictl)
# and, whatever PREFIX is, in the directories udev and systemd read (they never
# look under /usr/local):
#   $(UDEVRULESDIR)     60-vdi.rules: /dev/vdi group "vdi", mode 0660
#   $(MODULESLOADDIR)   vdi.conf: systemd-modules-load loads vdi at boot
#
# With DESTDIR empty (a real install, as root) install also creates the system
# group "vdi" if it is missing, runs ldconfig, and asks a running udev to
# reload its rules.  With DESTDIR set it only installs files (packaging).
# uninstall removes the files, never the group.

BINDIR         ?= $(PREFIX)/bin
LIBDIR         ?= $(PREFIX)/lib
INCLUDEDIR     ?= $(PREFIX)/include
PKGCONFIGDIR   ?= $(LIBDIR)/pkgconfig
MANDIR         ?= $(PREFIX)/share/man
UDEVRULESDIR   ?= /usr/lib/udev/rules.d
MODULESLOADDIR ?= /usr/lib/modules-load.d
SQLCMD_COMPAT_DIR ?= $(LIBDIR)/vdi/sqlcmd-compat
VDI_GROUP      ?= vdi

INSTALL      ?= install
LIBVDI_REAL  := libvdi.so.$(VERSION)
MAN_PAGES     = $(sort $(wildcard $(ROOT)/man/man[1-8]/*.[1-8]))
# the tools, by name, for uninstall even when mk/tools.mk is not there
TOOL_NAMES    = $(sort vdi-engine vdi-client vdi-sqlcmd vdictl $(notdir $(TOOLS_BINS)))

.PHONY: install uninstall install-check man-check

# mk/tools.mk is included after this file: the tools join install's
# prerequisites at the second expansion, once every fragment is read.
.SECONDEXPANSION:
install: $(LIBVDI_SO) $(LIBVDI) $(LIBSQLVDI_SO) $$(TOOLS_BINS)
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) \
		$(DESTDIR)$(INCLUDEDIR)/linux $(DESTDIR)$(INCLUDEDIR)/sqlvdi \
		$(DESTDIR)$(UDEVRULESDIR) $(DESTDIR)$(MODULESLOADDIR)
	@# library: real name, soname link, development link
	$(INSTALL) -m 0755 $(LIBVDI_SO) $(DESTDIR)$(LIBDIR)/$(LIBVDI_REAL)
	ln -sfn $(LIBVDI_REAL) $(DESTDIR)$(LIBDIR)/libvdi.so.1
	ln -sfn libvdi.so.1 $(DESTDIR)$(LIBDIR)/libvdi.so
	$(INSTALL) -m 0644 $(LIBVDI) $(DESTDIR)$(LIBDIR)/libvdi.a
	$(INSTALL) -m 0755 $(LIBSQLVDI_SO) $(DESTDIR)$(LIBDIR)/libsqlvdi.so
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' \
		$(if $(filter-out $(PREFIX)/lib,$(LIBDIR)),-e 's|^libdir=.*|libdir=$(LIBDIR)|') \
		$(if $(filter-out $(PREFIX)/include,$(INCLUDEDIR)),-e 's|^includedir=.*|includedir=$(INCLUDEDIR)|') \
		$(ROOT)/userlib/libvdi.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/libvdi.pc
	chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/libvdi.pc
	@# headers
	$(INSTALL) -m 0644 $(ROOT)/include/libvdi.h $(DESTDIR)$(INCLUDEDIR)/libvdi.h
	$(INSTALL) -m 0644 $(ROOT)/include/uapi/linux/vdi.h $(DESTDIR)$(INCLUDEDIR)/linux/vdi.h
	$(INSTALL) -m 0644 $(wildcard $(ROOT)/include/sqlvdi/*.h) $(DESTDIR)$(INCLUDEDIR)/sqlvdi/
	@# tools
	$(if $(strip $(TOOLS_BINS)),$(INSTALL) -d $(DESTDIR)$(BINDIR))
	$(if $(strip $(TOOLS_BINS)),$(INSTALL) -m 0755 $(TOOLS_BINS) $(DESTDIR)$(BINDIR)/)
	$(if $(filter %/vdi-sqlcmd,$(TOOLS_BINS)),$(INSTALL) -d $(DESTDIR)$(SQLCMD_COMPAT_DIR) && \
		ln -sfn $(BINDIR)/vdi-sqlcmd $(DESTDIR)$(SQLCMD_COMPAT_DIR)/sqlcmd)
	@# man pages (a page that only holds ".so" stays such a link)
	for p in $(MAN_PAGES); do \
		s=$${p##*.}; $(INSTALL) -d $(DESTDIR)$(MANDIR)/man$$s && \
		$(INSTALL) -m 0644 $$p $(DESTDIR)$(MANDIR)/man$$s/ || exit 1; \
	done
	@# system glue
	$(INSTALL) -m 0644 $(ROOT)/udev/60-vdi.rules $(DESTDIR)$(UDEVRULESDIR)/60-vdi.rules
	$(INSTALL) -m 0644 $(ROOT)/udev/modules-load.d/vdi.conf $(DESTDIR)$(MODULESLOADDIR)/vdi.conf
ifeq ($(DESTDIR),)
	getent group $(VDI_GROUP) >/dev/null || groupadd --system $(VDI_GROUP)
	-ldconfig
	-@udevadm control --reload-rules 2>/dev/null && \
		udevadm trigger --subsystem-match=misc --sysname-match=vdi 2>/dev/null || true
endif

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/$(LIBVDI_REAL) $(DESTDIR)$(LIBDIR)/libvdi.so.1 \
		$(DESTDIR)$(LIBDIR)/libvdi.so $(DESTDIR)$(LIBDIR)/libvdi.a \
		$(DESTDIR)$(LIBDIR)/libsqlvdi.so $(DESTDIR)$(PKGCONFIGDIR)/libvdi.pc
	rm -f $(DESTDIR)$(INCLUDEDIR)/libvdi.h $(DESTDIR)$(INCLUDEDIR)/linux/vdi.h \
		$(addprefix $(DESTDIR)$(INCLUDEDIR)/sqlvdi/,$(notdir $(wildcard $(ROOT)/include/sqlvdi/*.h)))
	@# the two include directories, if nothing else is in them
	-@rmdir $(DESTDIR)$(INCLUDEDIR)/sqlvdi $(DESTDIR)$(INCLUDEDIR)/linux 2>/dev/null || true
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(TOOL_NAMES))
	rm -f $(DESTDIR)$(SQLCMD_COMPAT_DIR)/sqlcmd
	-@rmdir $(DESTDIR)$(SQLCMD_COMPAT_DIR) $(DESTDIR)$(LIBDIR)/vdi 2>/dev/null || true
	for p in $(notdir $(MAN_PAGES)); do rm -f $(DESTDIR)$(MANDIR)/man$${p##*.}/$$p; done
	rm -f $(DESTDIR)$(UDEVRULESDIR)/60-vdi.rules $(DESTDIR)$(MODULESLOADDIR)/vdi.conf
ifeq ($(DESTDIR),)
	-ldconfig
	-@udevadm control --reload-rules 2>/dev/null || true
endif

install-check: $(LIBVDI_SO) $(LIBVDI) $(LIBSQLVDI_SO) $$(TOOLS_BINS)
	@$(S)/install-check.sh

man-check:
	@$(S)/man-check.sh
