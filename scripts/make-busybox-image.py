#!/usr/bin/env python3
"""Builds a `docker save`-format archive of a busybox image from the host's static busybox.

Usage: make-busybox-image.py OUT.tar [TAG]

BUSYBOX_CMD (a JSON list) replaces the image's Cmd ["sh"]: bench/cri.sh makes containerd's
sandbox ("pause") image this way, `["sleep", "2147483647"]`.

No registry is needed: the single layer holds /bin/busybox, a symlink for every applet, a
minimal /etc (passwd, group with root, nobody and a `berth` user 1000:1000) and the usual empty
directories. Timestamps are fixed, so the same busybox binary always gives the same image id.
"""
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

MTIME = 1700000000
BUSYBOX = os.environ.get("BUSYBOX", "/bin/busybox")
CMD = json.loads(os.environ.get("BUSYBOX_CMD", '["sh"]'))


def add_dir(tar, name, mode=0o755):
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.DIRTYPE
    ti.mode = mode
    ti.mtime = MTIME
    tar.addfile(ti)


def add_file(tar, name, data, mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = mode
    ti.mtime = MTIME
    tar.addfile(ti, io.BytesIO(data))


def add_symlink(tar, name, target):
    ti = tarfile.TarInfo(name)
    ti.type = tarfile.SYMTYPE
    ti.linkname = target
    ti.mode = 0o777
    ti.mtime = MTIME
    tar.addfile(ti)


def layer_bytes():
    applets = subprocess.run([BUSYBOX, "--list-full"], check=True, capture_output=True, text=True).stdout.split()
    with open(BUSYBOX, "rb") as f:
        busybox = f.read()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ["bin", "dev", "etc", "home", "home/berth", "proc", "root", "sys", "usr", "usr/bin", "usr/sbin",
                  "sbin", "var", "var/log", "var/www"]:
            add_dir(tar, d, 0o700 if d == "root" else 0o755)
        add_dir(tar, "tmp", 0o1777)
        add_file(tar, "bin/busybox", busybox, 0o755)
        add_file(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"
                 b"berth:x:1000:1000:berth user:/home/berth:/bin/sh\n"
                 b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
        add_file(tar, "etc/group", b"root:x:0:\nwheel:x:10:berth\nberth:x:1000:\nnogroup:x:65534:\n")
        seen = set()
        for path in sorted(applets):
            path = path.lstrip("/")
            if path == "bin/busybox" or path in seen:
                continue
            seen.add(path)
            depth = path.count("/")
            add_symlink(tar, path, "../" * depth + "bin/busybox" if depth > 1 else "busybox" if path.startswith("bin/") else "/bin/busybox")
    return buf.getvalue()


def main():
    out = sys.argv[1]
    tag = sys.argv[2] if len(sys.argv) > 2 else "busybox:latest"
    layer = layer_bytes()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2023-11-14T22:13:20Z",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": CMD,
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [
            {"created": "2023-11-14T22:13:20Z", "created_by": "make-busybox-image.py: COPY busybox /bin/busybox"},
            {"created": "2023-11-14T22:13:20Z", "created_by": "CMD " + json.dumps(CMD), "empty_layer": True},
        ],
    }
    config_bytes = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
    config_hex = hashlib.sha256(config_bytes).hexdigest()
    layer_hex = diff_id.split(":")[1]
    manifest = [{"Config": f"{config_hex}.json", "RepoTags": [tag], "Layers": [f"{layer_hex}/layer.tar"]}]
    with tarfile.open(out, mode="w") as tar:
        add_dir(tar, layer_hex)
        add_file(tar, f"{layer_hex}/layer.tar", layer)
        add_file(tar, f"{config_hex}.json", config_bytes)
        add_file(tar, "manifest.json", json.dumps(manifest).encode())
        repo, _, t = tag.rpartition(":")
        add_file(tar, "repositories", json.dumps({repo: {t: layer_hex}}).encode())
    print(f"sha256:{config_hex}")


if __name__ == "__main__":
    main()
