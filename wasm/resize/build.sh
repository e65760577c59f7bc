#!/usr/bin/env bash
# Builds the Lanczos3 resizer (resize.c beside this script) to wasm32-wasi:
#   bash wasm/resize/build.sh [OUT.wasm]      (default: wasm/resize/resize.wasm)
# Toolchain: Debian's clang, lld, wasi-libc and libclang-rt-dev-wasm32 (bookworm: clang 14).
# -ffp-contract=off: no fused multiply-adds, so a clang that could emit them builds the same output;
# -msimd128 for the wasm_simd128.h intrinsics the filters are written with.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(realpath -m "${1:-$here/resize.wasm}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for tool in clang wasm-ld sha256sum; do
  command -v "$tool" >/dev/null || { echo "build-resize: $tool not found (apt-get install clang lld wasi-libc libclang-rt-dev-wasm32)" >&2; exit 1; }
done
cflags=(--target=wasm32-wasi -O3 -msimd128 -mbulk-memory -mnontrapping-fptoint -msign-ext -ffp-contract=off
        -ffunction-sections -fdata-sections "-ffile-prefix-map=$here=." -Wall -Wextra)
clang "${cflags[@]}" -c "$here/resize.c" -o "$work/resize.o"
# A reactor (no main): JavaScript calls _initialize once, then rz_begin, rz_push per chunk of rows, rz_end. Memory grows as images
# need it, up to wasm32's 4 GiB.
clang --target=wasm32-wasi -mexec-model=reactor -O3 -nostartfiles /usr/lib/wasm32-wasi/crt1-reactor.o \
  -Wl,--gc-sections -Wl,--strip-all -Wl,-z,stack-size=262144 -Wl,--max-memory=4294967296 \
  "$work/resize.o" -o "$work/resize.wasm"
cp "$work/resize.wasm" "$out"
echo "build-resize: $out ($(stat -c %s "$out") bytes) sha256 $(sha256sum "$out" | cut -d' ' -f1)"
