#!/usr/bin/env bash
# Rebuilds ssimulacra2.wasm and compares its checksum (wasm/check.sh).
exec bash "$(dirname "$0")/../check.sh" ssimulacra2
