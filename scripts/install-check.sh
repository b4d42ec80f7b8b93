#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# install-check.sh [PREFIX...] - check "make install" and "make uninstall"
# (mk/install.mk) in a temporary DESTDIR, for each PREFIX (default: /usr/local
# and /usr).  Per PREFIX:
#   - make install DESTDIR=tmp PREFIX=P, then every expected file must be
#     there, of the right kind (file / symlink to the right target), and
#     nothing unexpected;
#   - libvdi.pc says prefix=P; a C program builds with
#     "pkg-config --cflags --libs libvdi" against the staged tree and runs
#     (soname link), one links libvdi.a, a C++ one builds with the SDK's
#     <vdi.h> from include/sqlvdi; an SDK-style client (selftests/sdk,
#     the SDK's layout and signatures) links -lsqlvdi only and loads with
#     every symbol bound (libsqlvdi.so, then libvdi.so.1, from the stage);
#   - every function libvdi.so.1 exports has its man3 page;
#   - make uninstall DESTDIR=tmp PREFIX=P leaves no file and no link.
# TAP on stdout and in $B/install.tap; exit status 0 if all passed.  Needs
# build/libvdi.so.1 (make lib); never touches the real system.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$ROOT/build}
TAP=$B/install.tap
[ $# -gt 0 ] && PREFIXES=("$@") || PREFIXES=(/usr/local /usr)
MAKE=${MAKE:-make}
UDEVRULESDIR=/usr/lib/udev/rules.d
MODULESLOADDIR=/usr/lib/modules-load.d
unset DESTDIR PREFIX BINDIR LIBDIR INCLUDEDIR PKGCONFIGDIR MANDIR

N=0 FAILED=0 OUT=()
tap() { OUT+=("$1"); echo "$1"; }
ok() { N=$((N + 1)); tap "ok $N $1${2:+ # $2}"; }
nok() { N=$((N + 1)); FAILED=$((FAILED + 1)); tap "not ok $N $1${2:+ # $2}"; }
diag() { while IFS= read -r l; do tap "# $l"; done <<<"$1"; }

SO=$B/libvdi.so.1
if [ ! -f "$SO" ]; then
	$MAKE --no-print-directory -C "$ROOT" lib >/dev/null || { nok install.build "make lib failed"; }
fi
mapfile -t FUNCS < <(nm -D --defined-only "$SO" 2>/dev/null | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' | sort)
[ ${#FUNCS[@]} -gt 0 ] || nok install.functions "no exported function found in $SO"

# the tools are expected once their build fragment exists
TOOLS=()
[ -f "$ROOT/mk/tools.mk" ] && TOOLS=(vdi-engine vdi-client vdi-sqlcmd vdictl)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/vdi-install-check.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

for P in "${PREFIXES[@]}"; do
	D=$TMP/stage${P//\//_}
	t=install${P//\//.}			# install.usr.local
	log=$TMP/make${P//\//_}.log
	if ! $MAKE --no-print-directory -C "$ROOT" install DESTDIR="$D" PREFIX="$P" >"$log" 2>&1; then
		nok "$t.make" "make install DESTDIR=$D PREFIX=$P failed"
		diag "$(tail -n 20 "$log")"
		continue
	fi
	ok "$t.make"

	# ---- expected: path kind [link target]
	exp=$TMP/expected${P//\//_}
	{
		echo "$P/lib/libvdi.so.1.0.0 f"
		echo "$P/lib/libvdi.so.1 l libvdi.so.1.0.0"
		echo "$P/lib/libvdi.so l libvdi.so.1"
		echo "$P/lib/libvdi.a f"
		echo "$P/lib/libsqlvdi.so f"
		echo "$P/lib/pkgconfig/libvdi.pc f"
		echo "$P/include/libvdi.h f"
		echo "$P/include/linux/vdi.h f"
		echo "$P/include/sqlvdi/vdi.h f"
		echo "$P/include/sqlvdi/vdierror.h f"
		echo "$UDEVRULESDIR/60-vdi.rules f"
		echo "$MODULESLOADDIR/vdi.conf f"
		for x in "${TOOLS[@]}"; do echo "$P/bin/$x f"; done
		# the sqlcmd front end's name for rigs, off PATH
		[ ${#TOOLS[@]} -gt 0 ] && echo "$P/lib/vdi/sqlcmd-compat/sqlcmd l $P/bin/vdi-sqlcmd"
		echo "$P/share/man/man1/vdi-engine.1 f"
		echo "$P/share/man/man1/vdi-client.1 f"
		[ ${#TOOLS[@]} -gt 0 ] && echo "$P/share/man/man1/vdi-sqlcmd.1 f"
		[ ${#TOOLS[@]} -gt 0 ] && echo "$P/share/man/man8/vdictl.8 f"
		echo "$P/share/man/man7/vdi.7 f"
		for f in "${FUNCS[@]}"; do echo "$P/share/man/man3/$f.3 f"; done
	} | sort -u > "$exp"

	bad=
	while read -r path kind target; do
		f=$D$path
		case $kind in
		f) [ -f "$f" ] && [ ! -L "$f" ] || bad+="missing file $path"$'\n' ;;
		l) if [ ! -L "$f" ]; then bad+="missing link $path"$'\n'
		   elif [ "$(readlink "$f")" != "$target" ]; then bad+="$path -> $(readlink "$f"), not $target"$'\n'
		   fi ;;
		esac
	done < "$exp"
	# anything else installed must be one of the repository's man pages
	extra=$(cd "$D" && find . \( -type f -o -type l \) | sed 's|^\.||' | sort |
		comm -23 - <(cut -d' ' -f1 "$exp") |
		while read -r f; do
			case $f in
			"$P"/share/man/man[1-8]/*) [ -f "$ROOT/man/${f#"$P"/share/man/}" ] && continue ;;
			esac
			echo "$f"
		done)
	[ -n "$extra" ] && bad+="unexpected: $extra"$'\n'
	if [ -z "$bad" ]; then
		ok "$t.files" "$(wc -l < "$exp") files, ${#TOOLS[@]} tools"
	else
		nok "$t.files"; diag "${bad%$'\n'}"
	fi

	# ---- modes and contents
	bad=
	[ "$(stat -c %a "$D$P/lib/libvdi.so.1.0.0" 2>/dev/null)" = 755 ] || bad+="libvdi.so.1.0.0 not 0755; "
	[ "$(stat -c %a "$D$P/lib/libsqlvdi.so" 2>/dev/null)" = 755 ] || bad+="libsqlvdi.so not 0755; "
	sq=$(readelf -d "$D$P/lib/libsqlvdi.so" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
	[ "$sq" = libsqlvdi.so ] || bad+="libsqlvdi.so soname '$sq'; "
	for x in "${TOOLS[@]}"; do [ -x "$D$P/bin/$x" ] || bad+="$x not executable; "; done
	soname=$(readelf -d "$D$P/lib/libvdi.so.1.0.0" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
	[ "$soname" = libvdi.so.1 ] || bad+="soname '$soname'; "
	grep -qx "prefix=$P" "$D$P/lib/pkgconfig/libvdi.pc" 2>/dev/null || bad+="libvdi.pc: $(grep '^prefix=' "$D$P/lib/pkgconfig/libvdi.pc" 2>/dev/null); "
	grep -q 'GROUP="vdi", MODE="0660"' "$D$UDEVRULESDIR/60-vdi.rules" 2>/dev/null || bad+="60-vdi.rules: no GROUP/MODE; "
	[ "$(grep -v '^#' "$D$MODULESLOADDIR/vdi.conf" 2>/dev/null)" = vdi ] || bad+="vdi.conf does not just say vdi; "
	if [ -z "$bad" ]; then ok "$t.contents"; else nok "$t.contents" "$bad"; fi

	# ---- build against the staged tree, as a user of the package would
	cat > "$TMP/t.c" <<-'EOF'
	#include <libvdi.h>
	#include <linux/vdi.h>
	#include <stdio.h>
	#include <string.h>
	int main(void)
	{
		const char *n = vdi_code_name(VD_E_ABORT);
		printf("%s %u\n", n, (unsigned)VDI_API_MAJOR);
		return !(n && !strcmp(n, "VD_E_ABORT"));
	}
	EOF
	cat > "$TMP/t.cc" <<-'EOF'
	#include <vdi.h>
	#include <vdierror.h>
	int main() { ClientVirtualDeviceSet s; (void)s; return VD_E_ABORT == 0; }
	EOF
	pc() { PKG_CONFIG_SYSROOT_DIR=$D PKG_CONFIG_LIBDIR=$D$P/lib/pkgconfig pkg-config "$@" libvdi; }
	bl=$TMP/build.log
	if flags=$(pc --cflags --libs 2>"$bl") &&
	   gcc -Wall -Werror -o "$TMP/t" "$TMP/t.c" $flags >>"$bl" 2>&1 &&
	   LD_LIBRARY_PATH=$D$P/lib "$TMP/t" >>"$bl" 2>&1 &&
	   [ "$(LD_LIBRARY_PATH=$D$P/lib ldd "$TMP/t" | awk '/libvdi/ { print $3 }')" = "$D$P/lib/libvdi.so.1" ]; then
		ok "$t.pkg-config" "$flags"
	else
		nok "$t.pkg-config"; diag "$(cat "$bl")"
	fi
	if gcc -Wall -Werror -o "$TMP/ts" "$TMP/t.c" $(pc --cflags 2>/dev/null) "$D$P/lib/libvdi.a" \
		$(pc --static --libs-only-other --libs-only-l 2>/dev/null | sed 's/-lvdi//') >"$bl" 2>&1 &&
	   "$TMP/ts" >>"$bl" 2>&1; then
		ok "$t.static"
	else
		nok "$t.static"; diag "$(cat "$bl")"
	fi
	if command -v g++ >/dev/null; then
		if g++ -std=c++11 -Wall -Werror -o "$TMP/tcc" "$TMP/t.cc" $(pc --cflags 2>/dev/null | sed 's|\(-I[^ ]*\)|\1 \1/sqlvdi|') \
			-L"$D$P/lib" -lvdi >"$bl" 2>&1; then
			ok "$t.sqlvdi"
		else
			nok "$t.sqlvdi"; diag "$(cat "$bl")"
		fi
	fi

	# ---- a binary built for the SDK: -lsqlvdi only, every symbol bound at
	# load (LD_BIND_NOW) from the staged libraries; without arguments it
	# says how to use it (status 2)
	if command -v g++ >/dev/null; then
		if g++ -std=c++11 -Wall -Werror -o "$TMP/sdkc" -I"$ROOT/selftests/sdk" \
			"$ROOT/selftests/sdk/sdk_client.cc" -L"$D$P/lib" \
			-Wl,-rpath-link,"$D$P/lib" -lsqlvdi >"$bl" 2>&1; then
			LD_BIND_NOW=1 LD_LIBRARY_PATH=$D$P/lib "$TMP/sdkc" >>"$bl" 2>&1
			rc=$?
			libs=$(LD_LIBRARY_PATH=$D$P/lib ldd "$TMP/sdkc" | awk '/libsqlvdi|libvdi/ { print $3 }' | sort | tr '\n' ' ')
			if [ $rc = 2 ] && [ "$libs" = "$D$P/lib/libsqlvdi.so $D$P/lib/libvdi.so.1 " ]; then
				ok "$t.libsqlvdi"
			else
				nok "$t.libsqlvdi" "status $rc, libraries: $libs"; diag "$(cat "$bl")"
			fi
		else
			nok "$t.libsqlvdi" "does not link"; diag "$(cat "$bl")"
		fi
	fi

	# ---- every exported function has a man page man(1) finds
	missing=
	for f in "${FUNCS[@]}"; do
		MANPATH=$D$P/share/man man -w 3 "$f" >/dev/null 2>&1 || missing+=" $f"
	done
	if [ -z "$missing" ]; then ok "$t.man3" "${#FUNCS[@]} functions"; else nok "$t.man3" "no page:$missing"; fi

	# ---- uninstall
	if ! $MAKE --no-print-directory -C "$ROOT" uninstall DESTDIR="$D" PREFIX="$P" >"$log" 2>&1; then
		nok "$t.uninstall" "make uninstall failed"; diag "$(tail -n 20 "$log")"
		continue
	fi
	left=$(cd "$D" && find . \( -type f -o -type l \) | sed 's|^\.||')
	if [ -z "$left" ]; then ok "$t.uninstall"; else nok "$t.uninstall" "left behind"; diag "$left"; fi
done

{ echo "1..$N"; printf '%s\n' "${OUT[@]}"; } > "$TAP"
echo "1..$N"
[ "$FAILED" = 0 ]
