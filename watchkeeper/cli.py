"""The `watchkeeper` command (DESIGN.md §7)."""
from __future__ import annotations

import argparse
import logging
import sys

from watchkeeper import __version__
from watchkeeper.bus import BusError, BusUnavailable
from watchkeeper.config import ConfigError
from watchkeeper.memory import limit_malloc_arenas
from watchkeeper.store import StoreError, StoreUnavailable
from watchkeeper.worker import StalledError


def _backend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML settings file")
    parser.add_argument("--bus", help="memory:// or kafka://HOST:PORT (env WATCHKEEPER_BUS)")
    parser.add_argument("--store", help="sqlite:///PATH or http://HOST:9200 (env WATCHKEEPER_STORE)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="watchkeeper", description=__doc__)
    parser.add_argument("--version", action="version", version=f"watchkeeper {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="every role in one process (embedded defaults)")
    serve = sub.add_parser("serve", help="the HTTP API only")
    for p in (run, serve):
        _backend_options(p)
        p.add_argument("--host", help="API listen address (default 127.0.0.1)")
        p.add_argument("--port", type=int, help="API port (default 8000)")
    run.add_argument("--syslog-port", type=int, help="syslog UDP+TCP port (default 5514)")
    run.add_argument("--netflow-port", type=int, help="NetFlow/IPFIX UDP port (default 2055)")
    run.add_argument("--demo", action="store_true",
                     help="also feed a simulated scenario (benign traffic and a port scan)")
    run.add_argument("--interface", help="also capture live on this interface")

    allow = sub.add_parser("allowlist", help="apply the configured allowlist to stored alerts")
    _backend_options(allow)
    allow.add_argument("action", choices=["apply"])

    for name, text in (("detect", "detection worker (consumer group wk-detect)"),
                       ("index", "indexer (consumer group wk-index)"),
                       ("alerting", "alert policy: wk.alerts.raw -> wk.alerts (wk-alerting)"),
                       ("correlate", "alerts -> incidents (consumer group wk-correlate)"),
                       ("retention", "drop event days older than retention_months, then exit")):
        _backend_options(sub.add_parser(name, help=text))

    capture = sub.add_parser("capture", help="live capture: packets -> flows -> bus")
    _backend_options(capture)
    capture.add_argument("--interface", "-i", required=True, help="e.g. eth1 (a mirror port)")
    capture.add_argument("--filter", dest="bpf", help="BPF filter, e.g. 'not port 9092'")
    capture.add_argument("--snaplen", type=int, default=65535)

    netflow = sub.add_parser("netflow", help="NetFlow v5/v9/IPFIX collector (UDP)")
    _backend_options(netflow)
    netflow.add_argument("--netflow-port", type=int, help="UDP port (default 2055)")

    syslog = sub.add_parser("syslog", help="syslog collector (UDP and TCP)")
    _backend_options(syslog)
    syslog.add_argument("--syslog-port", type=int, help="UDP+TCP port (default 5514)")

    tail = sub.add_parser("tail", help="follow Zeek logs and Suricata eve.json into the bus")
    _backend_options(tail)
    tail.add_argument("paths", nargs="*", metavar="PATH",
                      help="files or globs (default: tail_paths from the config)")
    tail.add_argument("--state", metavar="FILE", help="offsets file (default: data_dir)")

    ingest = sub.add_parser("ingest", help="pcap/pcapng files through the pipeline, then exit")
    _backend_options(ingest)
    ingest.add_argument("files", nargs="+", metavar="FILE")

    flows = sub.add_parser("flows", help="pcap -> flow records on stdout (no bus, no store)")
    flows.add_argument("files", nargs="+", metavar="FILE")
    flows.add_argument("--json", action="store_true", required=True, help="one JSON per line")
    flows.add_argument("--config", metavar="FILE")

    for name in ("alerts", "events"):
        p = sub.add_parser(name, help=f"{name} from the store, one JSON document per line")
        _backend_options(p)
        p.add_argument("--json", action="store_true", required=True)
        p.add_argument("--limit", type=int, default=10_000)
    sub.choices["events"].add_argument("--dataset", help="e.g. watchkeeper.flow")

    train = sub.add_parser("train", help="fit the anomaly model on stored flow events")
    _backend_options(train)
    train.add_argument("--since", required=True, help="ISO-8601 start of the baseline period")
    train.add_argument("--until", required=True, help="ISO-8601 end (exclusive)")
    train.add_argument("--out", required=True, metavar="PATH", help="model file to write")
    train.add_argument("--sensitivity", type=float, default=0.5, help="0 (quiet) .. 1 (eager)")
    train.add_argument("--window-seconds", type=int, default=300)

    from watchkeeper import admin
    admin.add_parsers(sub)

    sim = sub.add_parser("simulate", help="write scenario traffic (benign + port scan) as pcap")
    sim.add_argument("output", metavar="OUT.pcap")
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--start", type=float, help="epoch seconds of the first packet")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    limit_malloc_arenas()      # before any thread: see watchkeeper/memory.py
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        # Client libraries log every failed connection attempt; our own messages say it once.
        for noisy in ("kafka", "elastic_transport", "elasticsearch", "uvicorn.error"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)
    from watchkeeper import commands
    try:
        return commands.dispatch(args)
    except (ConfigError, BusUnavailable, StoreUnavailable, ValueError) as exc:
        print(f"watchkeeper: {exc}", file=sys.stderr)
        return 2
    except (StalledError, BusError, StoreError) as exc:
        # A stage or backend failed mid-run: one line that says what, never a traceback.
        print(f"watchkeeper {args.command}: failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:   # `watchkeeper alerts --json | head`: the reader left, not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
