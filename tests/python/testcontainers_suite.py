"""testcontainers-python against berthd, from DOCKER_HOST (run by tests/tests/testcontainers.rs
with the interpreter of the clients' virtual environment).

Wait strategies (log message, HTTP, healthcheck: from the image's HEALTHCHECK and from the
create request), networks with aliases, copy into and out of containers, image builds. Images
come only from the local busybox image (no registry): whatever else is needed is built from
it. Ryuk (the reaper container, an image from Docker Hub) is off: every container is removed
by its context manager. Every check asserts; one "ok <what>" line per passed step.
"""

import os
import pathlib
import re
import sys
import tempfile
import urllib.request

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
# The daemon is this machine's, on its loopback: even where the machine itself looks like a
# container (/.dockerenv), published ports are reached on 127.0.0.1.
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
os.environ.setdefault("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")

import docker  # noqa: E402
from testcontainers.core.container import DockerContainer  # noqa: E402
from testcontainers.core.image import DockerImage  # noqa: E402
from testcontainers.core.network import Network  # noqa: E402
from testcontainers.core.wait_strategies import (  # noqa: E402
    HealthcheckWaitStrategy,
    HttpWaitStrategy,
    LogMessageWaitStrategy,
)
from testcontainers.core.waiting_utils import wait_for_logs  # noqa: E402

BUSYBOX = "busybox:latest"


def ok(what):
    print(f"ok {what}", flush=True)


def log_waits():
    # The message comes after a delay: start() must block until it is there.
    with DockerContainer(BUSYBOX).with_command(
        ["sh", "-c", "sleep 1; echo warming up; echo 'server ready on port 1234'; exec sleep 300"]
    ).waiting_for(LogMessageWaitStrategy(re.compile(r"ready on port \d+")).with_startup_timeout(20)) as c:
        out, _ = c.get_logs()
        assert b"server ready on port 1234" in out, out
        assert c.status == "running", c.status
    # Twice, and on stderr only: the log stream's demultiplexing matters (the strategy's
    # `times` is not counted by testcontainers 4.x: the pattern asks for both lines).
    with DockerContainer(BUSYBOX).with_command(
        ["sh", "-c", "echo tick >&2; sleep 0.5; echo tick >&2; exec sleep 300"]
    ).waiting_for(LogMessageWaitStrategy(re.compile(r"tick\ntick")).with_startup_timeout(20)) as c:
        out, err = c.get_logs()
        assert err.count(b"tick") == 2 and b"tick" not in out, (out, err)
    # The older helper, which also notices a container that exits first.
    with DockerContainer(BUSYBOX).with_command(["sh", "-c", "echo done-and-gone"]) as c:
        wait_for_logs(c, "done-and-gone", timeout=20)
        try:
            wait_for_logs(c, "never printed", timeout=20, raise_on_exit=True)
            raise AssertionError("no error for an exited container")
        except RuntimeError:
            pass
    ok("log wait")


def loopback_port(container, port):
    """Publishes `port` on a random host port of 127.0.0.1 (with_exposed_ports would bind all
    addresses, and servers of these tests listen on loopback only): docker-py's `(ip,)` form."""
    container.with_exposed_ports(port)
    container.ports[str(port)] = ("127.0.0.1",)
    return container


def http_wait():
    script = "sleep 1; mkdir -p /w; echo up > /w/ready; exec httpd -f -p 80 -h /w"
    with (
        loopback_port(DockerContainer(BUSYBOX).with_command(["sh", "-c", script]), 80)
        .waiting_for(
            HttpWaitStrategy(80, "/ready")
            .for_status_code(200)
            .for_response_predicate(lambda body: body.strip() == "up")
            .with_startup_timeout(30)
        ) as c
    ):
        port = c.get_exposed_port(80)
        assert port > 0, port
        host = c.get_container_host_ip()
        body = urllib.request.urlopen(f"http://{host}:{port}/ready", timeout=5).read()
        assert body == b"up\n", body
        binding = c.get_wrapped_container().attrs["NetworkSettings"]["Ports"]["80/tcp"]
        assert [b["HostIp"] for b in binding] == ["127.0.0.1"], binding
    ok("http wait")


def healthcheck_waits(workdir):
    # From the create request (HostConfig-level Healthcheck): healthy after a few checks.
    health = {
        "test": ["CMD-SHELL", "test -f /tmp/healthy"],
        "interval": 500_000_000,
        "timeout": 2_000_000_000,
        "retries": 10,
        "start_period": 0,
    }
    with (
        DockerContainer(BUSYBOX, healthcheck=health)
        .with_command(["sh", "-c", "sleep 1; touch /tmp/healthy; exec sleep 300"])
        .waiting_for(HealthcheckWaitStrategy().with_startup_timeout(30))
    ) as c:
        state = c.get_wrapped_container().attrs["State"]
        assert state["Health"]["Status"] == "healthy", state
    # An unhealthy container makes start() fail with the check's output.
    failing = {"test": ["CMD-SHELL", "echo nope; exit 1"], "interval": 300_000_000, "retries": 2}
    c = (
        DockerContainer(BUSYBOX, healthcheck=failing)
        .with_command(["sleep", "300"])
        .waiting_for(HealthcheckWaitStrategy().with_startup_timeout(30))
    )
    try:
        with c:
            raise AssertionError("an unhealthy container started")
    except RuntimeError as e:
        assert "unhealthy" in str(e) and "nope" in str(e), e
    # From the image's HEALTHCHECK instruction.
    ctx = pathlib.Path(workdir) / "healthy-image"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM busybox:latest\n"
        "HEALTHCHECK --interval=1s --timeout=2s --retries=10 CMD test -f /tmp/ok\n"
        'CMD ["sh", "-c", "sleep 1; touch /tmp/ok; exec sleep 300"]\n'
    )
    with DockerImage(path=str(ctx), tag="tc-healthy:1") as image:
        with DockerContainer(str(image)).waiting_for(HealthcheckWaitStrategy().with_startup_timeout(30)) as c:
            assert c.get_wrapped_container().attrs["State"]["Health"]["Status"] == "healthy"
    ok("healthcheck wait")


def networks():
    with Network() as net:
        with (
            DockerContainer(BUSYBOX)
            .with_command(["sh", "-c", "mkdir -p /w; echo from-backend > /w/x; exec httpd -f -p 8080 -h /w"])
            .with_network(net)
            .with_network_aliases("backend", "api")
        ) as server:
            attrs = server.get_wrapped_container().attrs
            aliases = attrs["NetworkSettings"]["Networks"][net.name]["Aliases"] or []
            assert "backend" in aliases and "api" in aliases, aliases
            with (
                DockerContainer(BUSYBOX)
                .with_command(["sh", "-c", "until wget -qO- http://api:8080/x; do sleep 0.2; done; exec sleep 300"])
                .with_network(net)
                .waiting_for(LogMessageWaitStrategy("from-backend").with_startup_timeout(30))
            ):
                pass
            # Connecting a running container (on the default bridge) to the network later.
            with DockerContainer(BUSYBOX).with_command(["sleep", "300"]) as late:
                net.connect(late.get_container_id(), network_aliases=["latecomer"])
                code, out = late.exec(["wget", "-qO-", "http://backend:8080/x"])
                assert code == 0 and out == b"from-backend\n", (code, out)
                code, out = server.exec(["nslookup", "latecomer"])
                assert code == 0, out
    client = docker.from_env()
    assert not [n for n in client.networks.list() if n.name == net.name], "network left behind"
    ok("networks")


def copies(workdir):
    src = pathlib.Path(workdir) / "host-file.txt"
    src.write_text("from a host file\n")
    with (
        DockerContainer(BUSYBOX)
        .with_command(["sleep", "300"])
        .with_copy_into_container(b"bytes before start\n", "/tmp/before.txt", 0o600)
    ) as c:
        c.copy_into_container(src, "/tmp/nested/dir/file.txt")
        c.copy_into_container(b"#!/bin/sh\necho script ran\n", "/usr/local/bin/hello", 0o755)
        code, out = c.exec(["sh", "-c", "cat /tmp/before.txt /tmp/nested/dir/file.txt; stat -c %a /tmp/before.txt; hello"])
        assert code == 0, out
        assert out == b"bytes before start\nfrom a host file\n600\nscript ran\n", out
        c.exec(["sh", "-c", "printf 'made inside\\n' > /tmp/out.txt"])
        dest = pathlib.Path(workdir) / "copied-out.txt"
        c.copy_from_container("/tmp/out.txt", dest)
        assert dest.read_text() == "made inside\n", dest.read_text()
        try:
            c.copy_from_container("/no/such/file", pathlib.Path(workdir) / "none")
            raise AssertionError("copied a missing file")
        except docker.errors.NotFound:
            pass
    ok("copy in out")


def image_build(workdir):
    ctx = pathlib.Path(workdir) / "built"
    ctx.mkdir()
    (ctx / "greeting.txt").write_text("hello from the build context\n")
    (ctx / "Dockerfile.custom").write_text(
        "FROM busybox:latest\n"
        "ARG WHO=nobody\n"
        "COPY greeting.txt /greeting.txt\n"
        'RUN echo "built for $WHO" >> /greeting.txt\n'
        'ENTRYPOINT ["cat", "/greeting.txt"]\n'
    )
    client = docker.from_env()
    with DockerImage(
        path=str(ctx), tag="tc-built:1", dockerfile_path="Dockerfile.custom", buildargs={"WHO": "testcontainers"}
    ) as image:
        assert str(image) == "tc-built:1", str(image)
        assert len(image.short_id) == 12, image.short_id
        logs = "".join(str(line.get("stream", "")) for line in image.get_logs())
        assert "Successfully built" in logs or "Successfully tagged" in logs, logs
        with DockerContainer(str(image)) as c:
            wait_for_logs(c, "built for testcontainers", timeout=20)
            out, _ = c.get_logs()
            assert out == b"hello from the build context\nbuilt for testcontainers\n", out
    # clean_up (the default) removed the image on leaving the context.
    try:
        client.images.get("tc-built:1")
        raise AssertionError("built image left behind")
    except docker.errors.ImageNotFound:
        pass
    ok("image build")


STEPS = {
    "log": log_waits,
    "http": http_wait,
    "health": healthcheck_waits,
    "net": networks,
    "copy": copies,
    "build": image_build,
}


def main():
    only = sys.argv[1:] or list(STEPS)
    with tempfile.TemporaryDirectory() as workdir:
        for name in only:
            fn = STEPS[name]
            if fn.__code__.co_argcount:
                fn(workdir)
            else:
                fn()
    left = docker.from_env().containers.list(all=True, filters={"label": "org.testcontainers=true"})
    assert not left, [c.name for c in left]
    ok("all")


if __name__ == "__main__":
    main()
