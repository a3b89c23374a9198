#!/usr/bin/env bash
# Checks what a rootless berthd needs on this host, explains what is missing (with the
# command that fixes it, to be run as root), and prints what to export to use it:
# the `dockerd-rootless-setuptool.sh check` of berth. Run it as the user who will run berthd.
# Exit status: 0 when everything is in place, 1 otherwise. It changes nothing.
set -uo pipefail

missing=0
ok() { printf '  ok    %s\n' "$1"; }
bad() {
  printf '  MISSING %s\n        fix: %s\n' "$1" "$2"
  missing=1
}

user=$(id -un)
uid=$(id -u)
echo "rootless berthd prerequisites for $user (uid $uid):"

if [ "$uid" = 0 ]; then
  echo "  note  you are root: run this as the user who will run berthd (root runs the system daemon)"
fi

for tool in newuidmap newgidmap; do
  if p=$(command -v "$tool" 2>/dev/null || ls /usr/bin/"$tool" 2>/dev/null); then
    if [ -u "$p" ] || getcap "$p" 2>/dev/null | grep -q cap_set; then
      ok "$tool ($p)"
    else
      bad "$tool ($p) is neither setuid root nor has file capabilities" "apt-get install --reinstall uidmap"
    fi
  else
    bad "$tool not installed" "apt-get install uidmap"
  fi
done

# The network driver: BERTHD_ROOTLESS_NET=slirp4netns|pasta chooses, unset the first of
# them installed (slirp4netns first, as dockerd-rootless.sh prefers it).
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/bin/$1" ]; }
net=${BERTHD_ROOTLESS_NET:-}
case "$net" in
  "")
    if have slirp4netns; then
      ok "network driver: slirp4netns$(have pasta && echo ' (pasta is installed too: BERTHD_ROOTLESS_NET=pasta picks it)')"
    elif have pasta; then
      ok "network driver: pasta (slirp4netns is not installed)"
    else
      bad "neither slirp4netns nor pasta installed (the daemon's network namespace reaches out through one of them)" "apt-get install slirp4netns   (or passt, for pasta)"
    fi
    ;;
  slirp4netns | pasta)
    pkg=$net
    [ "$net" = pasta ] && pkg=passt
    if have "$net"; then
      ok "network driver: $net (BERTHD_ROOTLESS_NET)"
    else
      bad "BERTHD_ROOTLESS_NET=$net, but $net is not installed" "apt-get install $pkg"
    fi
    ;;
  *)
    bad "BERTHD_ROOTLESS_NET=$net is not a network driver" "unset it, or set slirp4netns or pasta"
    ;;
esac

range_of() { # file
  awk -F: -v n="$user" -v u="$uid" '($1 == n || $1 == u) && $3 > 0 { print $2 ":" $3; exit }' "$1" 2>/dev/null
}
for f in /etc/subuid /etc/subgid; do
  r=$(range_of "$f")
  if [ -n "$r" ]; then
    ok "$f: ${r%%:*} (${r##*:} ids)"
  else
    flag=--add-subuids
    [ "$f" = /etc/subgid ] && flag=--add-subgids
    bad "no range for $user in $f" "usermod $flag 100000-165535 $user   (a range no other user has)"
  fi
done

sysctl_is() { # file want description fix
  [ -e "$1" ] || return 0
  v=$(cat "$1")
  if [ "$v" = "$2" ]; then ok "$3 = $v"; else bad "$3 = $v" "$4"; fi
}
sysctl_is /proc/sys/kernel/unprivileged_userns_clone 1 kernel.unprivileged_userns_clone \
  "sysctl -w kernel.unprivileged_userns_clone=1 (and in /etc/sysctl.d/ to keep it)"
sysctl_is /proc/sys/kernel/apparmor_restrict_unprivileged_userns 0 \
  kernel.apparmor_restrict_unprivileged_userns \
  "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile allowing userns for berthd"
if [ "$(cat /proc/sys/user/max_user_namespaces 2>/dev/null || echo 1)" = 0 ]; then
  bad "user.max_user_namespaces = 0" "sysctl -w user.max_user_namespaces=15000"
else
  ok "user.max_user_namespaces = $(cat /proc/sys/user/max_user_namespaces 2>/dev/null)"
fi

if [ -r /dev/net/tun ] && [ -w /dev/net/tun ]; then
  ok "/dev/net/tun usable"
else
  bad "/dev/net/tun cannot be opened by $user" "chmod 0666 /dev/net/tun (udev's default mode)"
fi

kernel=$(uname -r)
major=${kernel%%.*}
rest=${kernel#*.}
minor=${rest%%[.-]*}
if [ "$major" -gt 5 ] || { [ "$major" -eq 5 ] && [ "$minor" -ge 11 ]; }; then
  ok "kernel $kernel (overlayfs in a user namespace)"
else
  bad "kernel $kernel has no overlayfs in user namespaces (5.11+)" "a newer kernel"
fi

if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  bad "XDG_RUNTIME_DIR is not set" "log in through a session that sets it (systemd-logind: /run/user/$uid), or export XDG_RUNTIME_DIR to a directory only you can write"
elif [ ! -d "$XDG_RUNTIME_DIR" ] || [ ! -w "$XDG_RUNTIME_DIR" ]; then
  bad "XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR is not a directory you can write" "mkdir -m 0700 -p $XDG_RUNTIME_DIR"
else
  ok "XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR"
fi

if command -v fuse-overlayfs >/dev/null 2>&1; then
  echo "  note  fuse-overlayfs is installed: the fallback where the kernel refuses overlayfs in a user namespace"
else
  echo "  note  where the kernel refuses overlayfs in a user namespace, berthd copies layers (vfs: slow, large); apt-get install fuse-overlayfs avoids that"
fi
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  cg=$(sed -n 's/^0:://p' /proc/self/cgroup)
  dir=/sys/fs/cgroup${cg}
  if [ -n "$cg" ] && [ "$cg" != / ] && [ -O "$dir" ] && [ -O "$dir/cgroup.subtree_control" ] &&
    grep -qw memory "$dir/cgroup.controllers" && grep -qw pids "$dir/cgroup.controllers"; then
    echo "  note  cgroup v2, and this shell's cgroup $cg is delegated to you: a berthd started alone in such a cgroup gets limits"
  else
    echo "  note  cgroup v2: limits (--memory, --cpus, --pids-limit ...) need berthd in a cgroup delegated to you and of its own,"
    echo "        e.g. systemd-run --user -p Delegate=yes berthd (or a user unit with Delegate=yes); elsewhere they are refused"
  fi
else
  echo "  note  cgroup v1/hybrid host: containers run without cgroups; --memory, --cpus, --pids-limit ... are refused"
fi
start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start 2>/dev/null || echo 1024)
echo "  note  published host ports below $start need: sysctl -w net.ipv4.ip_unprivileged_port_start=<port>"

echo
if [ "$missing" = 0 ]; then
  sock="${XDG_RUNTIME_DIR:-/run/user/$uid}/berth/berth.sock"
  echo "Everything is in place. Start the daemon as $user:"
  echo "  berthd"
  echo "and point clients at it:"
  echo "  export DOCKER_HOST=unix://$sock"
  echo "  export BERTH_HOST=unix://$sock   # berth finds it by itself when there is no system daemon"
  exit 0
fi
echo "Fix what is MISSING above (as root), then run this again."
exit 1
