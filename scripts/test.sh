#!/usr/bin/env bash
# The full test suite, both tiers: the fast one (formatting, clippy, unit tests: no root
# needed, scripts/test-fast.sh) and the privileged one (root-only unit tests, integration
# tests, the black-box suites driving berthd with the real docker CLI and with berth, fuzzing,
# the quickstart: scripts/test-privileged.sh). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if [ "$(id -u)" != 0 ]; then echo "the test suite needs root (namespaces, mounts, cgroups)" >&2; exit 1; fi
if [ ! -x /usr/local/bin/docker ]; then
  echo "the black-box suite needs the docker CLI 28.x at /usr/local/bin/docker (client only)" >&2; exit 1
fi
scripts/test-fast.sh
scripts/test-privileged.sh
