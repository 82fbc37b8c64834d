"""TailRunner end to end on the embedded bus: topics, stats, restart, rotation, failures."""
from __future__ import annotations

import json
import os
import threading

import pytest

from watchkeeper import codec
from watchkeeper.bus import BusError
from watchkeeper.publish import EventPublisher

from collectors.tailers import TailRunner, detect_format


def drain(bus, topic: str) -> list[dict]:
    consumer = bus.consumer(f"check-{topic}-{id(bus)}-{os.urandom(4).hex()}", [topic])
    out = []
    while batch := consumer.poll(10_000, timeout=0.05):
        out.extend(codec.decode(m.value) for m in batch)
    consumer.close()
    return out


def write(path, text: str, mode: str = "a") -> None:
    with open(path, mode, encoding="utf-8") as f:
        f.write(text)


@pytest.fixture
def files(tmp_path, samples):
    conn, eve = tmp_path / "conn.log", tmp_path / "eve.json"
    write(conn, samples.zeek_tsv(samples.CONN_HEADER, [samples.conn_row(i) for i in range(20)]))
    write(eve, "".join(samples.line(o) + "\n" for o in (
        samples.EVE_ALERT, samples.EVE_FLOW, samples.EVE_DNS, samples.EVE_HTTP,
        samples.EVE_TLS, samples.EVE_STATS)))
    return conn, eve, str(tmp_path / "state" / "tailers.json")


def test_publishes_events_alerts_and_counts(bus, publisher, files):
    conn, eve, state = files
    write(conn, "XXXXXXXXXX.XXXXXX\tCbad\n")
    runner = TailRunner(publisher, [str(conn), str(eve)], state)
    stats = runner.poll_once()
    assert (stats.parsed, stats.alerts, stats.ignored, stats.malformed) == (25, 1, 1, 1)
    assert stats.headers == 8 and stats.lines_read == 35
    events, alerts = drain(bus, publisher.names.events), drain(bus, publisher.names.alerts_raw)
    assert len(events) == 24 and len(alerts) == 1
    assert alerts[0]["rule"]["id"] == "suricata:2024897"
    assert {e["event"]["module"] for e in events} == {"zeek", "suricata"}
    dead = drain(bus, publisher.names.deadletter)
    assert len(dead) == 1 and dead[0]["watchkeeper"]["deadletter"]["position"].startswith(
        f"{conn}:")
    saved = json.load(open(state))
    assert saved["files"][str(conn)]["context"]["path"] == "conn"
    assert runner.poll_once().lines_read == 0


def test_restart_resumes_without_duplicates_or_loss(bus, publisher, files, samples):
    conn, eve, state = files
    first = TailRunner(publisher, [str(conn)], state)
    first.poll_once()
    first.close()
    write(conn, "".join(samples.conn_row(i) + "\n" for i in range(20, 35)) + "1710")  # partial
    second = TailRunner(EventPublisher(bus.producer(), "tailers"), [str(conn)], state)
    assert second.poll_once().parsed == 15      # the header came back from the state file
    second.close()
    write(conn, samples.conn_row(35)[4:] + "\n")
    third = TailRunner(publisher, [str(conn)], state)
    assert third.poll_once().parsed == 1
    ids = [e["event"]["id"] for e in drain(bus, publisher.names.events)]
    assert len(ids) == 36 and len(set(ids)) == 36


def test_rotation_and_truncation_through_the_runner(bus, publisher, files, samples):
    conn, eve, state = files
    runner = TailRunner(publisher, [str(conn), str(eve)], state)
    runner.poll_once()
    os.rename(conn, str(conn) + ".1")
    write(conn, samples.zeek_tsv(samples.CONN_HEADER, [samples.conn_row(100)]))
    write(eve, samples.line(samples.EVE_HTTP) + "\n", mode="w")      # copytruncate
    stats = runner.poll_once()
    assert (stats.rotations, stats.truncations, stats.parsed) == (1, 1, 2)
    assert runner.stats.parsed == 27


class FailingFlush(EventPublisher):
    fail = True

    def flush(self) -> None:
        if self.fail:
            self.fail = False
            raise BusError("broker went away")


def test_failed_flush_commits_nothing_and_rereads(bus, files):
    conn, eve, state = files
    publisher = FailingFlush(bus.producer(), "tailers")
    runner = TailRunner(publisher, [str(conn)], state)
    with pytest.raises(BusError):
        runner.poll_once()
    assert not os.path.exists(state)
    assert runner.poll_once().parsed == 20      # read again from the last saved position
    ids = [e["event"]["id"] for e in drain(bus, publisher.names.events)]
    assert len(ids) == 40 and len(set(ids)) == 20   # at-least-once; ids make repeats harmless


def test_run_until_stopped_and_globs(bus, publisher, files, tmp_path):
    conn, eve, state = files
    runner = TailRunner(publisher, [str(tmp_path / "*.log"), str(eve)], state,
                        poll_interval=0.01)
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,))
    thread.start()
    try:
        for _ in range(200):
            if runner.stats.parsed >= 25:
                break
            stop.wait(0.01)
    finally:
        stop.set()
        thread.join(5)
    assert runner.stats.parsed == 25 and not thread.is_alive()


def test_unreadable_state_starts_over(bus, publisher, files):
    conn, eve, state = files
    os.makedirs(os.path.dirname(state))
    write(state, "{not json")
    assert TailRunner(publisher, [str(conn)], state).poll_once().parsed == 20


@pytest.mark.parametrize("name, fmt", [("eve.json", "suricata"), ("eve-2024-03-11.json", "suricata"),
                                       ("conn.log", "zeek"), ("dns.json", "zeek")])
def test_detect_format(name, fmt):
    assert detect_format(f"/var/log/{name}") == fmt
