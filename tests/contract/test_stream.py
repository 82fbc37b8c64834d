"""The live feed over real HTTP (uvicorn on a free port) on both store backends: a stored alert
is delivered, a county never receives a sibling's alert, Last-Event-ID resumes with what was
missed and nothing twice, and bad credentials or cursors are refused."""
from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager

import httpx
import pytest
import uvicorn

from api import create_app
from watchkeeper import codec
from watchkeeper.bus import Names
from watchkeeper.config import AuthSettings, FeedSettings
from watchkeeper.documents import AlertSpec, alert_document
from watchkeeper.feed import BadCursor, FeedCursor
from watchkeeper.identity import Principal, issue_access_token
from watchkeeper.indexer import Indexer
from watchkeeper.status import status_document
from watchkeeper.store.base import Query
from watchkeeper.store.sqlite import SqliteStore

SECRET = "contract-tests-only-" + "str3am-" * 4
SITES = {"region": None, "city-a": "region", "county-a1": "city-a", "county-a2": "city-a"}
FEED = FeedSettings(poll_seconds=0.1, settle_seconds=0.5, heartbeat_seconds=0.2,
                    posture_seconds=1, lifetime_seconds=60)
WAIT = 20.0                        # seconds a test waits for an event before failing


def _alert(n: int, site: str | None) -> dict:
    now = time.time()
    spec = AlertSpec(detector="scan", detector_version="1", category="scan", rule_id="r",
                     rule_name="r", severity=3, message=f"stream {n}", entity=f"s{n}-{now}",
                     first_seen=now, last_seen=now + 1, source_ip="203.0.113.9",
                     destination_ip="10.1.0.9")
    doc = alert_document(spec, created=now)
    if site:
        doc["labels"] = {"site": site}
    return doc


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _serving(store):
    app = create_app(store, auth_settings=AuthSettings(secret_key=SECRET), sites=SITES, feed=FEED)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running.started
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(10)


@pytest.fixture
def server(store):
    with _serving(store) as served:
        yield served


def _headers(app, site: str, role: str = "viewer") -> dict:
    name = f"{role}-{site.strip('/') or 'root'}"
    app.state.access.accounts.ids.put_user({
        "name": name, "role": role, "site": site, "disabled": False, "password_hash": "x",
        "failures": 0, "locked_until": 0.0}, time.time())
    return {"Authorization": f"Bearer {issue_access_token(Principal(name, role, site), SECRET, 600)}"}


class Feed:
    """One SSE connection read on a thread: events land in `received` as they arrive."""

    def __init__(self, url: str, headers: dict | None = None, params: dict | None = None):
        self.received: list[dict] = []
        self.comments = 0
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.status: int | None = None
        self.thread = threading.Thread(target=self._read, args=(url, headers or {}, params),
                                       daemon=True)
        self.thread.start()
        assert self.ready.wait(WAIT), "stream did not open"

    def _read(self, url, headers, params) -> None:
        with httpx.stream("GET", url, headers=headers, params=params, timeout=WAIT) as response:
            self.status = response.status_code
            event: dict = {}
            for line in response.iter_lines():
                if self.stop.is_set():
                    return
                if line.startswith(":"):
                    self.comments += 1
                    self.ready.set()
                elif line.startswith(("id:", "event:", "data:")):
                    name, _, value = line.partition(": ")
                    event[name] = value
                elif not line and event:
                    self.received.append({**event, "data": json.loads(event.get("data", "{}"))})
                    event = {}
        self.ready.set()

    def alerts(self) -> list[dict]:
        return [e for e in self.received if e.get("event") == "alert"]

    def wait_for(self, alert_id: str) -> dict:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            for event in self.alerts():
                if event["data"]["event"]["id"] == alert_id:
                    return event
            time.sleep(0.05)
        raise AssertionError(f"alert {alert_id} not delivered; got {self.alerts()}")

    def close(self) -> None:
        self.stop.set()


def _store(store, docs: list[dict]) -> None:
    store.bulk_upsert("alerts", docs)
    store.refresh()


def test_a_stored_alert_is_delivered_through_a_stream_token(server, store):
    app, base = server
    issued = httpx.post(f"{base}/api/v1/stream/token", headers=_headers(app, "/"))
    assert issued.status_code == 200, issued.text
    feed = Feed(f"{base}/api/v1/stream", params={"token": issued.json()["token"]})
    try:
        alert = _alert(1, "county-a1")
        _store(store, [alert])
        event = feed.wait_for(alert["event"]["id"])
        assert event["id"] and event["data"]["message"] == "stream 1"
        assert any(e.get("event") == "posture" for e in feed.received)
        assert feed.comments >= 1                                # heartbeats
    finally:
        feed.close()
    # the stream token opens the stream and nothing else
    other = httpx.get(f"{base}/api/v1/posture",
                      headers={"Authorization": f"Bearer {issued.json()['token']}"})
    assert other.status_code == 401


def test_a_county_never_receives_a_siblings_alert(server, store):
    app, base = server
    feed = Feed(f"{base}/api/v1/stream", headers=_headers(app, "county-a1"))
    try:
        others = [_alert(2, "county-a2"), _alert(3, "city-a"), _alert(4, None),
                  _alert(5, "region")]
        own = _alert(6, "county-a1")
        _store(store, others)
        _store(store, [own])
        feed.wait_for(own["event"]["id"])
        time.sleep(1.0)                                   # a few more polls: nothing else
        assert {e["data"]["labels"]["site"] for e in feed.alerts()} == {"county-a1"}
        ticks = [e["data"] for e in feed.received if e.get("event") == "posture"]
        assert ticks and {s["site"] for s in ticks[-1]["sites"]} == {"county-a1"}
    finally:
        feed.close()


def test_last_event_id_resumes_without_loss_or_repeat(server, store):
    app, base = server
    headers = _headers(app, "/", role="analyst")
    first = _alert(7, "county-a2")
    feed = Feed(f"{base}/api/v1/stream", headers=headers)
    try:
        _store(store, [first])
        resume_from = feed.wait_for(first["event"]["id"])["id"]
    finally:
        feed.close()
    missed = [_alert(8, "county-a1"), _alert(9, "city-a")]
    _store(store, missed)                                 # while nobody listens
    time.sleep(FEED.settle_seconds)
    resumed = Feed(f"{base}/api/v1/stream", headers={**headers, "Last-Event-ID": resume_from})
    try:
        for alert in missed:
            resumed.wait_for(alert["event"]["id"])
        changed = httpx.patch(f"{base}/api/v1/alerts/{missed[0]['event']['id']}",
                              headers=headers, json={"status": "acknowledged"})
        assert changed.status_code == 200, changed.text
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and len(resumed.alerts()) < 3:
            time.sleep(0.05)
        time.sleep(1.0)
        ids = [e["data"]["event"]["id"] for e in resumed.alerts()]
        assert first["event"]["id"] not in ids
        assert len(ids) == 3 and set(ids[:2]) == {a["event"]["id"] for a in missed}, ids
        assert ids[2] == missed[0]["event"]["id"]            # the third: the analyst's change
        assert resumed.alerts()[-1]["data"]["watchkeeper"]["alert"]["status"] == "acknowledged"
    finally:
        resumed.close()


def test_bad_credentials_and_cursors_are_refused(server):
    app, base = server
    assert httpx.get(f"{base}/api/v1/stream").status_code == 401
    assert httpx.get(f"{base}/api/v1/stream", params={"token": "x.y.z"}).status_code == 401
    access = _headers(app, "/")["Authorization"].split()[1]     # an access token is not one
    assert httpx.get(f"{base}/api/v1/stream", params={"token": access}).status_code == 401
    bad = httpx.get(f"{base}/api/v1/stream", headers={**_headers(app, "/"),
                                                      "Last-Event-ID": "not-a-cursor"})
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
    assert httpx.post(f"{base}/api/v1/stream/token").status_code == 401


@pytest.mark.parametrize("text", ["", "e30", "x" * 3000, FeedCursor.starting_at(0).encode()[:-3]])
def test_cursor_decoding_refuses_what_it_did_not_issue(text):
    with pytest.raises(BadCursor):
        FeedCursor.decode(text)
    cursor = FeedCursor.starting_at(1_767_225_600.0)
    assert FeedCursor.decode(cursor.encode()) == cursor


def test_changes_after_pages_through_equal_times_once(store):
    """Many documents stamped in the same bulk write (same event.ingested) are walked by id:
    small pages neither skip nor repeat one, and the site filter applies."""
    docs = [_alert(100 + n, "county-a1" if n % 3 else "county-a2") for n in range(25)]
    store.bulk_upsert("alerts", docs)
    store.refresh()
    until = time.time() + 5
    seen, after = [], None
    while True:
        page = store.changes_after("alerts", "event.ingested", after, until,
                                   Query(limit=4, sites=["county-a1"]))
        if not page:
            break
        seen += [d["event"]["id"] for d in page]
        after = (page[-1]["event"]["ingested"], page[-1]["event"]["id"])
    wanted = sorted(d["event"]["id"] for d in docs if d["labels"]["site"] == "county-a1")
    assert seen == wanted
    assert store.changes_after("alerts", "event.ingested", None, time.time() - 3600,
                               Query()) == []                   # nothing stored before then
    with pytest.raises(ValueError):
        store.changes_after("alerts", "@timestamp", None, until, Query())


def test_an_alert_indexed_from_either_bus_is_delivered(bus, unique, tmp_path):
    """The feed follows the store, so it works the same whichever bus fed the indexer."""
    names = Names(f"wkfeed{unique}")
    bus.ensure_topics(names.topics)
    store = SqliteStore(f"sqlite:///{tmp_path}/wk.db")
    indexer = Indexer(bus, store, names)
    try:
        with _serving(store) as (app, base):
            feed = Feed(f"{base}/api/v1/stream", headers=_headers(app, "city-a"))
            try:
                alert = _alert(200, "county-a1")
                producer = bus.producer()
                producer.send(names.alerts, codec.encode(alert), key="203.0.113.9")
                producer.flush()
                deadline = time.monotonic() + WAIT
                while not store.get_by_ids("alerts", [alert["event"]["id"]]):
                    assert time.monotonic() < deadline, "the indexer stored nothing"
                    indexer.step(timeout=0.5)
                delivered = feed.wait_for(alert["event"]["id"])
                assert delivered["data"]["event"]["ingested"]       # stamped on the way in
            finally:
                feed.close()
    finally:
        indexer.close()
        store.close()


def test_posture_ticks_carry_the_warnings_of_the_streams_scope(server, store):
    """A collector that fell silent shows at the next tick, on its own subtree's streams only."""
    app, base = server
    now = time.time()
    observer = f"sensor-tick-{now}"
    store.bulk_upsert("events", [status_document("syslog", {"parsed": 3}, observer,
                                                 started=now - 300, now=now - 120, every=10,
                                                 site="county-a2")])
    store.refresh()
    own, sibling = (Feed(f"{base}/api/v1/stream", headers=_headers(app, site))
                    for site in ("city-a", "county-a1"))
    try:
        for feed in (own, sibling):
            deadline = time.monotonic() + WAIT
            while time.monotonic() < deadline and not _ticks(feed):
                time.sleep(0.05)
        warned = [w for w in _ticks(own)[-1]["warnings"] if w["observer"] == observer]
        assert [(w["kind"], w["collector"], w["site"]) for w in warned] == \
            [("collector_silent", "syslog", "county-a2")]
        assert "无上报" in warned[0]["message"]
        assert _ticks(sibling)[-1]["warnings"] == []
    finally:
        own.close()
        sibling.close()


def _ticks(feed: Feed) -> list[dict]:
    return [e["data"] for e in feed.received if e.get("event") == "posture"]
