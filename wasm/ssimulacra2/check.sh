#!/usr/bin/env bash
# Rebuilds ssimulacra2.wasm and ssimulacra2-fma.wasm and compares their checksums (wasm/check.sh);
# the second also needs llvm-objdump (Debian's llvm-14, outside PATH) and node.
export PATH="$PATH:/usr/lib/llvm-14/bin"
exec bash "$(dirname "$0")/../check.sh" ssimulacra2 llvm-objdump node
