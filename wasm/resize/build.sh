#!/usr/bin/env bash
# Builds the Lanczos3 resizer (resize.c beside this script) to wasm32-wasi:
#   bash wasm/resize/build.sh [OUT.wasm]      (default: wasm/resize/resize.wasm)
# Toolchain and link: wasm/toolchain.sh.
# -ffp-contract=off: no fused multiply-adds, so a clang that could emit them builds the same output;
# -msimd128 for the wasm_simd128.h intrinsics the filters are written with.
set -euo pipefail
name=resize
source "$(dirname "$0")/../toolchain.sh"
clang "${WASM_CFLAGS[@]}" -ffp-contract=off "-ffile-prefix-map=$here=." -Wall -Wextra -c "$here/resize.c" -o "$work/resize.o"
# JavaScript calls rz_begin, rz_push per chunk of rows, rz_end.
link_reactor "$out" "$work/resize.o"
