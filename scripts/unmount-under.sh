#!/usr/bin/env bash
# Lazily unmounts everything mounted at or below each DIR, deepest first. Whole path
# components only: /var/tmp/x-1 leaves /var/tmp/x-10 (another run's root) alone.
#
#   scripts/unmount-under.sh DIR...
for dir in "$@"; do
  dir=${dir%/}
  [ -n "$dir" ] || continue
  awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
    sort -r | xargs -r -n1 umount -l 2>/dev/null
done
exit 0
