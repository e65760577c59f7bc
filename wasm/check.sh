#!/usr/bin/env bash
# CI's check of a committed WebAssembly module: `bash wasm/check.sh NAME [TOOL...]` rebuilds
# wasm/NAME/NAME.wasm from source with wasm/NAME/build.sh and compares its SHA-256 with
# NAME.wasm.sha256 (the builds are bit-reproducible with bookworm's clang 14, lld 14 and wasi-libc
# 0.0~git20220510); the committed file must match it too. TOOLs are what the module's build needs
# besides clang, wasm-ld and wasi-libc. Where one is missing or cannot run (cargo as a rustup proxy
# with no toolchain chosen, as under a fresh HOME), only the committed file's checksum is checked,
# and it says so.
set -euo pipefail
name="$1"
shift
here="$(cd "$(dirname "$0")/$name" && pwd)"
expected="$(cut -d' ' -f1 "$here/$name.wasm.sha256")"
committed="$(sha256sum "$here/$name.wasm" | cut -d' ' -f1)"
if [ "$committed" != "$expected" ]; then
  echo "$name wasm: FAILED: wasm/$name/$name.wasm is $committed, $name.wasm.sha256 says $expected" >&2
  exit 1
fi
missing=""
for tool in clang wasm-ld "$@"; do "$tool" --version >/dev/null 2>&1 || missing="$missing $tool"; done
[ -f /usr/lib/wasm32-wasi/libc.a ] || missing="$missing wasi-libc"
if [ -n "$missing" ]; then
  echo "$name wasm: committed file matches its checksum; NOT rebuilt (missing:$missing)"
  exit 0
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
bash "$here/build.sh" "$out/$name.wasm" >/dev/null
rebuilt="$(sha256sum "$out/$name.wasm" | cut -d' ' -f1)"
if [ "$rebuilt" != "$expected" ]; then
  echo "$name wasm: FAILED: rebuilt from source it is $rebuilt, the committed one is $expected" >&2
  exit 1
fi
echo "$name wasm: rebuilt from source, SHA-256 $rebuilt matches the committed file"
