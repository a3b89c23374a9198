#!/usr/bin/env python3
"""Pushes a multi-layer image of about SIZE_MB to a registry over plain HTTP, for bench/pull.sh.

Usage: make-pull-image.py HOST:PORT REPO:TAG [SIZE_MB] [LAYERS]

The bottom layer is the host's static busybox (so the image runs); the others each hold one
file of pseudo-random bytes (half random, half repetitive, so gzip has some work to do).
Layers are gzip-compressed (level 6, like docker) and pushed with POST + PUT ?digest=.
"""
import gzip
import hashlib
import io
import json
import os
import random
import sys
import tarfile
import urllib.request

MTIME = 1700000000


def tar_bytes(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode in entries:
            if data is None:
                ti = tarfile.TarInfo(name)
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                ti.mtime = MTIME
                tar.addfile(ti)
            else:
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                ti.mode = mode
                ti.mtime = MTIME
                tar.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def busybox_layer():
    bb = open("/bin/busybox", "rb").read()
    entries = [("bin", None, 0), ("etc", None, 0), ("tmp", None, 0),
               ("bin/busybox", bb, 0o755),
               ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644)]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime = MTIME
            if data is None:
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                tar.addfile(ti)
            else:
                ti.size = len(data)
                ti.mode = mode
                tar.addfile(ti, io.BytesIO(data))
        for applet in ("sh", "true", "echo", "ls", "cat"):
            ti = tarfile.TarInfo("bin/" + applet)
            ti.type = tarfile.SYMTYPE
            ti.linkname = "busybox"
            ti.mtime = MTIME
            tar.addfile(ti)
    return buf.getvalue()


def request(method, url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(req) as r:
        return r.status, dict(r.headers), r.read()


def push_blob(base, repo, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    try:
        request("HEAD", f"{base}/v2/{repo}/blobs/{digest}")
        return digest
    except urllib.error.HTTPError:
        pass
    _, h, _ = request("POST", f"{base}/v2/{repo}/blobs/uploads/", b"")
    loc = h["Location"]
    if loc.startswith("/"):
        loc = base + loc
    sep = "&" if "?" in loc else "?"
    request("PUT", f"{loc}{sep}digest={digest}", data,
            {"Content-Type": "application/octet-stream"})
    return digest


def main():
    host, ref = sys.argv[1], sys.argv[2]
    size_mb = int(sys.argv[3]) if len(sys.argv) > 3 else 120
    nlayers = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    repo, tag = ref.rsplit(":", 1)
    base = f"http://{host}"
    rnd = random.Random(42)
    tars = [busybox_layer()]
    per = size_mb * 1000 * 1000 // (nlayers - 1)
    for i in range(nlayers - 1):
        half = per // 2
        data = rnd.randbytes(half) + bytes([i]) * (per - half)
        tars.append(tar_bytes([("data", None, 0), (f"data/blob{i}", data, 0o644)]))
    layers, diff_ids = [], []
    for t in tars:
        gz = gzip.compress(t, compresslevel=6, mtime=0)
        diff_ids.append("sha256:" + hashlib.sha256(t).hexdigest())
        layers.append({"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                       "size": len(gz), "digest": push_blob(base, repo, gz)})
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "created": "2023-11-14T22:13:20Z",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": f"layer {i}"}
                    for i in range(len(tars))],
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "size": len(config), "digest": push_blob(base, repo, config)},
        "layers": layers,
    }).encode()
    request("PUT", f"{base}/v2/{repo}/manifests/{tag}", manifest,
            {"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
    total = sum(l["size"] for l in layers)
    print(f"pushed {host}/{repo}:{tag}: {len(layers)} layers, {total / 1e6:.1f} MB compressed, "
          f"{sum(len(t) for t in tars) / 1e6:.1f} MB uncompressed")


if __name__ == "__main__":
    main()
