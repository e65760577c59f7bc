#!/usr/bin/env bash
# Rebuilds resize.wasm and compares its checksum (wasm/check.sh).
exec bash "$(dirname "$0")/../check.sh" resize
