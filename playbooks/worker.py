"""The playbook worker role: its own consumer group on the alerts topic, so runs never hold
up detection or indexing; between polls it advances the runs in the store (resuming what a
previous process left waiting or unfinished)."""
from __future__ import annotations

import logging
import signal
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
from watchkeeper.store import Store
from watchkeeper.worker import StepResult, run_forever

log = logging.getLogger(__name__)
ROLE = "playbooks"


class PlaybookWorker:
    name = ROLE

    def __init__(self, bus: Bus, engine: Engine, names: Names = Names(),
                 tick_seconds: float = 1.0):
        self.engine = engine
        self.group = names.group(ROLE)
        self.consumer = bus.consumer(self.group, [names.alerts])
        self.tick_seconds = tick_seconds
        self._last_tick = 0.0
        self.bad_records = 0

    def step(self, max_records: int = 500, timeout: float = 0.5) -> StepResult:
        messages = self.consumer.poll(max_records, timeout)
        created = 0
        for message in messages:
            try:
                alert = schema.validate(msgspec.json.decode(message.value))
            except (msgspec.DecodeError, schema.ValidationError):
                self.bad_records += 1     # the indexer dead-letters it; nothing to run
                continue
            created += len(self.engine.on_alert(alert))
        if messages:
            self.consumer.commit()        # after the runs exist: at-least-once, idempotent
        if time.monotonic() - self._last_tick >= self.tick_seconds or messages:
            self.engine.tick()
            self._last_tick = time.monotonic()
        return StepResult(consumed=len(messages), written=created)

    def reset(self) -> None:
        self.consumer.rewind()

    def close(self) -> None:
        self.consumer.close()
        self.engine.pool.shutdown(wait=False, cancel_futures=True)


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
                          pb.tick_seconds)


def run_worker(settings: Settings) -> int:
    """`watchkeeper playbooks`: the stage alone, until SIGTERM (finishing the batch in hand)."""
    from watchkeeper.bus import open_bus
    from watchkeeper.store import open_store
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    store = open_store(settings.store)
    bus = open_bus(settings.bus, settings.partitions)
    bus.ensure_topics(Names(settings.namespace).topics)
    worker = playbook_stage(settings, bus, store)
    log.info("playbooks worker on %s -> %s (%d playbooks)", settings.bus, settings.store,
             len(worker.engine.library.playbooks))
    try:
        run_forever(worker, stop)
    except KeyboardInterrupt:
        pass
    finally:
        bus.close()
        store.close()
    return 0
