"""Everyday use of the Python docker SDK (docker-py) against berthd, from DOCKER_HOST.

Run by tests/tests/python_sdk.rs with a private berthd; every check asserts, and the script
prints one "ok <what>" line per passed step (the Rust test checks them all came).
"""

import io
import os
import socket
import sys
import tarfile
import time
import urllib.request

import docker

PREFIX = "sdk-"


def ok(what):
    print(f"ok {what}", flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    client = docker.from_env(timeout=60)
    assert client.ping() is True
    v = client.version()
    assert v["ApiVersion"] and v["Os"] == "linux", v
    info = client.info()
    assert info["Driver"] == "overlay2", info["Driver"]
    ok("ping version info")

    assert any("busybox:latest" in i.tags for i in client.images.list()), client.images.list()
    img = client.images.get("busybox")
    assert img.id.startswith("sha256:"), img.id
    ok("images")

    out = client.containers.run("busybox", ["sh", "-c", "echo hello; echo err >&2"], remove=True)
    assert out == b"hello\n", out
    ok("run remove")

    # A failing command raises ContainerError with the exit status and stderr.
    try:
        client.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 3"], stderr=True)
        raise AssertionError("no ContainerError")
    except docker.errors.ContainerError as e:
        assert e.exit_status == 3, e.exit_status
        assert b"bad" in (e.stderr or b""), e.stderr
    ok("run error")

    port = free_port()
    web = client.containers.run(
        "busybox",
        ["sh", "-c", "echo served > /tmp/index.html; exec httpd -f -p 80 -h /tmp"],
        name=PREFIX + "web",
        detach=True,
        ports={"80/tcp": ("127.0.0.1", port)},
        environment={"GREETING": "hi"},
        labels={"team": "sdk"},
    )
    web.reload()
    assert web.status == "running", web.status
    assert web.ports["80/tcp"][0]["HostPort"] == str(port), web.ports
    body = b""
    for _ in range(50):
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=2).read()
            break
        except OSError:
            time.sleep(0.1)
    assert body == b"served\n", body
    ok("detach ports")

    found = client.containers.list(filters={"label": "team=sdk"})
    assert [c.name for c in found] == [PREFIX + "web"], found
    ok("list filters")

    code, output = web.exec_run(["sh", "-c", "echo $GREETING; exit 4"])
    assert code == 4 and output == b"hi\n", (code, output)
    ok("exec_run")

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        data = b"from the sdk\n"
        ti = tarfile.TarInfo("note.txt")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    assert web.put_archive("/tmp", buf.getvalue())
    stream, stat = web.get_archive("/tmp/note.txt")
    assert stat["name"] == "note.txt" and stat["size"] == 13, stat
    raw = b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(raw)) as t:
        assert t.extractfile("note.txt").read() == b"from the sdk\n"
    ok("archives")

    logs = client.containers.run("busybox", ["sh", "-c", "for i in 1 2 3; do echo line$i; done"],
                                 name=PREFIX + "logs", detach=True)
    assert logs.wait(timeout=30)["StatusCode"] == 0
    assert logs.logs() == b"line1\nline2\nline3\n", logs.logs()
    assert logs.logs(tail=1) == b"line3\n"
    logs.remove()
    ok("wait logs")

    stats = web.stats(stream=False)
    assert stats["memory_stats"].get("usage", 0) > 0, stats["memory_stats"]
    ok("stats")

    web.stop(timeout=1)
    web.reload()
    assert web.status == "exited", web.status
    web.remove()
    ok("stop remove")

    net = client.networks.create(PREFIX + "net", driver="bridge")
    vol = client.volumes.create(PREFIX + "vol", labels={"k": "v"})
    srv = client.containers.run("busybox", ["sleep", "300"], name=PREFIX + "srv", detach=True,
                                network=net.name, volumes={vol.name: {"bind": "/data", "mode": "rw"}})
    cli = client.containers.run("busybox", ["sh", "-c", f"ping -c1 -W2 {PREFIX}srv >/dev/null && echo reached"],
                                network=net.name, remove=True)
    assert cli == b"reached\n", cli
    net.reload()
    assert PREFIX + "srv" in [c.name for c in net.containers], net.containers
    srv.remove(force=True)
    net.remove()
    assert client.volumes.get(PREFIX + "vol").attrs["Labels"] == {"k": "v"}
    vol.remove()
    ok("networks volumes")

    df = b"FROM busybox\nRUN echo built > /built\nCMD [\"cat\", \"/built\"]\n"
    image, log = client.images.build(fileobj=io.BytesIO(df), tag=PREFIX + "img:1", rm=True)
    assert PREFIX + "img:1" in image.tags, image.tags
    assert any("Successfully built" in (x.get("stream") or "") for x in log)
    assert client.containers.run(PREFIX + "img:1", remove=True) == b"built\n"
    client.images.remove(PREFIX + "img:1")
    ok("build")

    pruned = client.containers.prune()
    assert "ContainersDeleted" in pruned, pruned
    ok("prune")

    try:
        client.containers.get("no-such-container")
        raise AssertionError("no NotFound")
    except docker.errors.NotFound:
        pass
    ok("errors")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - any failure is reported with its type
        print(f"FAILED: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
