"""The worker role: its own consumer group on the alerts topic; bad records are counted,
replays start nothing, and another group (the indexer's) still sees every alert."""
from __future__ import annotations

import msgspec

from playbooks.worker import PlaybookWorker
from tests.playbooks_support import engine_for, make_alert, webhook_playbook
from watchkeeper.bus import Names
from watchkeeper.bus.embedded import EmbeddedBus
from watchkeeper.store import Query, runs


def test_worker_consumes_alerts_in_its_own_group(store, tmp_path, receiver):
    folder = tmp_path / "books"
    webhook_playbook(folder, "hook", f"{receiver.url}/x")
    names = Names("wktestpb")
    bus = EmbeddedBus(partitions=2)
    bus.ensure_topics(names.topics)
    other = bus.consumer(names.group("index"), [names.alerts])
    worker = PlaybookWorker(bus, engine_for(store, folder), names, tick_seconds=0)
    producer = bus.producer()
    alerts = [make_alert(source=f"203.0.113.{i}") for i in range(5)]
    for alert in alerts + alerts[:2]:                       # two replays
        producer.send(names.alerts, msgspec.json.encode(alert), key=alert["source"]["ip"])
    producer.send(names.alerts, b"{not json", key="x")
    producer.flush()
    total = 0
    for _ in range(5):
        total += worker.step(timeout=0.1).consumed
    assert total == 8 and worker.bad_records == 1
    found = store.search("runs", Query(terms={"event.dataset": [runs.RUN]})).items
    assert len(found) == 5
    assert all(d["watchkeeper"]["run"]["status"] == "succeeded" for d in found)
    assert len(receiver.posts) == 5 and len(receiver.keys) == 5
    assert len(other.poll(100, timeout=0.1)) == 8            # the indexer's group: untouched
    worker.close()


def test_runs_advance_in_their_own_thread_while_a_step_is_slow(store, tmp_path):
    """A webhook that hangs until its timeout does not hold up consuming alerts."""
    import socket
    import time
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)                     # accepts, never answers
    folder = tmp_path / "books"
    webhook_playbook(folder, "slow", f"http://127.0.0.1:{listener.getsockname()[1]}/x",
                     timeout=4)
    names = Names("wktestpbbg")
    bus = EmbeddedBus(partitions=1)
    bus.ensure_topics(names.topics)
    worker = PlaybookWorker(bus, engine_for(store, folder), names, tick_seconds=0.05,
                            background=True)
    producer = bus.producer()
    try:
        for i in range(2):
            alert = make_alert(source=f"203.0.113.{i}")
            producer.send(names.alerts, msgspec.json.encode(alert), key=alert["source"]["ip"])
        producer.flush()
        consumed = 0
        while consumed < 2:
            consumed += worker.step(timeout=0.5).consumed
        started = store.search("runs", Query(terms={"event.dataset": [runs.STEP]})).items
        # both alerts consumed while the runs' steps are still in flight (runs advance side
        # by side, playbooks.parallel_runs, so one or both may have started; none finished)
        assert {d["watchkeeper"]["run"]["outcome"] for d in started} <= {"started"}
        end = time.monotonic() + 60
        while time.monotonic() < end:
            found = store.search("runs", Query(terms={"event.dataset": [runs.RUN]})).items
            if len(found) == 2 and all(d["watchkeeper"]["run"]["status"] == "failed"
                                       for d in found):
                break
            time.sleep(0.2)
        assert sorted(d["watchkeeper"]["run"]["steps"]["hook"]["message"] for d in found) == \
            ["timed out after 4s"] * 2
    finally:
        worker.close()
        listener.close()
