#!/usr/bin/env bash
# Side-by-side build benchmark: a cold build (empty cache) and a warm rebuild (everything
# cached) of the same Dockerfiles with berth and, when a dockerd is available, Docker's legacy
# builder (DOCKER_BUILDKIT=0, which is what the docker CLI uses without buildx), in one run.
#
# Two workloads:
#   classic  a two-stage Dockerfile (300 context files, 3 RUN, 4 COPY incl. two COPY --from)
#   modern   BuildKit syntax: two independent 1-second stages (berth runs them in parallel)
#            and a RUN --mount=type=cache step that fills its cache once (2 s) and reuses it.
#            Docker 20.10's legacy builder has no RUN --mount: it builds the same Dockerfile
#            with the --mount flags removed (so it does the cache's work every cold build).
#            Its cold build is timed twice: the first (empty cache mounts) and a --no-cache
#            rebuild (cache mounts warm).
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
  scripts/unmount-under.sh "$root"
  rm -rf "$root"
  ip link del bbuild0 2>/dev/null || true
  ip link del bbdock0 2>/dev/null || true
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

# The modern workload (BuildKit syntax) and its --mount-less twin for Docker's legacy builder.
mctx=$root/mctx
mkdir -p "$mctx/src"
for i in $(seq 1 50); do head -c 1024 /dev/urandom | base64 >"$mctx/src/f$i.txt"; done
cat >"$mctx/Dockerfile" <<'DF'
# syntax=docker/dockerfile:1
FROM busybox AS deps
RUN sleep 1 && mkdir /deps && seq 1 20000 > /deps/list
FROM busybox AS assets
COPY src/ /assets/
RUN sleep 1 && cat /assets/*.txt | md5sum > /assets.sum
FROM busybox
COPY --from=deps /deps /app/deps
COPY --from=assets /assets.sum /app/
RUN --mount=type=cache,target=/cache \
    if [ ! -f /cache/warm ]; then sleep 2 && head -c 4000000 /dev/zero > /cache/warm; fi && \
    wc -c < /cache/warm > /app/cache-size
CMD ["cat", "/app/cache-size"]
DF
# Without the mount, the legacy builder keeps the cache in a directory of the step (removed
# at its end, so both images have the same files).
sed -e 's|--mount=type=cache,target=/cache |mkdir -p /cache \&\& |' \
  -e 's|> /app/cache-size|> /app/cache-size \&\& rm -rf /cache|' "$mctx/Dockerfile" >"$mctx/Dockerfile.legacy"

# Milliseconds a command takes; a failed build stops the benchmark (a failure is not a time).
ms() {
  local s e
  s=$(date +%s%N)
  "$@" >"$root/last.log" 2>&1 || { echo "failed: $*" >&2; tail -5 "$root/last.log" >&2; return 1; }
  e=$(date +%s%N)
  echo $(( (e - s) / 1000000 ))
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2)?a[(NR+1)/2]:int((a[NR/2]+a[NR/2+1])/2)}'; }

measure() { # name, context, dockerfile, cli...
  local name=$1 dir=$2 file=$3; shift 3
  local cold cold2 warm
  cold=$(ms "$@" build --no-cache -f "$dir/$file" -t "bench-$name:1" "$dir")
  cold2=$(ms "$@" build --no-cache -f "$dir/$file" -t "bench-$name:1" "$dir")
  "$@" build -f "$dir/$file" -t "bench-$name:1" "$dir" >/dev/null 2>&1
  warm=$(for _ in $(seq 1 "$N"); do ms "$@" build -f "$dir/$file" -t "bench-$name:1" "$dir"; done | median)
  echo "$name: cold ${cold} ms, --no-cache again ${cold2} ms, warm (all cached) median ${warm} ms over $N"
  eval "${name}_cold=$cold ${name}_cold2=$cold2 ${name}_warm=$warm"
}

berth_cli=(env BERTH_HOST="unix://$sock" "$bin/berth")
measure berth_classic "$ctx" Dockerfile "${berth_cli[@]}"
measure berth_modern "$mctx" Dockerfile "${berth_cli[@]}"

dsock=${DOCKERD_HOST:-}
if [ -z "$dsock" ] && [ -x /usr/sbin/dockerd ]; then
  dsock=unix://$root/docker.sock
  # A private dockerd on a bridge of its own (never --bridge=none: its containers need one).
  ip link add bbdock0 type bridge
  ip addr add 10.248.0.1/24 dev bbdock0
  ip link set bbdock0 up
  /usr/sbin/dockerd -H "$dsock" --data-root "$root/docker" --exec-root "$root/docker-exec" \
    --pidfile "$root/docker.pid" -b bbdock0 --iptables=false --ip6tables=false >"$root/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 1 200); do DOCKER_HOST=$dsock docker version >/dev/null 2>&1 && break; sleep 0.1; done
fi
if [ -n "$dsock" ]; then
  DOCKER_HOST=$dsock docker load -q -i "$root/busybox.tar" >/dev/null
  docker_cli=(env DOCKER_HOST="$dsock" DOCKER_BUILDKIT=0 docker)
  measure docker_classic "$ctx" Dockerfile "${docker_cli[@]}"
  measure docker_modern "$mctx" Dockerfile.legacy "${docker_cli[@]}"
  for w in classic modern; do
    eval "bc=\$berth_${w}_cold bc2=\$berth_${w}_cold2 bw=\$berth_${w}_warm dc=\$docker_${w}_cold dc2=\$docker_${w}_cold2 dw=\$docker_${w}_warm"
    awk -v w="$w" -v bc="$bc" -v bc2="$bc2" -v bw="$bw" -v dc="$dc" -v dc2="$dc2" -v dw="$dw" 'BEGIN {
      printf "%s berth/docker: cold %.2f, --no-cache again %.2f, warm %.2f\n", w, bc/dc, bc2/dc2, bw/dw }'
  done
else
  echo "docker: no dockerd available (install docker.io or set DOCKERD_HOST) — berth numbers only"
fi
