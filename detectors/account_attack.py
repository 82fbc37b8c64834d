"""One account, many sources: distributed password guessing (T1110.001 from a botnet or a
rotating proxy pool), which stays under every per-source rule of brute_force.

Keyed by `user.name` (the bus re-keys auth events by it, as it re-keys floods by target), per
account within `window_seconds`: >= `min_failures` failed logins (Wazuh's 8) from >= `min_sources`
distinct sources, nearly all failing. A user who mistypes on a laptop, a phone and the VPN fails
from three sources and then logs in. A success for the account while the rule holds raises the
alert again at severity 4: possible compromise, naming the source that got in.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import Field

from detectors.auth_tries import counts_as_try
from detectors.base import Detector, DetectorConfig
from detectors.bruteforce import _auth_outcome
from detectors.kit import KeyedState, Unreported, due, part, refresh_field, text
from watchkeeper import schema
from watchkeeper.documents import AlertSpec


class AccountAttackConfig(DetectorConfig):
    window_seconds: float = Field(900.0, ge=60, le=86_400, description=(
        "event-time window of failed logins per account"))
    min_failures: int = Field(8, ge=3, le=100_000, description=(
        "failed logins against one account that, from enough sources, make an attack"))
    min_sources: int = Field(5, ge=2, le=100_000, description=(
        "distinct sources failing on the account; a user's own devices are two or three"))
    min_failure_ratio: float = Field(0.8, ge=0, le=1, description=(
        "failed share of the account's logins in the window"))
    max_attempts_per_account: int = Field(2_000, ge=50, le=1_000_000,
                                          description="attempts kept per account (oldest drop)")
    refresh_seconds: float = refresh_field()     # a full window's count never doubles
    max_accounts: int = Field(100_000, ge=100, le=10_000_000,
                              description="accounts tracked; least recently seen evicted")


@dataclass
class _Account:
    last_seen: float
    attempts: list[list] = field(default_factory=list)   # [time, source, succeeded, event id]
    counted: dict[str, float] = field(default_factory=dict)   # auth_tries: per connection
    reported_at: int = 0
    raised_at: float = 0.0
    compromised: list[str] = field(default_factory=list)
    alert_first_seen: float | None = None   # the episode's start: the alert id's hour


class AccountAttackDetector(Detector):
    name = "account_attack"
    version = "3"
    category = "brute_force"
    datasets = frozenset({schema.SYSLOG, schema.KERBEROS})
    key_field = "user.name"
    Config = AccountAttackConfig

    def __init__(self, config: AccountAttackConfig | None = None):
        super().__init__(config)
        self._accounts = KeyedState(_Account, self.config.max_accounts)
        self._unreported = Unreported()     # raised accounts that failed more since

    @property
    def evicted(self) -> int:
        return self._accounts.evicted

    def on_event(self, event: dict, event_time: float) -> list[AlertSpec]:
        outcome = _auth_outcome(event)
        user = text(part(event, "user").get("name"))
        src = text(part(event, "source").get("ip"))
        if outcome is None or not user or not src:
            return []
        state = self._accounts.touch(user, lambda: _Account(event_time))
        state.last_seen = max(state.last_seen, event_time)
        _prune(state, event_time - self.config.window_seconds)
        if outcome != "success" and not counts_as_try(state.counted, event, event_time, src):
            return []                # an unknown account's announcement/closing is not a try
        failures, sources = self._failures(state)
        holds = self._holds(state, failures, sources)
        state.attempts.append([event_time, src, outcome == "success", event["event"]["id"]])
        del state.attempts[:-self.config.max_attempts_per_account]
        if outcome == "success":
            if not holds or src in state.compromised:
                return []
            state.compromised.append(src)
            return [self._raise(user, state, event_time)]
        failures, sources = self._failures(state)
        if not due(failures, state.reported_at, state.raised_at, event_time,
                   self.config.refresh_seconds) or not self._holds(state, failures, sources):
            if state.reported_at:
                self._unreported.grew(user, event_time)   # its final count comes on the timer
            return []
        return [self._raise(user, state, event_time)]

    def _raise(self, user: str, state: _Account, now: float) -> AlertSpec:
        state.reported_at, state.raised_at = self._failures(state)[0], now
        self._unreported.reported(user)
        return self._alert(user, state)

    def _final_counts(self, now: float) -> list[AlertSpec]:
        """Guessing that failed more after its last raise and then stopped: its final count."""
        alerts = []
        for user, state in self._unreported.settled_in(self._accounts, now,
                                                       self.config.refresh_seconds):
            failures, sources = self._failures(state)
            if 0 < state.reported_at < failures and self._holds(state, failures, sources):
                alerts.append(self._raise(user, state, now))
        return alerts

    def _failures(self, state: _Account) -> tuple[int, set[str]]:
        failed = [a for a in state.attempts if not a[2]]
        return len(failed), {a[1] for a in failed}

    def _holds(self, state: _Account, failures: int, sources: set[str]) -> bool:
        c = self.config
        return (failures >= c.min_failures and len(sources) >= c.min_sources
                and failures >= c.min_failure_ratio * len(state.attempts))

    def _alert(self, user: str, state: _Account) -> AlertSpec:
        # Kept from the first raise: the oldest attempt slides with the window, and a
        # first-seen time in the next hour would make a second alert of the same attack.
        if state.alert_first_seen is None:
            state.alert_first_seen = state.attempts[0][0]
        failures, sources = self._failures(state)
        message = (f"password guessing against account '{user}' from {len(sources)} sources: "
                   f"{failures} failed logins")
        message_zh = f"账号“{user}”遭到来自 {len(sources)} 个源地址的口令猜测：{failures} 次登录失败"
        evidence = [a[3] for a in state.attempts if not a[2]]
        # Every raise after a compromise still says so: the store keeps the last raise.
        success_from = state.compromised[-1] if state.compromised else None
        if success_from is not None:
            message += f"; then login succeeded from {success_from}: possible compromise"
            message_zh += f"；随后从 {success_from} 登录成功：疑似账号失陷"
            logins = [a[3] for a in state.attempts if a[2] and a[1] == success_from]
            evidence = logins[-1:] + evidence
        return AlertSpec(
            detector=self.name, detector_version=self.version, category=self.category,
            rule_id="wk.brute_force.distributed", rule_name="Password guessing from many sources",
            severity=4 if success_from else 3, message=message, entity=f"user:{user}",
            message_zh=message_zh, rule_name_zh="多源口令猜测",
            first_seen=state.alert_first_seen, last_seen=state.last_seen,
            source_ip=success_from, related_ips=sorted(sources)[:50], evidence=evidence[:100],
            subscores={"sources": min(1.0, len(sources) / (4 * self.config.min_sources)),
                       "attempts": min(1.0, failures / (5 * self.config.min_failures))},
            technique_id="T1110.001", technique_name="Password Guessing", count=failures)

    def on_timer(self, now: float) -> list[AlertSpec]:
        alerts = self._final_counts(now)        # before pruning: the counts as they stopped
        horizon = now - self.config.window_seconds
        self._accounts.expire(lambda s: s.last_seen < horizon)
        for state in self._accounts.values():
            _prune(state, horizon)
        return alerts

    def snapshot(self) -> dict:
        return {"accounts": self._accounts.snapshot(), "evicted": self.evicted,
                "unreported": self._unreported.snapshot()}

    def restore(self, state: dict) -> None:
        self._accounts.restore(state.get("accounts", {}), state.get("evicted", 0))
        self._unreported.restore(state.get("unreported"))


def _prune(state: _Account, horizon: float) -> None:
    stale = 0
    while stale < len(state.attempts) and state.attempts[stale][0] < horizon:
        stale += 1
    del state.attempts[:stale]
    state.counted = {k: v for k, v in state.counted.items() if v >= horizon}
    if not state.attempts:
        state.reported_at, state.compromised, state.alert_first_seen = 0, [], None
