"""The playbook worker role: its own consumer group on the alerts topic, so runs never hold
up detection or indexing; between polls it advances the runs in the store (resuming what a
previous process left waiting or unfinished)."""
from __future__ import annotations

import logging
import threading
import time

import msgspec

from playbooks.engine import Engine
from playbooks.loader import Library
from playbooks.settings import PlaybookSettings, playbook_settings
from watchkeeper import schema
from watchkeeper.assets import load_inventory
from watchkeeper.bus import Bus, Names
from watchkeeper.config import Settings
from watchkeeper.networks import InternalNetworks
from watchkeeper.store import Store, StoreError
from watchkeeper.worker import StepResult, run_forever

log = logging.getLogger(__name__)
ROLE = "playbooks"


class PlaybookWorker:
    """Consumes alerts (starting runs) in `step`; runs are advanced by `engine.tick`, either
    inline after each step (`background=False`: tests, benchmarks) or in a thread of their
    own (the role), so a slow webhook never holds up consumption or trips the liveness
    watchdog that watches this stage's steps."""
    name = ROLE

    def __init__(self, bus: Bus, engine: Engine, names: Names = Names(),
                 tick_seconds: float = 1.0, background: bool = False):
        self.engine = engine
        self.group = names.group(ROLE)
        self.consumer = bus.consumer(self.group, [names.alerts])
        self.tick_seconds = tick_seconds
        self._last_tick = 0.0
        self.bad_records = 0
        self._stop = threading.Event()
        self._ticker = None
        if background:
            self._ticker = threading.Thread(target=self._tick_loop, name="playbook-runs",
                                            daemon=True)
            self._ticker.start()

    def step(self, max_records: int = 500, timeout: float = 0.5) -> StepResult:
        messages = self.consumer.poll(max_records, timeout)
        alerts = []
        for message in messages:
            try:
                alerts.append(schema.validate(msgspec.json.decode(message.value)))
            except (msgspec.DecodeError, schema.ValidationError):
                self.bad_records += 1     # the indexer dead-letters it; nothing to run
        created = len(self.engine.on_alerts(alerts)) if alerts else 0
        if messages:
            self.consumer.commit()        # after the runs exist: at-least-once, idempotent
        if self._ticker is None and (
                time.monotonic() - self._last_tick >= self.tick_seconds or messages):
            self.engine.tick()
            self._last_tick = time.monotonic()
        return StepResult(consumed=len(messages), written=created)

    def _tick_loop(self) -> None:
        backoff = self.tick_seconds
        while not self._stop.is_set():
            try:
                self.engine.tick()
                backoff = self.tick_seconds
            except (StoreError, OSError) as exc:      # the store is down: try again later
                log.warning("playbook runs: %s; retrying in %.1fs", exc, backoff)
                backoff = min(60.0, backoff * 2)
            except Exception:                          # a bug must not end the runs for good
                log.exception("playbook runs: tick failed")
            self._stop.wait(backoff)

    def reset(self) -> None:
        self.consumer.rewind()

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=30)
        self.consumer.close()
        self.engine.close()


def build_engine(settings: Settings, store: Store,
                 pb: PlaybookSettings | None = None) -> Engine:
    pb = pb or playbook_settings(settings.playbooks)
    inventory = load_inventory(settings.inventory_file)
    tree = {s.id: s.parent for s in inventory.sites.values()} or None
    return Engine(store, Library(pb.library_folders()), pb,
                  InternalNetworks(settings.internal_networks), inventory, tree)


def playbook_stage(settings: Settings, bus: Bus, store: Store) -> PlaybookWorker:
    """The stage `watchkeeper run` starts beside detection and indexing (own group)."""
    pb = playbook_settings(settings.playbooks)
    return PlaybookWorker(bus, build_engine(settings, store, pb), Names(settings.namespace),
                          pb.tick_seconds, background=True)
