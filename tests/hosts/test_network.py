"""The hosts themselves: their own hostname and PID namespace, a link that cuts, a teardown that leaves
nothing, and the leftovers of a killed run removed by the next one."""

import subprocess

import pytest

from scripts import cluster as hosts


@pytest.fixture
def network(tmp_path):
    reason = hosts.unavailable()
    if reason:
        pytest.skip(reason)
    net = hosts.Network(tmp_path)
    yield net
    net.close()
    assert hosts.our_links(net.tag) == []


def test_each_host_has_its_own_hostname_pids_and_address(network):
    a, b = network.add("a", 10), network.add("b", 11)
    assert a.run("hostname").strip() == a.hostname and b.run("hostname").strip() == b.hostname
    assert int(a.run("sh", "-c", "echo $$").strip()) < 10  # a fresh PID namespace: pid 1 is the host's own
    assert a.address in a.run("ip", "-4", "-o", "addr") and b.address not in a.run("ip", "-4", "-o", "addr")
    assert "default" not in a.run("ip", "route")  # no way out but the bridge's subnet


def test_a_cut_drops_the_link_and_restore_brings_it_back(network):
    a, b = network.add("a", 10), network.add("b", 11)
    server = b.start(
        "listen",
        [
            "python3",
            "-c",
            "import socket,time; s=socket.socket(); "
            f"s.bind(('{b.address}', 7000)); s.listen(); time.sleep(60)",
        ],
        {"PATH": "/usr/bin:/bin"},
    )
    probe = ["python3", "-c", f"import socket; socket.create_connection(('{b.address}', 7000), timeout=1)"]
    hosts.wait_until(lambda: hosts.answers(b.address, 7000), "the listener", 10, process=server)
    a.run(*probe)
    a.cut()
    with pytest.raises(RuntimeError):
        a.run(*probe)
    a.restore()
    a.run(*probe)


def test_a_run_removes_what_a_killed_run_left(tmp_path):
    reason = hosts.unavailable()
    if reason:
        pytest.skip(reason)
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer runs: the "killed run"
    ns, bridge, veth = (
        f"{hosts.PREFIX}{gone.pid}-x",
        f"{hosts.PREFIX}{gone.pid}b",
        f"{hosts.PREFIX}{gone.pid}v1",
    )
    hosts.sh("ip", "netns", "add", ns)
    hosts.sh("ip", "link", "add", bridge, "type", "bridge")
    hosts.sh("ip", "link", "add", veth, "type", "veth", "peer", "name", f"{hosts.PREFIX}{gone.pid}p1")
    try:
        removed = hosts.remove_stale()
        assert {ns, bridge, veth} <= set(removed)
        assert hosts.wait_until(
            lambda: hosts.our_links(f"{hosts.PREFIX}{gone.pid}") == [], "leftovers gone", 10
        )
    finally:
        for name in hosts.our_links(f"{hosts.PREFIX}{gone.pid}"):
            hosts.sh("ip", "netns", "del", name, check=False)
            hosts.sh("ip", "link", "del", name, check=False)
