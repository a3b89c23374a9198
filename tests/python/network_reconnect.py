"""docker-py's network disconnect/connect against berthd (DOCKER_HOST), as compose v1,
Ansible's community.docker and docker-py users do it: a container is created on its
network, disconnected from it and connected again with aliases, a fixed address and links
before it starts; running containers are moved between networks.

Run by tests/tests/network_reconnect.rs with a private berthd and two free subnets in
SUBNET_A and SUBNET_B (network "<prefix>a" sorts before "<prefix>b": dockerd gives the
default route to the endpoint whose network name sorts first). Prints "ok <step>" per step.
"""

import ipaddress
import os

import docker

P = "nrc-"


def ok(what):
    print(f"ok {what}", flush=True)


def sh(c, cmd):
    """Runs a shell command in a container: (exit code, output)."""
    code, out = c.exec_run(["sh", "-c", cmd])
    return code, out.decode()


def host(subnet, n):
    return str(ipaddress.ip_network(subnet)[n])


def routes(c):
    return sh(c, "ip route")[1]


def main():
    client = docker.from_env(timeout=60)
    api = client.api
    sub_a, sub_b = os.environ["SUBNET_A"], os.environ["SUBNET_B"]
    # A plain dict: docker-py's IPAMPool sends nulls for what is not given.
    ipam = lambda s: {"Driver": "default", "Config": [{"Subnet": s}]}
    net_a = client.networks.create(P + "a", driver="bridge", ipam=ipam(sub_a))
    net_b = client.networks.create(P + "b", driver="bridge", ipam=ipam(sub_b))
    gw_a, gw_b = host(sub_a, 1), host(sub_b, 1)

    # A peer to resolve from, and a link target.
    peer = client.containers.run("busybox", "sleep 600", name=P + "peer", network=net_a.name,
                                 detach=True)

    # --- created: the compose v1 / Ansible sequence before start ---
    web = client.containers.create("busybox", "sleep 600", name=P + "web", network=net_a.name)
    net_a.disconnect(web)
    web.reload()
    assert web.attrs["NetworkSettings"]["Networks"] == {}, web.attrs["NetworkSettings"]
    fixed = host(sub_a, 20)
    net_a.connect(web, aliases=["webalias"], ipv4_address=fixed, links=[(P + "peer", "pl")])
    web.reload()
    es = web.attrs["NetworkSettings"]["Networks"][net_a.name]
    assert es["Aliases"] == ["webalias"], es
    assert es["IPAMConfig"]["IPv4Address"] == fixed, es
    assert es["Links"] == [P + "peer:pl"], es
    # Connecting a stopped container twice changes nothing and is no error (dockerd).
    net_a.connect(web, aliases=["other"])
    web.reload()
    assert web.attrs["NetworkSettings"]["Networks"][net_a.name]["Aliases"] == ["webalias"]
    web.start()
    web.reload()
    es = web.attrs["NetworkSettings"]["Networks"][net_a.name]
    assert es["IPAddress"] == fixed, es
    assert f"default via {gw_a} dev eth0" in routes(web), routes(web)
    code, out = sh(peer, "nslookup webalias")
    assert code == 0 and fixed in out, out
    code, out = sh(peer, "ping -c1 -W2 webalias")
    assert code == 0, out
    # The link is the linking container's own name for the peer.
    peer.reload()
    peer_ip = peer.attrs["NetworkSettings"]["Networks"][net_a.name]["IPAddress"]
    code, out = sh(web, "nslookup pl")
    assert code == 0 and peer_ip in out, out
    ok("created reconnect")

    # --- running: leave the first network, join another with an alias ---
    run = client.containers.run("busybox", "sleep 600", name=P + "run", network=net_b.name,
                                detach=True)
    run.reload()
    ip_b = run.attrs["NetworkSettings"]["Networks"][net_b.name]["IPAddress"]
    net_b.disconnect(run)
    out = sh(run, "ip -o link")[1]
    assert "eth" not in out, out
    assert "default" not in routes(run), routes(run)
    net_a.connect(run, aliases=["runalias"])
    run.reload()
    ip_a = run.attrs["NetworkSettings"]["Networks"][net_a.name]["IPAddress"]
    assert f"default via {gw_a}" in routes(run), routes(run)
    code, out = sh(peer, "nslookup runalias")
    assert code == 0 and ip_a in out, out
    hosts = sh(run, "cat /etc/hosts")[1]
    assert ip_a in hosts and ip_b not in hosts, hosts
    # Its resolver is on a network it is on: names resolve from it.
    code, out = sh(run, "nslookup " + P + "peer")
    assert code == 0 and peer_ip in out, out
    ok("running reconnect")

    # --- the default route follows dockerd's choice ---
    net_b.connect(run)
    run.reload()
    ip_b = run.attrs["NetworkSettings"]["Networks"][net_b.name]["IPAddress"]
    assert f"default via {gw_a}" in routes(run), "a sorts first: " + routes(run)
    hosts = sh(run, "cat /etc/hosts")[1]
    assert ip_a in hosts and ip_b in hosts, hosts
    net_a.disconnect(run)
    assert f"default via {gw_b}" in routes(run), "the gateway endpoint left: " + routes(run)
    hosts = sh(run, "cat /etc/hosts")[1]
    assert ip_a not in hosts and ip_b in hosts, hosts
    code, out = sh(run, "nslookup " + P + "web")
    assert code != 0 or fixed not in out, "web is on a only: " + out
    ok("default route")

    # --- errors as dockerd answers them ---
    try:
        net_b.connect(run)
        raise AssertionError("connected twice")
    except docker.errors.APIError as e:
        assert e.status_code == 403, e
        assert "already exists in network" in str(e), e
    try:
        net_a.disconnect(run)
        raise AssertionError("disconnected from a network it is not on")
    except docker.errors.APIError as e:
        assert e.status_code == 500, e
        assert "is not connected to network" in str(e), e
    ok("errors")

    for c in (run, web, peer):
        c.remove(force=True)
    net_a.remove()
    net_b.remove()
    ok("cleanup")


if __name__ == "__main__":
    main()
