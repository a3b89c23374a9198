"""The details real clients hit, through the Python docker SDK against berthd (DOCKER_HOST).

Run by tests/tests/client_details.rs with a private berthd. Each step asserts what dockerd
answers and prints "ok <what>" when it passed:

- exec with a TTY streams raw bytes (no multiplexing) on exec start (attached, socket and
  detached modes), framed by the start request's Tty as dockerd does; a TTY container's attach
  is raw too;
- POST /commit?pause=true commits a stopped container (pause applies to running ones only);
- POST /images/create?fromSrc=-&changes=... answers dockerd's status line with a clean id;
- DELETE /containers/{parent}/{alias}?link=1 removes a legacy link;
- kill, stop escalation and rm -f emit `kill` events with signal= before `die`;
- an unknown log driver is refused with dockerd's message (its plugin lookup's);
- a legacy build honours networkmode, extrahosts and cachefrom, and streams RUN's stderr in
  dockerd's red escape.
"""

import io
import json
import socket
import tarfile
import time

import docker

PREFIX = "det-"


def ok(what):
    print(f"ok {what}", flush=True)


def read_all(sock):
    """Everything a hijacked socket sends until it closes."""
    raw = getattr(sock, "_sock", sock)
    raw.settimeout(20)
    data = b""
    while True:
        try:
            chunk = raw.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    return data


def exec_tty(client):
    api = client.api
    c = client.containers.run("busybox", ["sleep", "300"], name=PREFIX + "exec", detach=True)
    cmd = ["sh", "-c", "echo out; echo err >&2"]
    # The high-level call with tty: raw bytes, as a terminal writes them.
    code, out = c.exec_run(cmd, tty=True)
    assert code == 0 and out == b"out\r\nerr\r\n", (code, out)
    # Without: two demultiplexed streams.
    code, (out, err) = c.exec_run(cmd, demux=True)
    assert (out, err) == (b"out\n", b"err\n"), (out, err)
    # socket mode with a TTY: the hijacked connection carries raw bytes, no frame headers.
    ex = api.exec_create(c.id, cmd, tty=True)
    sock = api.exec_start(ex["Id"], tty=True, socket=True)
    data = read_all(sock)
    sock.close()
    assert data == b"out\r\nerr\r\n", data
    # socket mode without: frames.
    ex = api.exec_create(c.id, cmd)
    sock = api.exec_start(ex["Id"], socket=True)
    frames = read_all(sock)
    sock.close()
    assert split_frames(frames) == (b"out\n", b"err\n"), frames
    # dockerd frames by the start request's Tty: a terminal process started with Tty false
    # comes multiplexed (all of it on stdout, a terminal has one stream)...
    ex = api.exec_create(c.id, cmd, tty=True)
    sock = api.exec_start(ex["Id"], tty=False, socket=True)
    frames = read_all(sock)
    sock.close()
    assert split_frames(frames) == (b"out\r\nerr\r\n", b""), frames
    # ...and a process without a terminal started with Tty true is raw, its stderr dropped.
    ex = api.exec_create(c.id, cmd, tty=False)
    sock = api.exec_start(ex["Id"], tty=True, socket=True)
    data = read_all(sock)
    sock.close()
    assert data == b"out\n", data
    # Detached: the start answers at once, the process runs on and its exit is recorded.
    ex = api.exec_create(c.id, ["sh", "-c", "sleep 0.5; touch /tmp/detached; exit 4"], tty=True)
    assert api.exec_start(ex["Id"], detach=True, tty=True) in (b"", "")
    for _ in range(100):
        info = api.exec_inspect(ex["Id"])
        if not info["Running"] and info["ExitCode"] is not None:
            break
        time.sleep(0.1)
    assert info["ExitCode"] == 4, info
    assert c.exec_run(["test", "-f", "/tmp/detached"]).exit_code == 0
    # A TTY container's attach is raw as well.
    t = client.containers.create(
        "busybox", ["sh", "-c", "sleep 1; echo hi; echo oops >&2"], name=PREFIX + "ttyc", tty=True
    )
    sock = t.attach_socket(params={"stdout": 1, "stderr": 1, "stream": 1})
    t.start()
    data = read_all(sock)
    sock.close()
    assert data == b"hi\r\noops\r\n", data
    t.remove(force=True)
    c.remove(force=True)
    ok("exec tty")


def split_frames(data):
    out, err = b"", b""
    while data:
        assert len(data) >= 8 and data[0] in (1, 2) and data[1:4] == b"\0\0\0", data[:16]
        n = int.from_bytes(data[4:8], "big")
        payload = data[8 : 8 + n]
        assert len(payload) == n, "short frame"
        if data[0] == 1:
            out += payload
        else:
            err += payload
        data = data[8 + n :]
    return out, err


def commit_pause(client):
    stopped = client.containers.run(
        "busybox", ["sh", "-c", "echo committed > /f"], name=PREFIX + "stopped", detach=True
    )
    assert stopped.wait()["StatusCode"] == 0
    img = stopped.commit(repository="details/committed", tag="1", pause=True, changes=["ENV FROM_COMMIT=yes"])
    assert img.id.startswith("sha256:"), img.id
    out = client.containers.run(img.id, ["sh", "-c", "cat /f; echo $FROM_COMMIT"], remove=True)
    assert out == b"committed\nyes\n", out
    running = client.containers.run(
        "busybox", ["sh", "-c", "echo live > /g; exec sleep 300"], name=PREFIX + "running", detach=True
    )
    time.sleep(0.5)
    img2 = running.commit(repository="details/committed", tag="2", pause=True)
    running.reload()
    assert running.status == "running", running.status
    assert client.containers.run(img2.id, ["cat", "/g"], remove=True) == b"live\n"
    stopped.remove()
    running.remove(force=True)
    ok("commit pause")


def import_changes(client):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"imported\n"
        info = tarfile.TarInfo("hello")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    answer = client.api.import_image_from_data(
        buf.getvalue(),
        repository="details/imported",
        tag="1",
        changes=["ENV FOO=bar", 'CMD ["/hello"]', "LABEL origin=import"],
    )
    # dockerd answers one status message whose status is the new image's id.
    msgs = [json.loads(line) for line in answer.splitlines() if line.strip()]
    assert len(msgs) == 1 and set(msgs[0]) == {"status"}, answer
    image_id = msgs[0]["status"]
    assert image_id.startswith("sha256:") and len(image_id) == 71, image_id
    img = client.images.get(image_id)
    assert "details/imported:1" in img.tags, img.tags
    assert "FOO=bar" in img.attrs["Config"]["Env"], img.attrs["Config"]
    assert img.attrs["Config"]["Cmd"] == ["/hello"], img.attrs["Config"]
    assert img.attrs["Config"]["Labels"] == {"origin": "import"}, img.attrs["Config"]
    ok("import changes")


def remove_link(client):
    api = client.api
    db = client.containers.run("busybox", ["sleep", "300"], name=PREFIX + "db", detach=True)
    web = client.containers.create(
        "busybox", ["sleep", "300"], name=PREFIX + "web", links={PREFIX + "db": "dbalias"}
    )
    assert web.attrs["HostConfig"]["Links"] == [f"/{PREFIX}db:/{PREFIX}web/dbalias"], web.attrs["HostConfig"]
    # The container's own name is not a link.
    try:
        api.remove_container(PREFIX + "db", link=True)
        raise AssertionError("removed the default link name")
    except docker.errors.APIError as e:
        assert "cannot remove the default link name" in str(e), e
    # A link that does not exist.
    try:
        api.remove_container(f"{PREFIX}web/nolink", link=True)
        raise AssertionError("removed a missing link")
    except docker.errors.NotFound:
        pass
    api.remove_container(f"{PREFIX}web/dbalias", link=True)
    web.reload()
    assert not web.attrs["HostConfig"]["Links"], web.attrs["HostConfig"]
    # Both containers are still there; web starts without the link.
    web.start()
    code, out = web.exec_run(["sh", "-c", "grep -c dbalias /etc/hosts; env | grep -c DBALIAS_"])
    assert out.split() == [b"0", b"0"], out
    web.remove(force=True)
    db.remove(force=True)
    ok("remove link")


def kill_events(client):
    since = time.time() - 1
    names = {n: PREFIX + n for n in ("killed", "stopped-esc", "forced")}
    killed = client.containers.run("busybox", ["sleep", "300"], name=names["killed"], detach=True)
    killed.kill()
    killed.wait()
    # sleep as PID 1 ignores SIGTERM: stop escalates to SIGKILL after the timeout.
    esc = client.containers.run("busybox", ["sleep", "300"], name=names["stopped-esc"], detach=True)
    esc.stop(timeout=1)
    forced = client.containers.run("busybox", ["sleep", "300"], name=names["forced"], detach=True)
    forced.remove(force=True)
    killed.remove()
    esc.remove()
    until = time.time() + 1
    events = list(
        client.events(since=since, until=until, decode=True, filters={"type": "container", "event": ["kill", "die", "stop", "destroy"]})
    )
    seen = {}
    for e in events:
        name = e["Actor"]["Attributes"].get("name")
        for key, n in names.items():
            if name == n:
                sig = e["Actor"]["Attributes"].get("signal")
                seen.setdefault(key, []).append(e["Action"] + (f" {sig}" if sig else ""))
    assert seen.get("killed") == ["kill 9", "die", "destroy"], seen
    assert seen.get("stopped-esc") == ["kill 15", "kill 9", "die", "stop", "destroy"], seen
    assert seen.get("forced") == ["kill 9", "die", "destroy"], seen
    ok("kill events")


def log_driver(client):
    try:
        client.containers.create(
            "busybox", ["true"], log_config=docker.types.LogConfig(type="x"), name=PREFIX + "logx"
        )
        raise AssertionError("created with an unknown log driver")
    except docker.errors.APIError as e:
        assert e.status_code == 400, e
        assert e.explanation == 'error looking up logging plugin x: plugin "x" not found', e.explanation
    ok("log driver")


def build_context(dockerfile, files=None):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in [("Dockerfile", dockerfile.encode())] + list((files or {}).items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def build(client, dockerfile, **kw):
    chunks = list(
        client.api.build(fileobj=build_context(dockerfile), custom_context=True, decode=True, rm=True, **kw)
    )
    errors = [c for c in chunks if "error" in c]
    assert not errors, errors
    stream = "".join(c.get("stream", "") for c in chunks)
    ids = [c["aux"]["ID"] for c in chunks if "aux" in c and "ID" in c["aux"]]
    return stream, (ids[-1] if ids else None)


def legacy_build(client):
    # networkmode, extrahosts; RUN's stderr in dockerd's red escape.
    stream, image_id = build(
        client,
        "FROM busybox\n"
        "RUN ls /sys/class/net > /netdevs; awk '$2 == \"buildhost\" { print $1 }' /etc/hosts > /buildhost\n"
        "RUN echo to-stdout; echo to-stderr >&2\n",
        tag="details/built:1",
        network_mode="none",
        extra_hosts={"buildhost": "10.1.2.3"},
    )
    assert "to-stdout\n" in stream, stream
    assert "\x1b[91mto-stderr\n\x1b[0m" in stream, repr(stream)
    out = client.containers.run(image_id, ["cat", "/netdevs", "/buildhost"], remove=True)
    assert out == b"lo\n10.1.2.3\n", out
    # cachefrom: an image loaded from elsewhere (no local build history) is a cache source
    # only when named.
    dockerfile = "FROM busybox\nRUN echo cached-step > /c\nLABEL stage=two\n"
    _, first = build(client, dockerfile, tag="details/cachesrc:1")
    saved = b"".join(client.images.get("details/cachesrc:1").save(named=True))
    client.images.remove("details/cachesrc:1")
    client.images.load(saved)
    stream, _ = build(client, dockerfile)
    assert "Using cache" not in stream, stream
    stream, with_cache = build(client, dockerfile, cache_from=["details/cachesrc:1"])
    assert stream.count("Using cache") == 2, stream
    assert with_cache == first, (with_cache, first)
    ok("legacy build")


STEPS = [exec_tty, commit_pause, import_changes, remove_link, kill_events, log_driver, legacy_build]


def main():
    import sys

    client = docker.from_env(timeout=120)
    only = sys.argv[1:]
    for step in STEPS:
        if not only or step.__name__ in only:
            step(client)
    ok("all")


if __name__ == "__main__":
    main()
