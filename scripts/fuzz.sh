#!/usr/bin/env bash
# Fuzzes the Dockerfile / .dockerignore parsers (fuzz/fuzz_targets/dockerfile.rs) for a
# bounded time with cargo-fuzz on the STABLE toolchain (CI has no nightly).
#
#   BERTH_FUZZ_SECONDS   how long to fuzz (default 60)
#   BERTH_FUZZ_TARGET    which target (default dockerfile)
#
# Why this works on stable: cargo-fuzz only needs nightly for its sanitizers
# (`-Zsanitizer=address`, the default). With `--sanitizer none` every flag it passes
# (`-Cpasses=sancov-module`, `-Cllvm-args=-sanitizer-coverage-*`, `--cfg fuzzing`) is a
# stable one, and a Rust panic still aborts and is reported as a crash, which is what we look
# for in safe code. If a future cargo-fuzz adds a `-Z` flag on that path, setting
# RUSTC_BOOTSTRAP=1 for the `cargo fuzz` command alone would be the fallback; it is not
# needed with cargo-fuzz 0.13.
#
# A crash leaves its input in fuzz/artifacts/<target>/; reproduce it with
#   cargo fuzz run --sanitizer none dockerfile fuzz/artifacts/dockerfile/crash-...
# then fix the parser and add the input as a unit test (crates/builder/src/parser_tests.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${BERTH_FUZZ_SECONDS:-60}"
target="${BERTH_FUZZ_TARGET:-dockerfile}"
toolchain=()
# Use the stable toolchain explicitly when rustup manages several (a dev machine may default
# to nightly); a plain cargo is used as is.
if command -v rustup >/dev/null 2>&1 && rustup toolchain list | grep -q '^stable'; then
  toolchain=(+stable)
fi
if ! cargo "${toolchain[@]}" fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz (once; later runs reuse it)"
  cargo "${toolchain[@]}" install cargo-fuzz --locked --quiet
fi
# The working corpus grows under fuzz/corpus (git-ignored); the checked-in seeds are read
# as a second corpus directory and never written to.
mkdir -p "fuzz/corpus/$target"
cd fuzz
cargo "${toolchain[@]}" fuzz run --sanitizer none "$target" \
  "corpus/$target" "seeds/$target" -- \
  -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1
