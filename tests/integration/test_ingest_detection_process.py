"""`ingest` on Kafka runs its detection stages in a process of their own
(app/ingest_detection.py): what crosses that boundary must behave as it did in one process.
Every other Kafka `ingest` test (test_end_to_end.py, test_ingest_volume.py) runs through it too.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from app.ingest_detection import _rebuilt
from watchkeeper.bus import BusError
from watchkeeper.worker import StalledError

from .conftest import ROOT, WATCHKEEPER, run_cli
from .synthetic_pcap import write_flows_pcap


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_refused_detector_setting_ends_ingest_before_anything_is_published(
        tmp_path, kafka_url, es_url, unique):
    pcap = tmp_path / "few.pcap"
    write_flows_pcap(str(pcap), 200)
    prefix = f"wktest-{unique}"
    done = run_cli("ingest", str(pcap), "--bus", kafka_url, "--store",
                   f"{es_url}/?prefix={prefix}",
                   env={"WATCHKEEPER_NAMESPACE": f"t{unique}",
                        "WATCHKEEPER_DETECTORS": json.dumps({"scan": {"window_seconds": -5}})})
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "scan" in last and "window_seconds" in last, last
    counted = httpx.get(f"{es_url}/{prefix}-events-*/_count", timeout=30).json()
    assert counted.get("count", 0) == 0


def test_the_detection_process_does_not_outlive_a_killed_ingest(tmp_path, kafka_url, es_url,
                                                                unique):
    pcap = tmp_path / "flows.pcap"
    write_flows_pcap(str(pcap), 100_000)
    ingest = subprocess.Popen(
        [*WATCHKEEPER, "ingest", str(pcap), "--bus", kafka_url, "--store",
         f"{es_url}/?prefix=wktest-{unique}"], cwd=ROOT,
        env={**os.environ, "WATCHKEEPER_NAMESPACE": f"t{unique}"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (children := _children(ingest.pid)):
            assert ingest.poll() is None, ingest.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "ingest started no detection process"
            time.sleep(0.2)
        # spawn's resource tracker may be a child too: the detection process is the one that
        # joins Kafka, but every child must go with the parent anyway
        ingest.send_signal(signal.SIGKILL)
        ingest.wait()
        deadline = time.monotonic() + 180     # it drains what was published, then exits
        while any(_alive(pid) for pid in children):
            assert time.monotonic() < deadline, f"still running: {children}"
            time.sleep(0.5)
    finally:
        if ingest.poll() is None:
            ingest.kill()


def test_errors_cross_the_process_boundary_as_their_own_kind():
    """A stall must still end `ingest` with its one line (exit 1), a refused setting with
    exit 2; only an unknown error (a bug) becomes a RuntimeError naming it."""
    assert type(_rebuilt("StalledError", "detect: no progress for 5s")) is StalledError
    assert type(_rebuilt("BusError", "lag: broker gone")) is BusError
    assert type(_rebuilt("ValueError", "scan: bad")) is ValueError
    bug = _rebuilt("KeyError", "'x'")
    assert type(bug) is RuntimeError and "KeyError" in str(bug)
