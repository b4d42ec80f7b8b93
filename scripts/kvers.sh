#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# kvers.sh - print the kernel versions the rig tests against, one per line:
#   1. Debian's default 6.1 kernel: the one linux-headers-amd64 depends on;
#   2. the newest installed 6.12 headers, linux-headers-6.12.N+deb12-amd64.
# Only reads the dpkg database (cheap; the Makefile calls it on every run).
# Prints nothing for a kernel whose headers are not installed (run
# scripts/deps.sh first).
set -uo pipefail

k61=$(dpkg-query -W -f='${Depends}' linux-headers-amd64 2>/dev/null |
	tr ',' '\n' | sed -n 's/^ *linux-headers-\(6\.1\.[^ ]*-amd64\).*/\1/p' | head -n1)
[ -n "$k61" ] && [ -f "/usr/src/linux-headers-$k61/Makefile" ] && echo "$k61"

k612=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' 'linux-headers-6.12.*+deb12-amd64' 2>/dev/null |
	sed -n 's/^ii *linux-headers-\(6\.12\.[0-9]*+deb12-amd64\)$/\1/p' | sort -V | tail -n1)
[ -n "$k612" ] && [ -f "/usr/src/linux-headers-$k612/Makefile" ] && echo "$k612"
exit 0
