#!/usr/bin/env bash
# Rebuilds mozjpeg.wasm and compares its checksum (wasm/check.sh); its build also needs cargo.
exec bash "$(dirname "$0")/../check.sh" mozjpeg cargo
