#!/usr/bin/env bash
# Runs the quickstart in a private root and checks that it prints "hello from berth", then stops
# the daemon it started and removes everything it made.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${BERTH_QUICKSTART_ROOT:?set BERTH_QUICKSTART_ROOT}
cleanup() {
  if [ -f "$root/berthd.pid" ]; then kill "$(cat "$root/berthd.pid")" 2>/dev/null || true; sleep 0.5; fi
  scripts/unmount-under.sh "$root"
  rm -rf "$root"
  ip link del bqs0 2>/dev/null || true
  nft delete table ip berth_bqs0 2>/dev/null || true
  for d in /sys/fs/cgroup/*/berth-quickstart /sys/fs/cgroup/berth-quickstart; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}
trap cleanup EXIT
cleanup
mkdir -p "$root"
out=$(scripts/quickstart.sh 2>&1)
echo "$out" | tail -3
echo "$out" | grep -qx "hello from berth" || { echo "quickstart did not print 'hello from berth'" >&2; exit 1; }
# berthd turns IP forwarding on, as dockerd does: no "IPv4 forwarding is disabled" warning.
if echo "$out" | grep -qi "forwarding is disabled"; then
  echo "quickstart warned about IP forwarding" >&2; exit 1
fi
echo "1 passed, 0 failed: quickstart"
