#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# sdk-check.sh - host checks of the SQL Server VDI SDK compatibility
# (include/sqlvdi, libsqlvdi.so); TAP on stdout and in $B/sdk.tap, exit
# status 0 if all passed.  Needs make lib and make sdk-client.
#
#   sdk.symbols        nm -DC --defined-only libsqlvdi.so is exactly the list
#                      the SDK's published signatures imply (below), all
#                      functions, unversioned; soname libsqlvdi.so
#   sdk.needed         vdi-sdk-client (built against selftests/sdk/sdk_abi.h)
#                      needs libsqlvdi.so and not libvdi; libvdi.so.1 needs no
#                      libstdc++ (C users stay C)
#   sdk.compile.*      one compile test per source-compatibility rule of the
#                      SDK's headers (and libvdi.h with them, C++ and C).
#                      Each has a negative control (sdk.compile.*.control):
#                      the same test against a copy of the headers mutated
#                      back to the defect it guards against must fail to
#                      compile, with that defect's error, so a test that
#                      cannot fail shows up.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$ROOT/build}
TAP=$B/sdk.tap
CXX=${CXX:-g++}
CXXFLAGS="-std=c++11 -Wall -Wextra -Werror -fsyntax-only"

N=0 FAILED=0 OUT=()
tap() { OUT+=("$1"); echo "$1"; }
ok() { N=$((N + 1)); tap "ok $N $1${2:+ # $2}"; }
nok() { N=$((N + 1)); FAILED=$((FAILED + 1)); tap "not ok $N $1${2:+ # $2}"; }
diag() { while IFS= read -r l; do tap "# $l"; done <<<"$1"; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/vdi-sdk-check.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# ------------------------------------------------------------ symbols
# What the SDK's vdi.h declares, as g++ names it on x86_64 (time_t and
# int64_t are long, uint8_t unsigned char).  Constructors and destructors
# twice: the complete-object and base-object variants (C1/C2, D1/D2); no
# deleting destructor (D0): nothing is virtual.
EXPECTED='ClientVirtualDevice::ClientVirtualDevice()
ClientVirtualDevice::ClientVirtualDevice()
ClientVirtualDevice::~ClientVirtualDevice()
ClientVirtualDevice::~ClientVirtualDevice()
ClientVirtualDevice::GetCommand(long, VDC_Command**)
ClientVirtualDevice::CompleteCommand(VDC_Command*, int, unsigned long, long)
ClientVirtualDeviceSet::ClientVirtualDeviceSet()
ClientVirtualDeviceSet::ClientVirtualDeviceSet()
ClientVirtualDeviceSet::~ClientVirtualDeviceSet()
ClientVirtualDeviceSet::~ClientVirtualDeviceSet()
ClientVirtualDeviceSet::Create(char*, VDConfig*)
ClientVirtualDeviceSet::GetConfiguration(long, VDConfig*)
ClientVirtualDeviceSet::OpenDevice(char*, ClientVirtualDevice**)
ClientVirtualDeviceSet::Close()
ClientVirtualDeviceSet::SignalAbort()
ClientVirtualDeviceSet::OpenInSecondary(char*)
ClientVirtualDeviceSet::GetBufferHandle(unsigned char*, unsigned int*)
ClientVirtualDeviceSet::MapBufferHandle(int, unsigned char**)
ClientVirtualDeviceSet::RegisterDeviceClosed()'
# ... and mangled: the variants by name
EXPECTED_MANGLED='_ZN19ClientVirtualDeviceC1Ev
_ZN19ClientVirtualDeviceC2Ev
_ZN19ClientVirtualDeviceD1Ev
_ZN19ClientVirtualDeviceD2Ev
_ZN22ClientVirtualDeviceSetC1Ev
_ZN22ClientVirtualDeviceSetC2Ev
_ZN22ClientVirtualDeviceSetD1Ev
_ZN22ClientVirtualDeviceSetD2Ev'

SO=$B/libsqlvdi.so
if [ ! -f "$SO" ]; then
	nok sdk.symbols "no $SO (make lib)"
else
	got=$(nm -DC --defined-only "$SO" | awk '{ $1 = ""; $2 = ""; sub(/^  /, ""); print }' | sort)
	types=$(nm -D --defined-only "$SO" | awk '{ print $2 }' | sort -u | tr '\n' ' ')
	raw=$(nm -D --defined-only "$SO" | awk '{ print $3 }')
	soname=$(readelf -d "$SO" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
	bad=
	d=$(diff <(sort <<<"$EXPECTED") <(echo "$got")) || bad+="symbols differ (< expected, > exported):"$'\n'"$d"$'\n'
	[ "$types" = "T " ] || bad+="symbol types '$types', not only T (functions)"$'\n'
	m=$(comm -23 <(sort <<<"$EXPECTED_MANGLED") <(sort <<<"$raw"))
	[ -z "$m" ] || bad+="missing: $m"$'\n'
	grep -q @ <<<"$raw" && bad+="versioned symbols: $(grep @ <<<"$raw")"$'\n'
	[ "$soname" = libsqlvdi.so ] || bad+="soname '$soname'"$'\n'
	if [ -z "$bad" ]; then
		ok sdk.symbols "$(wc -l <<<"$got") symbols"
	else
		nok sdk.symbols; diag "${bad%$'\n'}"
	fi
fi

# ------------------------------------------------------------ needed
needed() { readelf -d "$1" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' '; }
CL=$B/sdk/vdi-sdk-client
bad=
if [ -f "$CL" ]; then
	n=$(needed "$CL")
	case " $n" in *" libsqlvdi.so "*) ;; *) bad+="vdi-sdk-client needs '$n', not libsqlvdi.so; " ;; esac
	case " $n" in *" libvdi"*) bad+="vdi-sdk-client needs libvdi itself: '$n'; " ;; esac
else
	bad+="no $CL (make sdk-client); "
fi
n=$(needed "$B/libvdi.so.1")
case " $n" in *libstdc++*) bad+="libvdi.so.1 needs '$n'; " ;; esac
if [ -z "$bad" ]; then ok sdk.needed; else nok sdk.needed "$bad"; fi

# ------------------------------------------------------------ compile tests
# $TMP/inc: include/ as "make install" lays it out, <linux/vdi.h> (which
# libvdi.h includes) next to libvdi.h
copy_include() {
	rm -rf "$TMP/inc"
	cp -r "$ROOT/include" "$TMP/inc"
	mkdir -p "$TMP/inc/linux"
	cp "$ROOT/include/uapi/linux/vdi.h" "$TMP/inc/linux/"
}

# the compiler's first complaint, to show a control failed for its reason
first_error() { grep -m1 -E 'error' "$1" | sed 's|^.*/||; s/#//g' | cut -c1-150; }

# Each test: a program (its body in $TMP/NAME.cc) built against a header
# directory; against include/ (with sqlvdi/ on the path, as the README says)
# it must compile, against the control's mutated copy it must not, and for
# the reason the test is about: the compiler's output must match EXPECT (an
# extended regex), so a mutation that breaks the headers some other way, or
# a build that fails for want of a file, does not pass for a control.
#   ctest NAME "MUTATION" "EXPECT" [CXX flags...]
# MUTATION is a shell command run in the copied include/ directory.
ctest() {
	local name=$1 mutation=$2 expect=$3 log=$TMP/$1.log
	shift 3
	copy_include
	if $CXX $CXXFLAGS -I"$TMP/inc" -I"$TMP/inc/sqlvdi" "$@" "$TMP/$name.cc" >"$log" 2>&1; then
		ok "sdk.compile.$name"
	else
		nok "sdk.compile.$name"; diag "$(head -n 20 "$log")"
	fi
	if (cd "$TMP/inc" && eval "$mutation") >"$log" 2>&1 &&
	   ! $CXX $CXXFLAGS -I"$TMP/inc" -I"$TMP/inc/sqlvdi" "$@" "$TMP/$name.cc" >>"$log" 2>&1 &&
	   grep -qE "$expect" "$log"; then
		ok "sdk.compile.$name.control" "$(first_error "$log")"
	elif grep -q error "$log"; then
		nok "sdk.compile.$name.control" "fails, but not with /$expect/"
		diag "$(head -n 20 "$log")"
	else
		nok "sdk.compile.$name.control" "compiles against the mutated headers: the test cannot fail"
		diag "$(head -n 20 "$log")"
	fi
}

# 1. vdierror.h defines MAKE_HRESULT and VD_ERROR as the SDK does, and the
#    VD_E_* codes are VD_ERROR(n).
cat > "$TMP/vdierror.cc" <<'EOF'
#include <vdi.h>
#include <vdierror.h>
#if !defined(MAKE_HRESULT) || !defined(VD_ERROR)
#error MAKE_HRESULT and VD_ERROR must be defined
#endif
static_assert(MAKE_HRESULT(1, 0x77, 3) == (int)0x80770003u, "MAKE_HRESULT");
static_assert(VD_ERROR(0x10) == (int)0x80770010u, "VD_ERROR");
static_assert(VD_E_NOTOPEN == VD_ERROR(2) && VD_E_TIMEOUT == VD_ERROR(3) &&
	      VD_E_ABORT == VD_ERROR(4) && VD_E_SECURITY == VD_ERROR(5) &&
	      VD_E_INVALID == VD_ERROR(6) && VD_E_INSTANCE_NAME == VD_ERROR(7) &&
	      VD_E_NOTSUPPORTED == VD_ERROR(9) && VD_E_MEMORY == VD_ERROR(10) &&
	      VD_E_UNEXPECTED == VD_ERROR(11) && VD_E_PROTOCOL == VD_ERROR(12) &&
	      VD_E_OPEN == VD_ERROR(13) && VD_E_CLOSE == VD_ERROR(14) &&
	      VD_E_BUSY == VD_ERROR(15), "VD_E_* are VD_ERROR(n)");
static_assert(sizeof(VD_E_ABORT) == sizeof(int), "codes are int");
int main() { return 0; }
EOF
ctest vdierror "sed -i '/define MAKE_HRESULT/,+1d; s/VD_ERROR(code)[[:space:]]*MAKE_HRESULT(1, 0x77, code)/VD_ERROR(code) ((int)(0x80770000U | (code)))/' sqlvdi/vdierror.h" \
	'MAKE_HRESULT and VD_ERROR must be defined'

# 2. vdi.h brings only what the SDK's brings: a client may define NOERROR,
#    INFINITE and other Win32 names itself.
cat > "$TMP/own_names.cc" <<'EOF'
#include <vdi.h>
#include <vdierror.h>
const long NOERROR = 0;
const long INFINITE = -1;
const long ERROR_INVALID_HANDLE = 6;
const long ERROR_END_OF_MEDIA = 1100;
const long ERROR_IO_DEVICE = 1117;
int main() { return (int)(NOERROR + INFINITE + 1 + ERROR_INVALID_HANDLE - 6 +
			  ERROR_END_OF_MEDIA - 1100 + ERROR_IO_DEVICE - 1117); }
EOF
ctest own_names "sed -i 's|^#include <time.h>|&\n#include \"../libvdi.h\"|' sqlvdi/vdi.h" \
	'libvdi\.h:[0-9]+:[0-9]+: error'

# 3. vdi.h and vdierror.h alone, copied into a project's tree, build (also
#    as C++98), and link with -lvdi.
cat > "$TMP/copied.cc" <<'EOF'
#include "vdi.h"
#include "vdierror.h"
int main()
{
	ClientVirtualDeviceSet vds;
	VDConfig cfg = VDConfig();
	return vds.GetConfiguration(0, &cfg) == VD_E_ABORT;
}
EOF
copied() {
	local p=$TMP/project log=$TMP/copied.log
	rm -rf "$p"; mkdir -p "$p"
	cp "$1/sqlvdi/vdi.h" "$1/sqlvdi/vdierror.h" "$TMP/copied.cc" "$p/"
	(cd "$p" && $CXX -std=c++98 -Wall -Wextra -Werror -fsyntax-only copied.cc &&
	 $CXX -std=c++11 -Wall -Wextra -Werror -o copied copied.cc -L"$B" -l:libvdi.so.1) >"$log" 2>&1
}
if copied "$ROOT/include"; then ok sdk.compile.copied; else nok sdk.compile.copied; diag "$(head -n 20 "$TMP/copied.log")"; fi
copy_include
sed -i 's|^#include <time.h>|&\n#include "../libvdi.h"|' "$TMP/inc/sqlvdi/vdi.h"
if ! copied "$TMP/inc" && grep -q 'libvdi\.h: No such file' "$TMP/copied.log"; then
	ok sdk.compile.copied.control "$(first_error "$TMP/copied.log")"
else
	nok sdk.compile.copied.control "a relative include went unnoticed"; diag "$(head -n 20 "$TMP/copied.log")"
fi

# 4. ERROR_* are long (0L ...), with the SDK's values.
cat > "$TMP/error_long.cc" <<'EOF'
#include <vdi.h>
#include <type_traits>
static_assert(std::is_same<decltype(ERROR_SUCCESS), long>::value &&
	      std::is_same<decltype(ERROR_ARENA_TRASHED), long>::value &&
	      std::is_same<decltype(ERROR_HANDLE_EOF), long>::value &&
	      std::is_same<decltype(ERROR_HANDLE_DISK_FULL), long>::value &&
	      std::is_same<decltype(ERROR_NOT_SUPPORTED), long>::value &&
	      std::is_same<decltype(ERROR_DISK_FULL), long>::value &&
	      std::is_same<decltype(ERROR_OPERATION_ABORTED), long>::value,
	      "ERROR_* are long");
static_assert(ERROR_SUCCESS == 0 && ERROR_ARENA_TRASHED == 7 &&
	      ERROR_HANDLE_EOF == 38 && ERROR_HANDLE_DISK_FULL == 39 &&
	      ERROR_NOT_SUPPORTED == 50 && ERROR_DISK_FULL == 112 &&
	      ERROR_OPERATION_ABORTED == 995, "ERROR_* values");
int main() { return 0; }
EOF
ctest error_long "sed -i 's/^\(#define ERROR_[A-Z_]*[[:space:]]*[0-9]*\)L$/\1/' sqlvdi/vdi.h" \
	'ERROR_\* are long'

# 5. enum VDFeatures has an unsigned underlying type: VDF_LatchStats is
#    0x80000000.
cat > "$TMP/latchstats.cc" <<'EOF'
#include <vdi.h>
#include <type_traits>
static_assert(VDF_LatchStats == 0x80000000u, "VDF_LatchStats");
static_assert(std::is_unsigned<std::underlying_type<VDFeatures>::type>::value,
	      "VDFeatures is unsigned");
static_assert(VDF_LikeTape == 0x173 && VDF_LikeDisk == 0x200, "VDF_Like*");
int main() { return 0; }
EOF
ctest latchstats "sed -i 's/VDF_LatchStats\([[:space:]]*\)= 0x80000000/VDF_LatchStats\1= (int)0x80000000/' sqlvdi/vdi.h" \
	'VDFeatures|VDF_LatchStats'

# 6. Copying and assignment compile, as with the SDK's classes.
cat > "$TMP/copy.cc" <<'EOF'
#include <vdi.h>
static int use(ClientVirtualDeviceSet s) { return s.SignalAbort(); }
int main()
{
	ClientVirtualDeviceSet a;
	ClientVirtualDeviceSet b(a);
	ClientVirtualDevice d, e(d);
	b = a;
	e = d;
	return use(a) == 0;
}
EOF
ctest copy "sed -i 's|^\tCVDS \*cvds;.*|&\n\tClientVirtualDeviceSet(const ClientVirtualDeviceSet \&);\n\tClientVirtualDeviceSet \&operator=(const ClientVirtualDeviceSet \&);|' sqlvdi/vdi.h" \
	'private within this context'

# 7. libvdi.h with the SDK's headers in one file, either order: no warning.
cat > "$TMP/mixed.cc" <<'EOF'
#include <libvdi.h>
#include <vdi.h>
#include <vdierror.h>
int main() { VDConfig c = VDConfig(); return (int)c.features + (VD_E_ABORT == 0) + NOERROR; }
EOF
cat > "$TMP/mixed_rev.cc" <<'EOF'
#include <vdi.h>
#include <vdierror.h>
#include <libvdi.h>
int main() { VDConfig c = VDConfig(); return (int)c.features + (VD_E_ABORT == 0) + NOERROR; }
EOF
ctest mixed "sed -i 's/^#define ERROR_SUCCESS\([[:space:]]*\)0L/#define ERROR_SUCCESS\10/' libvdi.h" \
	'"ERROR_SUCCESS" redefined'
ctest mixed_rev "sed -i 's/^#define VD_E_ABORT\([[:space:]]*\)VD_ERROR(4)/#define VD_E_ABORT\1((int)0x80770004U)/' libvdi.h" \
	'"VD_E_ABORT" redefined'

# 8. The same in C, vdi.h first: the shared guard leaves C's typedef names
#    (VDConfig, ...) to libvdi.h all the same.  The control puts them back
#    under the guard.
cat > "$TMP/mixed_c.c" <<'EOF'
#include <vdi.h>
#include <libvdi.h>
#include <vdierror.h>
int main(void)
{
	VDConfig c = { 0 };
	VDC_Command *x = 0;
	VDS_Command *y = 0;

	return (int)c.features + (x != 0) + (y != 0) + (VDF_LatchStats == 0) +
	       (VD_E_ABORT == 0);
}
EOF
CFLAGS_C=(-std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only)
copy_include
if "${CC:-gcc}" "${CFLAGS_C[@]}" -I"$TMP/inc" -I"$TMP/inc/sqlvdi" "$TMP/mixed_c.c" >"$TMP/mixed_c.log" 2>&1; then
	ok sdk.compile.mixed_c
else
	nok sdk.compile.mixed_c; diag "$(head -n 20 "$TMP/mixed_c.log")"
fi
sed -i -e '/^typedef struct VD[A-Za-z_]* VD[A-Za-z_]*;$/d' \
	-e 's|^#endif /\* LIBVDI_VDI_TYPES_DEFINED \*/|typedef struct VDConfig VDConfig;\ntypedef struct VDC_Command VDC_Command;\ntypedef struct VDS_Command VDS_Command;\n&|' \
	"$TMP/inc/libvdi.h"
if ! "${CC:-gcc}" "${CFLAGS_C[@]}" -I"$TMP/inc" -I"$TMP/inc/sqlvdi" "$TMP/mixed_c.c" >"$TMP/mixed_c.log" 2>&1 &&
   grep -q 'unknown type name' "$TMP/mixed_c.log"; then
	ok sdk.compile.mixed_c.control "$(first_error "$TMP/mixed_c.log")"
else
	nok sdk.compile.mixed_c.control "typedefs under the guard went unnoticed"
	diag "$(head -n 20 "$TMP/mixed_c.log")"
fi

# 9. The SDK test's client part uses nothing the SDK lacks: it poisons
#    NOERROR and INFINITE; the control uses one after the poison.
T=$ROOT/selftests/libvdi/lib_sdk_test.cc
KSFT=$B/ksrc/tools/testing/selftests
sdk_test_flags=(-std=c++11 -Wall -Wextra -Werror -fsyntax-only -isystem "$KSFT"
	-I"$ROOT/include" -I"$ROOT/include/uapi" -I"$ROOT/selftests" -I"$ROOT/include/sqlvdi"
	-I"$ROOT/selftests/libvdi")
if $CXX "${sdk_test_flags[@]}" "$T" >"$TMP/t.log" 2>&1; then
	ok sdk.compile.sdk_test
else
	nok sdk.compile.sdk_test; diag "$(head -n 20 "$TMP/t.log")"
fi
sed 's/^TEST_HARNESS_MAIN/static long uses_infinite = INFINITE;\n&/' "$T" > "$TMP/lib_sdk_test.cc"
if ! $CXX "${sdk_test_flags[@]}" "$TMP/lib_sdk_test.cc" >"$TMP/t.log" 2>&1 &&
   grep -q 'poisoned "INFINITE"' "$TMP/t.log"; then
	ok sdk.compile.sdk_test.control "$(first_error "$TMP/t.log")"
else
	nok sdk.compile.sdk_test.control "INFINITE after the poison compiled, or the build failed otherwise"
	diag "$(head -n 20 "$TMP/t.log")"
fi

{ echo "1..$N"; printf '%s\n' "${OUT[@]}"; } > "$TAP"
echo "1..$N"
[ "$FAILED" = 0 ]
