#!/usr/bin/env bash
# Rebuilds lcms2.wasm and compares its checksum (wasm/check.sh); its build also needs cargo.
exec bash "$(dirname "$0")/../check.sh" lcms2 cargo
