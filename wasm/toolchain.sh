# Sourced by wasm/*/build.sh, which sets `name` (the module) first: the build's folder (`here`), its
# output (`out`: the script's first argument, else NAME.wasm beside it), a scratch directory
# (`work`, removed on exit), the wasm32-wasi toolchain check, the compiler flags every module
# starts from, the fetch of a crates.io package that vendors C source, and the reactor link.
# Toolchain: Debian's clang, lld, wasi-libc and libclang-rt-dev-wasm32 (bookworm: clang 14); the
# builds are bit-reproducible with it.

WASM_CFLAGS=(--target=wasm32-wasi -O3 -msimd128 -mbulk-memory -mnontrapping-fptoint -msign-ext
             -ffunction-sections -fdata-sections)

require_wasm_toolchain() {
  for tool in clang wasm-ld sha256sum; do
    command -v "$tool" >/dev/null || { echo "build-$name: $tool not found (apt-get install clang lld wasi-libc libclang-rt-dev-wasm32)" >&2; exit 1; }
  done
}

# unpack_crate CRATE VERSION SHA256 [FILE]: the crates.io package's .crate (FILE when given,
# else fetched with cargo into a scratch project), checked against SHA256 and unpacked into
# $work; sets crate_root to the unpacked folder.
unpack_crate() {
  local crate="$1" version="$2" sha="$3" file="${4:-}"
  if [ -z "$file" ]; then
    command -v cargo >/dev/null || { echo "build-$name: cargo not found (needed to fetch $crate)" >&2; exit 1; }
    mkdir -p "$work/fetch/src"
    printf '[package]\nname = "fetch-%s"\nversion = "0.0.0"\nedition = "2021"\n\n[dependencies]\n%s = { version = "=%s", default-features = false }\n' \
      "$name" "$crate" "$version" >"$work/fetch/Cargo.toml"
    : >"$work/fetch/src/lib.rs"
    cargo fetch --quiet --manifest-path "$work/fetch/Cargo.toml"
    file="$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"$crate-$version.crate" | head -n 1)"
  fi
  echo "$sha  $file" | sha256sum --check --quiet - \
    || { echo "build-$name: $file does not have the expected SHA-256" >&2; exit 1; }
  tar -xzf "$file" -C "$work"
  crate_root="$work/$crate-$version"
}

# link_reactor OUT OBJECT...: a reactor (no main): JavaScript calls _initialize once, then the
# exported functions. Memory grows as images need it, up to wasm32's 4 GiB. Writes OUT and says
# its size and SHA-256.
link_reactor() {
  local out="$1"
  shift
  clang --target=wasm32-wasi -mexec-model=reactor -O3 -nostartfiles /usr/lib/wasm32-wasi/crt1-reactor.o \
    -Wl,--gc-sections -Wl,--strip-all -Wl,-z,stack-size=262144 -Wl,--max-memory=4294967296 \
    "$@" -o "$work/$name.wasm"
  cp "$work/$name.wasm" "$out"
  echo "build-$name: $out ($(stat -c %s "$out") bytes) sha256 $(sha256sum "$out" | cut -d' ' -f1)"
}

here="$(cd "$(dirname "$0")" && pwd)"
out="$(realpath -m "${1:-$here/$name.wasm}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
require_wasm_toolchain
