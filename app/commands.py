"""The one-shot commands (tools) and `run`, every role in one process.

Like app/roles.py for roles, TOOLS is the table of these subcommands (name -> options ->
handler) that app/cli.py builds the parser from.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app import admin, flowstool, options, pipeline, roles, supervise
from reports import cli as report_cli
from app.settings import Settings, load_settings, settings_from_args
from watchkeeper import codec, demo
from watchkeeper.bus import Names
from watchkeeper.liveness import StageRegistry, Watchdog
from watchkeeper.store import Query, open_store

log = logging.getLogger("watchkeeper")
# The demo's sample region (`run --demo` without an inventory_file of its own).
DEMO_INVENTORY = Path(demo.__file__).parent / "inventory.yaml"


def cmd_run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    if args.demo and not settings.inventory_file:
        # the sample inventory: every posture panel and map tile has a site to show
        settings = settings.model_copy(update={"inventory_file": str(DEMO_INVENTORY)})
    backends = pipeline.open_backends(settings)
    ctx = roles.RunContext(args, settings, backends, StageRegistry(), threading.Event(),
                           threading.Event())
    threads: dict[str, list[threading.Thread]] = {"worker": [], "collector": []}
    watchdog = Watchdog(ctx.stages, roles.liveness(settings))
    try:
        # Workers first (table order): every consumer group then exists before the first
        # event, so the embedded bus keeps each message until all of them have read it.
        for role in roles.ROLES:
            if role.start is not None:
                threads[role.kind] += role.start(ctx)
        watchdog.start()
        if args.demo:
            threads["collector"].append(_thread(_feed_demo, settings, backends, name="wk-demo"))
            admin.create_demo_users(backends.store, settings)   # argon2 is slow: feed meanwhile
        roles.serve_api(settings, backends, ctx.stages)
    finally:
        watchdog.stop()
        # Sources first (they flush what they hold), then the workers finish the bus.
        _stop(ctx.sources_stop, threads["collector"], 30)
        _stop(ctx.workers_stop, threads["worker"], 60)
        backends.close()
    return 0


def run_options(parser: argparse.ArgumentParser) -> None:
    """`run`'s own options plus those each role it starts contributes (app/roles.py)."""
    options.backends(parser)
    for role in roles.ROLES:
        if role.run_options is not None:
            role.run_options(parser)
    parser.add_argument("--demo", action="store_true",
                        help="also feed a simulated scenario (benign traffic and a port scan)")


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
        publisher = EventPublisher(backends.bus.producer(), "demo", Names(settings.namespace),
                                   partitions=backends.bus.partitions)
        for doc in pipeline.capture_documents([path], settings):
            publisher.publish(doc)
        publisher.flush()
    log.info("demo: published %d flows (scanner %s)", publisher.published, summary.scanner)



def cmd_allowlist(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    store = open_store(settings.store)
    try:
        changed = pipeline.apply_allowlist(settings, store)
    finally:
        store.close()
    print(f"suppressed {changed} stored alert(s)")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    _check_files(args.files)
    settings = settings_from_args(args)
    with pipeline.open_backends(settings, for_ingest=True) as backends:
        report = pipeline.ingest(args.files, settings, backends)
    print(f"ingested {report.published} events ({report.rejected} rejected), "
          f"{report.detected.alerts} alert updates, {report.indexed.written} documents written, "
          f"{report.indexed.deadlettered + report.detected.deadlettered} dead-lettered "
          f"in {report.seconds:.1f}s", file=sys.stderr)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Documents from the store only: listing needs no bus."""
    settings = settings_from_args(args)
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
    settings = settings_from_args(args)
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


def _cmd_report(args: argparse.Namespace) -> int:
    return report_cli.cmd_report(args, settings_from_args(args))


def cmd_admin(args: argparse.Namespace) -> int:
    handler = {"users": admin.cmd_users, "keys": admin.cmd_keys, "audit": admin.cmd_audit}
    try:
        return handler[args.command](args, settings_from_args(args))
    except KeyError as exc:
        raise ValueError(f"{args.command}: no {exc.args[0]!r}") from None


def _allowlist_options(parser: argparse.ArgumentParser) -> None:
    options.backends(parser)
    parser.add_argument("action", choices=["apply"])


def _ingest_options(parser: argparse.ArgumentParser) -> None:
    options.backends(parser)
    parser.add_argument("files", nargs="+", metavar="FILE")


def _list_options(parser: argparse.ArgumentParser) -> None:
    options.backends(parser)
    parser.add_argument("--json", action="store_true", required=True)
    parser.add_argument("--limit", type=int, default=10_000)


def _events_options(parser: argparse.ArgumentParser) -> None:
    _list_options(parser)
    parser.add_argument("--dataset", help="e.g. watchkeeper.flow")


def _train_options(parser: argparse.ArgumentParser) -> None:
    options.backends(parser)
    parser.add_argument("--since", required=True, help="ISO-8601 start of the baseline period")
    parser.add_argument("--until", required=True, help="ISO-8601 end (exclusive)")
    parser.add_argument("--out", required=True, metavar="PATH", help="model file to write")
    parser.add_argument("--sensitivity", type=float, default=0.5, help="0 (quiet) .. 1 (eager)")
    parser.add_argument("--window-seconds", type=int, default=300)


def _simulate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("output", metavar="OUT.pcap")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", type=float, help="epoch seconds of the first packet")


@dataclass(frozen=True)
class Tool:
    name: str
    help: str
    options: Callable[[argparse.ArgumentParser], None]
    main: Callable[[argparse.Namespace], int]


TOOLS: tuple[Tool, ...] = (
    Tool("run", "every role in one process (embedded defaults)", run_options, cmd_run),
    Tool("allowlist", "apply the configured allowlist to stored alerts", _allowlist_options,
         cmd_allowlist),
    Tool("ingest", "pcap/pcapng files through the pipeline, then exit", _ingest_options,
         cmd_ingest),
    Tool("flows", "pcap -> flow records on stdout (no bus, no store)", flowstool.flows_options,
         flowstool.cmd_flows),
    Tool("alerts", "alerts from the store, one JSON document per line", _list_options, cmd_list),
    Tool("events", "events from the store, one JSON document per line", _events_options,
         cmd_list),
    Tool("train", "fit the anomaly model on stored flow events", _train_options, cmd_train),
    Tool("users", "API users: add, list, disable, enable", admin.users_options, cmd_admin),
    Tool("keys", "API keys for machines: create, list, revoke", admin.keys_options, cmd_admin),
    Tool("audit", "audit trail: verify the hash chain, export it", admin.audit_options,
         cmd_admin),
    Tool("report", "generate a compliance report (PDF) and store it",
         roles.with_backends(report_cli.report_options), _cmd_report),
    Tool("simulate", "write scenario traffic (benign + port scan) as pcap", _simulate_options,
         cmd_simulate),
    Tool("supervise", "every consuming stage as its own process (Kafka), scaled per stage",
         supervise.supervise_options, supervise.cmd_supervise),
)
