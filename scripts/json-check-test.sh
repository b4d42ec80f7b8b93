#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# json-check-test.sh CHECKER - hold vdi-json-check (selftests/tools/
# json_check.c, the VM tests' JSON parser: busybox has none) against
# python3's json module on the host: the same verdict, valid or not, on
# every document below, and the same value at a path.  TAP on stdout; exit
# status 0 if all passed.  Run by make tools-unit-check.
set -uo pipefail

CHECK=${1:?usage: $0 path/to/vdi-json-check}
command -v python3 >/dev/null || { echo "1..0 # SKIP no python3"; exit 0; }

N=0 FAILED=0
ok() { N=$((N + 1)); echo "ok $N $1"; }
nok() { N=$((N + 1)); FAILED=$((FAILED + 1)); echo "not ok $N $1${2:+ # $2}"; }

# python's verdict, as strict as RFC 8259 and the checker: bytes must be
# UTF-8 (no encoded surrogates), no NaN/Infinity, no key twice
py_valid() {
	python3 -c '
import json, sys
def pairs(p):
    keys = [k for k, _ in p]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(p)
def const(c):
    raise ValueError(c)
try:
    json.loads(sys.stdin.buffer.read().decode("utf-8", "strict"),
               object_pairs_hook=pairs, parse_constant=const)
except Exception:
    sys.exit(1)
'
}

# documents as printf formats (so bytes can be written as \xNN)
DOCS=(
	'{}' '[]' '0' '-0' '1.5e-3' '"x"' 'true' 'null' ' [ 1 , 2 ] '
	'{"a":{"b":[1,{"c":"d"}]}}' '"\\u00e9\\ud83d\\ude00"' '"\\"\\\\\\/\\b\\f\\n\\r\\t"'
	'"\xc3\xa9"' '"\xf0\x9f\x98\x80"' '"\xe2\x82\xac"'
	''  ' ' '{' '[1,]' '{"a":1,}' '{"a" 1}' '{a:1}' "{'a':1}" '01' '1.' '.5'
	'-' '1e' '+1' 'NaN' 'Infinity' 'tru' 'nul' '"\x01"' '"abc' '"\\x41"'
	'"\\u12"' '[1 2]' '{"a":1}{"b":2}' '{"a":1,"a":2}' '"\xff"' '"\xc3"'
	'"\xc0\xaf"' '"\xed\xa0\x80"' '"\xf4\x90\x80\x80"' '[[[[]]]]' '1 2'
)
for d in "${DOCS[@]}"; do
	# shellcheck disable=SC2059 # the documents are formats, for \xNN
	printf -- "$d" | py_valid; want=$?
	# shellcheck disable=SC2059
	printf -- "$d" | "$CHECK" 2>/dev/null; got=$?
	if [ "$want" = "$got" ]; then ok "same verdict ($want) on '$d'"
	else nok "verdicts differ on '$d'" "python3 $want, vdi-json-check $got"
	fi
done

# values at a path: strings decoded, the rest as JSON text, --len
doc='{"sets":[{"name":"a\"b\u00e9","n":12,"x":[1,2,3]},{"name":"c"}]}'
for case in 'sets.0.name|a"bé' 'sets.0.n|12' 'sets.1.name|c' 'sets.0.x|[1,2,3]'; do
	p=${case%%|*} want=${case#*|}
	got=$(printf '%s' "$doc" | "$CHECK" --get "$p")
	if [ "$got" = "$want" ]; then ok "--get $p"
	else nok "--get $p" "'$got', expected '$want'"
	fi
done
got=$(printf '%s' "$doc" | "$CHECK" --len sets)
[ "$got" = 2 ] && ok "--len sets" || nok "--len sets" "'$got'"
printf '%s' "$doc" | "$CHECK" --get sets.2 2>/dev/null &&
	nok "--get of a missing path fails" || ok "--get of a missing path fails"
got=$(printf '{"a":1}\n\n{"a":2}\n' | "$CHECK" --lines --get a | tr '\n' ' ')
[ "$got" = "1 2 " ] && ok "--lines" || nok "--lines" "'$got'"
printf '{"a":1}\n{"a":\n' | "$CHECK" --lines 2>/dev/null &&
	nok "--lines: a bad line fails" || ok "--lines: a bad line fails"

echo "1..$N"
[ "$FAILED" = 0 ]
