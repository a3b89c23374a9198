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
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The Python docker SDK tests (tests/python/sdk_smoke.py, api_versions.py): docker-py from PyPI, else Debian's.
if ! python3 -c 'import docker' 2>/dev/null; then
  echo "installing: the python docker SDK"
  python3 -m pip install --quiet docker 2>/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-docker >/dev/null; }
fi
