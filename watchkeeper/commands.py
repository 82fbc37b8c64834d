"""What each `watchkeeper` subcommand does, once its arguments are parsed."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from watchkeeper import codec, collect, pipeline
from watchkeeper.bus import Names
from watchkeeper.config import Settings, load_settings
from watchkeeper.liveness import EXIT_STALLED, LivenessConfig, StageRegistry, Watchdog
from watchkeeper.store import Query, open_store

log = logging.getLogger("watchkeeper")


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {k: getattr(args, k, None)
                 for k in ("bus", "store", "host", "port", "syslog_port", "netflow_port")}
    return load_settings(getattr(args, "config", None), **overrides)


def dispatch(args: argparse.Namespace) -> int:
    handler = {
        "run": cmd_run, "serve": cmd_serve, "detect": cmd_worker, "index": cmd_worker,
        "correlate": cmd_worker,
        "retention": cmd_retention, "allowlist": cmd_allowlist, "train": cmd_train, "ingest": cmd_ingest, "flows": cmd_flows,
        "alerts": cmd_list, "events": cmd_list, "simulate": cmd_simulate, "tail": cmd_collector,
        "syslog": cmd_collector, "capture": cmd_collector, "netflow": cmd_collector,
        "users": cmd_admin, "keys": cmd_admin, "audit": cmd_admin,
    }[args.command]
    return handler(args)


def cmd_admin(args: argparse.Namespace) -> int:
    from watchkeeper import admin
    handler = {"users": admin.cmd_users, "keys": admin.cmd_keys, "audit": admin.cmd_audit}
    try:
        return handler[args.command](args, _settings(args))
    except KeyError as exc:
        raise ValueError(f"{args.command}: no {exc.args[0]!r}") from None


def _serve_api(settings: Settings, backends: pipeline.Backends,
               stages: StageRegistry | None = None) -> None:
    import uvicorn

    from api.app import create_app
    from watchkeeper.admin import inventory_sites
    app = create_app(backends.store, auth_settings=settings.auth,
                     sites=inventory_sites(settings, backends.store), stages=stages,
                     feed=settings.feed)
    print(f"Watchkeeper API on http://{settings.host}:{settings.port}/ "
          f"(log in: POST /api/v1/auth/token, alerts: /api/v1/alerts)", file=sys.stderr,
          flush=True)
    # uvicorn re-raises SIGTERM once it has shut down; with the default handler that kills us
    # before the sources and workers flush. A no-op handler lets the caller's cleanup run.
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")


DEMO_INVENTORY = Path(__file__).parent / "demo" / "inventory.yaml"


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.demo and not settings.inventory_file:
        # the sample inventory: every posture panel and map tile has a site to show
        settings = settings.model_copy(update={"inventory_file": str(DEMO_INVENTORY)})
    backends = pipeline.open_backends(settings)
    sources_stop, workers_stop = threading.Event(), threading.Event()
    sources: list[threading.Thread] = []
    workers: list[threading.Thread] = []
    stages = StageRegistry()
    watchdog = Watchdog(stages, _liveness(settings))
    try:
        # Workers first: every consumer group then exists before the first event, so the
        # embedded bus keeps each message until all of them have read it.
        workers += pipeline.start_workers(settings, backends, workers_stop, registry=stages)
        sources += collect.start_collectors(settings, backends.bus, sources_stop)
        watchdog.start()
        if args.interface:
            live = collect.open_capture(args.interface, sources_stop)
            sources.append(_thread(collect.run_capture, settings, backends.bus, sources_stop,
                                   live, name="wk-capture"))
        if args.demo:
            from watchkeeper.admin import create_demo_users
            sources.append(_thread(_feed_demo, settings, backends, name="wk-demo"))
            create_demo_users(backends.store, settings)   # argon2 is slow: feed meanwhile
        _serve_api(settings, backends, stages)
    finally:
        watchdog.stop()
        # Sources first (they flush what they hold), then the workers finish the bus.
        _stop(sources_stop, sources, 30)
        _stop(workers_stop, workers, 60)
        backends.close()
    return 0


def _thread(target, *args, name: str) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, name=name, daemon=True)
    thread.start()
    return thread


def _stop(event: threading.Event, threads: list[threading.Thread], timeout: float) -> None:
    event.set()
    for thread in threads:
        thread.join(timeout=timeout)


def _feed_demo(settings: Settings, backends: pipeline.Backends) -> None:
    """Simulated traffic from the last few minutes, published like a live collector would."""
    from watchkeeper.publish import EventPublisher
    from watchkeeper.simulate import write_scenario
    with tempfile.TemporaryDirectory(prefix="watchkeeper-demo-") as tmp:
        path = os.path.join(tmp, "demo.pcap")
        summary = write_scenario(path, start=time.time() - 300)
        publisher = EventPublisher(backends.bus.producer(), "demo", Names(settings.namespace))
        for doc in pipeline.capture_documents([path], settings):
            publisher.publish(doc)
        publisher.flush()
    log.info("demo: published %d flows (scanner %s)", publisher.published, summary.scanner)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with pipeline.open_backends(settings) as backends:
        _serve_api(settings, backends)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings(args)
    stop = threading.Event()
    # `docker stop` sends SIGTERM: finish the batch in hand and leave the group cleanly.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    log.info("%s worker on %s -> %s", args.command, settings.bus, settings.store)
    with pipeline.open_backends(settings) as backends:
        stages = StageRegistry()
        threads = pipeline.start_workers(settings, backends, stop, roles=(args.command,),
                                         registry=stages)
        watchdog = Watchdog(stages, _liveness(settings)).start()
        try:
            while any(t.is_alive() for t in threads):
                for thread in threads:
                    thread.join(timeout=1)
        except KeyboardInterrupt:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        finally:
            watchdog.stop()
    if not stop.is_set():   # every stage thread ended on its own: an error, not a stop
        log.error("%s: every stage stopped unexpectedly; exiting with status %d",
                  args.command, EXIT_STALLED)
        return EXIT_STALLED
    return 0


def _liveness(settings: Settings) -> LivenessConfig:
    return LivenessConfig(stall_seconds=settings.worker_stall_seconds,
                          max_rejoins=settings.worker_max_rejoins)


def cmd_retention(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with pipeline.open_backends(settings) as backends:
        dropped = pipeline.apply_retention(settings, backends.store)
    print(f"dropped {len(dropped)} event day(s): {', '.join(dropped) or 'none'}")
    return 0


def cmd_collector(args: argparse.Namespace) -> int:
    """A collector as its own process (production: one per source); it needs only the bus."""
    settings = _settings(args)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    bus = pipeline.open_bus_only(settings)
    try:
        if args.command == "capture":
            live = collect.open_capture(args.interface, stop, args.bpf, args.snaplen)
            collect.run_capture(settings, bus, stop, live)
        elif args.command == "tail":
            paths = args.paths or settings.tail_paths
            if not paths:
                raise ValueError("nothing to follow: give PATH arguments or set tail_paths")
            collect.run_tailers(settings, bus, paths, stop, args.state)
        elif args.command == "netflow":
            collect.run_netflow(settings, bus, stop)
        else:
            collect.run_syslog(settings, bus, stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        bus.close()
    return 0


def cmd_allowlist(args: argparse.Namespace) -> int:
    settings = _settings(args)
    store = open_store(settings.store)
    try:
        changed = pipeline.apply_allowlist(settings, store)
    finally:
        store.close()
    print(f"suppressed {changed} stored alert(s)")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    _check_files(args.files)
    settings = _settings(args)
    with pipeline.open_backends(settings) as backends:
        report = pipeline.ingest(args.files, settings, backends)
    print(f"ingested {report.published} events ({report.rejected} rejected), "
          f"{report.detected.alerts} alert updates, {report.indexed.written} documents written, "
          f"{report.indexed.deadlettered + report.detected.deadlettered} dead-lettered "
          f"in {report.seconds:.1f}s", file=sys.stderr)
    return 0


def cmd_flows(args: argparse.Namespace) -> int:
    _check_files(args.files)
    settings = load_settings(args.config)
    out = sys.stdout.buffer
    for doc in pipeline.capture_documents(args.files, settings, app=False):
        out.write(codec.encode(doc) + b"\n")
    out.flush()
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Documents from the store only: listing needs no bus."""
    settings = _settings(args)
    terms = {"event.dataset": [args.dataset]} if getattr(args, "dataset", None) else {}
    out = sys.stdout.buffer
    store = open_store(settings.store)
    try:
        for doc in store.scan(args.command, Query(terms=terms), args.limit):
            out.write(codec.encode(doc) + b"\n")
    finally:
        store.close()
    out.flush()
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Baseline flows (oldest first, so memory holds about two windows) -> a saved model."""
    from dataclasses import asdict

    from detectors.train import train
    from watchkeeper import schema, timeutil
    settings = _settings(args)
    query = Query(since=timeutil.parse(args.since), until=timeutil.parse(args.until),
                  terms={"event.dataset": [schema.FLOW]}, order="asc")
    store = open_store(settings.store)
    try:
        report = train(store.scan("events", query), args.out,
                       args.sensitivity, args.window_seconds)
    finally:
        store.close()
    print(codec.encode(asdict(report)).decode())
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from watchkeeper.simulate import write_scenario
    summary = write_scenario(args.output, seed=args.seed, start=args.start)
    print(f"wrote {summary.packets} packets to {summary.path}: scanner {summary.scanner} -> "
          f"{summary.scan_target} ({summary.scanned_ports} ports)", file=sys.stderr)
    return 0


def _check_files(paths: list[str]) -> None:
    for path in paths:
        if not os.path.isfile(path):
            raise ValueError(f"{path}: no such file")
