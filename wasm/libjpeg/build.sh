#!/usr/bin/env bash
# Builds libjpeg-turbo's decoder (with decoder.c beside this script) to wasm32-wasi:
#   bash wasm/libjpeg/build.sh [OUT.wasm]      (default: wasm/libjpeg/libjpeg.wasm)
#
# Source: libjpeg-turbo 3.1.0 as vendored in the crates.io package turbojpeg-sys 1.2.0
# (libjpeg-turbo/ inside the .crate), fetched with cargo into a scratch project and checked
# against the SHA-256 below. LIBJPEG_CRATE=/path/to/turbojpeg-sys-1.2.0.crate skips the fetch.
# Toolchain and link: wasm/toolchain.sh.
# Only the decoder's sources are compiled: the 8-bit path plus the 12- and 16-bit variants that
# jdmaster.c links (as libjpeg-turbo's CMakeLists.txt builds them), no SIMD assembly (none exists
# for wasm; -msimd128 lets clang vectorise the C loops), no encoder, no TurboJPEG API.
set -euo pipefail

CRATE_VERSION=1.2.0
CRATE_SHA256=49b5a974bc59382d35927e3a07eef2ba9a24fe7227cefe52ec44b508e1b90f86
LIBJPEG_TURBO_VERSION=3.1.0

name=libjpeg
source "$(dirname "$0")/../toolchain.sh"

# ---- the source -------------------------------------------------------------------------------
unpack_crate turbojpeg-sys "$CRATE_VERSION" "$CRATE_SHA256" "${LIBJPEG_CRATE:-}"
src="$crate_root/libjpeg-turbo/src"
grep -q "set(VERSION $LIBJPEG_TURBO_VERSION)" "$src/../CMakeLists.txt" \
  || { echo "build-libjpeg: the crate does not hold libjpeg-turbo $LIBJPEG_TURBO_VERSION" >&2; exit 1; }

# ---- one change to the source ---------------------------------------------------------------
# The Huffman decoder keeps a 64-bit bit buffer only where size_t is 64-bit (or on x32); wasm32
# has 32-bit size_t but native 64-bit integers, and jdhuff.h itself says a wider buffer is a win
# where shifts on it are fast. Measured with bench/diag/libjpeg.ts (see README.md beside this).
patch64() { # file pattern
  local before after
  before="$(grep -c -F "$2" "$1" || true)"
  sed -i "s/$(printf '%s' "$2" | sed 's/[][\/.*^$&]/\\&/g')/(&) || defined(__wasm__)/" "$1"
  after="$(grep -c -F "defined(__wasm__)" "$1" || true)"
  [ "$before" = 1 ] && [ "$after" = 1 ] || { echo "build-libjpeg: could not patch $1" >&2; exit 1; }
}
patch64 "$src/jdhuff.h" 'defined(__x86_64__) && defined(__ILP32__)'
patch64 "$src/jdhuff.c" '(defined(__x86_64__) && defined(__ILP32__))'

# ---- the configuration headers CMake would write ------------------------------------------------
cfg="$work/config"
mkdir -p "$cfg"
cat >"$cfg/jconfig.h" <<EOF
#define JPEG_LIB_VERSION  62
#define LIBJPEG_TURBO_VERSION  $LIBJPEG_TURBO_VERSION
#define LIBJPEG_TURBO_VERSION_NUMBER  3001000
#define D_ARITH_CODING_SUPPORTED 1
#define MEM_SRCDST_SUPPORTED  1
#ifndef BITS_IN_JSAMPLE
#define BITS_IN_JSAMPLE  8
#endif
EOF
cat >"$cfg/jconfigint.h" <<EOF
#define BUILD  "wasm"
#define HIDDEN  __attribute__((visibility("hidden")))
#undef inline
#define INLINE  __inline__ __attribute__((always_inline))
#define THREAD_LOCAL
#define PACKAGE_NAME  "libjpeg-turbo"
#define VERSION  "$LIBJPEG_TURBO_VERSION"
#define SIZEOF_SIZE_T  4
#define HAVE_BUILTIN_CTZL
#define FALLTHROUGH  __attribute__((fallthrough));
#ifndef BITS_IN_JSAMPLE
#define BITS_IN_JSAMPLE  8
#endif
#undef C_ARITH_CODING_SUPPORTED
#undef D_ARITH_CODING_SUPPORTED
#undef WITH_SIMD
#if BITS_IN_JSAMPLE == 8
#define D_ARITH_CODING_SUPPORTED 1
#endif
EOF
sed -e "s/@COPYRIGHT_YEAR@/1991-2024/" "$src/jversion.h.in" >"$cfg/jversion.h"

# ---- compile and link ---------------------------------------------------------------------------
# The decoder's part of CMakeLists.txt's JPEG16/JPEG12/JPEG_SOURCES lists.
dec16="jdapistd jdcolor jddiffct jdlossls jdmainct jdpostct jdsample jutils"
dec12="$dec16 jdcoefct jddctmgr jdmerge jidctflt jidctfst jidctint jidctred jquant1 jquant2"
dec8="$dec12 jcomapi jdapimin jdatasrc jdhuff jdicc jdinput jdlhuff jdmarker jdmaster jdphuff
      jerror jmemmgr jmemnobs jaricom jdarith"
cflags=("${WASM_CFLAGS[@]}" -DNO_GETENV -DNO_PUTENV
        "-ffile-prefix-map=$work=." -I "$cfg" -I "$src" -w)
objs=()
compile() { # bits name
  local o="$work/obj/$2-$1.o"
  mkdir -p "$work/obj"
  clang "${cflags[@]}" -DBITS_IN_JSAMPLE="$1" -c "$src/$2.c" -o "$o"
  objs+=("$o")
}
for f in $dec16; do compile 16 "$f"; done
for f in $dec12; do compile 12 "$f"; done
for f in $dec8; do compile 8 "$f"; done
clang "${cflags[@]}" -Wall -Wextra -c "$here/decoder.c" -o "$work/obj/decoder.o"
objs+=("$work/obj/decoder.o")

link_reactor "$out" "${objs[@]}"
