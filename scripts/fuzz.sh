#!/usr/bin/env bash
# Fuzzes the relayer's webhook verification and parsing and the program's instruction decoding
# with cargo-fuzz (libFuzzer); the targets are in fuzz/fuzz_targets, the corpus in fuzz/corpus.
#
#   scripts/fuzz.sh [SECONDS]  each target for SECONDS (default 300); new inputs that add coverage
#                              go to fuzz/corpus/<target>, which is then minimized (commit it)
#   scripts/fuzz.sh --smoke    each target for 20 s, new inputs to a scratch directory (the test command)
#   scripts/fuzz.sh --seeds    rewrites fuzz/corpus/*/seed-* from the relayer's and program's encoders
#   scripts/fuzz.sh --cmin     minimizes fuzz/corpus/<target> (seed-* files are always kept)
#
# Exits non-zero when a target crashes, with the input in fuzz/artifacts/<target>/ and the command
# that reproduces it printed. cargo-fuzz is installed into $OPENCLAW_CACHE/cargo-fuzz on first use.
#
# cargo-fuzz needs nightly rustc flags (-Zsanitizer, sancov passes): on the stable toolchain they
# are unlocked with RUSTC_BOOTSTRAP=1, for the fuzz build only (fuzz/ is its own workspace, built in
# its own target directory).
#
# Environment: OPENCLAW_CACHE (default ~/.cache/openclaw-escrow), FUZZ_TARGET_DIR (default
# $OPENCLAW_CACHE/fuzz-target), FUZZ_SANITIZER (address or none; default address),
# CARGO_BUILD_JOBS (cargo's own; set 1 on a shared machine), FUZZ_TARGETS (default "webhook instruction").
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cache=${OPENCLAW_CACHE:-$HOME/.cache/openclaw-escrow}
cargo_fuzz_version=0.13.2
sanitizer=${FUZZ_SANITIZER:-address}
read -r -a targets <<<"${FUZZ_TARGETS:-webhook instruction}"
# Never the workspace's CARGO_TARGET_DIR: other RUSTFLAGS would make both rebuild everything.
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$cache/fuzz-target}
export RUSTC_BOOTSTRAP=1
triple=$(rustc -vV | awk '/^host:/ { print $2 }')
bin_dir=$CARGO_TARGET_DIR/$triple/release

log() { printf '[fuzz] %s\n' "$*" >&2; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2; exit "${1:-2}"; }

mode=run seconds=300
case "${1:-}" in
  "") ;;
  --smoke) mode=smoke seconds=20 ;;
  --seeds) mode=seeds ;;
  --cmin) mode=cmin ;;
  -h | --help) usage 0 ;;
  *[!0-9]* | 0) usage ;;
  *) seconds=$1 ;;
esac

# libFuzzer options per target: the longest input worth trying (the relayer caps webhook bodies at
# 64 KiB; 8 KiB is plenty for the parser) and, for the decoder, a tight allocation limit.
target_flags() {
  case "$1" in
    webhook) echo "-max_len=8192 -dict=fuzz/dict/webhook.dict" ;;
    instruction) echo "-max_len=1024 -malloc_limit_mb=64" ;;
    *) echo "" ;;
  esac
}

cargo_fuzz=$cache/cargo-fuzz/bin/cargo-fuzz
if [ ! -x "$cargo_fuzz" ] || ! "$cargo_fuzz" --version | grep -qF " $cargo_fuzz_version"; then
  log "installing cargo-fuzz $cargo_fuzz_version into $cache/cargo-fuzz"
  cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked --quiet --force \
    --root "$cache/cargo-fuzz" --target-dir "$cache/cargo-fuzz-build"
fi
export PATH=$cache/cargo-fuzz/bin:$PATH

# cargo fuzz has no --locked. fuzz/Cargo.lock is the workspace's Cargo.lock pruned to what the fuzz
# crate uses, plus libFuzzer: when a relayer or program dependency changed, derive it again from the
# workspace's lock (so the fuzzed code keeps the versions the tests use) and say so.
if ! cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null 2>&1; then
  log "fuzz/Cargo.lock is out of date with the relayer's or program's dependencies: deriving it from Cargo.lock (commit the result)"
  cp fuzz/Cargo.lock "$cache/fuzz-Cargo.lock.previous" 2>/dev/null || true
  cp Cargo.lock fuzz/Cargo.lock
  cargo metadata --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null
fi
log "building the fuzz targets (sanitizer: $sanitizer; the first build takes a while)"
build_start=$SECONDS
for t in "${targets[@]}"; do cargo fuzz build --sanitizer "$sanitizer" "$t"; done
log "built in $((SECONDS - build_start)) s"

if [ "$mode" = seeds ]; then
  # Not a fuzz target: it links without libFuzzer, so only the sanitizer's runtime provides the
  # coverage hooks it is instrumented with (it does not link with FUZZ_SANITIZER=none).
  cargo fuzz build --sanitizer "$sanitizer" seeds
  "$bin_dir/seeds" fuzz/corpus
  exit 0
fi

# Minimizes fuzz/corpus/$1 to its seed-* files plus, up to the target's budget of files (the
# committed corpus stays small), the inputs that add the most coverage edges beyond them: libFuzzer
# measures each input (a merge pass, edges only), fuzz/corpus_cover.py picks.
corpus_budget() {
  case "$1" in
    webhook) echo 160 ;;
    *) echo 40 ;;
  esac
}
minimize() {
  local t=$1 dir=fuzz/corpus/$1 scratch before
  scratch=$(mktemp -d -p "$workdir")
  before=$(find "$dir" -type f | wc -l)
  # shellcheck disable=SC2046 # the flags are words
  cargo fuzz run --sanitizer "$sanitizer" "$t" "$scratch" "$dir" -- -merge=1 -use_counters=0 \
    -merge_control_file="$workdir/$t.merge" $(target_flags "$t") >"$workdir/$t.merge.log" 2>&1 ||
    { cat "$workdir/$t.merge.log" >&2; return 1; }
  python3 fuzz/corpus_cover.py "$workdir/$t.merge" "$(corpus_budget "$t")" "$dir" | sort >"$workdir/$t.keep"
  find "$dir" -type f | sort | comm -23 - "$workdir/$t.keep" | xargs -r rm -f --
  rm -rf "$scratch"
  log "$t: corpus minimized from $before to $(find "$dir" -type f | wc -l) files ($(find "$dir" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }') bytes)"
}

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT

if [ "$mode" = cmin ]; then
  for t in "${targets[@]}"; do minimize "$t"; done
  exit 0
fi

# The figures libFuzzer prints: its stat:: lines and the cov/ft/corp of its INITED and DONE lines.
final_stat() { awk -v k="stat::$2:" '$1 == k { print $2 }' "$1"; }
line_field() { awk -v k="$2" -v f="$3:" '$1 ~ /^#[0-9]+$/ && $2 == k { for (i = 3; i < NF; i++) if ($i == f) v = $(i + 1) } END { print v }' "$1"; }

failed=()
summary=()
touch "$workdir/start"
for t in "${targets[@]}"; do
  committed=fuzz/corpus/$t
  mkdir -p "$committed"
  if [ "$mode" = smoke ]; then
    # New inputs go to a scratch directory: the smoke run leaves the committed corpus as it is.
    mkdir -p "$workdir/$t"
    corpus=("$workdir/$t" "$committed")
  else
    corpus=("$committed")
  fi
  log "$t: fuzzing for $seconds s from $(find "$committed" -type f | wc -l) inputs in $committed"
  log_file=$workdir/$t.log
  # The whole output goes to the log; the INITED/DONE lines and any crash report to the terminal.
  {
    # shellcheck disable=SC2046 # the flags are words
    if cargo fuzz run --sanitizer "$sanitizer" "$t" "${corpus[@]}" -- \
      -max_total_time="$seconds" -timeout=10 -print_final_stats=1 $(target_flags "$t") 2>&1; then
      echo 0 >"$workdir/$t.status"
    else
      echo $? >"$workdir/$t.status"
    fi
  } | tee "$log_file" | { grep -E --line-buffered \
    '^#[0-9]+[[:space:]]+(INITED|DONE)|ERROR|panicked|deadly|Reproduce|artifact_prefix|Test unit written' || true; } >&2
  status=$(cat "$workdir/$t.status")
  execs=$(final_stat "$log_file" number_of_executed_units)
  rate=$(final_stat "$log_file" average_exec_per_sec)
  added=$(final_stat "$log_file" new_units_added)
  rss=$(final_stat "$log_file" peak_rss_mb)
  cov0=$(line_field "$log_file" INITED cov) cov1=$(line_field "$log_file" DONE cov)
  ft1=$(line_field "$log_file" DONE ft) corp1=$(line_field "$log_file" DONE corp)
  if [ "$status" -ne 0 ]; then
    failed+=("$t")
    summary+=("$t: FAILED (exit $status) after ${execs:-?} runs; the input is in fuzz/artifacts/$t/")
    tail -n 60 "$log_file" >&2
  else
    summary+=("$t: ${execs:-?} runs in $seconds s, ${rate:-?} exec/s, coverage ${cov0:-?} -> ${cov1:-?} (+$((${cov1:-0} - ${cov0:-0}))), ${ft1:-?} features, corpus ${corp1:-?} (${added:-0} new), peak RSS ${rss:-?} MB")
  fi
done

if [ "$mode" = run ]; then
  if [ ${#failed[@]} -eq 0 ]; then
    for t in "${targets[@]}"; do minimize "$t"; done
  else
    log "corpus not minimized after a crash: fix it, then run scripts/fuzz.sh --cmin"
  fi
fi

printf '\n== fuzz summary (%s)\n' "$mode"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  printf 'crashed: %s\n' "${failed[*]}" >&2
  for t in "${failed[@]}"; do
    { find "fuzz/artifacts/$t" -type f -newer "$workdir/start" 2>/dev/null || true; } | while read -r f; do
      printf 'reproduce: RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=%s %s/cargo-fuzz/bin/cargo-fuzz fuzz run --sanitizer %s %s %s\n' \
        "$CARGO_TARGET_DIR" "$cache" "$sanitizer" "$t" "$f" >&2
    done
  done
  exit 1
fi
