#!/usr/bin/env bash
# Builds the SSIMULACRA2 scorer (ssimulacra2.c beside this script) to wasm32-wasi:
#   bash wasm/ssimulacra2/build.sh [OUT.wasm]      (default: wasm/ssimulacra2/ssimulacra2.wasm)
# Toolchain: Debian's clang, lld, wasi-libc and libclang-rt-dev-wasm32 (bookworm: clang 14).
# -ffp-contract=off: no fused multiply-adds the TypeScript scorer does not do (the scores must
# match it); -msimd128 lets clang vectorise the column loops.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(realpath -m "${1:-$here/ssimulacra2.wasm}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for tool in clang wasm-ld sha256sum; do
  command -v "$tool" >/dev/null || { echo "build-ssimulacra2: $tool not found (apt-get install clang lld wasi-libc libclang-rt-dev-wasm32)" >&2; exit 1; }
done
cflags=(--target=wasm32-wasi -O3 -msimd128 -mbulk-memory -mnontrapping-fptoint -msign-ext -ffp-contract=off
        -ffunction-sections -fdata-sections "-ffile-prefix-map=$here=." -Wall -Wextra)
clang "${cflags[@]}" -c "$here/ssimulacra2.c" -o "$work/ssimulacra2.o"
# A reactor (no main): JavaScript calls _initialize once, then s2_score. Memory grows as images
# need it, up to wasm32's 4 GiB.
clang --target=wasm32-wasi -mexec-model=reactor -O3 -nostartfiles /usr/lib/wasm32-wasi/crt1-reactor.o \
  -Wl,--gc-sections -Wl,--strip-all -Wl,-z,stack-size=262144 -Wl,--max-memory=4294967296 \
  "$work/ssimulacra2.o" -o "$work/ssimulacra2.wasm"
cp "$work/ssimulacra2.wasm" "$out"
echo "build-ssimulacra2: $out ($(stat -c %s "$out") bytes) sha256 $(sha256sum "$out" | cut -d' ' -f1)"
