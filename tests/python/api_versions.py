"""The Python docker SDK against berthd at a pinned API version and at a negotiated one.

Run by tests/tests/api_versions.rs with a private berthd in DOCKER_HOST; every check asserts,
and the script prints one "ok <what>" line per passed step.
"""

import docker


def ok(what):
    print(f"ok {what}", flush=True)


def volume_names(client):
    return {v.name for v in client.volumes.list()}


def main():
    pinned = docker.from_env(version="1.41", timeout=60)
    auto = docker.from_env(version="auto", timeout=60)
    assert pinned.api.api_version == "1.41", pinned.api.api_version
    assert auto.api.api_version == "1.55", auto.api.api_version
    ok("versions")

    # API 1.42 made volume prune remove anonymous volumes only (unless all=true); clients
    # pinned to 1.41 still remove named ones.
    def anonymous_volume(c):
        # Config.Volumes only: an anonymous volume, kept when the container goes without v.
        cid = c.api.create_container("busybox", ["true"], volumes=["/data"])["Id"]
        c.api.remove_container(cid)

    auto.volumes.create("sdk-named")
    for c in (pinned, auto):
        anonymous_volume(c)
    pruned = auto.volumes.prune()
    deleted = pruned.get("VolumesDeleted") or []
    assert "sdk-named" not in deleted, pruned
    assert len(deleted) == 2, pruned
    assert "sdk-named" in volume_names(auto)
    ok("prune at 1.55 keeps named volumes")
    anonymous_volume(pinned)
    pruned = pinned.volumes.prune()
    deleted = pruned.get("VolumesDeleted") or []
    assert "sdk-named" in deleted, pruned
    assert len(deleted) == 2, pruned
    assert "sdk-named" not in volume_names(pinned)
    ok("prune at 1.41 removes named volumes")

    # Swarm teardown code as clients write it. docker-py's leave(force=True) takes the 503 of
    # a node in no swarm for success (its own workaround, as against dockerd); without force
    # the 503 is an APIError.
    for c in (pinned, auto):
        resp = c.api._post(c.api._url("/swarm/leave"), params={"force": True})
        assert resp.status_code == 503, resp.status_code
        assert resp.json()["message"] == "This node is not part of a swarm", resp.text
        assert c.swarm.leave(force=True) is True
        try:
            c.swarm.leave()
            raise AssertionError("swarm leave succeeded")
        except docker.errors.APIError as e:
            assert e.status_code == 503, e.status_code
            assert e.explanation == "This node is not part of a swarm", e.explanation
        try:
            c.services.list()
            raise AssertionError("services list succeeded")
        except docker.errors.APIError as e:
            assert e.status_code == 503, e.status_code
            assert "not a swarm manager" in e.explanation, e.explanation
    assert auto.info()["Swarm"]["LocalNodeState"] == "inactive"
    ok("swarm")

    # Shapes the SDK reads at each version.
    web = auto.containers.run("busybox", ["sleep", "300"], detach=True, name="sdk-web")
    try:
        old = pinned.api.inspect_container("sdk-web")
        assert old["NetworkSettings"]["IPAddress"], old["NetworkSettings"]
        new = auto.api.inspect_container("sdk-web")
        assert "IPAddress" not in new["NetworkSettings"], new["NetworkSettings"]
        assert new["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] == old["NetworkSettings"]["IPAddress"]
        listed = auto.api.containers(filters={"name": "sdk-web"})
        assert listed[0]["Health"]["Status"] == "none", listed
        assert "Health" not in pinned.api.containers(filters={"name": "sdk-web"})[0]
    finally:
        web.remove(force=True)
    ok("shapes")


if __name__ == "__main__":
    main()
