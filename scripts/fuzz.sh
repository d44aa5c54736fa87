#!/usr/bin/env bash
# Fuzzing: builds the targets in fuzz/ (libFuzzer, through cargo fuzz) and
# runs each for EXECS executions, one after the other.
#
#   scripts/fuzz.sh [EXECS] [TARGET...]
#
# EXECS defaults to 100000 (a CI-sized run); TARGETs default to every
# target (`cargo fuzz list`). FUZZ_MAX_TIME=S also stops each target after
# S seconds (CI uses it). FUZZ_SEED=N fixes libFuzzer's random seed (CI
# uses 1, so a run explores the same inputs each time; 0, the default,
# picks a new one). FUZZ_MAX_LEN=B caps an input at B bytes (libFuzzer
# otherwise takes the largest seed's length: for `config`, example.toml's
# 66 KB, about 1,000 executions a second; 2048 runs it near 10,000). Prints executions and exec/s per target; exits
# non-zero at the first crash or broken invariant, whose input is kept in
# fuzz/artifacts/TARGET/ (replay it: `cargo fuzz run --sanitizer none
# --codegen-units 16 TARGET fuzz/artifacts/TARGET/crash-...`, or add it to
# fuzz/corpus/TARGET/ and run `cargo test -p ringway --lib fuzzing`).
#
# Stable toolchain: cargo fuzz's default AddressSanitizer needs the
# nightly-only `-Zsanitizer`; with `--sanitizer none` every flag it passes
# (`-Cpasses=sancov-module`, `-Cllvm-args=-sanitizer-coverage-*`,
# `--cfg fuzzing`, `-Cdebug-assertions`) is stable, so no RUSTC_BOOTSTRAP is
# needed. The engine's unsafe code is small and documented; what Rust code
# can get wrong here (panics, overflow, broken invariants) still aborts.
# libFuzzer itself is C++ built by the libfuzzer-sys crate (needs a C++
# compiler).
#
# Builds use 16 codegen units instead of cargo fuzz's 1: the engine is one
# large crate, and with one unit its instrumented build alone passes 15
# minutes on two cores; runs are a little slower for it.
#
# The committed seeds (fuzz/corpus/TARGET) are read, never written: what a
# run finds is kept in $CARGO_TARGET_DIR/fuzz-corpus/TARGET and is reused by
# the next run. Each target's cargo build is shared: cargo fuzz builds all
# of them in one go.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_BUILD=(--sanitizer none --codegen-units 16)
EXECS=${1:-100000}
shift || true
MAX_TIME=${FUZZ_MAX_TIME:-0}
SEED=${FUZZ_SEED:-0}
MAX_LEN=()
[ -n "${FUZZ_MAX_LEN:-}" ] && MAX_LEN=(-max_len="$FUZZ_MAX_LEN")
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/fuzz/target}

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

echo "== building ${#targets[@]} fuzz targets"
if [ $# -eq 1 ]; then
    cargo fuzz build "${FUZZ_BUILD[@]}" "${targets[0]}"
else
    cargo fuzz build "${FUZZ_BUILD[@]}"
fi

status=0
summary=()
for t in "${targets[@]}"; do
    work="$CARGO_TARGET_DIR/fuzz-corpus/$t"
    artifacts="fuzz/artifacts/$t"
    mkdir -p "$work" "$artifacts"
    log="$CARGO_TARGET_DIR/fuzz-corpus/$t.log"
    limit=""
    [ "$MAX_TIME" != 0 ] && limit=" (at most ${MAX_TIME}s)"
    echo "== $t: $EXECS executions$limit"
    rc=0
    cargo fuzz run "${FUZZ_BUILD[@]}" "$t" "$work" "fuzz/corpus/$t" -- \
        -runs="$EXECS" -max_total_time="$MAX_TIME" -timeout=10 -seed="$SEED" "${MAX_LEN[@]}" \
        -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    if [ "$rc" -ne 0 ]; then
        tail -n 40 "$log"
        summary+=("$t: FAILED (exit $rc) after ${execs:-?} executions; see $log and $artifacts/")
        status=1
    else
        summary+=("$t: ${execs:-?} executions, ${rate:-?} exec/s, no crash")
    fi
    echo "${summary[-1]}"
done

echo "== fuzz summary"
printf '%s\n' "${summary[@]}"
exit "$status"
