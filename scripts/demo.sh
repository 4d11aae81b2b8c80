#!/usr/bin/env bash
# The escrow story, end to end on this machine. Today: the real compiled program in an
# in-process SVM (LiteSVM); the relayer joins the story as it is built.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export OPENCLAW_CACHE=${OPENCLAW_CACHE:-$HOME/.cache/openclaw-escrow}

echo "== building the program (first run installs the toolchain pieces; later runs take seconds)"
SKIP_IDL=1 scripts/build-program.sh
echo "== the story"
cargo run --quiet --locked -p escrow-tests --bin demo
