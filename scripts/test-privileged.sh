#!/usr/bin/env bash
# The privileged tier: the unit tests that need root, the integration tests (each starts its
# own berthd), the black-box suites driving berthd with the real docker CLI and with berth,
# fuzzing and the quickstart. Run as root, after scripts/test-fast.sh (scripts/test.sh runs
# both), whose unit-test binaries it reuses.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "the privileged tier needs root (namespaces, mounts, cgroups)" >&2; exit 1; fi
if [ ! -x /usr/local/bin/docker ]; then
  echo "the black-box suite needs the docker CLI 28.x at /usr/local/bin/docker (client only)" >&2; exit 1
fi
export CARGO_TERM_COLOR=never
echo "== build"; cargo build --workspace --bins
echo "== unit tests that need root"; cargo test --workspace --lib --bins -- --ignored --test-threads=4
echo "== integration tests"; cargo test --workspace --test '*' -- --test-threads=4
echo "== fuzz"; scripts/fuzz.sh
echo "== quickstart"; BERTH_PROFILE=debug BERTH_QUICKSTART_ROOT=/var/tmp/berth-quickstart-ci scripts/quickstart-check.sh
