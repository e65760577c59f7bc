#!/usr/bin/env bash
# Builds MozJPEG's encoder (with encoder.c beside this script) to wasm32-wasi:
#   bash wasm/mozjpeg/build.sh [OUT.wasm]      (default: wasm/mozjpeg/mozjpeg.wasm)
#
# Source: MozJPEG 4 as vendored in the crates.io package mozjpeg-sys 2.2.3 (vendor/ inside the
# .crate), fetched with cargo into a scratch project and checked against the SHA-256 below.
# MOZJPEG_CRATE=/path/to/mozjpeg-sys-2.2.3.crate skips the fetch. Toolchain and link:
# wasm/toolchain.sh. Only the encoder's sources are compiled (the list mozjpeg-sys's build.rs
# compiles, less the decoder, the arithmetic coder and the ICC reader), no SIMD assembly
# (jsimd_none.c answers "no SIMD"; -msimd128 lets clang vectorise the C loops).
set -euo pipefail

CRATE_VERSION=2.2.3
CRATE_SHA256=7f0dc668bf9bf888c88e2fb1ab16a406d2c380f1d082b20d51dd540ab2aa70c1

name=mozjpeg
source "$(dirname "$0")/../toolchain.sh"

# ---- the source -------------------------------------------------------------------------------
unpack_crate mozjpeg-sys "$CRATE_VERSION" "$CRATE_SHA256" "${MOZJPEG_CRATE:-}"
src="$crate_root/vendor"

# ---- the configuration headers mozjpeg-sys's build.rs writes (no build timestamp) ---------------
cfg="$work/config"
mkdir -p "$cfg"
cat >"$cfg/jconfig.h" <<CONF
#define JPEG_LIB_VERSION 62
#define LIBJPEG_TURBO_VERSION 0
#define BITS_IN_JSAMPLE 8
#define STDC_HEADERS 1
#define NO_GETENV 1
#define NO_PUTENV 1
#define HAVE_STDLIB_H 1
#define HAVE_UNSIGNED_CHAR 1
#define HAVE_UNSIGNED_SHORT 1
#define MEM_SRCDST_SUPPORTED 1
CONF
cat >"$cfg/jconfigint.h" <<CONF
#define BUILD "wasm"
#define INLINE inline __attribute__((always_inline))
#define HIDDEN __attribute__((visibility("hidden")))
#define THREAD_LOCAL
#define SIZEOF_SIZE_T 4
#define HAVE_BUILTIN_CTZL 1
#define FALLTHROUGH
#define PACKAGE_NAME "mozjpeg-sys"
#define VERSION "$CRATE_VERSION"
CONF
cat >"$cfg/jversion.h" <<CONF
#define JVERSION "$CRATE_VERSION"
#define JCOPYRIGHT "Copyright (C)  The libjpeg-turbo Project, Mozilla, and many others"
#define JCOPYRIGHT_SHORT JCOPYRIGHT
CONF

# ---- compile and link ---------------------------------------------------------------------------
sources="jcapimin jcapistd jccoefct jccolor jcdctmgr jcext jchuff jcinit jcmainct jcmarker jcmaster
         jcomapi jcparam jcphuff jcprepct jcsample jdatadst jerror jfdctflt jfdctfst jfdctint
         jmemmgr jmemnobs jutils jsimd_none"
cflags=("${WASM_CFLAGS[@]}" "-ffile-prefix-map=$work=." -I "$cfg" -I "$src" -w)
objs=()
mkdir -p "$work/obj"
for f in $sources; do
  clang "${cflags[@]}" -c "$src/$f.c" -o "$work/obj/$f.o"
  objs+=("$work/obj/$f.o")
done
clang "${cflags[@]}" -Wall -Wextra -c "$here/encoder.c" -o "$work/obj/encoder.o"
objs+=("$work/obj/encoder.o")

link_reactor "$out" "${objs[@]}"
