#!/usr/bin/env bash
# The fast tier: formatting, lints and the unit tests. Needs no root, no kernel features, no
# daemon: runs as any user who can build the workspace (the build dependencies come from
# scripts/install-deps.sh, run once as root). Unit tests that need root are `#[ignore]`d
# ("needs root") and run in the privileged tier (scripts/test-privileged.sh).
#
# Same profile and flags as the privileged tier, so scripts/test.sh compiles nothing twice:
# this tier builds the unit-test binaries, that one reuses them and adds the integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
echo "== rustfmt"; cargo fmt --all --check
echo "== clippy"; cargo clippy --workspace --all-targets -- -D warnings
echo "== unit tests"; cargo test --workspace --lib --bins -- --test-threads=4
echo "== doc tests"; cargo test --workspace --doc
