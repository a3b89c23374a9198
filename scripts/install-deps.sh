#!/usr/bin/env bash
# Installs the system packages berth needs to build and test (Debian/Ubuntu). Idempotent.
set -euo pipefail
pkgs=(libseccomp-dev pkg-config busybox-static python3 procps util-linux iproute2 nftables curl gcc openssl)
# Registry tests: a private docker-registry, htpasswd for basic auth, zstd for zstd layers.
pkgs+=(docker-registry apache2-utils zstd)
# `--init`: tini-static, the init Docker ships as docker-init.
pkgs+=(tini)
# The fuzz target (scripts/fuzz.sh): libfuzzer-sys compiles libFuzzer, which is C++.
pkgs+=(g++)
# `ADD` of git repositories in builds (and its tests).
pkgs+=(git)
# The CRI's CNI test (crates/cri/tests/cni_plugins.rs): the standard plugins in /usr/lib/cni,
# and iptables, which their portmap plugin drives.
pkgs+=(containernetworking-plugins iptables)
# The coexistence test (tests/tests/coexist.rs) starts Debian's dockerd privately, with its
# iptables rules, in a network namespace of its own.
pkgs+=(docker.io)
# The docker-compose suite (tests/tests/compose.rs): Debian's compose 1.29, which runs on
# Debian's /usr/bin/python3 and its python3-docker (the pip-installed SDK below is another
# interpreter's, or a newer one compose also works with).
pkgs+=(docker-compose)
# The client environment of the Ansible and testcontainers suites (python3-venv: Debian's
# python3 needs it for `python3 -m venv`).
pkgs+=(python3-venv)
# Rootless berthd (tests/tests/rootless.rs, rootless_drivers.rs): newuidmap/newgidmap,
# slirp4netns for the daemon's network namespace, passt for pasta (BERTHD_ROOTLESS_NET=pasta)
# and fuse-overlayfs (BERTHD_ROOTLESS_STORAGE=fuse-overlayfs), the alternatives.
pkgs+=(uidmap slirp4netns passt fuse-overlayfs)
# The dockerode test (tests/node): Node.js and npm, Debian's unless a newer one is installed.
command -v node >/dev/null && command -v npm >/dev/null || pkgs+=(nodejs npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Installing docker.io must not start a system dockerd (it would set the host's FORWARD
  # policy to DROP): services stay stopped while this installs (policy-rc.d), and Docker's
  # units are disabled afterwards.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq "${missing[@]}" >/dev/null
  if printf '%s\n' "${missing[@]}" | grep -qx docker.io && command -v systemctl >/dev/null; then
    systemctl disable --now docker.socket docker.service >/dev/null 2>&1 || true
  fi
fi
# slirp4netns opens /dev/net/tun and fuse-overlayfs /dev/fuse as the user; udev makes both
# 0666 on ordinary installs, a machine without udev leaves them 0600 (opening them grants
# nothing by itself: a tun device needs CAP_NET_ADMIN, a FUSE mount a mount namespace).
for dev in /dev/net/tun /dev/fuse; do
  if [ -c "$dev" ] && [ "$(stat -c %a "$dev")" != 666 ]; then
    chmod 0666 "$dev"
  fi
done
# The Python docker SDK tests (tests/python/sdk_smoke.py, api_versions.py): docker-py from PyPI, else Debian's.
if ! python3 -c 'import docker' 2>/dev/null; then
  echo "installing: the python docker SDK"
  python3 -m pip install --quiet docker 2>/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-docker >/dev/null; }
fi
# dockerode and tar-stream for tests/node/dockerode_smoke.js, at the versions of its lockfile.
node_dir="$(dirname "$0")/../tests/node"
if [ ! -d "$node_dir/node_modules/dockerode" ] || [ ! -d "$node_dir/node_modules/tar-stream" ]; then
  echo "installing: the npm packages of tests/node"
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi
# Ansible (community.docker) and testcontainers-python for tests/tests/ansible.rs and
# testcontainers.rs, in a virtual environment of their own (ansible is large: installed once;
# BERTH_CLIENTS_VENV moves it).
venv=${BERTH_CLIENTS_VENV:-/opt/berth-clients}
if ! "$venv/bin/python3" -c 'import ansible, testcontainers, requests' 2>/dev/null ||
   [ ! -x "$venv/bin/ansible-playbook" ]; then
  echo "installing: ansible and testcontainers into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check ansible==12.3.0 testcontainers==4.15.0 requests
fi
