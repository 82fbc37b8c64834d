"""Lateral movement: an internal host newly reaching several internal hosts on admin ports,
or executing code on another internal host through a remote-execution call.

"Newly" means the (destination, port) was not seen from that source during the learning
period, which starts with the first event this instance sees; after it, every pair reached
is learned too, so a host alerts for what is new, once. Jump hosts and admin workstations
that do this routinely are learned and stay quiet. Only sessions the target answered count
(refused or unanswered attempts are the scan detector's business). Memory: per source an LRU
of known pairs, entries forgotten after `forget_after_seconds` unseen.

Remote execution (DCE/RPC events, `watchkeeper.dce_rpc`, from the capture path or Zeek's
dce_rpc.log): creating or reconfiguring a service (svcctl — PsExec, smbexec, Metasploit's
psexec, SCShell) or registering a scheduled task (atsvc, ITaskSchedulerService — atexec) on
another internal host is how one host runs code on another. It alerts on the first target,
learning or not: one such call is already the hop (the flow rule needs several hosts because one
new admin session is everyday administration; one new remote service is not). Quiet for a pair
seen doing it before (learned, like the admin pairs) and for sources the inventory names as
servers (`server_networks`: the management servers that push software this way). A WMI method
call (IWbemServices ExecMethod: Win32_Process.Create) counts when a workstation makes it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from pydantic import Field

from detectors.base import Detector, DetectorConfig
from detectors.kit import KeyedState, Unreported, drop_oldest, due, part, refresh_field
from detectors.roles import RoleBook, misfit
from watchkeeper import schema
from watchkeeper.documents import AlertSpec

ADMIN_PORTS = {22: "ssh", 23: "telnet", 135: "msrpc", 445: "smb", 3389: "rdp",
               5900: "vnc", 5985: "winrm", 5986: "winrm-tls"}
# Answered but refused or torn down before a session: not "reaching" the host.
NOT_REACHED = frozenset({"S0", "REJ", "RSTOS0", "RSTRH", "SH", "SHR"})
Port = Annotated[int, Field(ge=1, le=65535)]
SWEEP_EVERY_S = 3600.0        # forgetting old pairs is a full pass: at most hourly
MAX_RECENT = 1000             # new pairs kept per source per window (memory bound)
# (endpoint, operation) calls that run code on the callee (MS-SCMR, MS-TSCH).
REMOTE_EXEC = frozenset({("svcctl", op) for op in (
    "CreateServiceW", "CreateServiceA", "CreateServiceWOW64W", "CreateServiceWOW64A",
    "CreateWowService", "ChangeServiceConfigW", "ChangeServiceConfigA")} | {
    ("atsvc", "NetrJobAdd"), ("ITaskSchedulerService", "SchRpcRegisterTask")})
# A WMI method call (Win32_Process.Create is one; so are the registry reads of inventory tools):
# remote execution when a workstation makes it, routine when a management server does.
WORKSTATION_EXEC = frozenset({("IWbemServices", "ExecMethod"),
                              ("IWbemServices", "ExecMethodAsync")})


class LateralConfig(DetectorConfig):
    learning_seconds: float = Field(7 * 86_400.0, ge=0, le=90 * 86_400,
                                    description="event time, from the first event seen, during "
                                                "which admin pairs are only learned")
    window_seconds: float = Field(900.0, ge=10, le=86_400,
                                  description="window in which new admin peers are counted")
    min_new_hosts: int = Field(4, ge=2, le=10_000,
                               description="distinct internal hosts newly reached on admin "
                                           "ports within the window that make an alert")
    forget_after_seconds: float = Field(30 * 86_400.0, ge=3600, le=365 * 86_400,
                                        description="a known pair not seen for this long is "
                                                    "forgotten (then new again)")
    max_known_per_source: int = Field(1024, ge=16, le=1_000_000,
                                      description="known (destination, port) pairs per source "
                                                  "(least recently seen evicted)")
    max_sources: int = Field(100_000, ge=100, le=10_000_000,
                             description="sources tracked; least recently seen evicted")
    refresh_seconds: float = refresh_field()     # on a new host reached
    role_min_hosts: int = Field(2, ge=2, le=10_000, description=(
        "a workstation newly reaching this many hosts on admin ports (two services, or any "
        "but SMB) alerts from day one, learning or not (detectors/roles.py)"))
    workstation_networks: list[str] = Field([], description=(
        "CIDRs of workstations from the inventory; other hosts' roles are learned"))
    server_networks: list[str] = Field([], description=(
        "CIDRs of servers (jump hosts, management servers) from the inventory; wins on overlap"))
    admin_ports: list[Port] = Field(sorted(ADMIN_PORTS), min_length=1, max_length=64,
                                   description="destination TCP ports that count as admin "
                                               "access")


@dataclass
class _NewPeer:
    time: float
    target: str                       # "ip|port"
    event_id: str


@dataclass
class _Source:
    last_seen: float
    known: dict[str, float] = field(default_factory=dict)    # "ip|port" -> last seen (LRU)
    recent: list[_NewPeer] = field(default_factory=list)     # new pairs inside the window
    known_in_window: dict[str, float] = field(default_factory=dict)   # known hosts reached
    reported_at: int = 0              # new hosts at the last alert (re-raise when it doubles)
    raised_at: float = 0.0            # event time of that alert
    # The episode's first new host: the alert id's hour (the window's oldest entry slides)
    first_seen: float | None = None
    executed: list[_NewPeer] = field(default_factory=list)   # remote execution in the window
    executed_reported: int = 0        # targets at the last remote-execution alert
    executed_raised_at: float = 0.0
    executed_first_seen: float | None = None
    executed_call: str = ""           # the remote call named by the last alert


class LateralMovementDetector(Detector):
    name = "lateral_movement"
    version = "6"
    category = "lateral_movement"
    datasets = frozenset({schema.FLOW, schema.DCE_RPC})
    Config = LateralConfig

    def __init__(self, config: LateralConfig | None = None):
        super().__init__(config)
        self._sources = KeyedState(_Source, self.config.max_sources)
        self._started: float | None = None    # event time the learning period began
        self._swept = 0.0
        self._pairs_dropped = 0               # known pairs dropped by the per-source cap
        # raised sources that reached more hosts since (final counts on the timer)
        self._unreported, self._unreported_exec = Unreported(), Unreported()
        c = self.config
        self.roles = RoleBook(c.workstation_networks, c.server_networks, c.max_sources)

    @property
    def evicted(self) -> int:
        return self._sources.evicted + self._pairs_dropped

    def on_event(self, event: dict, event_time: float) -> list[AlertSpec]:
        if self._started is None:
            self._started = event_time
        if part(event, "event").get("dataset") == schema.DCE_RPC:
            return self._remote_call(event, event_time)
        self.roles.observe(event, event_time)
        target = self._admin_target(event)
        if target is None:
            return []
        src = event["source"]["ip"]
        state = self._source(src, event_time)
        known = target in state.known
        self._learn(state, target, event_time)
        learning = event_time - self._started < self.config.learning_seconds
        self._prune(state, event_time)
        host = target.split("|")[0]
        if learning and (known or self.roles.role(src) != "workstation"):
            return []
        if known:
            state.known_in_window[host] = event_time
            return []
        if len(state.recent) < MAX_RECENT:
            state.recent.append(_NewPeer(event_time, target, event["event"]["id"]))
        return self._judge(src, state, event_time)

    def _admin_target(self, event: dict) -> str | None:
        """'ip|port' of an answered internal admin session, else None."""
        if part(event, "network").get("direction") != "internal":
            return None
        if part(event, "network").get("transport") != "tcp":
            return None
        dst = part(event, "destination")
        if dst.get("port") not in self.config.admin_ports or not dst.get("packets"):
            return None
        if part(event, "watchkeeper", "flow").get("conn_state") in NOT_REACHED:
            return None
        return f"{dst.get('ip')}|{dst.get('port')}" if part(event, "source").get("ip") else None

    def _remote_call(self, event: dict, event_time: float) -> list[AlertSpec]:
        call = part(event, "dce_rpc")
        name = (call.get("endpoint"), call.get("operation"))
        if name not in REMOTE_EXEC and name not in WORKSTATION_EXEC:
            return []
        if part(event, "network").get("direction") != "internal":
            return []
        src, host = part(event, "source").get("ip"), part(event, "destination").get("ip")
        if not src or not host or self.roles.configured(src) == "server":
            return []
        if name in WORKSTATION_EXEC and self.roles.role(src) != "workstation":
            return []
        state = self._source(src, event_time)
        target = f"{host}|exec"
        known = target in state.known
        self._learn(state, target, event_time)
        self._prune(state, event_time)
        if known:                       # learned, or already reported in this window
            return []
        state.executed.append(_NewPeer(event_time, host, event["event"]["id"]))
        hosts = len(state.executed)
        state.executed_call = f"{call['endpoint']} {call['operation']}"
        if not due(hosts, state.executed_reported, state.executed_raised_at, event_time,
                   self.config.refresh_seconds):
            if state.executed_reported:
                self._unreported_exec.grew(src, event_time)   # final count on the timer
            return []
        return [self._raise_exec(src, state, event_time)]

    def _raise_exec(self, src: str, state: _Source, now: float) -> AlertSpec:
        state.executed_reported, state.executed_raised_at = len(state.executed), now
        self._unreported_exec.reported(src)
        if state.executed_first_seen is None:
            state.executed_first_seen = state.executed[0].time
        return self._exec_alert(src, state, state.executed_call)

    def _exec_alert(self, src: str, state: _Source, call: str) -> AlertSpec:
        hosts = [p.target for p in state.executed]
        n = len(hosts)
        return AlertSpec(
            detector=self.name, detector_version=self.version, category=self.category,
            rule_id="wk.lateral.remote_execution", rule_name="Remote execution",
            severity=4 if n >= 2 else 3,
            message=f"{src} ran code remotely on {n} internal host{'s' if n > 1 else ''} "
                    f"({call}{', ' + hosts[0] if n == 1 else ''}) "
                    f"within {self.config.window_seconds / 60:g} min",
            rule_name_zh="远程执行",
            message_zh=f"{src} 在 {self.config.window_seconds / 60:g} 分钟内在 {n} 台内网主机上"
                       f"远程执行代码（{call}{'，' + hosts[0] if n == 1 else ''}）",
            entity=src, first_seen=state.executed_first_seen, last_seen=state.executed[-1].time,
            source_ip=src, destination_ip=hosts[0] if n == 1 else None,
            related_ips=sorted(hosts)[:50], evidence=[p.event_id for p in state.executed][:100],
            subscores={"remote_execution": 1.0, "breadth": min(1.0, n / 4)},
            technique_id="T1569.002", technique_name="System Services: Service Execution",
            count=n)

    def _source(self, src: str, event_time: float) -> _Source:
        state = self._sources.touch(src, lambda: _Source(event_time))
        state.last_seen = max(state.last_seen, event_time)
        return state

    def _learn(self, state: _Source, target: str, event_time: float) -> None:
        state.known[target] = max(state.known.pop(target, event_time), event_time)
        self._pairs_dropped += drop_oldest(state.known, self.config.max_known_per_source)

    def _prune(self, state: _Source, now: float) -> None:
        horizon = now - self.config.window_seconds
        if state.recent and state.recent[0].time < horizon:
            state.recent = [p for p in state.recent if p.time >= horizon]
            if not state.recent:
                state.reported_at, state.first_seen = 0, None
        if state.executed and state.executed[0].time < horizon:
            state.executed = [p for p in state.executed if p.time >= horizon]
            if not state.executed:
                state.executed_reported, state.executed_first_seen = 0, None
        state.known_in_window = {h: t for h, t in state.known_in_window.items() if t >= horizon}

    def _judge(self, src: str, state: _Source, now: float) -> list[AlertSpec]:
        hosts = {p.target.split("|")[0] for p in state.recent}
        enough = len(hosts) >= self.config.min_new_hosts or (
            self.roles.role(src) == "workstation"
            and misfit((p.target for p in state.recent), self.config.role_min_hosts))
        if not enough or not due(len(hosts), state.reported_at, state.raised_at, now,
                                 self.config.refresh_seconds):
            if state.reported_at and len(hosts) > state.reported_at:
                self._unreported.grew(src, now)             # its final count on the timer
            return []
        return [self._raise(src, state, hosts, now)]

    def _raise(self, src: str, state: _Source, hosts: set[str], now: float) -> AlertSpec:
        state.reported_at, state.raised_at = len(hosts), now
        self._unreported.reported(src)
        if state.first_seen is None:
            state.first_seen = state.recent[0].time
        return self._alert(src, state, hosts)

    def _final_counts(self, now: float) -> list[AlertSpec]:
        """A spread that reached more hosts after its last raise and then stopped: its final
        count (run before the window's prune)."""
        alerts, every = [], self.config.refresh_seconds
        for src, state in self._unreported.settled_in(self._sources, now, every):
            hosts = {p.target.split("|")[0] for p in state.recent}
            if 0 < state.reported_at < len(hosts):
                alerts.append(self._raise(src, state, hosts, now))
        for src, state in self._unreported_exec.settled_in(self._sources, now, every):
            if 0 < state.executed_reported < len(state.executed):
                alerts.append(self._raise_exec(src, state, now))
        return alerts

    def _alert(self, src: str, state: _Source, hosts: set[str]) -> AlertSpec:
        ports = sorted({int(p.target.split("|")[1]) for p in state.recent})
        services = ", ".join(ADMIN_PORTS.get(p, str(p)) for p in ports)
        familiar = len(set(state.known_in_window) - hosts)
        n, floor = len(hosts), self.config.min_new_hosts
        risky = any(p in (445, 135, 3389, 5985, 5986) for p in ports)
        return AlertSpec(
            detector=self.name, detector_version=self.version, category=self.category,
            rule_id="wk.lateral.new_admin_peers", rule_name="Lateral movement",
            severity=4 if n >= 4 * floor else 3 if risky or n >= 2 * floor else 2,
            message=f"{src} newly reached {n} internal hosts on admin ports ({services}) "
                    f"within {self.config.window_seconds / 60:g} min, "
                    + ("not fitting its role (workstation)" if self.roles.role(src) == "workstation"
                       else "never seen during learning"),
            rule_name_zh="横向移动",
            message_zh=f"{src} 在 {self.config.window_seconds / 60:g} 分钟内新访问了 {n} 台内网主机"
                       f"的管理端口（{services}），"
                       + ("与其角色（工作站）不符" if self.roles.role(src) == "workstation"
                          else "学习期内从未出现"),
            entity=src, first_seen=state.first_seen, last_seen=state.recent[-1].time,
            source_ip=src, destination_ip=next(iter(hosts)) if n == 1 else None,
            related_ips=sorted(hosts)[:50], evidence=[p.event_id for p in state.recent][:100],
            subscores={"new_admin_peers": n / (n + familiar),
                       "breadth": min(1.0, n / (4 * floor))},
            technique_id="T1021", technique_name="Remote Services", count=n)

    def on_timer(self, now: float) -> list[AlertSpec]:
        alerts = self._final_counts(now)
        for state in self._sources.values():
            if state.recent or state.known_in_window or state.executed:
                self._prune(state, now)
        if now - self._swept >= SWEEP_EVERY_S:
            self._swept = now
            self._forget(now)
        return alerts

    def _forget(self, now: float) -> None:
        horizon = now - self.config.forget_after_seconds
        self.roles.forget(horizon)
        for state in self._sources.values():
            state.known = {t: seen for t, seen in state.known.items() if seen >= horizon}
        self._sources.expire(lambda st: not st.known and not st.recent and not st.executed)

    def snapshot(self) -> dict:
        return {"sources": self._sources.snapshot(), "started": self._started,
                "swept": self._swept, "evicted": self.evicted, "servers": self.roles.snapshot(),
                "unreported": self._unreported.snapshot(),
                "unreported_exec": self._unreported_exec.snapshot()}

    def restore(self, state: dict) -> None:
        self._sources.restore(state.get("sources", {}), state.get("evicted", 0))
        self._pairs_dropped = 0
        self._started = state.get("started")
        self._swept = state.get("swept", 0.0)
        self.roles.restore(state.get("servers", {}))
        self._unreported.restore(state.get("unreported"))
        self._unreported_exec.restore(state.get("unreported_exec"))
