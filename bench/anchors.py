"""Raw anchors for bench/pipeline.py: what the hardware does without our code in the path.

  kafka producer / consumer  Kafka's own perf tools (ProducerPerformance, ConsumerPerformance
                             from the kafka-tools jar the project fetches, deploy/local), fed
                             the same serialised documents as ours (a payload file).
  raw bulk, 1 and 2 clients  the same pre-serialised documents POSTed as NDJSON `_bulk`
                             bodies (2,000 documents each, the indexer's chunk size) into the
                             project's own events index (same template and mapping), from one
                             and from two connections at once.
"""
from __future__ import annotations

import http.client
import os
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 2000


def kafka_libs(explicit: str | None) -> Path:
    """The Kafka jars: --kafka-libs, $WK_KAFKA_LIBS, or this checkout's deploy/local cache."""
    script = (ROOT / "deploy" / "local" / "services").read_text()
    version = re.search(r"^KAFKA_VERSION=(\S+)", script, re.M)[1]
    path = Path(explicit or os.environ.get("WK_KAFKA_LIBS")
                or ROOT / "deploy" / "local" / ".cache" / f"kafka-{version}" / "libs")
    if not any(path.glob("kafka-tools-*.jar")):
        raise SystemExit(f"anchors: no kafka-tools jar under {path} (run deploy/local/services "
                         f"fetch, or pass --kafka-libs DIR)")
    return path


def _java(libs: Path, cls: str, args: list[str], timeout: float = 300) -> str:
    cmd = ["java", "-Xmx512m", "-cp", f"{libs}/*", cls, *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise SystemExit(f"{cls} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def kafka_producer_perf(libs: Path, servers: str, topic: str, payloads: list[bytes]) -> dict:
    """ProducerPerformance sending len(payloads) records drawn from the same documents."""
    with tempfile.NamedTemporaryFile("wb", suffix=".ndjson", delete=False) as f:
        f.write(b"\n".join(payloads[:20000]))   # the tool picks payloads at random from these
        path = f.name
    try:
        out = _java(libs, "org.apache.kafka.tools.ProducerPerformance", [
            "--topic", topic, "--num-records", str(len(payloads)), "--throughput", "-1",
            "--payload-file", path, "--payload-delimiter", "\n",
            "--producer-props", f"bootstrap.servers={servers}", "acks=1", "linger.ms=5",
            "batch.size=262144", "compression.type=none"])
    finally:
        os.unlink(path)
    last = [ln for ln in out.splitlines() if "records sent" in ln][-1]
    per_s = float(re.search(r"records sent, ([\d.]+) records/sec", last)[1])
    return {"records": len(payloads), "records_per_s": per_s, "line": last.strip()}


def kafka_consumer_perf(libs: Path, servers: str, topic: str, n: int) -> dict:
    """ConsumerPerformance reading the n records the producer anchor wrote."""
    out = _java(libs, "org.apache.kafka.tools.ConsumerPerformance", [
        "--bootstrap-server", servers, "--topic", topic, "--messages", str(n),
        "--timeout", "60000", "--group", f"wkbench-perf-{topic}"])
    lines = [ln for ln in out.splitlines() if ln.strip()]
    header = [h.strip() for h in lines[-2].split(",")]
    values = [v.strip() for v in lines[-1].split(",")]
    row = dict(zip(header, values))
    return {"records": int(row["data.consumed.in.nMsg"]),
            "records_per_s": float(row["nMsg.sec"]),
            "fetch_records_per_s": float(row["fetch.nMsg.sec"]), "line": lines[-1]}


def bulk_bodies(index: str, payloads: list[bytes], ids: list[str],
                chunk: int = CHUNK) -> list[bytes]:
    """NDJSON `_bulk` bodies of `chunk` documents each, serialised before timing starts."""
    bodies = []
    for start in range(0, len(payloads), chunk):
        parts = []
        for doc_id, raw in zip(ids[start:start + chunk], payloads[start:start + chunk]):
            parts.append(b'{"index":{"_index":"%s","_id":"%s"}}\n' % (index.encode(),
                                                                      doc_id.encode()))
            parts.append(raw + b"\n")
        bodies.append(b"".join(parts))
    return bodies


def raw_bulk(es_url: str, bodies: list[bytes], clients: int) -> float:
    """Seconds to POST every body, split over `clients` keep-alive connections."""
    parts = urlsplit(es_url)
    errors: list[str] = []

    def client(mine: list[bytes]) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 9200, timeout=120)
        for body in mine:
            conn.request("POST", "/_bulk?filter_path=errors", body=body,
                         headers={"Content-Type": "application/x-ndjson"})
            answer = conn.getresponse().read()
            if b'"errors":false' not in answer:
                errors.append(answer[:300].decode(errors="replace"))
        conn.close()

    threads = [threading.Thread(target=client, args=(bodies[i::clients],))
               for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    if errors:
        raise SystemExit(f"raw bulk: Elasticsearch refused documents: {errors[0]}")
    return seconds


def mode_anchors(docs: list[dict], bus_url: str, es_url: str, elastic, run_id: str,
                 libs_dir: str | None, log) -> dict:
    """Every raw anchor over the same documents: Kafka perf tools, raw bulk (1 and 2 clients)."""
    from watchkeeper import codec
    payloads = [codec.encode(doc) for doc in docs]
    ids = [doc["event"]["id"] for doc in docs]
    n = len(docs)
    out: dict = {"events": n, "bytes_per_doc": sum(map(len, payloads)) / max(1, n)}
    libs = kafka_libs(libs_dir)
    servers = bus_url.split("://", 1)[-1]
    topic = f"wkb{run_id}-perf"
    log(f"anchors: kafka-producer-perf ({n:,} records) ...")
    out["kafka_producer"] = kafka_producer_perf(libs, servers, topic, payloads)
    log("anchors: kafka-consumer-perf ...")
    out["kafka_consumer"] = kafka_consumer_perf(libs, servers, topic, n)
    for clients in (1, 2):
        store = elastic.open(f"raw{clients}")
        index = store.index_for("events", docs[0])
        bodies = bulk_bodies(index, payloads, ids)
        log(f"anchors: raw bulk, {clients} client(s) ...")
        seconds = raw_bulk(es_url, bodies, clients)
        stored = elastic.count(store, "events")
        if stored != n:
            raise SystemExit(f"raw bulk: {stored} documents stored, expected {n}")
        out[f"raw_bulk_{clients}"] = {"seconds": seconds, "events_per_s": n / seconds}
    return out
