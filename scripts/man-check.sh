#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# man-check.sh - check the man pages in man/ (make man-check):
#   - every page formats without a single warning, both with
#     "groff -t -man -ww" (all of troff's warnings) and with
#     "man --warnings=all -l" at 80 columns (as users read them);
#   - a link page (".so manN/x.N") points to a page that exists, and that
#     page's NAME line lists the link's name (for whatis/apropos);
#   - every function include/libvdi.h declares, and every one build/libvdi.so.1
#     exports (if built), has its man3 page;
#   - every vdi/libvdi page named in a cross reference exists.
# TAP on stdout and in $B/man.tap; exit status 0 if all passed.  Installs
# groff-base and man-db with apt-get when missing (root).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$ROOT/build}
MAN=$ROOT/man
mkdir -p "$B"
export LC_ALL=C.UTF-8 MANWIDTH=80 MAN_KEEP_STDERR=1

if ! command -v groff >/dev/null || ! command -v man >/dev/null; then
	[ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends groff-base man-db >/dev/null 2>&1
	command -v groff >/dev/null && command -v man >/dev/null ||
		{ echo "man-check: needs groff and man (apt-get install groff-base man-db)" >&2; exit 1; }
fi

N=0 FAILED=0 OUT=()
tap() { OUT+=("$1"); echo "$1"; }
ok() { N=$((N + 1)); tap "ok $N $1${2:+ # $2}"; }
nok() { N=$((N + 1)); FAILED=$((FAILED + 1)); tap "not ok $N $1${2:+ # $2}"; }
diag() { while IFS= read -r l; do tap "# $l"; done <<<"$1"; }

cd "$MAN" || exit 1
mapfile -t PAGES < <(find man[1-8] -type f -name '*.[1-8]' 2>/dev/null | sort)
[ ${#PAGES[@]} -gt 0 ] || { nok man.pages "no pages in $MAN"; PAGES=(); }

name_line() {	# the text of a page's NAME section (up to the next .SH)
	awk '/^\.SH +"?NAME"?/ { on = 1; next } /^\.SH/ { on = 0 } on' "$1"
}

# ---- each page formats cleanly; links resolve
for p in "${PAGES[@]}"; do
	if grep -q '^\.so ' "$p"; then
		t=$(sed -n 's/^\.so  *//p' "$p" | head -n1)
		lines=$(grep -cv '^\.\\"' "$p")
		self=$(basename "$p"); self=${self%.*}
		if [ ! -f "$t" ]; then nok "man.$p" "links to missing $t"
		elif [ "$lines" != 1 ]; then nok "man.$p" "a link page must hold only the .so line"
		elif ! name_line "$t" | grep -qw -- "$self"; then nok "man.$p" "NAME of $t does not list $self"
		else ok "man.$p" "-> $t"
		fi
		continue
	fi
	w=$( { groff -Tutf8 -t -man -ww -z -rLL=80n -I. "$p"; man --warnings=all -E UTF-8 -l "$p" >/dev/null; } 2>&1 )
	th=$(sed -n 's/^\.TH  *\([^ ]*\) \([^ ]*\) .*/\1.\2/p' "$p")
	base=$(basename "$p")
	if [ -n "$w" ]; then nok "man.$p" "warnings"; diag "$w"
	elif [ "$th" != "$base" ]; then nok "man.$p" ".TH says $th"
	elif ! name_line "$p" | grep -q '\\-'; then nok "man.$p" "no NAME line \"name \\- description\""
	else ok "man.$p"
	fi
done

# ---- every function has a page
mapfile -t DECL < <(sed -n 's/^[A-Za-z_][A-Za-z0-9_ ]*[ *]\(vdi_[a-z0-9_]*\)(.*/\1/p' "$ROOT/include/libvdi.h" | sort -u)
EXP=()
[ -f "$B/libvdi.so.1" ] && mapfile -t EXP < <(nm -D --defined-only "$B/libvdi.so.1" 2>/dev/null |
	awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' | sort -u)
missing=
for f in $(printf '%s\n' "${DECL[@]}" "${EXP[@]}" | sort -u); do
	[ -f "man3/$f.3" ] || missing+=" $f"
done
if [ ${#DECL[@]} = 0 ]; then nok man.functions "no function found in include/libvdi.h"
elif [ -n "$missing" ]; then nok man.functions "no man3 page for:$missing"
else ok man.functions "${#DECL[@]} declared${EXP[*]:+, ${#EXP[@]} exported}, each has a page"
fi

# ---- cross references to our own pages resolve
bad=
for p in "${PAGES[@]}"; do
	while read -r ref sec; do
		[ -f "man$sec/$ref.$sec" ] || bad+=" $p:$ref($sec)"
	done < <(sed -n 's/^\.BR  *\(\(lib\)\{0,1\}vdi[a-z0-9_\\-]*\)  *(\([1-8]\)).*/\1 \3/p' "$p" | sed 's/\\-/-/g')
done
if [ -z "$bad" ]; then ok man.xref; else nok man.xref "dangling:$bad"; fi

{ echo "1..$N"; printf '%s\n' "${OUT[@]}"; } > "$B/man.tap"
echo "1..$N"
echo "man-check: $((N - FAILED)) passed, $FAILED failed"
[ "$FAILED" = 0 ]
