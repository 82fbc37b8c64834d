"""Collectors as roles: build each from settings, run it until stopped, publishing events."""
from __future__ import annotations

import logging
import os
import threading

from watchkeeper.bus import Names
from watchkeeper.config import Settings
from watchkeeper.networks import InternalNetworks
from watchkeeper.pipeline import Backends
from watchkeeper.publish import EventPublisher

log = logging.getLogger(__name__)


def _publisher(settings: Settings, backends: Backends, stage: str) -> EventPublisher:
    return EventPublisher(backends.bus.producer(), stage, Names(settings.namespace))


def run_tailers(settings: Settings, backends: Backends, paths: list[str],
                stop: threading.Event, state_file: str | None = None) -> None:
    from collectors.tailers import TailRunner
    os.makedirs(settings.data_dir, exist_ok=True)
    runner = TailRunner(_publisher(settings, backends, "tailers"), paths,
                        state_file or os.path.join(settings.data_dir, "tailers-state.json"),
                        observer=settings.observer, site=settings.site,
                        networks=InternalNetworks(settings.internal_networks))
    log.info("tailing %s", ", ".join(paths))
    runner.run(stop)


def start_collectors(settings: Settings, backends: Backends,
                     stop: threading.Event) -> list[threading.Thread]:
    """The collectors `watchkeeper run` starts next to the workers."""
    threads = []
    if settings.tail_paths:
        threads.append(threading.Thread(
            target=run_tailers, args=(settings, backends, settings.tail_paths, stop),
            name="wk-tailers", daemon=True))
    for thread in threads:
        thread.start()
    return threads
