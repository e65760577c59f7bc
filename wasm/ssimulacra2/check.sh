#!/usr/bin/env bash
# CI's check of the committed ssimulacra2.wasm: rebuilds it from source with build.sh and compares
# the SHA-256 with ssimulacra2.wasm.sha256 (the build is bit-reproducible with bookworm's clang 14,
# lld 14 and wasi-libc 0.0~git20220510); the committed file must match it too. Where the
# toolchain is missing, only the committed file's checksum is checked, and it says so.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
expected="$(cut -d' ' -f1 "$here/ssimulacra2.wasm.sha256")"
committed="$(sha256sum "$here/ssimulacra2.wasm" | cut -d' ' -f1)"
if [ "$committed" != "$expected" ]; then
  echo "ssimulacra2 wasm: FAILED: wasm/ssimulacra2/ssimulacra2.wasm is $committed, ssimulacra2.wasm.sha256 says $expected" >&2
  exit 1
fi
missing=""
for tool in clang wasm-ld; do command -v "$tool" >/dev/null || missing="$missing $tool"; done
[ -f /usr/lib/wasm32-wasi/libc.a ] || missing="$missing wasi-libc"
if [ -n "$missing" ]; then
  echo "ssimulacra2 wasm: committed file matches its checksum; NOT rebuilt (missing:$missing)"
  exit 0
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
bash "$here/build.sh" "$out/ssimulacra2.wasm" >/dev/null
rebuilt="$(sha256sum "$out/ssimulacra2.wasm" | cut -d' ' -f1)"
if [ "$rebuilt" != "$expected" ]; then
  echo "ssimulacra2 wasm: FAILED: rebuilt from source it is $rebuilt, the committed one is $expected" >&2
  exit 1
fi
echo "ssimulacra2 wasm: rebuilt from source, SHA-256 $rebuilt matches the committed file"
