#!/usr/bin/env bash
# Builds the coverage-guided fuzz targets (libFuzzer through libfuzzer-sys) on the stable
# toolchain and runs each one for a bounded time, starting from its seed corpus.
#
#   fuzz/run.sh                 every target, 20 s each (what CI runs)
#   fuzz/run.sh 600 pkcs12 pem  ten minutes each for two targets
#
# cargo-fuzz is not needed: the instrumentation it asks rustc for (SanitizerCoverage) is
# available on stable through -C flags; only the sanitizers need nightly, and these targets
# run without them (Rust code is memory safe; the aim is panics, hangs and blow-ups). New
# inputs collect under fuzz/target/corpus/; a crash, timeout or out-of-memory input is written
# to fuzz/artifacts/TARGET/ and the script fails. Copy such an input to fuzz/regressions/TARGET/
# once fixed: tests/fuzz_corpora.rs replays every one on each test run.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-20}
shift || true
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  targets=(bearer_token jwks discovery www_authenticate pem pkcs12 msal_cache token_response key_vault)
fi

host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module \
  -Cllvm-args=-sanitizer-coverage-level=4 \
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
  -Cllvm-args=-sanitizer-coverage-pc-table \
  -Cllvm-args=-sanitizer-coverage-trace-compares \
  --cfg fuzzing"
# --target keeps the instrumentation off build scripts and proc macros.
cargo build --release --locked --target "$host" --bins

for target in "${targets[@]}"; do
  mkdir -p "target/corpus/$target" "artifacts/$target"
  echo "== fuzz $target for ${seconds}s"
  "target/$host/release/$target" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="artifacts/$target/" -print_final_stats=1 \
    "target/corpus/$target" "corpus/$target" 2>&1 | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::new_units_added|==[0-9]+== ERROR|SUMMARY)" || true
  # libFuzzer exits non-zero on a finding; the pipe above hides that, the artifacts do not.
  if [ -n "$(ls -A "artifacts/$target")" ]; then
    echo "fuzz/$target found an input that fails: fuzz/artifacts/$target/" >&2
    ls -l "artifacts/$target" >&2
    exit 1
  fi
done
