#!/usr/bin/env python3
"""Replays the corpus (corpus.py) against berthd and dockerd, in the same order on both, and
compares the answers (compare.py): status codes, content types, the API's headers, and the JSON
structure of the bodies (keys and value types; ids, timestamps, sizes and versions do not count),
error messages, and a few values each request names. Requests with API versions dockerd 20.10
does not speak go to berth only and are checked against the Engine API spec instead.

Prints the differences grouped by endpoint, each marked with the allow-list's reason when the
allow-list (allow-list.txt) names it, and exits 1 when any difference is not in the allow-list.

usage: differ.py --berth SOCKET --docker SOCKET [--allow FILE] [--spec-dir DIR]
                 [--only GLOB] [--summary FILE] [--verbose]
"""

import argparse
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import compare  # noqa: E402
import corpus  # noqa: E402
import wire  # noqa: E402


class Daemon:
    def __init__(self, name, sock, own):
        self.name = name
        self.sock = sock
        self.vars = dict(own)
        self.vars["now"] = lambda: int(time.time()) + 1

    def send(self, step):
        path = step.resolve_path(self.vars)
        body = step.resolve_body(self.vars)
        if step.hijack:
            during = (lambda: self.send(step.during)) if step.during else None
            ans = wire.hijack(
                self.sock,
                step.method,
                path,
                body or b"",
                stdin=step.stdin,
                timeout=step.timeout,
                upgrade=step.upgrade,
                after_upgrade=during,
            )
        else:
            headers = dict(step.headers)
            if body is not None:
                headers.setdefault("Content-Type", step.content_type or "application/json")
            ans = wire.request(self.sock, step.method, path, body, headers, timeout=step.timeout)
        for var, how in step.capture.items():
            value = how(ans) if callable(how) else compare.get_path(ans.data(), how)
            if value is not None:
                self.vars[var] = value
        return ans


class AllowList:
    """Lines `KEY-GLOB :: DIFFERENCE-GLOB :: reason`; `*` is the only wildcard."""

    def __init__(self, path):
        self.entries = []
        if not path or not os.path.exists(path):
            return
        with open(path) as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                parts = [p.strip() for p in line.split("::")]
                if len(parts) != 3 or not parts[2]:
                    sys.exit(f"{path}:{n}: want 'KEY-GLOB :: DIFFERENCE-GLOB :: reason'")
                self.entries.append(
                    {"key": glob(parts[0]), "diff": glob(parts[1]), "reason": parts[2], "line": n, "used": 0}
                )

    def reason(self, key, diff):
        for e in self.entries:
            if e["key"].fullmatch(key) and e["diff"].fullmatch(diff):
                e["used"] += 1
                return e["reason"]
        return None


def glob(pattern):
    return re.compile(".*".join(re.escape(p) for p in pattern.split("*")), re.S)


def spec_for(version, spec_dir):
    if not spec_dir:
        return None
    v = tuple(int(x) for x in version.split(".")) if version else (1, 55)
    name = "docker-engine-api-v1.51.yaml" if v <= (1, 51) else "docker-engine-api-v1.55.yaml"
    return compare.load_spec(os.path.join(spec_dir, name))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--berth", required=True, help="berthd's socket path")
    ap.add_argument("--docker", required=True, help="dockerd's socket path")
    ap.add_argument("--allow", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "allow-list.txt"))
    ap.add_argument("--spec-dir", default=None)
    ap.add_argument("--only", default=None, help="run only the steps whose key matches this glob (setup steps always run)")
    ap.add_argument("--summary", default=None, help="write the counts as JSON here")
    ap.add_argument("--verbose", action="store_true", help="also list the requests without differences")
    args = ap.parse_args()

    berth = Daemon("berth", args.berth, corpus.own_vars("berth"))
    docker = Daemon("docker", args.docker, corpus.own_vars("docker"))
    allow = AllowList(args.allow)
    specs = {}
    only = glob(args.only) if args.only else None

    # The report groups by the spec's path templates (/containers/{id}/json) where one matches.
    ref = spec_for("1.55", args.spec_dir)
    results = []  # (step, [(diff, reason or None)])
    slow = []
    counts = {"requests": 0, "compared": 0, "berth_only": 0, "setup": 0}
    try:
        for step in corpus.steps():
            if only and step.compare and not only.fullmatch(step.key):
                continue
            counts["requests"] += 1
            if ref is not None:
                template = ref.operation_path(step.method, step.path.split("?")[0].replace("/images/localhost:1/", "/images/"))
                if template:
                    step.group = f"{step.method} {template}"
            started = time.monotonic()
            if step.only == "berth":
                b = berth.send(step)
                counts["berth_only"] += 1
                if step.version not in specs:
                    specs[step.version] = spec_for(step.version, args.spec_dir)
                spec = specs[step.version]
                if spec is None:
                    diffs = ["spec-unavailable"]
                else:
                    diffs = spec.check(step.method, step.path, b.status, b.data())
            else:
                d = docker.send(step)
                b = berth.send(step)
                if not step.compare:
                    counts["setup"] += 1
                    continue
                counts["compared"] += 1
                diffs = compare.compare(step, b, d)
            results.append((step, [(x, allow.reason(step.key, x)) for x in diffs]))
            took = time.monotonic() - started
            if took > 3:
                slow.append((took, step.key))
    finally:
        for dm in (docker, berth):
            corpus.sweep(dm)

    report(results, counts, allow, args.verbose)
    if slow and args.verbose:
        print("\nslow requests (both daemons):")
        for took, key in sorted(slow, reverse=True)[:15]:
            print(f"  {took:5.1f} s  {key}")
    unexpected = sum(1 for _, ds in results for _, r in ds if r is None)
    allowed = sum(1 for _, ds in results for _, r in ds if r is not None)
    summary = dict(
        counts,
        shapes=len({s.key for s, _ in results}),
        endpoints=len({s.group or s.endpoint for s, _ in results}),
        differences=allowed + unexpected,
        allowed=allowed,
        unexpected=unexpected,
        requests_with_differences=sum(1 for _, ds in results if ds),
    )
    print(
        f"\nrequests: {counts['requests']} ({counts['compared']} compared with dockerd, "
        f"{counts['berth_only']} berth-only against the spec, {counts['setup']} setup), "
        f"{summary['shapes']} shapes over {summary['endpoints']} endpoints"
    )
    print(
        f"differences: {summary['differences']} in {summary['requests_with_differences']} requests "
        f"({allowed} allowed, {unexpected} not in the allow-list)"
    )
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump(summary, f, indent=1)
    return 1 if unexpected else 0


def report(results, counts, allow, verbose):
    groups = {}
    for step, diffs in results:
        groups.setdefault(step.group or step.endpoint, []).append((step, diffs))
    for endpoint in sorted(groups):
        items = groups[endpoint]
        differing = [(s, ds) for s, ds in items if ds]
        bad = sum(1 for _, ds in items for _, r in ds if r is None)
        if not differing and not verbose:
            continue
        print(f"\n== {endpoint}  ({len(items)} requests, {len(differing)} with differences, {bad} not allowed)")
        for step, diffs in items:
            if not diffs and not verbose:
                continue
            tag = " [berth only, vs the spec]" if step.only == "berth" else ""
            print(f"  {step.key}{tag}")
            for d, reason in diffs:
                if reason is None:
                    print(f"    NEW  {d}")
                else:
                    print(f"    ok   {d}   [{reason}]")
    unused = [e for e in allow.entries if not e["used"]]
    if unused:
        print(f"\nallow-list entries that matched nothing this run: {', '.join(str(e['line']) for e in unused)}")


if __name__ == "__main__":
    sys.exit(main())
