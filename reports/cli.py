"""`watchkeeper report …` and `watchkeeper scheduler`: options and handlers that the composition
root registers (app/commands.py TOOLS, app/roles.py ROLES)."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from reports.builder import REPORT_TYPES, ReportRequest
from reports.generate import generate
from reports.periods import parse_period
from reports.sections.incident_detail import IncidentNotFound
from reports.settings import report_settings
from reports.templates import ReportTemplateError, TemplateSet
from watchkeeper.assets import Inventory, load_inventory
from watchkeeper.identity import ROOT
from watchkeeper.store import open_store


def report_options(report: argparse.ArgumentParser) -> None:
    report.add_argument("type", choices=REPORT_TYPES)
    report.add_argument("--site", default=ROOT, help="root of the subtree covered (default /)")
    report.add_argument("--period", help="2026-11 (monthly), 2026-W45 (weekly), 2026-11-05 "
                                         "(daily)")
    report.add_argument("--incident", help="incident id (incident reports)")
    report.add_argument("--lang", choices=["zh-CN", "en"], help="default: reports.lang")
    report.add_argument("--out", required=True, metavar="FILE", help="PDF to write")
    report.add_argument("--html", metavar="FILE", help="also write the HTML")


def scheduler_options(scheduler: argparse.ArgumentParser) -> None:
    scheduler.add_argument("--once", action="store_true",
                           help="catch up missed runs, deliver pending reports, then exit")


def cmd_report(args: argparse.Namespace, settings) -> int:
    options = report_settings(settings.reports)
    if args.type != "incident" and not args.period:
        raise ValueError(f"a {args.type} report needs --period")
    if args.type == "incident" and not args.incident:
        raise ValueError("an incident report needs --incident ID")
    request = ReportRequest(args.type, site=args.site, lang=args.lang or options.lang,
                            incident_id=args.incident,
                            period=parse_period(args.type, args.period, options.timezone)
                            if args.type != "incident" else None)
    store = open_store(settings.store)
    try:
        made = generate(store, request, options, TemplateSet(options.templates_dir),
                        deployment_inventory(settings, store), generated_by="cli",
                        configured_retention_months=settings.retention_months)
    except (IncidentNotFound, ReportTemplateError) as exc:
        raise ValueError(str(exc)) from None
    finally:
        store.close()
    Path(args.out).write_bytes(made.pdf)
    if args.html:
        Path(args.html).write_text(made.html, encoding="utf-8")
    for problem in made.problems:
        print(f"watchkeeper report: template problem (previous version used): {problem}",
              file=sys.stderr)
    print(f"{made.report.report_id} {args.out} sha256={made.sha256}")
    return 0


def deployment_inventory(settings, store) -> Inventory:
    """The sites and assets the rest of the deployment follows: the store's (seeded once from
    `inventory_file`, then edited through the API; alerting and tenancy read the same), re-read
    at each report (`generate` reloads it). The file alone when the store has none."""
    from watchkeeper.store.inventory import load_from_store, seed_from_file
    seed_from_file(store, settings.inventory_file)

    def current() -> Inventory:
        stored = load_from_store(store)
        return stored if stored.sites or stored.assets() else \
            load_inventory(settings.inventory_file)
    return Inventory.refreshing(current, every=60.0)


def on_demand_generator(settings, store):
    """What POST /api/v1/reports calls (the composition root hands it to the API)."""
    options = report_settings(settings.reports)
    templates = TemplateSet(options.templates_dir)
    inventory = deployment_inventory(settings, store)

    def generate_now(*, report_type: str, site: str, period: str | None,
                     incident_id: str | None, lang: str | None, actor: str) -> dict:
        if report_type != "incident" and not period:
            raise ValueError(f"a {report_type} report needs a period")
        if report_type == "incident" and not incident_id:
            raise ValueError("an incident report needs incident_id")
        request = ReportRequest(report_type, site=site, lang=lang or options.lang,
                                incident_id=incident_id if report_type == "incident" else None,
                                period=parse_period(report_type, period, options.timezone)
                                if report_type != "incident" else None)
        try:
            made = generate(store, request, options, templates, inventory,
                            generated_by=f"api:{actor}",
                            configured_retention_months=settings.retention_months)
        except ReportTemplateError as exc:
            raise RuntimeError(str(exc)) from None
        return made.document
    return generate_now


def start_scheduler(settings, store, stop: threading.Event) -> threading.Thread | None:
    """`watchkeeper run`: the schedules in a thread of the all-in-one process (None if none
    are configured). Other schedulers in the deployment are harmless: reports are claimed."""
    from reports.scheduler import ReportScheduler
    options = report_settings(settings.reports)
    if not options.schedules:
        return None
    scheduler = ReportScheduler(store, options, deployment_inventory(settings, store),
                                configured_retention_months=settings.retention_months)
    thread = threading.Thread(target=scheduler.run_forever, args=(stop,), name="wk-reports",
                              daemon=True)
    thread.start()
    return thread


def cmd_scheduler(args: argparse.Namespace, settings) -> int:
    from reports.scheduler import ReportScheduler
    options = report_settings(settings.reports)
    store = open_store(settings.store)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        scheduler = ReportScheduler(store, options, deployment_inventory(settings, store),
                                    configured_retention_months=settings.retention_months)
        if args.once:
            scheduler.run_pending()
            return 0
        scheduler.run_forever(stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        store.close()
    return 0
