#!/usr/bin/env bash
# Fuzzes the ingest gateway's request body -> events path (JSON, NDJSON, gzip)
# with cargo-fuzz (libFuzzer) for a bounded time. Not part of CI or
# `deploy/local.sh test`: the property tests (ingest-gateway/tests/properties.rs)
# run there; this explores for longer.
#
#   ./deploy/fuzz.sh [SECONDS]    fuzz for SECONDS (default 300), then minimize
#                                 the corpus and print what was run and found
#
# - Installs cargo-fuzz (cargo install) if it is missing.
# - cargo-fuzz passes nightly-only flags to rustc; on a stable toolchain this
#   script sets RUSTC_BOOTSTRAP=1 for the fuzz build only, so no nightly
#   toolchain is needed.
# - The target is ingest-gateway/fuzz/fuzz_targets/body.rs; its corpus,
#   ingest-gateway/fuzz/corpus/body/, is committed (kept minimized, < 2 MB),
#   so each run starts where the last one stopped. Inputs that crash land in
#   ingest-gateway/fuzz/artifacts/body/ (not committed): reproduce one with
#     cd ingest-gateway && RUSTC_BOOTSTRAP=1 cargo fuzz run body -s none <file>
#
# Variables: FUZZ_SANITIZER (none; or address: our code forbids unsafe, so
# AddressSanitizer mostly costs speed), FUZZ_JOBS (1 process; the machine is
# shared), FUZZ_MAX_LEN (65536 bytes per input).

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT
readonly PROG="deploy/fuzz.sh"
readonly TARGET="body"
readonly FUZZ_DIR="$REPO_ROOT/ingest-gateway/fuzz"
readonly CORPUS="$FUZZ_DIR/corpus/$TARGET"
readonly ARTIFACTS="$FUZZ_DIR/artifacts/$TARGET"
readonly CORPUS_LIMIT_BYTES=$((2 * 1024 * 1024))

say() { printf '%s: %s\n' "$PROG" "$*"; }
die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

usage() {
    sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

seconds=${1:-300}
case $seconds in
    -h | --help | help)
        usage
        exit 0
        ;;
esac
[[ $seconds =~ ^[0-9]+$ ]] && ((seconds > 0)) || die "SECONDS must be a positive number, not $seconds"
(($# <= 1)) || die "one argument at most (SECONDS)"
sanitizer=${FUZZ_SANITIZER:-none}
jobs=${FUZZ_JOBS:-1}
max_len=${FUZZ_MAX_LEN:-65536}

if ! command -v cargo >/dev/null 2>&1 && [[ -x "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" ]]; then
    PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust with rustup"
if ! cargo fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz (cargo install --locked cargo-fuzz)"
    cargo install --locked cargo-fuzz || die "could not install cargo-fuzz"
fi
command -v c++ >/dev/null 2>&1 || die "c++ not found: libFuzzer is built from C++ (Debian: apt-get install g++)"

# Nightly flags on a stable toolchain (a nightly one ignores this).
export RUSTC_BOOTSTRAP=1

mkdir -p "$CORPUS" "$ARTIFACTS"
cd "$REPO_ROOT/ingest-gateway"

# Seeds when the corpus is new: the test fixtures in each way of sending them
# (first byte: bit 0 NDJSON, bit 1 small limits, bits 2-3 plain/gzip stream/both).
if [[ -z $(ls -A "$CORPUS") ]]; then
    say "seeding $CORPUS from tests/fixtures"
    for fixture in tests/fixtures/*.json; do
        name=$(basename "$fixture" .json)
        for selector in 00 01 02 08 09; do
            { printf "\\x$selector"; cat "$fixture"; } >"$CORPUS/seed-$name-$selector"
        done
    done
fi

say "building the fuzz target (sanitizer: $sanitizer)"
cargo fuzz build "$TARGET" --sanitizer "$sanitizer" --debug-assertions

log=$(mktemp)
trap 'rm -f "$log"' EXIT
before=$(find "$CORPUS" -type f | wc -l)
say "fuzzing for $seconds s ($jobs process(es)); corpus $CORPUS ($before inputs)"
parallel=()
((jobs <= 1)) || parallel=(-jobs="$jobs" -workers="$jobs")
set +e
cargo fuzz run "$TARGET" --sanitizer "$sanitizer" --debug-assertions "$CORPUS" -- \
    -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
    "${parallel[@]}" -print_final_stats=1 >"$log" 2>&1
status=$?
set -e
# With -jobs, each process logs to fuzz-N.log in the current directory.
for job_log in fuzz-*.log; do
    [[ -f $job_log ]] || continue
    cat "$job_log" >>"$log"
    rm -f "$job_log"
done

say "minimizing the corpus (cargo fuzz cmin)"
cargo fuzz cmin "$TARGET" --sanitizer "$sanitizer" --debug-assertions "$CORPUS" >/dev/null 2>&1 ||
    say "warning: cmin failed; the corpus is left as it is"
after=$(find "$CORPUS" -type f | wc -l)
bytes=$(du -sb "$CORPUS" | cut -f1)

grep -E '^#[0-9]+.*(pulse|DONE)' "$log" | tail -n 5 || true
runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | awk '{s += $NF} END {if (NR) print s}' || true)
echo
say "time: $seconds s; executions: ${runs:-unknown}; corpus: $before -> $after inputs, $bytes bytes"
crashes=$(find "$ARTIFACTS" -type f | wc -l)
if ((status != 0 || crashes > 0)); then
    say "FINDINGS: libFuzzer exited with $status; inputs in $ARTIFACTS: $crashes"
    grep -E 'panicked at|SUMMARY|deadly signal|Test unit written' "$log" | head -n 20 || true
    exit 1
fi
if ((bytes > CORPUS_LIMIT_BYTES)); then
    say "warning: the corpus is over 2 MB; consider FUZZ_MAX_LEN smaller before committing it"
fi
say "no findings"
