#!/usr/bin/env bash
# Quickstart on a fresh Debian machine (as root): installs what berth needs, builds it, starts
# berthd, makes a busybox image from the host's static busybox and runs a container.
#
#   BERTH_PROFILE=debug|release     build profile (default release)
#   BERTH_QUICKSTART_ROOT=DIR       keep socket, data and exec roots under DIR instead of the
#                                   defaults (/run/berth/berth.sock, /var/lib/berth, /run/berth),
#                                   with cgroup parent berth-quickstart
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
if ! command -v cargo >/dev/null; then
  echo "cargo not found: install the Rust toolchain first (rustup)" >&2; exit 1
fi
profile=${BERTH_PROFILE:-release}
if [ "$profile" = release ]; then cargo build --release --bins; else cargo build --bins; fi
bin=target/$profile
if [ -n "${BERTH_QUICKSTART_ROOT:-}" ]; then
  root=$BERTH_QUICKSTART_ROOT
  sock=$root/berth.sock
  args=(--data-root "$root/data" --exec-root "$root/exec" -H "unix://$sock" --pidfile "$root/berthd.pid"
        --cgroup-parent berth-quickstart --bridge bqs0 --bip 10.254.254.1/24)
  log=$root/berthd.log
else
  sock=/run/berth/berth.sock
  args=()
  log=/var/log/berthd.log
fi
mkdir -p "$(dirname "$sock")" "$(dirname "$log")"
export BERTH_HOST=unix://$sock
if ! "$bin/berth" version >/dev/null 2>&1; then
  echo "starting berthd (log: $log)"
  nohup "$bin/berthd" "${args[@]}" >>"$log" 2>&1 &
  for _ in $(seq 1 100); do "$bin/berth" version >/dev/null 2>&1 && break; sleep 0.1; done
fi
if ! "$bin/berth" image inspect busybox >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  python3 scripts/make-busybox-image.py "$tmp/busybox.tar" >/dev/null
  "$bin/berth" load -i "$tmp/busybox.tar"
  rm -rf "$tmp"
fi
"$bin/berth" run --rm busybox echo hello from berth
