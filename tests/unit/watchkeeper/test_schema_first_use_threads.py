"""The first validations in a fresh process may run on several threads at once (every collector
reports its status on start). msgspec builds a Struct's type information on first use, and
concurrent first uses crashed the process with SIGSEGV in about 1 run in 12; `schema` now builds it at
import. Each run here is a fresh interpreter, because only the first use can race."""
from __future__ import annotations

import subprocess
import sys

FIRST_USE_ON_EIGHT_THREADS = """
import threading
from watchkeeper import schema
doc = {"@timestamp": "2026-11-23T00:00:00.000Z",
       "event": {"kind": "metric", "dataset": "watchkeeper.collector", "id": "0" * 16,
                 "created": "2026-11-23T00:00:00.000Z"},
       "source": {"ip": "10.0.0.1"}, "watchkeeper": {"collector": {"name": "a"}}}
go = threading.Event()
def first_use():
    go.wait()
    schema.validate(doc)
threads = [threading.Thread(target=first_use) for _ in range(8)]
for t in threads:
    t.start()
go.set()
for t in threads:
    t.join()
print("ok")
"""


def test_concurrent_first_validations_do_not_crash_the_process():
    for _ in range(40):
        done = subprocess.run([sys.executable, "-X", "faulthandler", "-c",
                               FIRST_USE_ON_EIGHT_THREADS], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip() == "ok"
