#!/bin/sh
# The crash-consistency soak on demand (issue 16): workers drive a private berthd with the
# docker CLI while it is SIGKILLed at random points; after each restart every acknowledged
# create must exist and every acknowledged delete be gone. CI runs it for 40 s
# (tests/tests/soak.rs); this runs it longer.
#
#   scripts/soak.sh [SECONDS] [WORKERS]      (as root; defaults: 600 s, 4 workers)
set -eu
cd "$(dirname "$0")/.."
export BERTH_SOAK_SECONDS="${1:-600}"
export BERTH_SOAK_WORKERS="${2:-4}"
export CARGO_INCREMENTAL=0
cargo build --quiet --bins
exec cargo test --quiet -p berth-tests --test soak -- --nocapture
