"""Live capture on a veth whose peer lives in another network namespace: tcpreplay sends a
vendored capture from there, and the flows we build live equal the offline result."""
from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from collections import Counter

import pytest

from collectors.capture import Capture, iter_flows
from collectors.capture.sources.live import LiveSource
from tests.datafiles import data_file
from tests.required import unavailable

CAPTURES = ["benign/zeek_wikipedia.pcap", "benign/cs_http_espn.pcapng"]


def _require(condition: bool, why: str) -> None:
    if not condition:
        unavailable(why)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def veth():
    """(capture side in this namespace, sender namespace, sender side)."""
    _require(os.geteuid() == 0, "live capture needs root (CAP_NET_RAW, ip netns)")
    _require(shutil.which("tcpreplay") is not None, "tcpreplay is not installed")
    tag = uuid.uuid4().hex[:8]
    ns, here, there = f"wkt-{tag}", f"wka{tag}", f"wkb{tag}"
    _ip("netns", "add", ns)
    try:
        _ip("link", "add", here, "type", "veth", "peer", "name", there, "netns", ns)
        for args in (["sysctl", "-qw", f"net.ipv6.conf.{here}.disable_ipv6=1"],
                     ["ip", "netns", "exec", ns, "sysctl", "-qw",
                      f"net.ipv6.conf.{there}.disable_ipv6=1"]):
            subprocess.run(args, check=True, timeout=30)   # no ND/MLD chatter of our own
        _ip("link", "set", here, "up")
        _ip("-n", ns, "link", "set", there, "up")
        yield here, ns, there
    finally:
        subprocess.run(["ip", "link", "del", here], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def _shape(records) -> Counter:
    return Counter((r.proto, r.orig_ip, r.orig_port, r.resp_ip, r.resp_port, r.orig_pkts,
                    r.resp_pkts, r.orig_ip_bytes, r.resp_ip_bytes, r.conn_state)
                   for r in records if r.final)


@pytest.mark.parametrize("ring", [True, False], ids=["tpacket-ring", "recvmsg"])
@pytest.mark.parametrize("name", CAPTURES)
def test_live_flows_equal_the_offline_result(veth, name, ring):
    here, ns, there = veth
    pcap = data_file(name)
    expected = list(iter_flows([str(pcap)]))
    assert len(expected) > 10
    packets_in_file = sum(r.orig_pkts + r.resp_pkts for r in expected)

    stop = threading.Event()
    source = LiveSource(here, stop, batch_seconds=0.2, ring=ring)
    assert (source._ring is not None) == ring
    live: list = []
    worker = threading.Thread(target=lambda: live.extend(Capture(source)))
    worker.start()
    replay = subprocess.run(["ip", "netns", "exec", ns, "tcpreplay", "-q", "--intf1", there,
                             "--mbps", "50", str(pcap)], capture_output=True, text=True,
                            timeout=120)
    assert replay.returncode == 0, replay.stderr
    deadline = time.monotonic() + 30
    while source.stats.packets < packets_in_file and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    worker.join(timeout=30)
    assert source.stats.kernel_drops == 0
    assert _shape(live) == _shape(expected)


def test_run_with_interface_publishes_live_flows(veth, server, tmp_path):
    from .conftest import ANY_PORTS, free_port, wait_http
    here, ns, there = veth
    port = free_port()
    proc = server("run", "--interface", here, "--port", str(port), *ANY_PORTS,
                  "--store", f"sqlite:///{tmp_path}/wk.db")
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/health", process=proc)
    pcap = data_file(CAPTURES[0])
    expected = {r.uid for r in iter_flows([str(pcap)])}
    subprocess.run(["ip", "netns", "exec", ns, "tcpreplay", "-q", "--intf1", there, "--mbps",
                    "50", str(pcap)], check=True, capture_output=True, timeout=120)
    proc.terminate()          # stopping capture reports the flows still open
    proc.wait(timeout=60)
    from watchkeeper.store.sqlite import SqliteStore
    from watchkeeper.store import Query
    store = SqliteStore(f"sqlite:///{tmp_path}/wk.db")
    flows = store.search("events", Query(terms={"event.dataset": ["watchkeeper.flow"]},
                                         limit=1000))
    assert flows.total == len(expected)


def test_run_with_a_missing_interface_fails_at_start_in_one_line(tmp_path):
    """The socket is opened before the API answers: a bad interface is a start-up error."""
    _require(os.geteuid() == 0, "opening a capture socket needs root (CAP_NET_RAW)")
    from .conftest import ANY_PORTS, free_port, run_cli
    done = run_cli("run", "--interface", "wk-no-such0", "--port", str(free_port()), *ANY_PORTS,
                   "--store", f"sqlite:///{tmp_path}/wk.db", timeout=120)
    assert done.returncode != 0
    assert "cannot capture on 'wk-no-such0'" in done.stderr
    assert "Traceback" not in done.stderr
    assert "Watchkeeper on http" not in done.stderr


def _capture_child(parent: int) -> int:
    """The pid of `run`'s capture process (multiprocessing spawn child of `parent`)."""
    out = subprocess.run(["pgrep", "-P", str(parent), "-f", "spawn_main"], capture_output=True,
                         text=True, timeout=30)
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == 1, f"capture processes of {parent}: {pids}"
    return pids[0]


def test_run_captures_in_its_own_process_and_a_killed_one_is_a_silent_collector(
        veth, server, tmp_path):
    """The capture is a child process with its own interpreter; its gauges reach /metrics;
    killed, it stops reporting and wk.collector.silent is raised through the bus."""
    import json

    from .conftest import ANY_PORTS, free_port, wait_http
    here, ns, there = veth
    port = free_port()
    config = tmp_path / "wk.yaml"
    config.write_text(json.dumps({"status_seconds": 1, "collector_silent_seconds": 3,
                                  "collector_check_seconds": 0.5}))
    proc = server("run", "--config", str(config), "--interface", here, "--port", str(port),
                  *ANY_PORTS, "--store", f"sqlite:///{tmp_path}/wk.db")
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/health", process=proc)
    child = _capture_child(proc.pid)
    # traffic flows until the capture is killed: its input stops because it died, not idle
    sender = subprocess.Popen(["ip", "netns", "exec", ns, "tcpreplay", "-q", "--intf1", there,
                               "--loop", "0", "--mbps", "5", str(data_file(CAPTURES[0]))],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _kill_the_capture_while_it_captures(here, base, child, tmp_path)
    except AssertionError as exc:
        proc.terminate()
        raise AssertionError(f"{exc}; run's log: {proc.communicate(timeout=120)[1][-3000:]}")
    finally:
        sender.terminate()
        sender.wait(timeout=30)
    assert proc.poll() is None                  # the rest of `run` goes on


def _kill_the_capture_while_it_captures(here: str, base: str, child: int, tmp_path) -> None:
    import httpx

    from watchkeeper.store import Query
    from watchkeeper.store.sqlite import SqliteStore
    gauge = f'watchkeeper_capture{{interface="{here}",measure="packets"}}'
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        metrics = httpx.get(f"{base}/metrics/", timeout=5).text
        line = next((x for x in metrics.splitlines() if x.startswith(gauge)), None)
        relayed = next((x for x in metrics.splitlines() if x.startswith(
            f'watchkeeper_capture{{interface="{here}",measure="relayed"}}')), None)
        if line and float(line.split()[-1]) > 0 and relayed and float(relayed.split()[-1]) > 0:
            break
        time.sleep(0.3)
    else:
        raise AssertionError(f"no packets relayed in {gauge}")
    # A collector that never reported output is not "silent" (collector_silence.py): let a
    # status report with output (status_seconds 1) reach the store before the kill.
    time.sleep(3)
    ours = f'watchkeeper_capture{{interface="{here}"'
    measures = {x.split('measure="')[1].split('"')[0]: float(x.split()[-1])
                for x in metrics.splitlines() if x.startswith(ours)}
    assert {"kernel_drops", "ring_blocks", "ring_blocks_in_use", "queue_depth",
            "relayed"} <= set(measures), measures
    assert measures["kernel_drops"] == 0 and measures["ring_blocks"] == 64, measures
    os.kill(child, 9)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        store = SqliteStore(f"sqlite:///{tmp_path}/wk.db")
        try:
            found = store.search("alerts", Query(terms={"rule.id": ["wk.collector.silent"]}))
        finally:
            store.close()
        if found.total:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("no wk.collector.silent alert after the capture process died")
    alert = found.items[0]
    assert alert["watchkeeper"]["collector"] == {"name": f"capture:{here}", "silence": "stopped"}
