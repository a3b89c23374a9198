#!/usr/bin/env bash
# The full test suite: formatting, lints, unit tests, privileged integration tests and the
# black-box suites that drive berthd with the real docker CLI and with berth. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if [ "$(id -u)" != 0 ]; then echo "the test suite needs root (namespaces, mounts, cgroups)" >&2; exit 1; fi
if [ ! -x /usr/local/bin/docker ]; then
  echo "the black-box suite needs the docker CLI 28.x at /usr/local/bin/docker (client only)" >&2; exit 1
fi
export CARGO_TERM_COLOR=never
echo "== rustfmt"; cargo fmt --all --check
echo "== clippy"; cargo clippy --workspace --all-targets -- -D warnings
echo "== build"; cargo build --workspace --bins
echo "== tests"; cargo test --workspace -- --test-threads=4
echo "== fuzz"; scripts/fuzz.sh
echo "== quickstart"; BERTH_PROFILE=debug BERTH_QUICKSTART_ROOT=/var/tmp/berth-quickstart-ci scripts/quickstart-check.sh
