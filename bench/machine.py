"""The machine line every benchmark prints and bench/RESULTS.md records beside its figures."""
from __future__ import annotations

import json
import os
import platform
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def machine(es_url: str | None, kafka: bool) -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[1])
    except OSError:
        mem_kb = 0
    info = {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(mem_kb / 1024 ** 2, 1),
            "python": platform.python_version(), "os": platform.platform(terse=True)}
    info["detection"] = detection_form()
    if kafka:
        info["kafka"] = kafka_version()
    if es_url:
        import urllib.request
        with urllib.request.urlopen(f"{es_url}/_nodes/_local/_none?filter_path=nodes.*.version",
                                    timeout=10) as resp:
            nodes = json.load(resp)["nodes"]
        info["elasticsearch"] = next(iter(nodes.values()))["version"]
    return info


def detection_form() -> str:
    """Whether the detection path runs compiled (docs/decisions.md): figures before 2026-12-07,
    or with WATCHKEEPER_COMPILED=0, are of the Python form."""
    from watchkeeper.compiled import enabled, status
    if not enabled():
        return "detection as Python (WATCHKEEPER_COMPILED=0)"
    built = status()
    return f"detection compiled ({sum(built.values())} of {len(built)} modules built)"


def kafka_version() -> str:
    """The broker's own version (from its classpath); the protocol does not report it."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if " kafka.Kafka " in cmd:
            found = re.search(r"kafka[_-](?:2\.\d+-)?(\d+\.\d+\.\d+)", cmd)
            if found:
                return found[1]
    script = (ROOT / "deploy" / "local" / "services").read_text()
    found = re.search(r"^KAFKA_VERSION=(\S+)", script, re.M)
    return f"{found[1]} (configured)" if found else "unknown"


def machine_line(info: dict) -> str:
    parts = [f"{info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB RAM",
             f"Python {info['python']}", info["os"]]
    if "detection" in info:
        parts.append(info["detection"])
    if "kafka" in info:
        parts.append(f"Kafka {info['kafka']}")
    if "elasticsearch" in info:
        parts.append(f"Elasticsearch {info['elasticsearch']}")
    return "machine: " + "; ".join(parts)
