"""The role table: each long-running role, its options, and how it is built.

One row per role (DESIGN.md §1): `watchkeeper <role>` runs it as its own process (one service
per role in docker-compose.yml), and `watchkeeper run` starts every row that has a `start`
in one process, in table order (workers before collectors, so every consumer group exists
before the first event). The CLI (app/cli.py), `run` (app/commands.py) and the compose check
(tests/unit/test_compose.py) all read this table; a new role is one row here.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app import collect, options, pipeline
from app.settings import Settings, settings_from_args
from playbooks import cli as playbook_cli
from reports import cli as report_cli
from watchkeeper.liveness import EXIT_STALLED, LivenessConfig, StageRegistry, Watchdog

log = logging.getLogger("watchkeeper")


@dataclass
class RunContext:
    """What `watchkeeper run` hands each role it starts."""
    args: argparse.Namespace
    settings: Settings
    backends: pipeline.Backends
    stages: StageRegistry            # the watchdog's
    sources_stop: threading.Event    # collectors stop first (they flush what they hold)
    workers_stop: threading.Event    # then the workers finish the bus


@dataclass(frozen=True)
class Role:
    name: str
    help: str
    kind: Literal["collector", "worker", "server"]   # a collector needs only the bus
    options: Callable[[argparse.ArgumentParser], None]        # of `watchkeeper <name>`
    main: Callable[[argparse.Namespace], int]                 # the role as its own process
    start: Callable[[RunContext], list[threading.Thread]] | None = None   # inside `run`
    run_options: Callable[[argparse.ArgumentParser], None] | None = None  # adds to `run`

    @property
    def needs_store(self) -> bool:
        return self.kind != "collector"


def liveness(settings: Settings) -> LivenessConfig:
    return LivenessConfig(stall_seconds=settings.worker_stall_seconds,
                          max_rejoins=settings.worker_max_rejoins)


def serve_api(settings: Settings, backends: pipeline.Backends,
              stages: StageRegistry | None = None) -> None:
    import uvicorn

    from api.app import create_app
    from app.admin import inventory_org_types, inventory_sites
    web_root = Path(settings.web_root) if settings.web_root else None
    app = create_app(backends.store, auth_settings=settings.auth,
                     sites=inventory_sites(settings, backends.store), stages=stages,
                     feed=settings.feed, web_root=web_root,
                     report_generator=report_cli.on_demand_generator(settings, backends.store),
                     incident_settings=settings.incidents,
                     org_types=inventory_org_types(settings),
                     posture_cache_seconds=settings.feed.posture_cache_seconds)
    print(f"Watchkeeper on http://{settings.host}:{settings.port}/ (console: /console, "
          f"wall screen: /screen, API: /api/v1, log in: POST /api/v1/auth/token)",
          file=sys.stderr, flush=True)
    # uvicorn re-raises SIGTERM once it has shut down; with the default handler that kills us
    # before the sources and workers flush. A no-op handler lets the caller's cleanup run.
    signal.signal(signal.SIGTERM, lambda *_: None)
    # Live-feed streams (SSE) never end by themselves: without a bound on the graceful
    # shutdown a stop waits on every open screen for ever.
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                timeout_graceful_shutdown=5)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    with pipeline.open_backends(settings) as backends:
        serve_api(settings, backends)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    stop = threading.Event()
    # `docker stop` sends SIGTERM: finish the batch in hand and leave the group cleanly.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    log.info("%s worker on %s -> %s", args.command, settings.bus, settings.store)
    with pipeline.open_backends(settings) as backends:
        stages = StageRegistry()
        threads = pipeline.start_workers(settings, backends, stop, roles=(args.command,),
                                         registry=stages,
                                         detect_stages=getattr(args, "stage", "all"))
        watchdog = Watchdog(stages, liveness(settings)).start()
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


def cmd_scheduler(args: argparse.Namespace) -> int:
    return report_cli.cmd_scheduler(args, settings_from_args(args))


def cmd_playbooks(args: argparse.Namespace) -> int:
    """The playbook worker, or `playbooks check FOLDER…` (validates, runs nothing)."""
    if args.action == "check":
        return playbook_cli.cmd_check(args.paths)
    return cmd_worker(args)


def _scheduler_in_run(ctx: RunContext) -> list[threading.Thread]:
    thread = report_cli.start_scheduler(ctx.settings, ctx.backends.store, ctx.workers_stop)
    return [thread] if thread else []


def cmd_retention(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    with pipeline.open_backends(settings) as backends:
        dropped = pipeline.apply_retention(settings, backends.store)
    print(f"dropped {len(dropped)} event day(s): {', '.join(dropped) or 'none'}")
    return 0


def cmd_collector(args: argparse.Namespace) -> int:
    """A collector as its own process (production: one per source); it needs only the bus."""
    settings = settings_from_args(args)
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


def _worker_in_run(name: str) -> Callable[[RunContext], list[threading.Thread]]:
    return lambda ctx: pipeline.start_workers(ctx.settings, ctx.backends, ctx.workers_stop,
                                              roles=(name,), registry=ctx.stages)


def _capture_options(parser: argparse.ArgumentParser) -> None:
    options.backends(parser)
    parser.add_argument("--interface", "-i", required=True, help="e.g. eth1 (a mirror port)")
    parser.add_argument("--filter", dest="bpf", help="BPF filter, e.g. 'not port 9092'")
    parser.add_argument("--snaplen", type=int, default=65535)


def _tail_options(parser: argparse.ArgumentParser) -> None:
    options.backends(parser)
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="files or globs (default: tail_paths from the config)")
    parser.add_argument("--state", metavar="FILE", help="offsets file (default: data_dir)")


def with_backends(*more: Callable[[argparse.ArgumentParser], None]):
    def add(parser: argparse.ArgumentParser) -> None:
        options.backends(parser)
        for extra in more:
            extra(parser)
    return add


def _detect_options(parser: argparse.ArgumentParser) -> None:
    options.backends(parser)
    parser.add_argument("--stage", choices=pipeline.DETECT_STAGES, default="all",
                        help="source: the source-keyed stage (group wk-detect); rekeyed: the "
                             "re-keyed stages (wk-detect-<field>); all: both (default)")


ROLES: tuple[Role, ...] = (
    Role("detect", "detection worker (consumer group wk-detect)", "worker",
         _detect_options, cmd_worker, _worker_in_run("detect")),
    Role("alerting", "alert policy: wk.alerts.raw -> wk.alerts (consumer group wk-alerting)",
         "worker", options.backends, cmd_worker, _worker_in_run("alerting")),
    Role("index", "indexer (consumer group wk-index)", "worker",
         options.backends, cmd_worker, _worker_in_run("index")),
    Role("correlate", "alerts -> incidents (consumer group wk-correlate)", "worker",
         options.backends, cmd_worker, _worker_in_run("correlate")),
    Role("retention", "drop event days older than retention_months, then exit", "worker",
         options.backends, cmd_retention, _worker_in_run("retention")),   # `run`: hourly
    Role("playbooks", "playbook worker (consumer group wk-playbooks); `playbooks check "
         "FOLDER…` validates playbook files", "worker",
         with_backends(playbook_cli.options), cmd_playbooks, _worker_in_run("playbooks")),
    Role("scheduler", "compliance report schedules (claimed: one run per deployment)", "worker",
         with_backends(report_cli.scheduler_options), cmd_scheduler, _scheduler_in_run),
    Role("syslog", "syslog collector (UDP and TCP)", "collector",
         with_backends(options.syslog_port), cmd_collector,
         lambda ctx: collect.start_syslog(ctx.settings, ctx.backends.bus, ctx.sources_stop),
         lambda p: options.syslog_port(p, "syslog UDP+TCP port (default 5514)")),
    Role("netflow", "NetFlow v5/v9/IPFIX collector (UDP)", "collector",
         with_backends(options.netflow_port), cmd_collector,
         lambda ctx: collect.start_netflow(ctx.settings, ctx.backends.bus, ctx.sources_stop),
         lambda p: options.netflow_port(p, "NetFlow/IPFIX UDP port (default 2055)")),
    Role("tail", "follow Zeek logs and Suricata eve.json into the bus", "collector",
         _tail_options, cmd_collector,
         lambda ctx: collect.start_tailers(ctx.settings, ctx.backends.bus, ctx.sources_stop)),
    Role("capture", "live capture: packets -> flows -> bus", "collector",
         _capture_options, cmd_collector,
         lambda ctx: collect.start_capture(ctx.settings, ctx.backends.bus, ctx.sources_stop,
                                           ctx.args.interface),
         lambda p: p.add_argument("--interface", help="also capture live on this interface")),
    # `run` serves the API itself, in the main thread, once every other role is up.
    Role("serve", "the HTTP API only", "server",
         with_backends(options.api_listen), cmd_serve, None, options.api_listen),
)

BY_NAME = {role.name: role for role in ROLES}
