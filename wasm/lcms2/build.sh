#!/usr/bin/env bash
# Builds LittleCMS (with cmyk.c beside this script) to wasm32-wasi:
#   bash wasm/lcms2/build.sh [OUT.wasm]      (default: wasm/lcms2/lcms2.wasm)
#
# Source: LittleCMS 2.19 as vendored in the crates.io package lcms2-sys 4.0.7 (vendor/ inside the
# .crate), fetched with cargo into a scratch project and checked against the SHA-256 below.
# LCMS2_CRATE=/path/to/lcms2-sys-4.0.7.crate skips the fetch.
# Toolchain: Debian's clang, lld, wasi-libc and libclang-rt-dev-wasm32 (bookworm: clang 14).
# All of the library's sources are compiled, unchanged, as lcms2-sys's build.rs compiles them
# (NDEBUG), plus CMS_NO_PTHREADS: a module instance runs on one thread, and wasi-libc has no
# pthreads. The linker keeps only what cmyk.c reaches.
set -euo pipefail

CRATE_VERSION=4.0.7
CRATE_SHA256=264db0b78119c5a37d78bb41fb355daab29b3b29430b53cd92e3da51f0ab06cc
LCMS_VERSION=2190

here="$(cd "$(dirname "$0")" && pwd)"
out="$(realpath -m "${1:-$here/lcms2.wasm}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

for tool in clang wasm-ld sha256sum; do
  command -v "$tool" >/dev/null || { echo "build-lcms2: $tool not found (apt-get install clang lld wasi-libc libclang-rt-dev-wasm32)" >&2; exit 1; }
done

# ---- the source -------------------------------------------------------------------------------
crate="${LCMS2_CRATE:-}"
if [ -z "$crate" ]; then
  command -v cargo >/dev/null || { echo "build-lcms2: cargo not found (needed to fetch lcms2-sys)" >&2; exit 1; }
  mkdir -p "$work/fetch/src"
  printf '[package]\nname = "fetch-lcms2"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\nlcms2-sys = { version = "=%s", default-features = false }\n' \
    "$CRATE_VERSION" >"$work/fetch/Cargo.toml"
  : >"$work/fetch/src/lib.rs"
  cargo fetch --quiet --manifest-path "$work/fetch/Cargo.toml"
  crate="$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/lcms2-sys-$CRATE_VERSION.crate | head -n 1)"
fi
echo "$CRATE_SHA256  $crate" | sha256sum --check --quiet - \
  || { echo "build-lcms2: $crate does not have the expected SHA-256" >&2; exit 1; }
tar -xzf "$crate" -C "$work"
vendor="$work/lcms2-sys-$CRATE_VERSION/vendor"
grep -Eq "^#define LCMS_VERSION +$LCMS_VERSION\$" "$vendor/include/lcms2.h" \
  || { echo "build-lcms2: the crate does not hold LittleCMS $LCMS_VERSION" >&2; exit 1; }

# ---- compile and link ---------------------------------------------------------------------------
cflags=(--target=wasm32-wasi -O3 -msimd128 -mbulk-memory -mnontrapping-fptoint -msign-ext
        -ffunction-sections -fdata-sections -DNDEBUG -DCMS_NO_PTHREADS=1
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

# A reactor (no main): JavaScript calls _initialize once, then the exported functions. Memory
# grows as needed (a profile and one chunk of pixels at a time), up to wasm32's 4 GiB.
clang --target=wasm32-wasi -mexec-model=reactor -O3 -nostartfiles /usr/lib/wasm32-wasi/crt1-reactor.o \
  -Wl,--gc-sections -Wl,--strip-all -Wl,-z,stack-size=262144 -Wl,--max-memory=4294967296 \
  "${objs[@]}" -o "$work/lcms2.wasm"
cp "$work/lcms2.wasm" "$out"
echo "build-lcms2: $out ($(stat -c %s "$out") bytes) sha256 $(sha256sum "$out" | cut -d' ' -f1)"
