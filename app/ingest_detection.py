"""`ingest`'s detection stages in their own process, when the bus is Kafka.

In one process every stage of `ingest` shares one interpreter lock, so it used one of the
machine's cores however many it had (bench/RESULTS.md, session 34). Detection is the largest
share of its CPU, so on Kafka (which carries the messages between processes; the embedded
bus lives in one) the source-keyed and re-keyed stages run in a child process (*spawn*: the
parent already runs threads). The child steps them while the parent publishes the file, and
when the parent says the file is published, drains them exactly as the one-process `ingest`
does (`worker.drain`: the same stall limit, the same final checkpoint), hands back what they
did and exits. The parent drains alerting, indexing and correlation only after that, so every
alert is on the bus before the stage that reads it is drained.

A child whose parent dies stops stepping and drains what is on the bus (it is all committed
work either way); the parent gives up on a child that exits without an answer.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue as queue_module
import signal
from dataclasses import asdict

from watchkeeper.worker import StepResult

log = logging.getLogger(__name__)
START_TIMEOUT = 180.0       # spawn + imports on a loaded machine, before the child answers


def _child(settings, published, answers: mp.Queue, parent: int, log_level: int) -> None:
    """Step the detection stages until the file is published, then drain them; answer."""
    logging.basicConfig(level=log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if log_level > logging.DEBUG:       # as the parent: client libraries' retries say nothing
        for noisy in ("kafka", "elastic_transport", "elasticsearch"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C is the parent's: it stops us
    from app.pipeline import detection_workers, open_backends
    from watchkeeper.worker import Stepping, drain
    try:
        with open_backends(settings, for_ingest=True) as backends:
            workers = detection_workers(settings, backends, checkpoint_every_s=float("inf"))
            answers.put(("ready", None))
            try:
                with Stepping(workers) as stepping:
                    while not published.wait(0.5) and os.getppid() == parent:
                        pass
                totals = stepping.results
                for total, worker in zip(totals, workers):
                    total.add(drain(worker, stall_s=settings.ingest_stall_seconds))
            finally:
                for worker in workers:
                    worker.close()
        answers.put(("done", [asdict(total) for total in totals]))
    except Exception as exc:      # noqa: BLE001 - the parent reports it, as its own would be
        if type(exc).__name__ not in _known_errors():
            log.exception("ingest: detection failed")      # a bug: its traceback, here
        answers.put(("error", (type(exc).__name__, str(exc))))


class DetectionProcess:
    """The parent's side: start the child, tell it the file is published, collect its totals."""

    def __init__(self, settings):
        ctx = mp.get_context("spawn")
        self._answers: mp.Queue = ctx.Queue()
        self._published = ctx.Event()
        self.process = ctx.Process(
            target=_child, name="wk-ingest-detect", daemon=True,
            args=(settings, self._published, self._answers, os.getpid(),
                  logging.getLogger().getEffectiveLevel()))

    def start(self) -> DetectionProcess:
        """Start the child; return once its stages exist (a bad detector setting raises here,
        before anything is published)."""
        self.process.start()
        self._answer("ready", START_TIMEOUT)
        return self

    def finish(self) -> list[StepResult]:
        """Say the file is published; wait while the child drains; what each stage did."""
        self._published.set()
        totals = self._answer("done", None)
        self.process.join(timeout=30)
        return [StepResult(**total) for total in totals]

    def stop(self) -> None:
        """Given up (the parent failed): the child must not outlive `ingest`."""
        if self.process.pid is None:
            return                             # never started
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=10)

    def _answer(self, wanted: str, timeout: float | None):
        waited = 0.0
        while True:
            try:
                kind, payload = self._answers.get(timeout=0.5)
                break
            except queue_module.Empty:
                waited += 0.5
                if not self.process.is_alive():
                    raise RuntimeError(f"ingest: the detection process exited with status "
                                       f"{self.process.exitcode} before it was {wanted}")
                if timeout is not None and waited > timeout:
                    raise RuntimeError(f"ingest: the detection process was not {wanted} "
                                       f"within {timeout:.0f} s")
        if kind == "error":
            name, message = payload
            raise _rebuilt(name, message)
        return payload


def _known_errors() -> dict[str, type[Exception]]:
    """The errors `ingest` reports as its own (app/cli.py's failure_code), by class name."""
    from watchkeeper.bus import BusError, BusUnavailable
    from watchkeeper.config import ConfigError
    from watchkeeper.store import StoreError, StoreUnavailable
    from watchkeeper.worker import StalledError
    return {cls.__name__: cls for cls in (StalledError, BusError, BusUnavailable, StoreError,
                                          StoreUnavailable, ConfigError, ValueError)}


def _rebuilt(name: str, message: str) -> Exception:
    """The child's error as the parent raises it, of the same class when `ingest` knows it
    (a stall then ends `ingest` with its one clear line, a refused setting with exit 2)."""
    known = _known_errors()
    if name in known:
        return known[name](message)
    return RuntimeError(f"the detection process failed: {name}: {message}")
