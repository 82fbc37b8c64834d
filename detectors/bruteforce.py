"""Password guessing and spraying, from authentication logs and from flow shape.

Auth logs (sshd, PAM and any parser that sets event.category authentication + event.outcome)
and Kerberos logins seen on the wire (AS exchanges: watchkeeper.kerberos, from the capture path
or Zeek's kerberos.log), per source within `auth_window_seconds`:
- guessing: >= `min_failures` failures against one account (T1110), or a burst of
  >= `burst_failures` failures over any accounts within `burst_window_seconds`, nearly all
  failing (Wazuh's stock sshd rule: 8 in 120 s), so a fast guesser is named within 8 tries;
- spraying: >= `min_accounts` accounts, few tries each, almost all failing (T1110.003);
- a success while either holds re-raises the alert at severity 4: possible compromise.
Flow shape, per source|server|port on an authentication port: >= `min_sessions` short sessions of
similar size (client and server bytes) within `flow_window_seconds`. Interactive logins, file
copies and application traffic vary in size and last longer; failed logins repeat one exchange.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from detectors.auth_tries import counts_as_try
from detectors.base import Detector
from detectors.bruteforce_config import AUTH_PORTS, BruteForceConfig
from detectors.kit import KeyedState, Unreported, drop_oldest, due, part, text
from watchkeeper import schema
from watchkeeper.documents import AlertSpec
from watchkeeper.networks import InternalNetworks

__all__ = ["AUTH_PORTS", "BruteForceConfig", "BruteForceDetector"]

SSHD_PROGRAMS = frozenset({"sshd", "sshd-session", "sshd-auth"})
AUTH_DATASETS = frozenset({schema.SYSLOG, schema.KERBEROS})     # one login try per event
# A session that exchanged payload after a full handshake (Zeek conn_state).
ESTABLISHED_TCP = frozenset({"S1", "S2", "S3", "SF", "RSTO", "RSTR"})
# Key offering is how publickey auth works; "none" is the protocol's opening probe.
NOT_GUESSES = frozenset({"publickey", "none"})
INTERNAL_DIRECTIONS = frozenset({"internal", "outbound"})
SIZE_SLACK = 32      # bytes: tiny exchanges (FTP "USER x") differ by a few bytes per name


@dataclass
class _Auth:
    last_seen: float
    internal: bool = False
    attempts: list[list] = field(default_factory=list)   # [time, user, succeeded, event id]
    failures_by_user: dict[str, int] = field(default_factory=dict)
    successes: int = 0
    counted: dict[str, float] = field(default_factory=dict)   # invalid-user "port|user" seen
    reported_at: int = 0
    raised_at: float = 0.0        # event time of the last alert
    compromised: list[str] = field(default_factory=list)
    alert_first_seen: float | None = None


@dataclass
class _Pair:
    last_seen: float
    internal: bool = False
    sessions: list[list] = field(default_factory=list)   # [time, orig, resp, login-like, id]
    reported_at: int = 0
    raised_at: float = 0.0        # event time of the last alert
    alert_first_seen: float | None = None
    escalated: bool = False       # a long session after the alert was raised (once)


@dataclass
class _Verdict:
    kind: str                 # "guessing" | "spraying"
    failures: int
    accounts: int
    top_user: str


class BruteForceDetector(Detector):
    name = "brute_force"
    version = "3"
    category = "brute_force"
    datasets = frozenset({schema.FLOW, schema.SYSLOG, schema.KERBEROS})
    Config = BruteForceConfig

    def __init__(self, config: BruteForceConfig | None = None):
        super().__init__(config)
        self._auth = KeyedState(_Auth, self.config.max_keys)     # by source
        self._pairs = KeyedState(_Pair, self.config.max_keys)    # by source|server|port
        self._networks = InternalNetworks(self.config.internal_networks)
        self._events_dropped = 0       # attempts and sessions dropped by the per-key cap
        self._unreported = Unreported()   # sources raised for guessing that failed more since

    @property
    def evicted(self) -> int:
        return self._auth.evicted + self._pairs.evicted + self._events_dropped

    def on_event(self, event: dict, event_time: float) -> list[AlertSpec]:
        if part(event, "event").get("dataset") in AUTH_DATASETS:
            return self._on_auth(event, event_time)
        return self._on_flow(event, event_time)

    # --- auth logs -------------------------------------------------------------------------

    def _on_auth(self, event: dict, t: float) -> list[AlertSpec]:
        outcome = _auth_outcome(event)
        if outcome is None:
            return []
        src, user = event["source"]["ip"], part(event, "user").get("name") or "?"
        state = self._touch(self._auth, src, _Auth, t)
        state.internal = self._is_internal(event)
        _prune_auth(state, t - self.config.auth_window_seconds)
        if outcome == "success":
            return self._on_success(src, state, user, t, event["event"]["id"])
        if not counts_as_try(state.counted, event, t):
            return []
        state.attempts.append([t, user, False, event["event"]["id"]])
        state.failures_by_user[user] = state.failures_by_user.get(user, 0) + 1
        self._cap_auth(state)
        verdict = self._verdict(state, t)
        if verdict is None or not self._due(verdict.failures, state, t):
            if state.reported_at:
                self._unreported.grew(src, t)       # its final count comes on the timer
            return []
        return [self._raise_auth(src, state, verdict, t)]

    def _raise_auth(self, src: str, state: _Auth, verdict: _Verdict, t: float) -> AlertSpec:
        state.reported_at, state.raised_at = verdict.failures, t
        self._unreported.reported(src)
        return self._auth_alert(src, state, verdict, None)

    def _final_counts(self, now: float) -> list[AlertSpec]:
        """Guessing that failed more after its last raise and then stopped: its final count,
        judged as of its last try (a burst's short window has passed by now)."""
        alerts = []
        for src, state in self._unreported.settled_in(self._auth, now,
                                                      self.config.refresh_seconds):
            verdict = self._verdict(state, state.last_seen)
            if verdict is not None and 0 < state.reported_at < verdict.failures:
                alerts.append(self._raise_auth(src, state, verdict, now))
        return alerts

    def _on_success(self, src: str, state: _Auth, user: str, t: float, event_id: str):
        verdict = self._verdict(state, t)        # judged on the failures before this success
        state.successes += 1
        state.attempts.append([t, user, True, event_id])
        self._cap_auth(state)
        if verdict is None or user in state.compromised:
            return []
        state.compromised.append(user)
        state.reported_at, state.raised_at = verdict.failures, t
        self._unreported.reported(src)
        return [self._auth_alert(src, state, verdict, (user, event_id))]

    def _verdict(self, state: _Auth, now: float) -> _Verdict | None:
        c = self.config
        failures = sum(state.failures_by_user.values())
        if not failures:
            return None
        top_user = max(state.failures_by_user, key=state.failures_by_user.__getitem__)
        accounts = len(state.failures_by_user)
        if state.failures_by_user[top_user] >= c.min_failures:
            return _Verdict("guessing", failures, accounts, top_user)
        ratio = failures / (failures + state.successes)
        if (accounts >= c.min_accounts and failures / accounts <= c.max_tries_per_account
                and ratio >= c.min_failure_ratio):
            return _Verdict("spraying", failures, accounts, top_user)
        # The burst: many failures in a short window, almost none succeeding (an office NAT
        # where each user mistypes once and then logs in is half successes).
        recent = [a[2] for a in state.attempts if a[0] >= now - c.burst_window_seconds]
        failed = recent.count(False)
        if failed >= c.burst_failures and failed / len(recent) >= c.min_failure_ratio:
            return _Verdict("guessing", failures, accounts, top_user)
        return None

    def _auth_alert(self, src: str, state: _Auth, v: _Verdict, success) -> AlertSpec:
        if state.alert_first_seen is None:
            state.alert_first_seen = state.attempts[0][0]
        if success is None and state.compromised:      # a later raise still says so
            success = _success_of(state, state.compromised[-1])
        spraying = v.kind == "spraying"
        what = (f"password spraying from {src}: {v.failures} failed logins over {v.accounts} "
                f"accounts" if spraying else f"password guessing from {src}: {v.failures} failed "
                f"logins, {state.failures_by_user[v.top_user]} for '{v.top_user}'")
        what_zh = (f"来自 {src} 的口令喷洒：{v.accounts} 个账号共 {v.failures} 次登录失败"
                   if spraying else f"来自 {src} 的口令猜测：{v.failures} 次登录失败，其中"
                   f"账号“{v.top_user}” {state.failures_by_user[v.top_user]} 次")
        failed_ids = [a[3] for a in state.attempts if not a[2]]
        severity = 3 if spraying or state.internal else 2
        if success is not None:
            what += f"; then login succeeded for '{success[0]}': possible compromise"
            what_zh += f"；随后账号“{success[0]}”登录成功：疑似账号失陷"
            severity = 4
            failed_ids = [success[1], *failed_ids] if success[1] else failed_ids
        subscores = {"attempts": min(1.0, v.failures / (5 * self.config.min_failures)),
                     "failure_ratio": v.failures / (v.failures + state.successes)}
        if spraying:
            subscores["accounts"] = min(1.0, v.accounts / (4 * self.config.min_accounts))
        return AlertSpec(
            detector=self.name, detector_version=self.version, category=self.category,
            rule_id=f"wk.brute_force.{v.kind}", rule_name=f"Password {v.kind}",
            severity=severity, message=what, entity=src, first_seen=state.alert_first_seen,
            message_zh=what_zh, rule_name_zh="口令喷洒" if spraying else "口令暴力破解",
            last_seen=state.last_seen, source_ip=src, related_ips=[src],
            evidence=failed_ids[:100], subscores=subscores,
            technique_id="T1110.003" if spraying else "T1110",
            technique_name="Password Spraying" if spraying else "Brute Force", count=v.failures)

    # --- flow shape ------------------------------------------------------------------------

    def _on_flow(self, event: dict, t: float) -> list[AlertSpec]:
        session = _session(event, self.config)
        if session is None:
            return []
        src, dst = event["source"]["ip"], event["destination"]
        key = f"{src}|{dst['ip']}|{dst['port']}"
        pair = self._touch(self._pairs, key, _Pair, t)
        pair.internal = self._is_internal(event)
        _prune_sessions(pair, t - self.config.flow_window_seconds)
        pair.sessions.append([t, *session, event["event"]["id"]])
        if len(pair.sessions) > self.config.max_events_per_key:
            del pair.sessions[0]
            self._events_dropped += 1
        if not session[2]:
            return self._session_after_guessing(key, pair, event)
        similar = [s for s in pair.sessions if s[3] and self._alike(s, session)]
        share = len(similar) / len(pair.sessions)
        if (len(similar) < self.config.min_sessions or share < self.config.min_similar_share
                or not self._due(len(similar), pair, t)):
            return []
        pair.reported_at, pair.raised_at = len(similar), t
        if pair.alert_first_seen is None:
            pair.alert_first_seen = similar[0][0]
        return [self._flow_alert(key, pair, similar, share)]

    def _due(self, count: int, state: _Auth | _Pair, t: float) -> bool:
        # A long attack fills the window: its count levels off and never doubles again.
        return due(count, state.reported_at, state.raised_at, t, self.config.refresh_seconds)

    def _session_after_guessing(self, key: str, pair: _Pair, event: dict) -> list[AlertSpec]:
        """A long or large session after the guessing alert: the guess that worked."""
        if not pair.reported_at or pair.escalated:
            return []
        pair.escalated, similar = True, [s for s in pair.sessions if s[3]]
        alert = self._flow_alert(key, pair, similar, len(similar) / len(pair.sessions))
        alert.severity, alert.evidence = 4, [event["event"]["id"], *alert.evidence][:100]
        alert.message += "; then a longer session: possible successful login"
        alert.message_zh = f"{alert.message_zh}；随后出现一次较长会话：疑似登录成功"
        return [alert]

    def _alike(self, s: list, session: tuple) -> bool:
        tol = self.config.size_tolerance
        return all(abs(a - b) <= tol * max(a, b) + SIZE_SLACK
                   for a, b in ((s[1], session[0]), (s[2], session[1])))

    def _flow_alert(self, key: str, pair: _Pair, similar: list, share: float) -> AlertSpec:
        src, dst, port = key.split("|")
        n, c = len(similar), self.config
        span = max(1.0, similar[-1][0] - similar[0][0])
        return AlertSpec(
            detector=self.name, detector_version=self.version, category=self.category,
            rule_id="wk.brute_force.flow", rule_name="Login brute force (flow shape)",
            severity=3 if pair.internal else 2,
            message=f"{n} short sessions of similar size (client ~{similar[-1][1]} B, server "
                    f"~{similar[-1][2]} B) from {src} to {dst} port {port} in {span:.0f} s: "
                    f"repeated login attempts",
            rule_name_zh="登录暴力破解（流特征）",
            message_zh=f"{src} 在 {span:.0f} 秒内向 {dst} 端口 {port} 发起 {n} 个大小相近的短会话"
                       f"（客户端约 {similar[-1][1]} 字节，服务端约 {similar[-1][2]} 字节）："
                       f"反复尝试登录",
            entity=key, first_seen=pair.alert_first_seen, last_seen=pair.last_seen,
            source_ip=src, destination_ip=dst, related_ips=[src, dst],
            evidence=[s[4] for s in similar][:100],
            subscores={"attempts": min(1.0, n / (3 * c.min_sessions)), "regularity": share},
            technique_id="T1110", technique_name="Brute Force", count=n)

    # --- state -----------------------------------------------------------------------------

    def _is_internal(self, event: dict) -> bool:
        direction = part(event, "network").get("direction")
        if direction is not None:
            return direction in INTERNAL_DIRECTIONS
        return self._networks.is_internal(event["source"]["ip"])

    def _cap_auth(self, state: _Auth) -> None:
        limit = self.config.max_events_per_key
        if len(state.attempts) > limit:
            _forget(state, len(state.attempts) - limit)
            self._events_dropped += 1
        drop_oldest(state.counted, limit)

    @staticmethod
    def _touch(table: KeyedState, key: str, kind: type, t: float):
        state = table.touch(key, lambda: kind(t))
        state.last_seen = max(state.last_seen, t)
        return state

    def on_timer(self, now: float) -> list[AlertSpec]:
        alerts = self._final_counts(now)        # before pruning: the counts as they stopped
        for table, window, prune in ((self._auth, self.config.auth_window_seconds, _prune_auth),
                                     (self._pairs, self.config.flow_window_seconds,
                                      _prune_sessions)):
            table.expire(lambda st, horizon=now - window: st.last_seen < horizon)
            for state in table.values():
                prune(state, now - window)
        return alerts

    def snapshot(self) -> dict:
        return {"auth": self._auth.snapshot(), "pairs": self._pairs.snapshot(),
                "evicted": self.evicted, "unreported": self._unreported.snapshot()}

    def restore(self, state: dict) -> None:
        self._auth.restore(state.get("auth", {}), state.get("evicted", 0))
        self._pairs.restore(state.get("pairs", {}))
        self._unreported.restore(state.get("unreported"))
        self._events_dropped = 0


def _success_of(state: _Auth, user: str) -> tuple[str, str | None]:
    """The user and event id of the login that followed the guessing (if still in the window)."""
    ids = [a[3] for a in state.attempts if a[2] and a[1] == user]
    return user, ids[-1] if ids else None


def _auth_outcome(event: dict) -> str | None:
    """'success' / 'failure' of one login try, or None for lines that repeat or summarise one."""
    ev = part(event, "event")
    if ("authentication" not in (ev.get("category") or []) or not part(event, "source").get("ip")
            or ev.get("outcome") not in ("success", "failure")):
        return None
    module, action = ev.get("module"), ev.get("action")
    if module == "sshd":
        if action not in ("ssh_login", "invalid_user"):
            return None          # pre-auth disconnects, max-tries notices: follow-up lines
        method = text(part(event, "watchkeeper", "syslog", "sshd").get("method"))
        if method in NOT_GUESSES:
            return None
    elif module == "pam":
        pam = part(event, "watchkeeper", "syslog", "pam")
        # sshd logs each try itself; "PAM n more failures" summarises tries already logged.
        if part(event, "process").get("name") in SSHD_PROGRAMS or "count" in pam:
            return None
    return ev["outcome"]


def _session(event: dict, c: BruteForceConfig) -> tuple[int, int, bool] | None:
    """(client bytes, server bytes, login-like) of an established session to a login service."""
    dst, net = part(event, "destination"), part(event, "network")
    ssh = dst.get("port") == 22 or net.get("protocol") == "ssh"
    if net.get("transport") != "tcp" or not part(event, "source").get("ip") or not (
            dst.get("port") in c.ports or net.get("protocol") in c.protocols):
        return None
    flow = part(event, "watchkeeper", "flow")
    orig, resp = flow.get("orig_bytes") or 0, flow.get("resp_bytes") or 0
    if flow.get("conn_state") not in ESTABLISHED_TCP or orig <= 0 or not flow.get("final", True):
        return None
    seconds = part(event, "event").get("duration", 0) / 1e9
    login_like = (seconds <= c.max_session_seconds and max(orig, resp) <= c.max_session_bytes
                  and (not ssh or orig >= c.ssh_min_client_bytes))
    return orig, resp, login_like


def _forget(state: _Auth, stale: int) -> None:
    """Drop the `stale` oldest attempts, keeping the per-account counts in step."""
    for _, user, succeeded, _ in state.attempts[:stale]:
        if succeeded:
            state.successes -= 1
        elif state.failures_by_user.get(user, 0) > 1:
            state.failures_by_user[user] -= 1
        else:
            state.failures_by_user.pop(user, None)
    del state.attempts[:stale]


def _prune_auth(state: _Auth, horizon: float) -> None:
    stale = 0
    while stale < len(state.attempts) and state.attempts[stale][0] < horizon:
        stale += 1
    _forget(state, stale)
    state.counted = {k: v for k, v in state.counted.items() if v >= horizon}
    if not state.attempts:
        state.reported_at, state.compromised, state.alert_first_seen = 0, [], None


def _prune_sessions(pair: _Pair, horizon: float) -> None:
    stale = 0
    while stale < len(pair.sessions) and pair.sessions[stale][0] < horizon:
        stale += 1
    del pair.sessions[:stale]
    if not pair.sessions:
        pair.reported_at, pair.alert_first_seen, pair.escalated = 0, None, False
