#!/usr/bin/env bash
# Builds the SSIMULACRA2 scorer (ssimulacra2.c beside this script) to wasm32-wasi, twice:
#   bash wasm/ssimulacra2/build.sh [OUT.wasm]
# writes OUT.wasm (default: wasm/ssimulacra2/ssimulacra2.wasm) and, beside it, OUT-fma.wasm: the
# same scorer with S2_RELAXED_MADD, its blurs' fused steps as relaxed SIMD's f32x4.relaxed_madd
# (see ssimulacra2.c). Toolchain and link: wasm/toolchain.sh.
# -ffp-contract=off: no fused multiply-adds the TypeScript scorer does not do (the scores must
# match it); -msimd128 lets clang vectorise the column loops.
set -euo pipefail
name=ssimulacra2
source "$(dirname "$0")/../toolchain.sh"
cflags=("${WASM_CFLAGS[@]}" -ffp-contract=off "-ffile-prefix-map=$here=." -Wall -Wextra)
clang "${cflags[@]}" -c "$here/ssimulacra2.c" -o "$work/ssimulacra2.o"
# JavaScript calls s2_score, or s2_prepare, s2_score_prepared per candidate and s2_prepared_free.
link_reactor "$out" "$work/ssimulacra2.o"

# The relaxed-madd build: clang 14 still writes the instruction under its prototype opcode, which
# relaxed-madd.mjs rewrites to the standard one, checked against the count llvm-objdump reads.
objdump="$(PATH="$PATH:/usr/lib/llvm-14/bin" command -v llvm-objdump || true)"
[ -n "$objdump" ] || { echo "build-$name: llvm-objdump not found (Debian's llvm-14)" >&2; exit 1; }
command -v node >/dev/null || { echo "build-$name: node not found" >&2; exit 1; }
clang "${cflags[@]}" -mrelaxed-simd -DS2_RELAXED_MADD -c "$here/ssimulacra2.c" -o "$work/ssimulacra2-fma.o"
sites="$("$objdump" -d "$work/ssimulacra2-fma.o" | grep -c 'f32x4\.fma')"
name=ssimulacra2-fma
link_reactor "$work/prototype.wasm" "$work/ssimulacra2-fma.o" >/dev/null
fma_out="${out%.wasm}-fma.wasm"
node "$here/relaxed-madd.mjs" "$work/prototype.wasm" "$fma_out" "$sites"
echo "build-$name: $fma_out ($(stat -c %s "$fma_out") bytes, $sites relaxed_madd) sha256 $(sha256sum "$fma_out" | cut -d' ' -f1)"
