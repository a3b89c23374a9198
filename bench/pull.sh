#!/usr/bin/env bash
# Pull benchmark: a ~120 MB, 5-layer image from a private docker-registry on 127.0.0.1 into an
# empty berthd and into an empty dockerd, in one run (wall time of `pull`, median of N).
#
#   bench/pull.sh [N] [SIZE_MB]     needs root, docker-registry, a release build; dockerd optional
#
# Docker is measured when /usr/sbin/dockerd exists (apt-get install docker.io) or DOCKERD_HOST
# points at one; each run starts from an empty image store (rmi + prune between runs).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-3}
SIZE=${2:-120}
[ -n "${BERTH_NO_BUILD:-}" ] || cargo build --release --bins >/dev/null 2>&1 || cargo build --release --bins
root=$(mktemp -d /var/tmp/berth-pullbench.XXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
  [ -n "${dockerd_pid:-}" ] && kill "$dockerd_pid" 2>/dev/null || true
  [ -n "${registry_pid:-}" ] && kill "$registry_pid" 2>/dev/null || true
  [ -f "$root/berthd.pid" ] && kill "$(cat "$root/berthd.pid")" 2>/dev/null || true
  sleep 1
  scripts/unmount-under.sh "$root"
  rm -rf "$root"
  ip link del bpull0 2>/dev/null || true
  nft delete table ip berth_bpull0 2>/dev/null || true
  for d in /sys/fs/cgroup/*/berth-pullbench /sys/fs/cgroup/berth-pullbench; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}
trap cleanup EXIT
cat >"$root/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $root/registry
http:
  addr: 127.0.0.1:$port
YML
/usr/bin/docker-registry serve "$root/registry.yml" >"$root/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
image=127.0.0.1:$port/bench/big:1
python3 bench/make-pull-image.py "127.0.0.1:$port" bench/big:1 "$SIZE" 5

sock=$root/berth.sock
target/release/berthd --data-root "$root/data" --exec-root "$root/exec" -H "unix://$sock" \
  --pidfile "$root/berthd.pid" --cgroup-parent berth-pullbench --bridge bpull0 --bip 10.248.0.1/24 \
  -l 'info,berth_registry::pull=debug' >"$root/berthd.log" 2>&1 &
for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.1; done

median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }
time_s() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo "scale=3; ($e - $s) / 1000000000" | bc; }

btimes=()
for _ in $(seq 1 "$N"); do
  btimes+=("$(time_s target/release/berth -H "unix://$sock" pull -q "$image")")
  target/release/berth -H "unix://$sock" run --rm --network none "$image" true
  target/release/berth -H "unix://$sock" rmi -f "$image" >/dev/null
done
berth_s=$(printf '%s\n' "${btimes[@]}" | median)
echo "berth  pull ($SIZE MB, 5 layers, empty store): median ${berth_s} s over $N runs (${btimes[*]})"
# Where the last pull's time went, per layer: its download (into a temp file, verified), its
# unpack (decompress + verify + unpack), which reads the download as it is written, and the
# fsync of the download, kept as the layer's blob.
echo "stages of the last berth pull (per layer: download from the layer's start, unpack from its unpacker's, sync of the kept download):"
grep -aE 'layer downloaded|layer unpacked|layer synced|image pulled' "$root/berthd.log" | tail -16 \
  | sed -E 's/\x1b\[[0-9;]*m//g; s/^.*(layer downloaded|layer unpacked|layer synced|image pulled)/  \1/'

dsock=${DOCKERD_HOST:-}
if [ -z "$dsock" ] && [ -x /usr/sbin/dockerd ]; then
  dsock=unix://$root/docker.sock
  /usr/sbin/dockerd -H "$dsock" --data-root "$root/docker" --exec-root "$root/docker-exec" \
    --pidfile "$root/docker.pid" --bridge none --iptables=false --ip6tables=false >"$root/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 1 200); do DOCKER_HOST=$dsock docker version >/dev/null 2>&1 && break; sleep 0.1; done
fi
if [ -n "$dsock" ]; then
  dtimes=()
  for _ in $(seq 1 "$N"); do
    dtimes+=("$(DOCKER_HOST=$dsock time_s docker pull -q "$image")")
    DOCKER_HOST=$dsock docker rmi -f "$image" >/dev/null
  done
  docker_s=$(printf '%s\n' "${dtimes[@]}" | median)
  echo "docker pull ($SIZE MB, 5 layers, empty store): median ${docker_s} s over $N runs (${dtimes[*]})"
  awk -v b="$berth_s" -v d="$docker_s" 'BEGIN {printf "speedup docker/berth: %.2fx (target >= 3)\n", d/b}'
else
  echo "docker: no dockerd available (install docker.io or set DOCKERD_HOST) — berth numbers only"
fi
