#!/usr/bin/env bash
# Sets up everything the tests need on a fresh machine, then runs every test.
# One-time installs and builds are cached outside the clone (see scripts/build-program.sh);
# set CARGO_TARGET_DIR to share host builds between clones (CI does).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

echo "== building the program (sBPF) and its IDL"
scripts/build-program.sh

echo "== running the tests"
cargo test --workspace --locked
