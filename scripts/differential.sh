#!/usr/bin/env bash
# The differential check: replays tests/differential's corpus of Engine API requests against a
# private berthd and a private dockerd 20.10 (Debian's docker.io) started here, and compares
# their answers (see tests/differential/differ.py). Prints the differences grouped by endpoint
# and exits 1 when one is not in tests/differential/allow-list.txt.
#
#   scripts/differential.sh [--only GLOB] [--verbose]      (root; slow; not part of scripts/test.sh)
#
# Both daemons are private: their own data root, exec root, socket, pidfile and cgroup parent
# under /var/tmp/berth-diff-$$, their own bridges (dockerd gets a bridge made here with -b, never
# --bridge=none, which would delete a system Docker's docker0) and no iptables rules
# (--iptables=false --ip6tables=false); berthd's nftables table is its own (berth_<bridge>).
# Everything is removed when the script ends, also on failure or ^C. BERTH_BIN_DIR picks the
# binaries (default: target/debug, built here); BERTH_SPEC_DIR the Engine API specs (default:
# ../shared/spec next to the repository).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

if [ "$(id -u)" != 0 ]; then echo "differential.sh needs root" >&2; exit 2; fi
if [ ! -x /usr/sbin/dockerd ]; then
  echo "differential.sh needs dockerd 20.10 at /usr/sbin/dockerd (apt-get install docker.io; its service need not run)" >&2
  exit 2
fi
for tool in python3 ip nft; do
  command -v "$tool" >/dev/null || { echo "differential.sh needs $tool" >&2; exit 2; }
done
python3 -c 'import yaml' 2>/dev/null || echo "note: no python3-yaml: berth-only requests are not checked against the spec" >&2

# One run at a time: the bridges and subnets below are fixed.
exec 9>/var/tmp/berth-differential.lock
flock -n 9 || { echo "another differential run holds /var/tmp/berth-differential.lock" >&2; exit 2; }

bindir=${BERTH_BIN_DIR:-$repo/target/debug}
if [ -z "${BERTH_BIN_DIR:-}" ]; then
  cargo build --quiet --bins
fi
spec_dir=${BERTH_SPEC_DIR:-$repo/../shared/spec}

root=/var/tmp/berth-diff-$$
dbr=bdiffd0      # dockerd's default bridge, made here
dbip=172.31.91.1/24
bbr=bdiffb0      # berthd's default bridge (berthd makes it)
bbip=172.31.92.1/24
bcg=berth-diff-$$
dcg=docker-diff-$$
dpid=
bpid=

cleanup() {
  set +e
  # berthd's containers and shims outlive berthd: remove them through the API first.
  if [ -n "$bpid" ] && kill -0 "$bpid" 2>/dev/null; then
    for id in $(DOCKER_HOST=unix://$root/berth.sock timeout 30 docker ps -aq 2>/dev/null); do
      DOCKER_HOST=unix://$root/berth.sock timeout 30 docker rm -f "$id" >/dev/null 2>&1
    done
    kill "$bpid"; wait "$bpid" 2>/dev/null
  fi
  for f in "$root"/berth-exec/containers/*/shim.pid; do
    [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
  done
  if [ -n "$dpid" ] && kill -0 "$dpid" 2>/dev/null; then
    for id in $(DOCKER_HOST=unix://$root/docker.sock timeout 30 docker ps -aq 2>/dev/null); do
      DOCKER_HOST=unix://$root/docker.sock timeout 30 docker rm -f "$id" >/dev/null 2>&1
    done
    kill "$dpid"
    for _ in $(seq 1 100); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$dpid" 2>/dev/null; wait "$dpid" 2>/dev/null
  fi
  # Processes still in either daemon's cgroups (none, normally), then the cgroups.
  for cg in "$bcg" "$dcg"; do
    for d in /sys/fs/cgroup/*/"$cg" /sys/fs/cgroup/"$cg"; do
      [ -d "$d" ] || continue
      find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null
      sleep 0.2
      find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
    done
  done
  # Bridges: dockerd's, berthd's and those of networks either created (br-*, berth's names).
  for br in "$dbr" "$bbr" $(ls "$root"/berth-exec/network/bridges 2>/dev/null); do
    if [ -d "/sys/class/net/$br" ]; then
      for p in $(ls "/sys/class/net/$br/brif" 2>/dev/null); do ip link del "$p" 2>/dev/null; done
      ip link del "$br" 2>/dev/null
    fi
  done
  nft delete table ip "berth_$bbr" 2>/dev/null
  nft delete table ip6 "berth_$bbr" 2>/dev/null
  scripts/unmount-under.sh "$root"
  rm -rf "$root"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$root"
python3 scripts/make-busybox-image.py "$root/busybox.tar" >/dev/null

ip link add "$dbr" type bridge
ip addr add "$dbip" dev "$dbr"
ip link set "$dbr" up
/usr/sbin/dockerd -H "unix://$root/docker.sock" --data-root "$root/docker-data" --exec-root "$root/docker-exec" \
  --pidfile "$root/docker.pid" --cgroup-parent "$dcg" -b "$dbr" --iptables=false --ip6tables=false \
  >"$root/dockerd.log" 2>&1 &
dpid=$!
"$bindir/berthd" -H "unix://$root/berth.sock" --data-root "$root/berth-data" --exec-root "$root/berth-exec" \
  --pidfile "$root/berthd.pid" --cgroup-parent "$bcg" --bridge "$bbr" --bip "$bbip" \
  >"$root/berthd.log" 2>&1 &
bpid=$!
for sock in docker berth; do
  ok=
  for _ in $(seq 1 300); do
    if DOCKER_HOST=unix://$root/$sock.sock docker version >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.2
  done
  if [ -z "$ok" ]; then
    echo "$sock daemon did not come up:" >&2
    tail -20 "$root/${sock}d.log" >&2
    exit 2
  fi
  DOCKER_HOST=unix://$root/$sock.sock docker load -q -i "$root/busybox.tar" >/dev/null
done

set +e
DIFF_BUSYBOX_TAR="$root/busybox.tar" python3 tests/differential/differ.py \
  --berth "$root/berth.sock" --docker "$root/docker.sock" --spec-dir "$spec_dir" \
  --summary "$root/summary.json" "$@"
rc=$?
set -e
if [ -n "${BERTH_DIFF_SUMMARY:-}" ]; then cp "$root/summary.json" "$BERTH_DIFF_SUMMARY"; fi
exit $rc
