#!/usr/bin/env bash
# Builds the fuzz targets with libFuzzer coverage instrumentation on the
# STABLE toolchain and runs them.
#
#   fuzz/run.sh build                 build every target
#   fuzz/run.sh TARGET SECONDS [ARGS] fuzz one target for SECONDS (0 = forever)
#   fuzz/run.sh all SECONDS           fuzz every target in turn, SECONDS each
#   fuzz/run.sh repro TARGET FILE     run one input (a crash-* artifact) once
#
# Targets: manifest signature keys state text volume. Corpora live in
# fuzz/corpus/TARGET (seeded by fuzz/seed.sh), findings in
# fuzz/artifacts/TARGET, logs in fuzz/logs/TARGET.log.
set -euo pipefail
cd "$(dirname "$0")"

TRIPLE=x86_64-unknown-linux-gnu
# What cargo-fuzz passes, minus -Zsanitizer (the only nightly-only part):
# SanitizerCoverage's module pass with the inline 8-bit counters, PC table
# and comparison tracing that libFuzzer reads. --target keeps these flags
# away from build scripts and proc macros.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
TARGETS=(manifest signature keys state text volume)

build() { cargo +stable build --release --target "$TRIPLE" --bins; }
binary() { echo "target/$TRIPLE/release/$1"; }

fuzz_one() { # fuzz_one TARGET SECONDS [ARGS...]
    local target=$1 seconds=$2
    shift 2
    mkdir -p "corpus/$target" "artifacts/$target" logs
    # Tokens of the format (fuzz/dict/TARGET.dict plus common.dict).
    cat dict/common.dict "dict/$target.dict" >"logs/$target.dict"
    # -max_len: manifests are bigger than libFuzzer's 4 KiB default.
    # Memory: 2 GiB RSS cap per input run (a decoder must not balloon).
    "$(binary "$target")" "corpus/$target" \
        -artifact_prefix="artifacts/$target/" -max_total_time="$seconds" \
        -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -dict="logs/$target.dict" "$@" \
        2>&1 | tee "logs/$target.log" | grep -E '^#[0-9]+.*(pulse|DONE)|INFO: seed|stat::|==|panicked|Test unit written' || true
}

[ -d corpus ] || bash seed.sh
# The keys target writes its input to files under $TMPDIR; libFuzzer exits
# without running destructors, so give it a folder removed on exit.
scratch=$(mktemp -d -p "${TMPDIR:-/tmp}" ferry-fuzz-run.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
export TMPDIR=$scratch
case "${1:-}" in
build) build ;;
all)
    build
    for target in "${TARGETS[@]}"; do fuzz_one "$target" "${2:?seconds}"; done
    ;;
repro)
    build
    "$(binary "${2:?target}")" "${3:?file}"
    ;;
manifest | signature | keys | state | text | volume)
    build
    fuzz_one "$@"
    ;;
*)
    sed -n '2,12p' "$0"
    exit 2
    ;;
esac
