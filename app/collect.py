"""Collectors as roles: build each from settings, run it until stopped, publishing events."""
from __future__ import annotations

import logging
import os
import threading

from watchkeeper.bus import Bus, Names
from app.settings import Settings
from watchkeeper.networks import InternalNetworks
from watchkeeper.publish import EventPublisher

log = logging.getLogger(__name__)


def _senders(settings: Settings):
    from watchkeeper.senders import SenderPolicy
    return SenderPolicy(settings.collector_allowed_senders)


def _publisher(settings: Settings, bus: Bus, stage: str) -> EventPublisher:
    # batched by partition (watchkeeper/batches.py): one bus message per batch, not per event
    return EventPublisher(bus.producer(), stage, Names(settings.namespace),
                          partitions=bus.partitions)


def _report_status(settings: Settings, bus: Bus, collector: str, counters,
                   stop: threading.Event):
    """Counters of a running collector, to the store and /metrics (watchkeeper/status.py)."""
    from watchkeeper.status import StatusReporter
    return StatusReporter(_publisher(settings, bus, "status"), collector, counters,
                          settings.observer, stop, every=settings.status_seconds,
                          site=settings.site).start()


def run_tailers(settings: Settings, bus: Bus, paths: list[str],
                stop: threading.Event, state_file: str | None = None) -> None:
    from collectors.tailers import TailRunner
    os.makedirs(settings.data_dir, exist_ok=True)
    runner = TailRunner(_publisher(settings, bus, "tailers"), paths,
                        state_file or os.path.join(settings.data_dir, "tailers-state.json"),
                        observer=settings.observer, site=settings.site,
                        networks=InternalNetworks(settings.internal_networks))
    log.info("tailing %s", ", ".join(paths))
    from watchkeeper.status import counters_of
    _report_status(settings, bus, "tailers", lambda: counters_of(runner.stats), stop)
    runner.run(stop)


def open_capture(interface: str, stop: threading.Event, bpf: str | None = None,
                 snaplen: int = 65535):
    """The bound capture socket. Opened by the caller's thread before it reports ready, so no
    frame sent after start-up is missed and a bad interface fails the start, not a thread."""
    from collectors.capture.kernels.warm import warm
    from collectors.capture.sources.live import LiveSource
    log.info("flow-table kernels ready in %.1f s", warm())
    try:
        return LiveSource(interface, stop, bpf=bpf, snaplen=snaplen)
    except OSError as exc:
        raise ValueError(f"cannot capture on {interface!r}: {exc.strerror} "
                         "(needs CAP_NET_RAW and an existing interface)") from None


def run_capture(settings: Settings, bus: Bus, stop: threading.Event, source,
                extra=None) -> None:
    """Live packets from an opened source -> flows -> wk.events until `stop`. `extra`: more
    counters for the status reports (the capture process's queue depth)."""
    from collectors.capture import Capture
    interface, bpf = source.interface, source.bpf
    publisher = _publisher(settings, bus, "capture")
    networks = InternalNetworks(settings.internal_networks)
    log.info("capturing on %s%s", interface, f" ({bpf})" if bpf else "")
    capture = Capture(source, settings.flow_table.flow_config(), app=True)
    from watchkeeper.status import counters_of
    reporter = _report_status(
        settings, bus, f"capture:{interface}",
        lambda: {**counters_of(capture.stats, capture.app.stats, source.stats),
                 **(extra() if extra else {})}, stop)
    for chunk in capture.lines(settings.observer, networks, settings.site):
        publisher.publish_lines(chunk)    # JSON lines from the rows, no dict per flow
    publisher.flush()
    reporter.thread.join(timeout=10)      # its last report holds the final counts
    log.info("capture on %s stopped: %d packets, %d kernel drops", interface,
             source.stats.packets, source.stats.kernel_drops)


def syslog_server(settings: Settings, bus: Bus):
    """A bound, running syslog listener (binding here surfaces a busy port at start-up)."""
    from collectors.syslog import SyslogServer
    server = SyslogServer(_publisher(settings, bus, "syslog"), settings.collector_host,
                          settings.syslog_port, settings.syslog_port,
                          senders=_senders(settings))
    try:
        server.start()
    except OSError as exc:
        raise ValueError(f"cannot listen for syslog on {settings.collector_host}:"
                         f"{settings.syslog_port}: {exc.strerror}; set syslog_port") from None
    log.info("syslog on %s udp/%s tcp/%s", settings.collector_host, server.udp_port,
             server.tcp_port)
    return server


def _with_status(settings: Settings, bus: Bus, name: str, server, stop: threading.Event):
    from watchkeeper.status import counters_of
    _report_status(settings, bus, name, lambda: counters_of(server.stats), stop)
    return server


def _serve(settings: Settings, bus: Bus, name: str, server, stop: threading.Event) -> None:
    """Run a bound listener, reporting its counters, until `stop`."""
    server = _with_status(settings, bus, name, server, stop)
    try:
        stop.wait()
    finally:
        server.stop()


def run_syslog(settings: Settings, bus: Bus, stop: threading.Event) -> None:
    _serve(settings, bus, "syslog", syslog_server(settings, bus), stop)


def netflow_server(settings: Settings, bus: Bus):
    """A bound, running NetFlow/IPFIX listener."""
    from collectors.netflow import NetflowServer
    server = NetflowServer(_publisher(settings, bus, "netflow"), host=settings.collector_host,
                           port=settings.netflow_port,
                           networks=InternalNetworks(settings.internal_networks),
                           senders=_senders(settings),
                           max_exporters=settings.netflow_max_exporters,
                           exporter_idle_s=settings.netflow_exporter_idle_seconds)
    try:
        server.start()
    except OSError as exc:
        raise ValueError(f"cannot listen for NetFlow on {settings.collector_host}:"
                         f"{settings.netflow_port}: {exc.strerror}; set netflow_port") from None
    log.info("NetFlow/IPFIX on %s udp/%s", settings.collector_host, server.port)
    return server


def run_netflow(settings: Settings, bus: Bus, stop: threading.Event) -> None:
    _serve(settings, bus, "netflow", netflow_server(settings, bus), stop)


def _stop_when(stop: threading.Event, servers: list) -> None:
    stop.wait()
    for server in servers:
        server.stop()


def _started(target, *args, name: str) -> list[threading.Thread]:
    thread = threading.Thread(target=target, args=args, name=name, daemon=True)
    thread.start()
    return [thread]


# What `watchkeeper run` starts next to the workers (app/roles.py), each if configured.

def start_syslog(settings: Settings, bus: Bus, stop: threading.Event) -> list[threading.Thread]:
    if not settings.enable_syslog:
        return []
    server = _with_status(settings, bus, "syslog", syslog_server(settings, bus), stop)
    return _started(_stop_when, stop, [server], name="wk-syslog")


def start_netflow(settings: Settings, bus: Bus, stop: threading.Event) -> list[threading.Thread]:
    if not settings.enable_netflow:
        return []
    server = _with_status(settings, bus, "netflow", netflow_server(settings, bus), stop)
    return _started(_stop_when, stop, [server], name="wk-netflow")


def start_tailers(settings: Settings, bus: Bus, stop: threading.Event) -> list[threading.Thread]:
    if not settings.tail_paths:
        return []
    return _started(run_tailers, settings, bus, settings.tail_paths, stop, name="wk-tailers")


def start_capture(settings: Settings, bus: Bus, stop: threading.Event,
                  interface: str | None) -> list[threading.Thread]:
    """`run --interface`: the capture in its own process (app/capture_process.py), never
    under the interpreter lock of detection, indexing and the API; a thread here only relays
    its encoded messages onto the bus."""
    if not interface:
        return []
    if not settings.capture_process:
        live = open_capture(interface, stop)
        return _started(run_capture, settings, bus, stop, live, name="wk-capture")
    from app.capture_process import CaptureProcess
    child = CaptureProcess(settings, interface).start()
    return _started(child.relay, bus.producer(), stop, name="wk-capture-relay")
