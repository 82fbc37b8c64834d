"""`watchkeeper supervise`: every stage its own process (real Kafka, real Elasticsearch).

A port scan among benign flows goes through separate detect-source, detect-rekeyed,
alerting, two index and a correlate process; the index process killed with SIGKILL is
started again, and Elasticsearch ends with every event once and the scan's alert; SIGTERM
stops every child."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from elasticsearch import ApiError

from watchkeeper import codec
from watchkeeper.bus import Names
from watchkeeper.bus.kafka import KafkaBus
from watchkeeper.documents import FlowRecord, flow_document
from watchkeeper.networks import InternalNetworks
from watchkeeper.store.base import StoreError
from watchkeeper.store.elastic import ElasticStore

from .conftest import ROOT, WATCHKEEPER

pytestmark = pytest.mark.kafka
T0 = 1_780_000_000.0


def _events() -> list[tuple[str, bytes]]:
    nets, out = InternalNetworks(), []
    for i in range(1500):
        record = FlowRecord(uid=f"B{i}", start=T0 + i * 0.5, end=T0 + i * 0.5 + 0.2, proto=6,
                            orig_ip=f"10.20.0.{1 + i % 50}", orig_port=20000 + i,
                            resp_ip="93.184.216.34", resp_port=443, orig_pkts=4, resp_pkts=4,
                            orig_bytes=300, resp_bytes=2000, conn_state="SF")
        out.append((record.orig_ip, codec.encode(flow_document(record, "sup", nets))))
    for p in range(300):
        record = FlowRecord(uid=f"S{p}", start=T0 + 100 + p * 0.2, end=T0 + 100 + p * 0.2,
                            proto=6, orig_ip="10.9.9.9", orig_port=40000 + p,
                            resp_ip=f"10.30.0.{1 + p % 40}", resp_port=1 + p, orig_pkts=1,
                            orig_ip_bytes=44, conn_state="S0", history="S")
        out.append((record.orig_ip, codec.encode(flow_document(record, "sup", nets))))
    return out


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _cmdline(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _wait(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def test_stages_as_processes_store_everything_once(kafka_url, es_url, unique, tmp_path):
    names = Names(f"wksup{unique}")
    bus = KafkaBus(kafka_url)
    bus.ensure_topics(names.topics)
    store = ElasticStore(es_url, prefix=f"wktest-sup-{unique}")
    store_url = f"{es_url}?prefix=wktest-sup-{unique}"
    env = {**os.environ, "WATCHKEEPER_NAMESPACE": names.namespace}
    log = open(tmp_path / "supervise.log", "wb")
    proc = subprocess.Popen([*WATCHKEEPER, "supervise", "--bus", kafka_url, "--store", store_url,
                             "--processes", "index=2,playbooks=0"],
                            cwd=ROOT, env=env, stdout=log, stderr=log)
    events = _events()
    try:
        _wait(lambda: len(_children(proc.pid)) == 6, 30, "six stage processes")
        producer = bus.producer()
        for key, raw in events[:900]:
            producer.send(names.events, raw, key=key)
        producer.flush()
        index_pid = next(p for p in _children(proc.pid) if " index " in _cmdline(p) + " ")
        time.sleep(2)
        os.kill(index_pid, signal.SIGKILL)                 # mid-stream
        for key, raw in events[900:]:
            producer.send(names.events, raw, key=key)
        producer.close()

        def done() -> bool:
            try:
                store.refresh()
                alerts = store.es.count(index=store.index_for("alerts"), ignore_unavailable=True)
                return (store.es.count(index=store.index_for("events"))["count"] >= len(events)
                        and alerts["count"] >= 1)
            except (ApiError, StoreError) as exc:
                # An index the stages have just created answers 503 until its shard starts
                # (seen in CI under load: the test's own count failed, not a stage).
                if "503" not in str(exc) and getattr(exc, "status_code", None) != 503:
                    raise
                return False
        _wait(done, 150, "every event and the scan's alert stored")
        store.refresh()
        assert store.es.count(index=store.index_for("events"))["count"] == len(events)
        assert b"restarting" in (tmp_path / "supervise.log").read_bytes()
        stages = _children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert not [pid for pid in stages if os.path.exists(f"/proc/{pid}")]
    finally:
        if proc.poll() is None:
            for child in _children(proc.pid):
                os.kill(child, signal.SIGKILL)
            proc.kill()
        for name in store.es.indices.get(index=f"{store.prefix}-*", ignore_unavailable=True):
            store.es.indices.delete(index=name)
        store.close()
        bus.close()
