#!/usr/bin/env bash
# Side-by-side benchmark: `berth run --rm busybox true` against `docker run --rm` with the same
# image, in one run: with `--network none` and on each engine's default bridge; the docker CLI
# driving each daemon (what most users run); 20 such runs started at once (wall time until all
# are done). Also reports idle berthd RSS and per-container shim RSS. The bridges are private to the benchmark (`bbench0`,
# 10.250.0.0/24 for berth; `dbench0`, 10.249.0.0/24 for the private dockerd) and removed after.
#
#   bench/run.sh [N]       N runs each (default 20); needs root and a release build
#
# BERTH_BENCH_FAVORDYNMODS=1 starts berthd with --cgroup-favordynmods (a host-wide kernel setting
# that applies to dockerd too, and on Linux 6.18+ stays in effect until reboot); the script says
# whether the host's cgroup mounts had it during the run.
#
# Docker is measured only when a dockerd is available: set DOCKERD_HOST to its socket, or have
# /usr/sbin/dockerd installed (apt-get install docker.io), in which case a private dockerd is started.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
[ -n "${BERTH_NO_BUILD:-}" ] || cargo build --release --bins >/dev/null 2>&1 || cargo build --release --bins
root=$(mktemp -d /var/tmp/berth-bench.XXXX)
# Exec roots on a tmpfs, as the defaults are in a real deployment (/run/berth, /var/run/docker,
# /run/containerd: systemd mounts /run as tmpfs): runtime state is not meant to reach the disk.
# Mounted here because some machines (this VM) have /run on the root disk.
xroot=$(mktemp -d /run/berth-bench.XXXX)
mount -t tmpfs -o mode=0711 berth-bench "$xroot"
sock=$root/berth.sock
cleanup() {
  [ -n "${dockerd_pid:-}" ] && kill "$dockerd_pid" 2>/dev/null || true
  [ -f "$root/berthd.pid" ] && kill "$(cat "$root/berthd.pid")" 2>/dev/null || true
  sleep 1
  scripts/unmount-under.sh "$root" "$xroot"
  umount -l "$xroot" 2>/dev/null || true
  rm -rf "$root" "$xroot"
  ip link del bbench0 2>/dev/null || true
  ip link del dbench0 2>/dev/null || true
  nft delete table ip berth_bbench0 2>/dev/null || true
  for d in /sys/fs/cgroup/*/berth-bench /sys/fs/cgroup/berth-bench; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}
trap cleanup EXIT
favor=()
[ "${BERTH_BENCH_FAVORDYNMODS:-}" = 1 ] && favor=(--cgroup-favordynmods)
target/release/berthd "${favor[@]}" --data-root "$root/data" --exec-root "$xroot/exec" -H "unix://$sock" \
  --pidfile "$root/berthd.pid" --cgroup-parent berth-bench --bridge bbench0 --bip 10.250.0.1/24 \
  >"$root/berthd.log" 2>&1 &
for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.1; done
export BERTH_HOST=unix://$sock
python3 scripts/make-busybox-image.py "$root/busybox.tar" >/dev/null
target/release/berth load -q -i "$root/busybox.tar" >/dev/null

parallel_ms() { # command... → median over 5 rounds of the wall time of 20 concurrent runs
  local times=()
  for _ in 1 2 3 4 5; do
    local s e
    s=$(date +%s%N)
    for _ in $(seq 1 20); do "$@" >/dev/null 2>&1 & done
    wait
    e=$(date +%s%N)
    times+=($(( (e - s) / 1000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[3]/1000}'
}

median_ms() { # command... → median wall time in ms over N runs
  local times=()
  for _ in $(seq 1 "$N"); do
    local s e
    s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N)
    times+=($(( (e - s) / 1000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1000}'
}

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
pss_kb() { awk '/^Pss:/ {s+=$2} END {print s}' "/proc/$1/smaps_rollup" 2>/dev/null || echo "?"; }

berth_ms=$(median_ms target/release/berth run --rm --network none busybox true)
if grep -Eq ' - cgroup2? [^ ]+ [^ ]*favordynmods' /proc/self/mountinfo; then
  echo "cgroup favordynmods: on (host-wide: dockerd's runs have it too)"
else
  echo "cgroup favordynmods: off (start berthd with --cgroup-favordynmods: BERTH_BENCH_FAVORDYNMODS=1)"
fi
echo "berth  run --rm --network none busybox true: median ${berth_ms} ms over $N runs"
berth_br_ms=$(median_ms target/release/berth run --rm busybox true)
echo "berth  run --rm busybox true (default bridge): median ${berth_br_ms} ms over $N runs"
# The docker CLI against berthd: the user-facing number.
dcli_ms=$(DOCKER_HOST=unix://$sock median_ms docker run --rm --network none busybox true)
echo "docker CLI -> berthd: run --rm --network none busybox true: median ${dcli_ms} ms over $N runs"
dcli_br_ms=$(DOCKER_HOST=unix://$sock median_ms docker run --rm busybox true)
echo "docker CLI -> berthd: run --rm busybox true (default bridge): median ${dcli_br_ms} ms over $N runs"
par_ms=$(DOCKER_HOST=unix://$sock parallel_ms docker run --rm --network none busybox true)
echo "docker CLI -> berthd: 20 x run --rm --network none busybox true at once: median wall ${par_ms} ms over 5 rounds"
# What the docker CLI costs by itself, before any daemon answers: its Go start-up and flag
# parsing (`--version` talks to no daemon). No daemon can make a docker-CLI run faster.
dfloor_ms=$(median_ms docker --version)
echo "docker CLI alone (docker --version, no daemon): median ${dfloor_ms} ms over $N runs"
dpfloor_ms=$(parallel_ms docker --version)
echo "docker CLI alone, 20 at once: median wall ${dpfloor_ms} ms over 5 rounds"
berthd_pid=$(cat "$root/berthd.pid")
# Idle: berthd hands back what the runs above left (free heap, code page mappings) after its
# first quiet second; measured once it has had that second.
sleep 3
echo "idle berthd RSS: $(rss_kb "$berthd_pid") kB (PSS $(pss_kb "$berthd_pid") kB)"
# With several containers the shims share the binary's pages: PSS is each one's fair share.
cids=()
for _ in 1 2 3 4 5; do cids+=("$(target/release/berth run -d --network none busybox sleep 60)"); done
sleep 0.5
shim_pid=$(cat "$xroot/exec/containers/${cids[0]}/shim.pid")
echo "shim per running container (5 running): RSS $(rss_kb "$shim_pid") kB, PSS $(pss_kb "$shim_pid") kB, private dirty $(awk '/^Private_Dirty:/ {s+=$2} END {print s}' "/proc/$shim_pid/smaps_rollup") kB"
target/release/berth rm -f "${cids[@]}" >/dev/null

dsock=${DOCKERD_HOST:-}
if [ -z "$dsock" ] && [ -x /usr/sbin/dockerd ]; then
  dsock=unix://$root/docker.sock
  # dockerd's default bridge, private to the benchmark (no iptables rules: the setup cost of
  # veth + address is what is compared).
  ip link add dbench0 type bridge && ip addr add 10.249.0.1/24 dev dbench0 && ip link set dbench0 up
  /usr/sbin/dockerd -H "$dsock" --data-root "$root/docker" --exec-root "$xroot/docker-exec" \
    --pidfile "$root/docker.pid" --bridge dbench0 --iptables=false --ip6tables=false >"$root/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 1 200); do DOCKER_HOST=$dsock docker version >/dev/null 2>&1 && break; sleep 0.1; done
fi
if [ -n "$dsock" ]; then
  DOCKER_HOST=$dsock docker load -q -i "$root/busybox.tar" >/dev/null
  docker_ms=$(DOCKER_HOST=$dsock median_ms docker run --rm --network none busybox true)
  echo "docker run --rm --network none busybox true: median ${docker_ms} ms over $N runs"
  awk -v b="$berth_ms" -v d="$docker_ms" 'BEGIN {printf "ratio berth/docker (none): %.3f (target <= 0.1)\n", b/d}'
  docker_br_ms=$(DOCKER_HOST=$dsock median_ms docker run --rm busybox true)
  echo "docker run --rm busybox true (default bridge): median ${docker_br_ms} ms over $N runs"
  awk -v b="$berth_br_ms" -v d="$docker_br_ms" 'BEGIN {printf "ratio berth/docker (bridge): %.3f (target <= 0.1)\n", b/d}'
  awk -v b="$dcli_ms" -v d="$docker_ms" 'BEGIN {printf "ratio with the docker CLI driving both (none): %.3f (target <= 0.1)\n", b/d}'
  awk -v b="$dcli_br_ms" -v d="$docker_br_ms" 'BEGIN {printf "ratio with the docker CLI driving both (bridge): %.3f (target <= 0.1)\n", b/d}'
  awk -v f="$dfloor_ms" -v d="$docker_ms" -v e="$docker_br_ms" 'BEGIN {printf "floor of those ratios (the docker CLI alone / docker CLI -> dockerd): %.3f (none) / %.3f (bridge)\n", f/d, f/e}'
  dpar_ms=$(DOCKER_HOST=$dsock parallel_ms docker run --rm --network none busybox true)
  echo "docker CLI -> dockerd: 20 x run --rm --network none busybox true at once: median wall ${dpar_ms} ms over 5 rounds"
  awk -v b="$par_ms" -v d="$dpar_ms" 'BEGIN {printf "ratio 20 parallel runs (docker CLI, none): %.3f (target <= 0.1)\n", b/d}'
  awk -v f="$dpfloor_ms" -v d="$dpar_ms" 'BEGIN {printf "floor of that ratio (20 x the docker CLI alone / 20 x docker CLI -> dockerd): %.3f\n", f/d}'
else
  echo "docker: no dockerd available (install docker.io or set DOCKERD_HOST) — berth numbers only"
fi
