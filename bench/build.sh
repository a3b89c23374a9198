#!/usr/bin/env bash
# Side-by-side build benchmark: a cold build (empty cache) and a warm rebuild (everything
# cached) of the same Dockerfile with berth and, when a dockerd is available, Docker's legacy
# builder (DOCKER_BUILDKIT=0, which is what the docker CLI uses without buildx), in one run.
#
#   bench/build.sh [N]      N warm rebuilds each (median reported, default 5); needs root
#
# BERTH_PROFILE=debug uses target/debug (default: release); BERTH_SKIP_BUILD=1 skips cargo build. Docker is measured only when
# DOCKERD_HOST is set or /usr/sbin/dockerd exists (a private dockerd is started then).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5}
profile=${BERTH_PROFILE:-release}
if [ -n "${BERTH_SKIP_BUILD:-}" ]; then
  : # use the binaries as they are
elif [ "$profile" = release ]; then
  cargo build --release --bins >/dev/null 2>&1 || cargo build --release --bins
else
  cargo build --bins >/dev/null 2>&1 || cargo build --bins
fi
bin=target/$profile
root=$(mktemp -d /var/tmp/berth-bench-build.XXXX)
sock=$root/berth.sock
cleanup() {
  [ -n "${dockerd_pid:-}" ] && kill "$dockerd_pid" 2>/dev/null || true
  [ -f "$root/berthd.pid" ] && kill "$(cat "$root/berthd.pid")" 2>/dev/null || true
  sleep 1
  grep " $root" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$root"
  ip link del bbuild0 2>/dev/null || true
  nft delete table ip berth_bbuild0 2>/dev/null || true
  for d in /sys/fs/cgroup/*/berth-bench-build /sys/fs/cgroup/berth-bench-build; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}
trap cleanup EXIT
"$bin/berthd" --data-root "$root/data" --exec-root "$root/exec" -H "unix://$sock" \
  --pidfile "$root/berthd.pid" --cgroup-parent berth-bench-build --bridge bbuild0 --bip 10.247.0.1/24 \
  >"$root/berthd.log" 2>&1 &
for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.1; done
python3 scripts/make-busybox-image.py "$root/busybox.tar" >/dev/null
BERTH_HOST=unix://$sock "$bin/berth" load -q -i "$root/busybox.tar" >/dev/null

# The workload: several RUN steps, COPYs of a few hundred files, config steps, two stages.
ctx=$root/ctx
mkdir -p "$ctx/src"
for i in $(seq 1 300); do head -c 2048 /dev/urandom | base64 >"$ctx/src/f$i.txt"; done
cat >"$ctx/Dockerfile" <<'DF'
FROM busybox AS build
WORKDIR /work
COPY src/ /work/src/
RUN cat src/*.txt | wc -c > /work/total && mkdir -p /out && cp -r src /out/
RUN for i in 1 2 3 4 5 6 7 8 9 10; do echo line $i >> /work/log; done
FROM busybox
ENV APP=bench
LABEL bench=yes
COPY --from=build /out /app
COPY --from=build /work/total /app/total
RUN ls /app/src | wc -l > /app/count
WORKDIR /app
CMD ["cat", "/app/count"]
DF

ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:int((a[NR/2]+a[NR/2+1])/2)}'; }

measure() { # name, cli...
  local name=$1; shift
  local cold warm
  cold=$(ms "$@" build --no-cache -t bench:1 "$ctx")
  "$@" build -t bench:1 "$ctx" >/dev/null 2>&1
  warm=$(for _ in $(seq 1 "$N"); do ms "$@" build -t bench:1 "$ctx"; done | median)
  echo "$name cold build: ${cold} ms, warm (all cached) rebuild: median ${warm} ms over $N"
  eval "${name}_cold=$cold ${name}_warm=$warm"
}

measure berth env BERTH_HOST="unix://$sock" "$bin/berth"

dsock=${DOCKERD_HOST:-}
if [ -z "$dsock" ] && [ -x /usr/sbin/dockerd ]; then
  dsock=unix://$root/docker.sock
  /usr/sbin/dockerd -H "$dsock" --data-root "$root/docker" --exec-root "$root/docker-exec" \
    --pidfile "$root/docker.pid" --bridge none --iptables=false --ip6tables=false >"$root/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 1 200); do DOCKER_HOST=$dsock docker version >/dev/null 2>&1 && break; sleep 0.1; done
fi
if [ -n "$dsock" ]; then
  DOCKER_HOST=$dsock docker load -q -i "$root/busybox.tar" >/dev/null
  measure docker env DOCKER_HOST="$dsock" DOCKER_BUILDKIT=0 docker
  awk -v bc="$berth_cold" -v dc="$docker_cold" -v bw="$berth_warm" -v dw="$docker_warm" 'BEGIN {
    printf "cold berth/docker: %.2f (target <= 1)\nwarm berth/docker: %.2f (target <= 0.5)\n", bc/dc, bw/dw }'
else
  echo "docker: no dockerd available (install docker.io or set DOCKERD_HOST) — berth numbers only"
fi
