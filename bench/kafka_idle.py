"""What an idle kafka-python member costs, by how long its fetch waits at the broker
(`fetch_wait_ms`, open_bus): `ingest` uses 100 ms, long-running stages kafka-python's 500.

    .venv/bin/python bench/kafka_idle.py --bus kafka://127.0.0.1:19092 [--members 8]
        [--seconds 30] [--waits 500,100,500,100]

Each arm: `--members` consumers of one caught-up topic, each in a thread stepping as a stage
does when nothing comes (poll with a 0.2 s timeout, then lag()), for `--seconds`. Printed:
this process's CPU, the broker's (from /proc: the first `kafka.Kafka` process on this
machine, so run it with one broker up), and the steps
per member per second (how often lag() could answer)."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.machine import machine, machine_line  # noqa: E402
from watchkeeper.bus import open_bus  # noqa: E402


def _broker_cpu() -> float | None:
    """CPU seconds of the local Kafka broker so far; None when none runs here."""
    found = subprocess.run(["pgrep", "-f", "kafka.Kafka"], capture_output=True, text=True)
    pids = found.stdout.split()
    if not pids:
        return None
    fields = Path(f"/proc/{pids[0]}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _arm(url: str, wait_ms: int, members: int, seconds: float) -> str:
    bus = open_bus(url, fetch_wait_ms=wait_ms)
    topic = f"wkbench.idle.{uuid.uuid4().hex[:8]}"
    bus.ensure_topics((topic,))
    producer = bus.producer()
    producer.send(topic, b"x")
    producer.close()
    consumers = [bus.consumer(f"{topic}.g{i}", [topic]) for i in range(members)]
    for consumer in consumers:             # joined and caught up before timing
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            consumer.poll(100, 0.2)
            if consumer.lag() == 0:
                break
    steps: list[int] = []
    stop = time.monotonic() + seconds

    def idle(consumer) -> None:
        count = 0
        while time.monotonic() < stop:
            consumer.poll(1000, 0.2)
            consumer.lag()
            count += 1
        steps.append(count)

    broker, ours = _broker_cpu(), time.process_time()
    threads = [threading.Thread(target=idle, args=(c,)) for c in consumers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ours = time.process_time() - ours
    after = _broker_cpu()
    for consumer in consumers:
        consumer.close()
    broker_text = "n/a" if broker is None or after is None else f"{after - broker:.2f} s"
    return (f"fetch_wait_ms={wait_ms}: {members} idle members for {seconds:.0f} s: ours "
            f"{ours:.2f} s CPU, broker {broker_text}, {sum(steps) / members / seconds:.1f} "
            f"steps per member per second")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bus", required=True, help="kafka://HOST:PORT")
    ap.add_argument("--members", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--waits", default="500,100,500,100", help="fetch waits (ms), in order")
    args = ap.parse_args(argv)
    print(machine_line(machine(None, True)))
    for wait in (int(w) for w in args.waits.split(",")):
        print(_arm(args.bus, wait, args.members, args.seconds), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
