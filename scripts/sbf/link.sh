#!/usr/bin/env bash
# rustc's "linker" for the sBPF build: forwards to sbpf-linker with $SBPF_LINKER_EXTRA appended.
# Passing the flags here rather than in RUSTFLAGS keeps cargo from rebuilding std when they change.
# The extra flags are a space-separated list: splitting them is the point.
# shellcheck disable=SC2086
exec "${SBPF_LINKER:?SBPF_LINKER not set}" "$@" ${SBPF_LINKER_EXTRA:-}
