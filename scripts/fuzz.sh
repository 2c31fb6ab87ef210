#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for FUZZ_SECONDS each (default 60) with libFuzzer, on the
# stable toolchain: the targets are built with the same coverage instrumentation cargo-fuzz
# uses, without a sanitizer (which would need nightly). Overflow checks and debug assertions are
# on, so arithmetic overflow is a finding too. Crashes are written to fuzz/artifacts/<target>/,
# corpora kept in fuzz/corpus/<target>/ (both git-ignored). Exits non-zero on the first crash.
set -euo pipefail
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_EACH=${FUZZ_SECONDS:-60}
TARGET=x86_64-unknown-linux-gnu
cd "$REPO_DIR/fuzz"
# fuzz/ is a workspace of its own, with a lockfile of its own (git-ignored): start it from the
# main workspace's, so the targets are built with the dependency versions rwsplit ships with
# (cargo adds the fuzzing crates and keeps every version it finds) rather than the newest ones.
cp "$REPO_DIR/Cargo.lock" Cargo.lock
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks" \
    cargo build --release --bins --target "$TARGET"
for bin in fuzz_targets/*.rs; do
    t=$(basename "$bin" .rs)
    mkdir -p "corpus/$t" "artifacts/$t"
    echo "== fuzz $t for ${SECONDS_EACH}s"
    "target/$TARGET/release/$t" "corpus/$t" -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1 2>&1 | grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|==|SUMMARY|thread)' || true
    if compgen -G "artifacts/$t/crash-*" >/dev/null; then
        echo "crash found by $t: $(ls "artifacts/$t"/crash-*)" >&2
        exit 1
    fi
done
