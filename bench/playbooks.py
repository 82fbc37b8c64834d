"""Playbook load: N alerts per minute for M minutes through the real worker (issue 12).

Alerts are published on an embedded bus at the target rate; the `PlaybookWorker` (its own
consumer group) starts one run per alert with a webhook step (a real local HTTP receiver that
counts every POST and every Idempotency-Key) and a comment step, on a SQLite store file.
Checked at the end: every run finished, recorded once, every webhook key delivered once.
The full target (10,000/min for 5 min) is `--rate 10000 --minutes 5`; on a shared 2-core
machine run it small (the defaults) and say so.

    .venv/bin/python bench/playbooks.py --rate 600 --minutes 0.5
"""
from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import threading
import time
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playbooks.engine import Engine  # noqa: E402
from playbooks.loader import Library  # noqa: E402
from playbooks.settings import PlaybookSettings  # noqa: E402
from playbooks.worker import PlaybookWorker  # noqa: E402
from tests.playbooks_support import Receiver, make_alert  # noqa: E402
from watchkeeper.bus import Names  # noqa: E402
from watchkeeper.bus.embedded import EmbeddedBus  # noqa: E402
from watchkeeper.store import Query, runs  # noqa: E402
from watchkeeper.store.sqlite import SqliteStore  # noqa: E402

BOOK = """\
name: load
version: 1
trigger: {{alert: {{category: [scan]}}}}
concurrency: {{per_playbook: 10000}}
steps:
  - id: hook
    action: notify_webhook
    with: {{url: "{url}/hook", message: "{{{{ target }}}}"}}
  - id: note
    action: add_comment
    with: {{text: "load test"}}
"""


def publish(bus, names, rate: float, minutes: float, sent: list[int]) -> None:
    producer = bus.producer()
    total = int(rate * minutes)
    start = time.monotonic()
    for i in range(total):
        alert = make_alert(source=f"203.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
                           at=1_780_000_000 + i)
        producer.send(names.alerts, msgspec.json.encode(alert), key=alert["source"]["ip"])
        sent[0] += 1
        lag = start + (i + 1) * 60 / rate - time.monotonic()
        if lag > 0:
            time.sleep(lag)
    producer.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=600, help="alerts per minute")
    parser.add_argument("--minutes", type=float, default=0.5)
    args = parser.parse_args()
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "books"
        folder.mkdir()
        (folder / "load.yaml").write_text(BOOK.format(url=receiver.url))
        store = SqliteStore(f"sqlite:///{tmp}/wk.db")
        names = Names("wkbenchpb")
        bus = EmbeddedBus(partitions=4)
        bus.ensure_topics(names.topics)
        engine = Engine(store, Library([folder]), PlaybookSettings(shipped=False))
        worker = PlaybookWorker(bus, engine, names, tick_seconds=0.5)
        sent = [0]
        started = time.monotonic()
        producer = threading.Thread(target=publish, args=(bus, names, args.rate,
                                                          args.minutes, sent))
        producer.start()
        total = int(args.rate * args.minutes)
        counts: collections.Counter = collections.Counter()
        last_count = 0.0
        while True:
            worker.step(timeout=0.2)
            if time.monotonic() - last_count < 2:
                continue
            last_count = time.monotonic()
            counts = collections.Counter(
                d["watchkeeper"]["run"]["status"]
                for d in store.scan("runs", Query(terms={"event.dataset": [runs.RUN]})))
            if not producer.is_alive() and sum(counts.values()) == total and \
                    not set(counts) & set(runs.ACTIVE):
                break
            if time.monotonic() - started > args.minutes * 60 * 4 + 120:
                failed = [d["watchkeeper"]["run"].get("message") for d in store.scan(
                    "runs", Query(terms={"event.dataset": [runs.RUN],
                                         "watchkeeper.run.status": ["failed"]}), limit=3)]
                print(f"gave up: {dict(counts)} {failed}", file=sys.stderr)
                return 1
        elapsed = time.monotonic() - started
        producer.join()
        posts, keys = len(receiver.posts), len(receiver.keys)
        print(f"alerts {sent[0]} at {args.rate:g}/min for {args.minutes:g} min; "
              f"runs succeeded {counts['succeeded']} (statuses {dict(counts)}); "
              f"webhooks {posts} posts / {keys} keys; finished {elapsed:.1f} s after start")
        ok = counts == {"succeeded": total} and posts == keys == total
        worker.close()
        store.close()
    receiver.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
