#!/usr/bin/env bash
# Builds the SSIMULACRA2 scorer (ssimulacra2.c beside this script) to wasm32-wasi:
#   bash wasm/ssimulacra2/build.sh [OUT.wasm]      (default: wasm/ssimulacra2/ssimulacra2.wasm)
# Toolchain and link: wasm/toolchain.sh.
# -ffp-contract=off: no fused multiply-adds the TypeScript scorer does not do (the scores must
# match it); -msimd128 lets clang vectorise the column loops.
set -euo pipefail
name=ssimulacra2
source "$(dirname "$0")/../toolchain.sh"
clang "${WASM_CFLAGS[@]}" -ffp-contract=off "-ffile-prefix-map=$here=." -Wall -Wextra -c "$here/ssimulacra2.c" -o "$work/ssimulacra2.o"
# JavaScript calls s2_score, or s2_prepare, s2_score_prepared per candidate and s2_prepared_free.
link_reactor "$out" "$work/ssimulacra2.o"
