#!/usr/bin/env bash
# CI's check of a committed WebAssembly module: `bash wasm/check.sh NAME [TOOL...]` rebuilds
# wasm/NAME/NAME.wasm from source with wasm/NAME/build.sh and compares its SHA-256 with
# NAME.wasm.sha256 (the builds are bit-reproducible with bookworm's clang 14, lld 14 and wasi-libc
# 0.0~git20220510); the committed file must match it too. Every other X.wasm.sha256 in the folder
# names a file the same build writes beside NAME.wasm (ssimulacra2-fma.wasm), checked the same way. TOOLs are what the module's build needs
# besides clang, wasm-ld and wasi-libc. Where one is missing or cannot run (cargo as a rustup proxy
# with no toolchain chosen, as under a fresh HOME), only the committed file's checksum is checked,
# and it says so.
set -euo pipefail
name="$1"
shift
here="$(cd "$(dirname "$0")/$name" && pwd)"
checksums=("$here"/*.wasm.sha256)
# compare DIR WHAT: every checksummed file as found in DIR against its .sha256; WHAT names DIR's copy.
compare() {
  local sum file expected actual
  for sum in "${checksums[@]}"; do
    file="$(basename "$sum" .sha256)"
    expected="$(cut -d' ' -f1 "$sum")"
    actual="$(sha256sum "$1/$file" | cut -d' ' -f1)"
    if [ "$actual" != "$expected" ]; then
      echo "$name wasm: FAILED: $file $2 is $actual, $file.sha256 says $expected" >&2
      exit 1
    fi
    [ "$2" = "committed" ] || echo "$name wasm: $file $2, SHA-256 $actual matches the committed file"
  done
}
compare "$here" committed
missing=""
for tool in clang wasm-ld "$@"; do "$tool" --version >/dev/null 2>&1 || missing="$missing $tool"; done
[ -f /usr/lib/wasm32-wasi/libc.a ] || missing="$missing wasi-libc"
if [ -n "$missing" ]; then
  echo "$name wasm: committed files match their checksums; NOT rebuilt (missing:$missing)"
  exit 0
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
bash "$here/build.sh" "$out/$name.wasm" >/dev/null
compare "$out" "rebuilt from source"
