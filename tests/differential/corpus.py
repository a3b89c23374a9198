"""The requests the differential check replays, in order: both daemons see the same sequence, so
they are in the same state at each step (create → inspect → start → … → remove). Everything is
named `diff-*` and removed by the last phase (and by `sweep`, also after a failure).

Placeholders: `{c_a}` and the like are ids captured from earlier answers (each daemon its own);
`{subnet1}`… are each daemon's own subnets (own_vars); `{since}` is the run's start time and
`{now}` the time of the request."""

import json
import os
import time

import wire
from steps import Step, q

V = "1.41"  # the newest API dockerd 20.10 speaks
OLD = [None, "1.24", "1.30", "1.40", "1.41"]  # None: unversioned
NEW = ["1.44", "1.51"]  # beyond dockerd 20.10: berth only, checked against the spec


def own_vars(daemon):
    """Values that differ between the daemons by design: their subnets (two bridges must not
    share one), the run's start."""
    base = {"docker": 93, "berth": 94}[daemon]
    return {
        "subnet1": f"172.31.{base}.0/24",
        "gateway1": f"172.31.{base}.1",
        "ip1": f"172.31.{base}.10",
        "subnet2": f"172.31.{base + 2}.0/24",
        "since": int(time.time()) - 1,
    }


def busybox_tar(_vars):
    path = os.environ.get("DIFF_BUSYBOX_TAR")
    with open(path, "rb") as f:
        return f.read()


def context(dockerfile, **files):
    files = dict(files, Dockerfile=dockerfile)
    return wire.make_tar(files)


def G(path, **kw):
    return Step("GET", path, **kw)


def P(path, body=None, **kw):
    return Step("POST", path, body, **kw)


def D(path, **kw):
    return Step("DELETE", path, **kw)


def setup(step):
    step.compare = False
    return step


BUSYBOX = {"Image": "busybox"}


def system():
    for v in OLD:
        yield G("/_ping", version=v)
        yield G("/version", version=v)
        yield G("/info", version=v)
        yield G("/system/df", version=v)
    yield Step("HEAD", "/_ping")
    yield Step("POST", "/_ping")
    yield G("/v1.12/version", version=None, note="older than berth's minimum")
    yield G("/v1.99/version", version=None)
    yield G("/v0.1/version", version=None)
    yield G("/nope")
    yield G("/containers/json/extra")
    for v in NEW:
        yield G("/_ping", version=v, only="berth")
        yield G("/version", version=v, only="berth")
        yield G("/info", version=v, only="berth")
        yield G("/system/df", version=v, only="berth")


def images():
    yield P("/images/load?quiet=1", raw=busybox_tar, content_type="application/x-tar", values=["stream"])
    yield G("/images/busybox/json", capture={"img": "Id", "img12": lambda a: a.data({}).get("Id", "")[7:19]}, values=["Id", "RepoTags", "Os", "Architecture", "Config.Cmd"])
    for v in OLD:
        yield G("/images/json", version=v)
        yield G("/images/busybox/json", version=v)
    yield G(q("/images/json", all=True))
    yield G(q("/images/json", digests=True))
    yield G(q("/images/json", filters={"reference": ["busybox"]}), values=["0.RepoTags"])
    yield G(q("/images/json", filters={"reference": ["nope*"]}))
    yield G(q("/images/json", filters={"dangling": ["true"]}))
    yield G(q("/images/json", filters={"dangling": ["maybe"]}))
    yield G(q("/images/json", filters={"label": ["nope=1"]}))
    yield G(q("/images/json", filters={"before": ["busybox"]}))
    yield G(q("/images/json", filters={"bogus": ["x"]}))
    yield G("/images/json?filters=notjson")
    yield G("/images/json?filter=busybox", version="1.24")
    yield G("/images/busybox:latest/json")
    yield G("/images/{img}/json")
    yield G("/images/{img12}/json")
    yield G("/images/nope/json")
    yield G("/images/nope:1/json")
    yield G("/images/Bad_Name/json")
    yield G("/images/busybox/history", values=["0.CreatedBy"])
    yield G("/images/nope/history")
    yield P(q("/images/busybox/tag", repo="diff-tag", tag="v1"))
    yield P(q("/images/busybox/tag", repo="diff-tag", tag="v1"))
    yield P(q("/images/busybox/tag", repo="Bad_Repo"))
    yield P(q("/images/busybox/tag", repo="diff-tag", tag="bad:tag"))
    yield P(q("/images/busybox/tag"))
    yield P(q("/images/nope/tag", repo="diff-tag"))
    yield G("/images/diff-tag:v1/json", values=["RepoTags"])
    yield D("/images/diff-tag:v1", values=["0.Untagged"])
    yield D("/images/diff-tag:v1")
    yield D("/images/nope")
    yield D("/images/nope?force=1")
    yield G("/images/busybox/get", kind="tar", tar_loose=True)
    yield G(q("/images/get", names="busybox"), kind="tar", tar_loose=True)
    yield G("/images/nope/get")
    yield P("/images/load?quiet=0", raw=busybox_tar, content_type="application/x-tar", kind="ndjson")
    yield P("/images/load", raw=b"not a tar", content_type="application/x-tar", kind="ndjson")
    yield P(
        q("/images/create", fromSrc="-", repo="diff-imported", tag="1"),
        raw=wire.make_tar({"hello.txt": "imported\n"}),
        content_type="application/x-tar",
        kind="ndjson",
    )
    yield G("/images/diff-imported:1/json", values=["RepoTags", "Config.Cmd", "Config.Env", "Os"])
    yield D("/images/diff-imported:1")
    yield P("/images/create")
    yield P(q("/images/create", fromImage="localhost:1/diff-nope", tag="1"), kind="ndjson")
    yield P(q("/images/create", fromImage="busybox", tag="bad:tag"))
    yield P(q("/images/create", fromImage="Bad_Name"))
    yield G(q("/images/search", term="localhost:1/diff"))
    yield G("/images/search")
    yield P("/images/nope/push")
    yield P(q("/images/busybox/tag", repo="localhost:1/diff-push", tag="1"))
    yield P(q("/images/localhost:1/diff-push/push", tag="1"), headers={"X-Registry-Auth": "e30="}, kind="ndjson")
    yield D("/images/localhost:1/diff-push:1")
    yield P(q("/images/prune", filters={"dangling": ["true"]}))
    yield P(q("/images/prune", filters={"bogus": ["x"]}))
    yield P("/auth", "not json")
    yield P("/auth", {"username": "u", "password": "p", "serveraddress": "localhost:1"})
    for v in NEW:
        yield G("/images/json", version=v, only="berth")
        yield G("/images/busybox/json", version=v, only="berth")
        yield G("/images/busybox/history", version=v, only="berth")


CREATE_B = {
    "Image": "busybox",
    "Cmd": ["sleep", "300"],
    "Env": ["GREETING=hi", "EMPTY="],
    "Labels": {"team": "diff"},
    "WorkingDir": "/tmp",
    "User": "1000:1000",
    "ExposedPorts": {"80/tcp": {}},
    "StopSignal": "SIGUSR1",
    "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000, "Retries": 2},
    "HostConfig": {
        "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]},
        "Memory": 67108864,
        "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2},
        "Binds": ["diff-bvol:/data"],
        "Tmpfs": {"/run/t": "size=1m"},
        "CapAdd": ["NET_ADMIN"],
        "CapDrop": ["MKNOD"],
        "Dns": ["192.0.2.53"],
        "ExtraHosts": ["myhost:192.0.2.9"],
        "ReadonlyRootfs": False,
        "Init": False,
        "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048}],
    },
}

INSPECT_VALUES = [
    "Name", "Path", "Args", "State.Status", "State.Running", "State.ExitCode", "Config.Cmd",
    "Config.Env", "Config.Labels", "Config.WorkingDir", "Config.User", "Config.ExposedPorts",
    "Config.StopSignal", "HostConfig.Memory", "HostConfig.RestartPolicy", "HostConfig.Binds",
    "HostConfig.PortBindings", "HostConfig.CapAdd", "HostConfig.CapDrop", "HostConfig.Tmpfs",
    "HostConfig.NetworkMode", "HostConfig.Ulimits", "HostConfig.ExtraHosts", "HostConfig.Dns",
    "Driver", "Platform", "RestartCount", "Mounts.0.Name", "Mounts.0.Destination", "Mounts.0.Mode",
]


def containers_create():
    yield P(
        "/containers/create?name=diff-a",
        {"Image": "busybox", "Cmd": ["sh", "-c", "echo out; echo err >&2"], "Labels": {"team": "diff"}},
        capture={"c_a": "Id", "c_a12": lambda a: a.data({}).get("Id", "")[:12]},
        values=["Warnings"],
    )
    yield P("/containers/create?name=diff-a", {"Image": "busybox"})
    yield P("/containers/create?name=bad/name", BUSYBOX)
    yield P("/containers/create?name=-bad", BUSYBOX)
    yield P("/containers/create", {"Image": "nope:1"})
    yield P("/containers/create", {"Image": "Bad_Name"})
    yield P("/containers/create", {})
    yield P("/containers/create", "not json")
    yield P("/containers/create", "")
    yield P("/containers/create", "[]")
    yield P("/containers/create?name=diff-b", CREATE_B, capture={"c_b": "Id"}, values=["Warnings"])
    yield P("/containers/create?name=diff-e1", dict(BUSYBOX, HostConfig={"Memory": 1}))
    yield P("/containers/create?name=diff-e2", dict(BUSYBOX, HostConfig={"RestartPolicy": {"Name": "sometimes"}}))
    yield P("/containers/create?name=diff-e3", dict(BUSYBOX, HostConfig={"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}}))
    yield P("/containers/create?name=diff-e4", dict(BUSYBOX, HostConfig={"NetworkMode": "nope"}))
    yield P("/containers/create?name=diff-e5", dict(BUSYBOX, HostConfig={"PortBindings": {"abc/tcp": [{}]}}))
    yield P("/containers/create?name=diff-e6", dict(BUSYBOX, HostConfig={"CpuShares": -1}))
    yield P("/containers/create?name=diff-e13", dict(BUSYBOX, HostConfig={"CpusetCpus": "99"}))
    yield P("/containers/create?name=diff-e14", dict(BUSYBOX, HostConfig={"CapDrop": ["NOT_A_CAP"]}))
    yield P("/containers/create?name=diff-e7", dict(BUSYBOX, HostConfig={"Binds": ["relative:/x:rw:bogus"]}))
    yield P("/containers/create?name=diff-e8", dict(BUSYBOX, HostConfig={"Mounts": [{"Type": "bind", "Source": "/nope/diff", "Target": "/x"}]}))
    yield P("/containers/create?name=diff-e9", dict(BUSYBOX, HostConfig={"CapAdd": ["NOT_A_CAP"]}))
    yield P("/containers/create?name=diff-e10", dict(BUSYBOX, HostConfig={"IpcMode": "bogus"}))
    yield P("/containers/create?name=diff-e11", dict(BUSYBOX, HostConfig={"PidMode": "container:nope"}))
    yield P("/containers/create?name=diff-e12", dict(BUSYBOX, StopTimeout=-5, Cmd="echo hi"), capture={"c_str": "Id"})
    yield P("/containers/create?name=diff-tty", {"Image": "busybox", "Cmd": ["sh", "-c", "echo tty-out"], "Tty": True})
    yield P(
        "/containers/create?name=diff-in",
        {
            "Image": "busybox",
            "Cmd": ["sh", "-c", "cat; echo done >&2"],
            "OpenStdin": True,
            "StdinOnce": True,
            "AttachStdin": True,
            "AttachStdout": True,
            "AttachStderr": True,
        },
    )
    yield P("/containers/create?name=diff-unknown-key", dict(BUSYBOX, NotAField=1, HostConfig={"AlsoNot": True}))
    yield P("/containers/create?name=diff-old", dict(BUSYBOX, Cmd=["true"]), version="1.24")
    yield P(q("/containers/create", name="diff-plat", platform="linux/arm64"), BUSYBOX)
    yield P(q("/containers/create", name="diff-plat2", platform="linux/amd64"), BUSYBOX)
    yield P(q("/containers/create", platform="bogus"), BUSYBOX)
    for v in NEW:
        yield P(f"/containers/create?name=diff-new{v.replace('.', '')}", dict(BUSYBOX, Cmd=["true"]), version=v, only="berth")
        yield D(f"/containers/diff-new{v.replace('.', '')}", version=v, only="berth")
    # The refused creates one daemon may have accepted, gone before the lists below.
    for n in range(1, 15):
        if n != 12:
            yield D(f"/containers/diff-e{n}?force=1")
    yield D("/containers/diff-plat?force=1")


def containers_read():
    yield G(q("/containers/json", all=True), values=["0.Names", "0.Image", "0.State"])
    yield G("/containers/json")
    yield G(q("/containers/json", all=True, size=True))
    yield G(q("/containers/json", all=True, limit=1))
    yield G(q("/containers/json", all=True, limit="abc"))
    yield G(q("/containers/json", all="maybe"))
    yield G(q("/containers/json", all=True, filters={"name": ["diff-a"]}), values=["0.Names", "0.Command", "0.Labels"])
    yield G(q("/containers/json", all=True, filters={"status": ["created"]}))
    yield G(q("/containers/json", all=True, filters={"status": ["bogus"]}))
    yield G(q("/containers/json", all=True, filters={"label": ["team=diff"]}))
    yield G(q("/containers/json", all=True, filters={"ancestor": ["busybox"]}))
    yield G(q("/containers/json", all=True, filters={"id": ["{c_a}"]}))
    yield G(q("/containers/json", all=True, filters={"health": ["bogus"]}))
    yield G(q("/containers/json", all=True, filters={"bogus": ["x"]}))
    yield G("/containers/json?all=1&filters=notjson")
    yield G(q("/containers/json", all=True, filters={"name": {"diff-a": True}}))
    for v in OLD:
        yield G(q("/containers/json", all=True), version=v)
        yield G("/containers/diff-b/json", version=v, values=INSPECT_VALUES if v == V else ())
    yield G("/containers/diff-a/json", values=INSPECT_VALUES)
    yield G("/containers/{c_a}/json")
    yield G("/containers/{c_a12}/json")
    yield G(q("/containers/diff-a/json", size=True))
    yield G("/containers/nope/json")
    yield G("/containers/diff-tty/json", values=["Config.Tty", "Config.OpenStdin"])
    yield G("/containers/diff-in/json", values=["Config.OpenStdin", "Config.StdinOnce", "Config.AttachStdin"])
    yield G("/containers/diff-unknown-key/json", values=["Config.Cmd", "Config.Image"])
    yield G("/containers/diff-old/json", values=["Config.Cmd"])
    yield G("/containers/{c_str}/json", values=["Config.Cmd", "Config.StopTimeout"])
    for v in NEW:
        yield G(q("/containers/json", all=True), version=v, only="berth")
        yield G("/containers/diff-b/json", version=v, only="berth")


def lifecycle_a():
    yield G("/containers/diff-a/top")
    yield G("/containers/diff-a/logs")
    yield G(q("/containers/diff-a/logs", stdout=True))
    yield P("/containers/diff-a/start")
    yield P("/containers/diff-a/wait", values=["StatusCode", "Error"])
    yield P("/containers/diff-a/wait?condition=bogus")
    yield P("/containers/nope/wait")
    yield P("/containers/diff-a/start", values=[])
    yield P("/containers/diff-a/wait?condition=not-running", values=["StatusCode"])
    yield G(q("/containers/diff-a/logs", stdout=True, stderr=True), kind="stream")
    yield G(q("/containers/diff-a/logs", stdout=True), kind="stream")
    yield G(q("/containers/diff-a/logs", stderr=True), kind="stream")
    yield G(q("/containers/diff-a/logs", stdout=True, timestamps=True), kind="stream")
    yield G(q("/containers/diff-a/logs", stdout=True, stderr=True, tail=1), kind="stream")
    yield G(q("/containers/diff-a/logs", stdout=True, tail="abc"), kind="stream")
    yield G(q("/containers/diff-a/logs", stdout=True, since="abc"))
    yield G(q("/containers/diff-a/logs", stdout=True, until="{since}"), kind="stream")
    yield G(q("/containers/nope/logs", stdout=True))
    yield Step("POST", q("/containers/diff-a/attach", logs=True, stream=False, stdout=True, stderr=True), hijack=True, upgrade=False, kind="stream")
    yield Step("POST", q("/containers/diff-a/attach", logs=True, stream=False, stdout=True, stderr=True), hijack=True, kind="stream")
    yield P(q("/containers/nope/attach", stream=True))
    yield P("/containers/diff-a/stop")
    yield P("/containers/diff-a/kill")
    yield P("/containers/diff-a/pause")
    yield P("/containers/diff-a/unpause")
    yield P(q("/containers/diff-a/resize", h=10, w=20))
    yield G(q("/containers/diff-a/stats", stream=False))
    yield G("/containers/diff-a/changes")
    yield G("/containers/diff-a/export", kind="tar")
    yield G("/containers/nope/export")
    yield P(q("/containers/diff-a/rename", name="diff-a2"))
    yield G("/containers/diff-a2/json", values=["Name"])
    yield P(q("/containers/diff-a2/rename", name="diff-a"))
    yield P(q("/containers/diff-a/rename", name="diff-b"))
    yield P(q("/containers/diff-a/rename", name="bad/name"))
    yield P("/containers/diff-a/rename")
    yield P(q("/containers/nope/rename", name="x"))
    yield P(q("/commit", container="diff-a", repo="diff-commit", tag="1", comment="from diff", author="me"), capture={"i_commit": "Id"})
    yield G("/images/diff-commit:1/json", values=["Comment", "Author", "Config.Cmd", "Config.Labels", "RepoTags"])
    yield P(q("/commit", container="diff-a", repo="diff-commit", tag="2", changes="CMD [\"echo\",\"changed\"]"), {"Env": ["FROM_BODY=1"]})
    yield G("/images/diff-commit:2/json", values=["Config.Cmd", "Config.Env"])
    yield P(q("/commit", container="nope", repo="x"))
    yield P(q("/commit", container="diff-a", repo="Bad_Repo"))
    yield P(q("/commit", container="diff-a", changes="BOGUS x"))
    yield P("/containers/diff-a/update", {"Memory": 67108864, "MemorySwap": -1}, values=["Warnings"])
    yield G("/containers/diff-a/json", values=["HostConfig.Memory", "HostConfig.MemorySwap"])
    yield P("/containers/diff-a/update", {"RestartPolicy": {"Name": "sometimes"}})
    yield P("/containers/diff-a/update", {"Memory": 1})
    yield P("/containers/nope/update", {})
    yield D("/containers/diff-a")
    yield D("/containers/diff-a")
    yield D("/containers/{c_str}")


def running():
    yield P("/containers/create?name=diff-run", {"Image": "busybox", "Cmd": ["sleep", "300"], "Labels": {"team": "diff"}})
    yield P("/containers/diff-run/start")
    yield P("/containers/diff-run/start")
    yield G("/containers/diff-run/json", values=["State.Status", "State.Running", "State.Paused", "Config.Cmd"])
    yield G("/containers/diff-run/top", values=["Titles"])
    yield G(q("/containers/diff-run/top", ps_args="-o pid,comm"), values=["Titles"])
    yield G(q("/containers/diff-run/top", ps_args="--bogus"))
    yield G(q("/containers/diff-run/stats", stream=False))
    yield G(q("/containers/diff-run/stats", stream=False, **{"one-shot": True}))
    yield G(q("/containers/nope/stats", stream=False))
    yield G(q("/containers/json", filters={"status": ["running"]}), values=["0.Names", "0.State"])
    yield P("/containers/diff-run/pause")
    yield G("/containers/diff-run/json", values=["State.Status", "State.Paused"])
    yield P("/containers/diff-run/pause")
    yield P("/containers/diff-run/exec", {"Cmd": ["true"]})
    yield P("/containers/diff-run/unpause")
    yield P("/containers/diff-run/unpause")
    yield P(q("/containers/diff-run/resize", h=10, w=20))
    yield P(q("/containers/diff-run/resize", h="abc", w=20))
    yield P(q("/containers/diff-run/kill", signal="BOGUS"))
    yield P(q("/containers/diff-run/kill", signal="SIGUSR1"))
    yield P(q("/containers/diff-run/kill", signal="0"))
    yield D("/containers/diff-run")
    # Archives
    yield Step("HEAD", q("/containers/diff-run/archive", path="/etc/hostname"))
    yield Step("HEAD", q("/containers/diff-run/archive", path="/bin/sh"))
    yield Step("HEAD", q("/containers/diff-run/archive", path="/nope"))
    yield Step("HEAD", "/containers/diff-run/archive")
    yield G(q("/containers/diff-run/archive", path="/etc/passwd"), kind="tar")
    yield G(q("/containers/diff-run/archive", path="/etc/"), kind="tar", tar_loose=True)
    yield G(q("/containers/diff-run/archive", path="/nope"))
    yield G("/containers/diff-run/archive")
    yield G(q("/containers/nope/archive", path="/"))
    diffctx = wire.make_tar({"diff.txt": "archived\n", "sub/nested.txt": "nested\n"})
    yield Step("PUT", q("/containers/diff-run/archive", path="/tmp"), raw=diffctx, content_type="application/x-tar")
    yield G(q("/containers/diff-run/archive", path="/tmp/sub"), kind="tar")
    yield Step("HEAD", q("/containers/diff-run/archive", path="/tmp/diff.txt"))
    yield Step("PUT", q("/containers/diff-run/archive", path="/nope"), raw=diffctx, content_type="application/x-tar")
    yield Step("PUT", q("/containers/diff-run/archive", path="/etc/passwd"), raw=diffctx, content_type="application/x-tar")
    yield Step("PUT", "/containers/diff-run/archive", raw=diffctx, content_type="application/x-tar")
    yield Step("PUT", q("/containers/diff-run/archive", path="/tmp"), raw=b"not a tar", content_type="application/x-tar")
    yield G("/containers/diff-run/changes")
    # Exec
    yield P(
        "/containers/diff-run/exec",
        {"Cmd": ["sh", "-c", "echo eo; echo ee >&2; exit 3"], "AttachStdout": True, "AttachStderr": True},
        capture={"e1": "Id"},
    )
    yield G("/exec/{e1}/json", values=["Running", "ExitCode", "ProcessConfig", "OpenStdin", "OpenStdout", "CanRemove"])
    yield Step("POST", "/exec/{e1}/start", {"Detach": False, "Tty": False}, hijack=True, kind="stream")
    yield G("/exec/{e1}/json", values=["Running", "ExitCode"])
    yield Step("POST", "/exec/{e1}/start", {"Detach": False, "Tty": False}, hijack=True)
    yield P(q("/exec/{e1}/resize", h=10, w=10))
    yield P("/containers/diff-run/exec", {"Cmd": ["tr", "a-z", "A-Z"], "AttachStdin": True, "AttachStdout": True}, capture={"e2": "Id"})
    yield Step("POST", "/exec/{e2}/start", {}, hijack=True, stdin=b"shout\n", kind="stream")
    yield P("/containers/diff-run/exec", {"Cmd": ["sh", "-c", "id -u; pwd; echo $X"], "AttachStdout": True, "User": "nobody", "WorkingDir": "/tmp", "Env": ["X=y"]}, capture={"e3": "Id"})
    yield Step("POST", "/exec/{e3}/start", {}, hijack=True, upgrade=False, kind="stream")
    yield P("/containers/diff-run/exec", {"Cmd": ["touch", "/tmp/detached"]}, capture={"e4": "Id"})
    yield P("/exec/{e4}/start", {"Detach": True})
    yield P("/containers/diff-run/exec", {"Cmd": ["nope-cmd"], "AttachStdout": True, "AttachStderr": True}, capture={"e5": "Id"})
    yield Step("POST", "/exec/{e5}/start", {}, hijack=True, kind="stream")
    yield G("/exec/{e5}/json", values=["ExitCode", "Running"])
    yield P("/containers/diff-run/exec", {"AttachStdout": True})
    yield P("/containers/diff-run/exec", {"Cmd": []})
    yield P("/containers/diff-run/exec", "not json")
    yield P("/containers/nope/exec", {"Cmd": ["true"]})
    yield P("/containers/diff-b/exec", {"Cmd": ["true"]})
    yield G("/exec/nope/json")
    yield P("/exec/nope/start", {})
    yield P(q("/exec/nope/resize", h=1, w=1))
    yield P("/exec/{e1}/start", "not json")
    for v in NEW:
        yield P("/containers/diff-run/exec", {"Cmd": ["true"]}, version=v, only="berth", capture={"e_new": "Id"})
        yield G("/exec/{e_new}/json", version=v, only="berth")
        yield G(q("/containers/diff-run/stats", stream=False), version=v, only="berth")
        yield G("/containers/diff-run/top", version=v, only="berth")
    # Restart, stop, wait
    yield P(q("/containers/diff-run/restart", t=1))
    yield P(q("/containers/diff-run/restart", t="abc"))
    yield G("/containers/diff-run/json", values=["State.Status", "RestartCount"])
    yield P(q("/containers/diff-run/stop", t="abc"))
    yield P(q("/containers/diff-run/stop", t=1))
    yield P("/containers/diff-run/stop")
    yield P("/containers/diff-run/wait", values=["StatusCode"])
    yield G("/containers/diff-run/json", values=["State.Status", "State.ExitCode", "State.OOMKilled", "State.Error"])
    yield P("/containers/diff-run/kill")
    yield G("/containers/diff-run/top")
    yield P("/containers/diff-run/exec", {"Cmd": ["true"]})
    yield D("/containers/diff-run?v=1")


def streams():
    # TTY: the raw stream
    yield P("/containers/diff-tty/start")
    yield P("/containers/diff-tty/wait", values=["StatusCode"])
    yield G(q("/containers/diff-tty/logs", stdout=True, stderr=True), kind="stream")
    yield Step("POST", q("/containers/diff-tty/attach", logs=True, stream=False, stdout=True), hijack=True, kind="stream")
    # Hijacked attach with stdin, before the start (as `docker start -ai` and the SDKs do).
    yield Step(
        "POST",
        q("/containers/diff-in/attach", stream=True, stdin=True, stdout=True, stderr=True),
        hijack=True,
        stdin=b"line one\nline two\n",
        during=P("/containers/diff-in/start"),
        kind="stream",
    )
    yield P("/containers/diff-in/wait", values=["StatusCode"])
    yield G(q("/containers/diff-in/logs", stdout=True, stderr=True), kind="stream")
    yield D("/containers/diff-in")
    yield D("/containers/diff-tty")


def volumes():
    yield P("/volumes/create", {"Name": "diff-vol", "Labels": {"a": "b"}}, values=["Name", "Driver", "Labels", "Scope", "Options"])
    yield P("/volumes/create", {"Name": "diff-vol", "Labels": {"a": "b"}}, values=["Name"])
    yield P("/volumes/create", {"Name": "diff-vol", "Labels": {"other": "c"}})
    yield P("/volumes/create", {"Name": "diff-vol2", "DriverOpts": {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}}, values=["Options"])
    yield P("/volumes/create", {"Name": "diff-nodrv", "Driver": "nope"})
    yield P("/volumes/create", {"Name": "bad/name"})
    yield P("/volumes/create", "not json")
    yield P("/volumes/create", {}, capture={"v_anon": "Name"})
    for v in OLD:
        yield G("/volumes", version=v)
        yield G("/volumes/diff-vol", version=v)
    yield G(q("/volumes", filters={"name": ["diff-vol"]}), values=["Volumes.0.Name", "Volumes.0.Labels"])
    yield G(q("/volumes", filters={"label": ["a=b"]}))
    yield G(q("/volumes", filters={"dangling": ["true"]}))
    yield G(q("/volumes", filters={"dangling": ["maybe"]}))
    yield G(q("/volumes", filters={"driver": ["local"]}))
    yield G(q("/volumes", filters={"bogus": ["x"]}))
    yield G("/volumes?filters=notjson")
    yield G("/volumes/diff-vol", values=["Name", "Driver", "Labels", "Scope", "Options"])
    yield G("/volumes/nope")
    yield P("/containers/create?name=diff-volc", dict(BUSYBOX, HostConfig={"Binds": ["diff-vol:/data"]}))
    yield G("/containers/diff-volc/json", values=["Mounts.0.Name", "Mounts.0.Destination", "Mounts.0.Mode", "Mounts.0.RW", "HostConfig.Binds"])
    yield D("/volumes/diff-vol")
    yield D("/containers/diff-volc")
    yield D("/volumes/diff-vol")
    yield D("/volumes/diff-vol")
    yield D("/volumes/diff-vol2?force=1")
    yield D("/volumes/{v_anon}")
    yield D("/volumes/nope?force=1")
    yield P(q("/volumes/prune", filters={"label": ["diff-prune"]}), values=["VolumesDeleted"])
    yield P(q("/volumes/prune", filters={"bogus": ["x"]}))
    for v in NEW:
        yield G("/volumes", version=v, only="berth")
        yield P("/volumes/create", {"Name": "diff-newvol"}, version=v, only="berth")
        yield G("/volumes/diff-newvol", version=v, only="berth")
        yield D("/volumes/diff-newvol", version=v, only="berth")


def networks():
    for v in OLD:
        yield G("/networks", version=v)
        yield G("/networks/bridge", version=v)
    yield G("/networks/host", values=["Name", "Driver", "Scope", "IPAM.Driver"])
    yield G("/networks/none", values=["Name", "Driver", "Scope"])
    yield G("/networks/bridge", values=["Name", "Driver", "Scope", "Internal", "Attachable", "EnableIPv6", "Options"])
    yield G("/networks/nope")
    yield G(q("/networks/bridge", verbose=True))
    yield G(q("/networks", filters={"name": ["bridge"]}), values=["0.Name"])
    yield G(q("/networks", filters={"driver": ["bridge"]}))
    yield G(q("/networks", filters={"type": ["builtin"]}))
    yield G(q("/networks", filters={"type": ["bogus"]}))
    yield G(q("/networks", filters={"bogus": ["x"]}))
    yield G("/networks?filters=notjson")
    yield P(
        "/networks/create",
        {"Name": "diff-net", "CheckDuplicate": True, "IPAM": {"Config": [{"Subnet": "{subnet1}", "Gateway": "{gateway1}"}]}, "Labels": {"a": "b"}},
        capture={"n1": "Id", "n1_12": lambda a: a.data({}).get("Id", "")[:12]},
        values=["Warning"],
    )
    yield P("/networks/create", {"Name": "diff-net", "CheckDuplicate": True})
    yield P("/networks/create", {"Name": "diff-net2", "IPAM": {"Config": [{"Subnet": "{subnet1}"}]}})
    yield P("/networks/create", {"Name": "diff-net3", "Driver": "nope"})
    yield P("/networks/create", {"Name": "diff-net4", "IPAM": {"Config": [{"Subnet": "bogus"}]}})
    yield P("/networks/create", {"Name": "diff-net5", "IPAM": {"Config": [{"Subnet": "{subnet2}", "Gateway": "10.0.0.1"}]}})
    yield P("/networks/create", {"Name": ""})
    yield P("/networks/create", "not json")
    yield P("/networks/create", {"Name": "host"})
    yield G("/networks/diff-net", values=["Name", "Driver", "Scope", "IPAM.Config", "Labels", "Internal", "Options"])
    yield G("/networks/{n1}")
    yield G("/networks/{n1_12}")
    yield P("/containers/create?name=diff-netc", dict(BUSYBOX, Cmd=["sleep", "300"]), capture={"c_netc": "Id"})
    yield P("/networks/diff-net/connect", {"Container": "diff-netc", "EndpointConfig": {"Aliases": ["diff-alias"], "IPAMConfig": {"IPv4Address": "{ip1}"}}})
    yield P("/networks/diff-net/connect", {"Container": "diff-netc"})
    yield P("/networks/diff-net/connect", {"Container": "nope"})
    yield P("/networks/diff-net/connect", "not json")
    yield G("/containers/diff-netc/json", values=["NetworkSettings.Networks.diff-net.Aliases", "NetworkSettings.Networks.diff-net.IPAMConfig"])
    yield P("/containers/diff-netc/start")
    yield G("/networks/diff-net")
    yield P("/networks/nope/connect", {"Container": "diff-netc"})
    yield G("/containers/diff-netc/json", values=["NetworkSettings.Networks.diff-net.IPAddress", "NetworkSettings.Networks.diff-net.Aliases"])
    yield D("/networks/diff-net")
    yield P("/networks/diff-net/disconnect", {"Container": "diff-netc"})
    yield P("/networks/diff-net/disconnect", {"Container": "diff-netc"})
    yield P("/networks/diff-net/disconnect", {"Container": "nope", "Force": True})
    yield P("/networks/nope/disconnect", {"Container": "diff-netc"})
    yield D("/containers/diff-netc?force=1")
    yield D("/networks/diff-net")
    yield D("/networks/diff-net")
    yield D("/networks/bridge")
    yield D("/networks/host")
    yield P(q("/networks/prune", filters={"label": ["diff-prune"]}), values=["NetworksDeleted"])
    yield P(q("/networks/prune", filters={"bogus": ["x"]}))
    for v in NEW:
        yield G("/networks", version=v, only="berth")
        yield G("/networks/bridge", version=v, only="berth")


DOCKERFILE = 'FROM busybox\nARG WHO=nobody\nENV GREETING=hi\nRUN echo "$WHO" > /who\nLABEL stage=diff\nEXPOSE 8080\nCMD ["cat", "/who"]\n'


def build():
    yield P(q("/build", t="diff-built:1", buildargs={"WHO": "diff"}, rm=True), raw=context(DOCKERFILE), content_type="application/x-tar", kind="ndjson", timeout=180)
    yield G("/images/diff-built:1/json", values=["RepoTags", "Config.Cmd", "Config.Env", "Config.Labels", "Config.ExposedPorts"])
    yield G("/images/diff-built:1/history", values=["0.CreatedBy"])
    yield P(q("/build", t="diff-built:2", q=True), raw=context(DOCKERFILE), content_type="application/x-tar", kind="ndjson", timeout=180)
    yield P(q("/build", t="diff-bad"), raw=context("FROM busybox\nRUN exit 3\n"), content_type="application/x-tar", kind="ndjson", timeout=180)
    yield P(q("/build", t="diff-bad"), raw=context("FROM busybox\nBOGUS x\n"), content_type="application/x-tar", kind="ndjson")
    yield P(q("/build", t="diff-bad"), raw=context("FROM localhost:1/nope-diff:1\n"), content_type="application/x-tar", kind="ndjson")
    yield P(q("/build", t="diff-bad"), raw=context("RUN true\n"), content_type="application/x-tar", kind="ndjson")
    yield P(q("/build", t="diff-bad", dockerfile="Nope"), raw=context(DOCKERFILE), content_type="application/x-tar", kind="ndjson")
    yield P(q("/build", t="diff-bad"), raw=b"not a tar", content_type="application/x-tar", kind="ndjson")
    yield P(q("/build", t="Bad_Tag"), raw=context(DOCKERFILE), content_type="application/x-tar", kind="ndjson")
    yield P("/build?t=diff-bad&buildargs=notjson", raw=context(DOCKERFILE), content_type="application/x-tar", kind="ndjson")
    yield P("/build/prune", values=[])
    yield D("/images/diff-built:1")
    yield D("/images/diff-built:2")


def events():
    yield G(q("/events", since="{since}", until="{now}"), kind="ndjson", stream_by="Type")
    yield G(q("/events", since="{since}", until="{now}", filters={"type": ["container"]}), kind="ndjson", stream_by="Action")
    yield G(q("/events", since="{since}", until="{now}", filters={"type": ["image"]}), kind="ndjson", stream_by="Action")
    yield G(q("/events", since="{since}", until="{now}", filters={"type": ["volume"]}), kind="ndjson", stream_by="Action")
    yield G(q("/events", since="{since}", until="{now}", filters={"type": ["network"]}), kind="ndjson", stream_by="Action")
    yield G(q("/events", since="{since}", until="{now}", filters={"container": ["diff-a"]}), kind="ndjson", stream_by="Action")
    yield G(q("/events", since="{since}", until="{now}", filters={"bogus": ["x"]}))
    yield G(q("/events", since="{since}", until="{now}", filters={"type": ["bogus"]}))
    yield G("/events?since=1&until=1&filters=notjson")
    yield G(q("/events", since="bogus", until="{now}"))
    yield G(q("/events", since="{now}", until="{since}"), kind="ndjson")
    for v in NEW:
        yield G(q("/events", since="{since}", until="{now}"), version=v, only="berth")


def prune_and_cleanup():
    yield P(q("/containers/prune", filters={"label": ["diff-prune"]}), values=["ContainersDeleted", "SpaceReclaimed"])
    yield P(q("/containers/prune", filters={"bogus": ["x"]}))
    yield P(q("/containers/prune", filters={"until": ["bogus"]}))
    yield D("/containers/diff-b?force=1&v=1")
    yield D("/volumes/diff-bvol")
    yield D("/containers/nope")
    for name in ("diff-unknown-key", "diff-old", "diff-plat2"):
        yield D(f"/containers/{name}")
    yield D("/images/diff-commit:1")
    yield D("/images/diff-commit:2")
    yield D("/images/busybox")
    yield G(q("/containers/json", all=True, filters={"name": ["diff-"]}))
    yield G(q("/volumes", filters={"name": ["diff-"]}))
    yield G(q("/networks", filters={"name": ["diff-"]}))
    yield G(q("/images/json", filters={"reference": ["diff-*"]}))


def unserved():
    """Endpoints berth does not serve (swarm, plugins, …): what clients' teardown code hits."""
    yield G("/swarm")
    yield P("/swarm/leave")
    yield P("/swarm/init", {})
    yield G("/swarm/unlockkey")
    yield G("/services")
    yield G("/nodes")
    yield G("/tasks")
    yield G("/secrets")
    yield G("/configs")
    yield G("/plugins")
    yield G("/distribution/localhost:1/diff-nope/json")
    yield G("/containers/diff-b/attach/ws")


def steps():
    for phase in (system, images, containers_create, containers_read, lifecycle_a, running, streams, volumes, networks, build, events, unserved, prune_and_cleanup):
        yield from phase()


def sweep(daemon):
    """Removes whatever a run left (containers, images, volumes, networks named diff-*), also
    after a failure; not compared."""

    def api(method, path):
        return wire.request(daemon.sock, method, path, timeout=60)

    cs = api("GET", "/v1.41/containers/json?all=1").data([])
    for c in cs:
        if any(n.startswith("/diff-") for n in c.get("Names") or []) or c.get("Id") == daemon.vars.get("c_str"):
            api("DELETE", f"/v1.41/containers/{c['Id']}?force=1&v=1")
    for i in api("GET", "/v1.41/images/json").data([]):
        for t in i.get("RepoTags") or []:
            if t.startswith(("diff-", "localhost:1/diff")):
                api("DELETE", f"/v1.41/images/{t}?force=1")
    vols = api("GET", "/v1.41/volumes").data({}).get("Volumes") or []
    for v in vols:
        if v["Name"].startswith("diff-") or v["Name"] == daemon.vars.get("v_anon"):
            api("DELETE", f"/v1.41/volumes/{v['Name']}?force=1")
    for n in api("GET", "/v1.41/networks").data([]):
        if n["Name"].startswith("diff-"):
            api("DELETE", f"/v1.41/networks/{n['Id']}")
    api("POST", "/v1.41/images/prune?filters=" + json.dumps({"dangling": ["true"]}))
