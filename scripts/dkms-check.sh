#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# dkms-check.sh [KVER...] - build vdi.ko the way users get it, through DKMS,
# for every kernel (default: scripts/kvers.sh), and leave the machine as it
# was.  Results as TAP in $B/dkms.tap (for scripts/tap-summary.sh), progress
# on stdout, the full dkms output in $B/dkms-check.log.
#
#   ok 1 dkms.src               make dkms-src, dkms add (/usr/src/vdi-VERSION)
#   ok 2 dkms.build.KVER        dkms build -k KVER --kernelsourcedir
#                               $B/kernels/headers-KVER; vdi.ko's vermagic is KVER
#   ok 3 dkms.install.KVER      dkms install -k KVER puts it in
#                               <root>/lib/modules/KVER/updates/dkms, and
#                               modinfo -b <root> -k KVER finds it there
#   ...
#   ok N dkms.remove            dkms remove --all; nothing of ours is left
#
# The host's kernels are not involved: dkms builds against the build tree
# scripts/kernels.sh unpacked under $B/kernels (--kernelsourcedir; dkms signs
# with that tree's sign-file), and installs into a private root $B/dkms-root
# (--installtree, --no-depmod; depmod -b runs on that root), never into
# /lib/modules: the test kernels need not be installed on this machine.
# Nothing is ever loaded: dkms install only copies (it would modprobe only
# with modprobe_on_install, which this script refuses).
# Idempotent: remains of an interrupted run (marked by a file in the source
# copy) are removed first.  If vdi/VERSION is already installed on this
# machine and was not put there by this script, the system's DKMS tree is left
# alone: the check uses a private one under $B/dkms/ (dkms --dkmstree
# --sourcetree) and skips the install steps.
#
# Root only (it installs dkms if missing, writes /usr/src and /var/lib/dkms);
# as another user it re-runs itself with sudo, or skips.  Exit status 0 when
# every result passed.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$ROOT/build}
TAP=$B/dkms.tap
LOG=$B/dkms-check.log
NAME=vdi
MARK=.vdi-dkms-check		# in the source copy: "this script made it"
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

mkdir -p "$B"
say() { echo "dkms-check: $*"; }

RESULTS=() N=0 FAILED=0
result() {	# result ok|not-ok NAME [COMMENT]
	N=$((N + 1))
	local line
	if [ "$1" = ok ]; then line="ok $N $2"; else line="not ok $N $2"; FAILED=$((FAILED + 1)); fi
	[ -n "${3:-}" ] && line+=" # $3"
	RESULTS+=("$line")
	say "$line"
}
diag() { RESULTS+=("$(sed 's/^/# /' <<<"$1")"); }
LOG_MARK=0
log_tail() {	# the last lines the most recent dk (or the log) wrote
	diag "$(tail -n "+$((LOG_MARK + 1))" "$LOG" | tail -n "${1:-25}")"
}
write_tap() {
	local tmp=$TAP.tmp
	{ echo "1..$N"; printf '%s\n' "${RESULTS[@]}"; } > "$tmp" && mv -f "$tmp" "$TAP"
}
finish() { write_tap; exit $((FAILED > 0)); }
now() { date +%s%N; }
since() { local d=$(( ($(now) - $1) / 100000000 )); echo "$((d / 10)).$((d % 10)) s"; }

# ------------------------------------------------------------ root, dkms
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
		exec sudo -n B="$B" "$0" "$@"
	fi
	result ok dkms "SKIP not root and no sudo: DKMS needs root"
	finish
fi

: > "$LOG"
if ! command -v dkms >/dev/null; then
	say "installing dkms (apt-get)"
	if ! apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends dkms >>"$LOG" 2>&1; then
		apt-get update -qq >>"$LOG" 2>&1
		apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends dkms >>"$LOG" 2>&1
	fi
	if ! command -v dkms >/dev/null; then
		result not-ok dkms.src "apt-get install dkms failed"
		log_tail; finish
	fi
fi

# one run at a time: all of them share /usr/src/vdi-VERSION
exec 9>/run/lock/vdi-dkms-check.lock 2>/dev/null || exec 9>"$B/.dkms-check.lock"
flock 9

VERSION=$(sed -n 's/^PACKAGE_VERSION="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$ROOT/dkms.conf")
[ -n "$VERSION" ] || { result not-ok dkms.src "no PACKAGE_VERSION in dkms.conf"; finish; }

if [ $# -gt 0 ]; then
	KVERS=("$@")
else
	mapfile -t KVERS < <("$ROOT/scripts/kvers.sh")
	if [ ${#KVERS[@]} = 0 ]; then
		say "no kernel build trees: running scripts/deps.sh"
		"$ROOT/scripts/deps.sh" >>"$LOG" 2>&1
		mapfile -t KVERS < <("$ROOT/scripts/kvers.sh")
	fi
fi
if [ ${#KVERS[@]} = 0 ]; then
	result not-ok dkms.src "no kernel build trees in $B/kernels (scripts/deps.sh failed, see $LOG)"
	log_tail; finish
fi

# dkms's own modprobe after install: would load modules into this kernel
MODPROBE_ON_INSTALL=$(cat /etc/dkms/framework.conf /etc/dkms/framework.conf.d/*.conf 2>/dev/null |
	sed -n 's/^[[:space:]]*modprobe_on_install=\(.*\)/\1/p' | tail -n1 | tr -d '"'\'' ')

# ------------------------------------------------------------ where
SRC=/usr/src/$NAME-$VERSION
# installs go to a root of our own: depmod -b and modinfo -b look there
IROOT=$B/dkms-root
DKMS=(dkms --installtree "$IROOT/lib/modules" --no-depmod)
INSTALL_OK=1
PRIVATE=
foreign() {	# vdi/VERSION on this machine that this script did not put there
	[ -e "$SRC" ] && [ ! -e "$SRC/$MARK" ] && return 0
	[ -n "$(dkms status -m "$NAME" -v "$VERSION" 2>/dev/null)" ] && [ ! -e "$SRC/$MARK" ]
}
if foreign; then
	PRIVATE=$B/dkms
	say "$NAME/$VERSION is installed on this machine: checking in a private DKMS tree ($PRIVATE)"
	rm -rf "$PRIVATE"; mkdir -p "$PRIVATE/src" "$PRIVATE/tree"
	SRC=$PRIVATE/src/$NAME-$VERSION
	DKMS+=(--sourcetree "$PRIVATE/src" --dkmstree "$PRIVATE/tree")
	INSTALL_OK=0
fi
TREE=${PRIVATE:+$PRIVATE/tree}
TREE=${TREE:-/var/lib/dkms}

# dkms makes a signing key on its first build; if it is ours, it goes too
KEYS_BEFORE=$(ls /var/lib/dkms/mok.key /var/lib/dkms/mok.pub 2>/dev/null)

dk() {
	LOG_MARK=$(wc -l < "$LOG")
	echo "+ ${DKMS[*]} $*" >>"$LOG"
	"${DKMS[@]}" "$@" >>"$LOG" 2>&1
}
cleanup() {	# remove every trace of vdi/VERSION made here
	if [ -n "$("${DKMS[@]}" status -m "$NAME" -v "$VERSION" 2>/dev/null)" ] ||
	   [ -d "$TREE/$NAME/$VERSION" ]; then
		dk remove -m "$NAME" -v "$VERSION" --all
	fi
	rm -rf "$SRC"
	[ -d "$TREE/$NAME" ] && rmdir "$TREE/$NAME" 2>/dev/null
	[ -n "$PRIVATE" ] && rm -rf "$PRIVATE"
	rm -rf "$IROOT"
	return 0
}

START=$(now)
if [ -z "$PRIVATE" ] && [ -e "$SRC/$MARK" ]; then
	say "removing the remains of an earlier run"
	grep -qx mok "$SRC/$MARK" && KEYS_BEFORE=	# that run made the key
	cleanup
fi
trap 'say interrupted; cleanup; [ -z "$KEYS_BEFORE" ] && rm -f /var/lib/dkms/mok.key /var/lib/dkms/mok.pub;
	result not-ok dkms.remove "interrupted"; write_tap; exit 130' INT TERM HUP

# ------------------------------------------------------------ add
t0=$(now)
if make --no-print-directory -C "$ROOT" dkms-src DESTDIR="${PRIVATE:+$PRIVATE/destdir}" >>"$LOG" 2>&1 &&
   { [ -z "$PRIVATE" ] || mv "$PRIVATE/destdir/usr/src/$NAME-$VERSION" "$SRC"; } &&
   { [ -n "$KEYS_BEFORE" ] || echo mok; } > "$SRC/$MARK" && dk add -m "$NAME" -v "$VERSION"; then
	result ok dkms.src "$(since "$t0")"
	ADDED=1
else
	result not-ok dkms.src "make dkms-src or dkms add failed"
	log_tail
	ADDED=0
fi

# ------------------------------------------------------------ per kernel
for k in "${KVERS[@]}"; do
	if [ "$ADDED" != 1 ]; then
		result not-ok "dkms.build.$k" "not added"
		continue
	fi
	khdr=$B/kernels/headers-$k
	if [ ! -f "$khdr/Makefile" ]; then
		result not-ok "dkms.build.$k" "no build tree $khdr (scripts/deps.sh)"
		continue
	fi
	t0=$(now)
	say "building for $k against $khdr"
	# dkms finds no sign-file of its own for a kernel not installed here
	# (or the host's one): the tree's; a sign_file in /etc/dkms wins
	if ! sign_file=$khdr/scripts/sign-file dk build -m "$NAME" -v "$VERSION" -k "$k" \
			--kernelsourcedir "$khdr"; then
		result not-ok "dkms.build.$k" "dkms build failed"
		log_tail 10
		mk=$(ls -t "$TREE/$NAME/$VERSION/build/make.log" "$TREE/$NAME/$VERSION/$k"/*/log/make.log 2>/dev/null | head -n1)
		[ -n "$mk" ] && diag "$(tail -n 30 "$mk")"
		continue
	fi
	secs=$(since "$t0")
	ko=$(ls "$TREE/$NAME/$VERSION/$k"/*/module/"$NAME".ko* 2>/dev/null | head -n1)
	vm=$([ -n "$ko" ] && modinfo -F vermagic "$ko" 2>>"$LOG")
	if [ -z "$ko" ]; then
		result not-ok "dkms.build.$k" "no $NAME.ko* under $TREE/$NAME/$VERSION/$k"
		continue
	elif [ "${vm%% *}" != "$k" ]; then
		result not-ok "dkms.build.$k" "vermagic of ${ko##*/} is '$vm'"
		continue
	fi
	result ok "dkms.build.$k" "${ko##*/}, vermagic $k, $secs"

	# install: into $IROOT only, never loading
	name="dkms.install.$k"
	if [ "$INSTALL_OK" != 1 ]; then
		result ok "$name" "SKIP $NAME/$VERSION of this machine left alone"; continue
	elif [ -n "$MODPROBE_ON_INSTALL" ]; then
		result ok "$name" "SKIP modprobe_on_install is set in /etc/dkms: dkms install would load modules"; continue
	fi
	t0=$(now)
	lm=$IROOT/lib/modules/$k
	mkdir -p "$lm"		# dkms installs only into a kernel that exists
	# what a kernel's package ships there, for depmod to read
	touch "$lm/modules.order" "$lm/modules.builtin" "$lm/modules.builtin.modinfo"
	if ! dk install -m "$NAME" -v "$VERSION" -k "$k"; then
		result not-ok "$name" "dkms install failed"; log_tail 15
	elif ! depmod -b "$IROOT" "$k" >>"$LOG" 2>&1; then
		result not-ok "$name" "depmod -b $IROOT $k failed"; log_tail 15
	else
		where=$(modinfo -b "$IROOT" -k "$k" -n "$NAME" 2>>"$LOG")
		case $where in
		"$lm/updates/dkms/$NAME.ko"*) result ok "$name" "$where, $(since "$t0")" ;;
		*) result not-ok "$name" "modinfo -b $IROOT -k $k finds '$where', not $lm/updates/dkms/$NAME.ko*" ;;
		esac
	fi
	dk uninstall -m "$NAME" -v "$VERSION" -k "$k"
	rm -rf "${lm:?}"
done

# ------------------------------------------------------------ remove
cleanup
[ -z "$KEYS_BEFORE" ] && rm -f /var/lib/dkms/mok.key /var/lib/dkms/mok.pub
left=
[ -e "$SRC" ] && left+=" $SRC"
[ -e "$TREE/$NAME/$VERSION" ] && left+=" $TREE/$NAME/$VERSION"
[ -e "$IROOT" ] && left+=" $IROOT"
if [ -n "$left" ]; then
	result not-ok dkms.remove "left behind:$left"
else
	result ok dkms.remove "total $(since "$START")"
fi
finish
