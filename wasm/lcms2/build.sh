#!/usr/bin/env bash
# Builds LittleCMS (with cmyk.c beside this script) to wasm32-wasi:
#   bash wasm/lcms2/build.sh [OUT.wasm]      (default: wasm/lcms2/lcms2.wasm)
#
# Source: LittleCMS 2.19 as vendored in the crates.io package lcms2-sys 4.0.7 (vendor/ inside the
# .crate), fetched with cargo into a scratch project and checked against the SHA-256 below.
# LCMS2_CRATE=/path/to/lcms2-sys-4.0.7.crate skips the fetch.
# Toolchain and link: wasm/toolchain.sh.
# All of the library's sources are compiled, unchanged, as lcms2-sys's build.rs compiles them
# (NDEBUG), plus CMS_NO_PTHREADS: a module instance runs on one thread, and wasi-libc has no
# pthreads. The linker keeps only what cmyk.c reaches.
set -euo pipefail

CRATE_VERSION=4.0.7
CRATE_SHA256=264db0b78119c5a37d78bb41fb355daab29b3b29430b53cd92e3da51f0ab06cc
LCMS_VERSION=2190

name=lcms2
source "$(dirname "$0")/../toolchain.sh"

# ---- the source -------------------------------------------------------------------------------
unpack_crate lcms2-sys "$CRATE_VERSION" "$CRATE_SHA256" "${LCMS2_CRATE:-}"
vendor="$crate_root/vendor"
grep -Eq "^#define LCMS_VERSION +$LCMS_VERSION\$" "$vendor/include/lcms2.h" \
  || { echo "build-lcms2: the crate does not hold LittleCMS $LCMS_VERSION" >&2; exit 1; }

# ---- compile and link ---------------------------------------------------------------------------
cflags=("${WASM_CFLAGS[@]}" -DNDEBUG -DCMS_NO_PTHREADS=1
        "-ffile-prefix-map=$work=." "-ffile-prefix-map=$here=." -I "$vendor/include")
objs=()
mkdir -p "$work/obj"
for c in "$vendor"/src/*.c; do
  o="$work/obj/$(basename "$c" .c).o"
  clang "${cflags[@]}" -w -c "$c" -o "$o"
  objs+=("$o")
done
clang "${cflags[@]}" -Wall -Wextra -c "$here/cmyk.c" -o "$work/obj/cmyk.o"
objs+=("$work/obj/cmyk.o")

link_reactor "$out" "${objs[@]}"
