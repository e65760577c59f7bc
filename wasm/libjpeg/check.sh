#!/usr/bin/env bash
# Rebuilds libjpeg.wasm and compares its checksum (wasm/check.sh); its build also needs cargo.
exec bash "$(dirname "$0")/../check.sh" libjpeg cargo
