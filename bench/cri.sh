#!/usr/bin/env bash
# The CRI side by side: berthd against containerd's built-in CRI plugin, in one run, driven by
# the same client (tests/src/bin/cri-bench.rs, the generated runtime.v1 client of the tests).
# Per round: RunPodSandbox + CreateContainer + StartContainer of one busybox container until
# ContainerStatus says RUNNING ("up"), then StopPodSandbox + RemovePodSandbox ("down"); the
# medians of N rounds (one warm-up round not counted).
#
#   bench/cri.sh [N]      N rounds each (default 20); needs root, a release build of berthd and
#                         berth-shim (made here, or BERTH_RELEASE_DIR=dir holding both), and
#                         Debian's containerd, runc and containernetworking-plugins
#
# Both engines get the same CNI config list (bridge `bcribench0` + host-local 10.251.0.0/24 +
# loopback, Debian's plugins in /usr/lib/cni) and the same locally made busybox image (no
# registry). containerd is a private instance (own root, state, socket, config; nothing of a
# system containerd is touched) with `restrict_oom_score_adj = true` (this VM lacks
# CAP_SYS_RESOURCE: its sandbox's -998 would make runc fail) and a local busybox image whose
# command is `sleep` as its sandbox_image (containerd needs a pause container; berth keeps a
# pod's namespaces without one). The container asks for oom_score_adj -997 on both.
# Exec roots/state dirs are on a tmpfs, as /run is in a real deployment.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
target=${CARGO_TARGET_DIR:-target}
# BERTH_RELEASE_DIR: berthd and berth-shim already built there (else a release build here).
rel=${BERTH_RELEASE_DIR:-}
if [ -z "$rel" ]; then
  cargo build --release -p berthd -p berth-shim >/dev/null 2>&1 || cargo build --release -p berthd -p berth-shim
  rel=$target/release
fi
cargo build -p berth-tests --bin cri-bench >/dev/null 2>&1 || cargo build -p berth-tests --bin cri-bench
client=$target/debug/cri-bench
for b in containerd ctr runc; do
  command -v "$b" >/dev/null || { echo "needs $b (apt-get install containerd runc)" >&2; exit 1; }
done
[ -x /usr/lib/cni/bridge ] || { echo "needs containernetworking-plugins" >&2; exit 1; }

# containerd puts pods under a `k8s.io` cgroup and runc state under /run/containerd/runc:
# removed at the end only when this run made them (a system containerd may use them too).
k8s_cg_existed=$( { ls -d /sys/fs/cgroup/*/k8s.io /sys/fs/cgroup/k8s.io 2>/dev/null || true; } | head -1)
runc_dir_existed=$( [ -e /run/containerd/runc ] && echo yes || true)
root=$(mktemp -d /var/tmp/berth-cri-bench.XXXX)
xroot=$(mktemp -d /run/berth-cri-bench.XXXX)
mount -t tmpfs -o mode=0711 berth-cri-bench "$xroot"
cleanup() {
  [ -f "$root/berthd.pid" ] && kill "$(cat "$root/berthd.pid")" 2>/dev/null || true
  [ -n "${ctrd_pid:-}" ] && kill "$ctrd_pid" 2>/dev/null || true
  sleep 1
  # Shims of containerd outlive it: end the ones of this instance (their -address names it).
  for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $root/containerd.sock" || true); do
    kill -9 "$p" 2>/dev/null || true
  done
  scripts/unmount-under.sh "$root" "$xroot"
  umount -l "$xroot" 2>/dev/null || true
  rm -rf "$root" "$xroot"
  ip link del bcribench0 2>/dev/null || true
  ip link del bcbberth0 2>/dev/null || true
  nft delete table ip berth_bcbberth0 2>/dev/null || true
  if [ -z "$k8s_cg_existed" ]; then
    for d in /sys/fs/cgroup/k8s.io /sys/fs/cgroup/*/k8s.io; do
      [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
  fi
  [ -z "$runc_dir_existed" ] && rm -rf /run/containerd/runc 2>/dev/null || true
  for d in /sys/fs/cgroup/berth-cri-bench /sys/fs/cgroup/*/berth-cri-bench; do
    [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}
trap cleanup EXIT

mkdir -p "$root/net.d"
cat >"$root/net.d/10-bench.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "cri-bench",
 "plugins": [
  {"type": "bridge", "bridge": "bcribench0", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "dataDir": "$root/ipam", "ranges": [[{"subnet": "10.251.0.0/24"}]]}},
  {"type": "loopback"}]}
EOF
python3 scripts/make-busybox-image.py "$root/busybox.tar" docker.io/library/busybox:latest >/dev/null
BUSYBOX_CMD='["sleep", "2147483647"]' python3 scripts/make-busybox-image.py "$root/pause.tar" \
  localhost/cri-bench/pause:1 >/dev/null

# berthd: the CRI on its default socket under the exec root.
"$rel/berthd" --data-root "$root/berth" --exec-root "$xroot/berth" -H "unix://$root/berth.sock" \
  --pidfile "$root/berthd.pid" --cgroup-parent berth-cri-bench --bridge bcbberth0 --bip 10.252.0.1/24 \
  --cni-conf-dir "$root/net.d" --cni-bin-dir /usr/lib/cni >"$root/berthd.log" 2>&1 &
for _ in $(seq 1 100); do [ -S "$xroot/berth/cri.sock" ] && break; sleep 0.1; done
curl -sf --unix-socket "$root/berth.sock" -X POST -H 'Content-Type: application/x-tar' \
  --data-binary "@$root/busybox.tar" http://localhost/images/load?quiet=1 >/dev/null

# containerd: a private instance with the CRI plugin.
cat >"$root/containerd.toml" <<EOF
version = 2
root = "$root/containerd/root"
state = "$xroot/containerd/state"
oom_score = 0
[grpc]
  address = "$root/containerd.sock"
[ttrpc]
  address = "$root/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$root/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/cri-bench/pause:1"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$root/net.d"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
EOF
containerd --config "$root/containerd.toml" >"$root/containerd.log" 2>&1 &
ctrd_pid=$!
for _ in $(seq 1 100); do [ -S "$root/containerd.sock" ] && break; sleep 0.1; done
ctr --address "$root/containerd.sock" -n k8s.io images import "$root/busybox.tar" >/dev/null
ctr --address "$root/containerd.sock" -n k8s.io images import "$root/pause.tar" >/dev/null

echo "CRI bench: pod + 1 busybox container, medians of $N rounds ($(nproc) CPUs, $(uname -r))"
berth_out=$("$client" "$xroot/berth/cri.sock" "$N")
ctrd_out=$("$client" "$root/containerd.sock" "$N")
read -r _ bu bd <<<"$(grep '^medians' <<<"$berth_out")"
read -r _ cu cd <<<"$(grep '^medians' <<<"$ctrd_out")"
printf '%-28s %10s %10s\n' "" "up (ms)" "down (ms)"
printf '%-28s %10s %10s\n' "berthd $("$rel/berthd" --version 2>/dev/null | awk '{print $NF}')" "$bu" "$bd"
printf '%-28s %10s %10s\n' "containerd $(containerd --version | awk '{print $3}')" "$cu" "$cd"
awk -v bu="$bu" -v bd="$bd" -v cu="$cu" -v cd="$cd" \
  'BEGIN { printf "berth/containerd: up %.2f, down %.2f\n", bu/cu, bd/cd }'
if [ -n "${CRI_BENCH_VERBOSE:-}" ]; then
  echo "--- berthd"; echo "$berth_out"; echo "--- containerd"; echo "$ctrd_out"
fi
