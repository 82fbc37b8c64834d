"""The alerting policy applied to every alert once (alerting/worker.py runs it on wk.alerts.raw).

Detectors and Suricata only say what they saw. Here the alert learns which site, department
and MLPS level it touches (the inventory), its risk score moves with the criticality of what
is at stake, an allowlisted actor's alert or one a suppression rule covers is kept but closed
(verdict, `suppressed_by`: "allowlist" or the rule id), and the others get their incident id.
The same allowlist is applied to alerts already stored by `watchkeeper allowlist apply`.
"""
from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from alerting.evidence import stamp
from alerting.correlate import incident_id
from watchkeeper import schema
from watchkeeper.assets import AssetInfo, Inventory
from watchkeeper.store.suppressions import SuppressionRule, close_fields

ALLOWLIST = "allowlist"       # suppressed_by of an alert the configured allowlist covers


class AllowRule(BaseModel):
    """Alerts whose actor is in `cidr` (and, if given, from `detector` / of `category`)."""
    model_config = ConfigDict(extra="forbid", frozen=True)
    reason: str = Field(min_length=3, max_length=500, description="why: kept in the alert")
    cidr: str | None = Field(None, description="actor host or network (source.ip)")
    detector: str | None = None
    category: str | None = None

    @field_validator("cidr")
    @classmethod
    def _network(cls, value: str | None) -> str | None:
        if value is not None:
            ipaddress.ip_network(value, strict=False)
        return value

    def matches(self, alert: dict) -> bool:
        info = alert.get("watchkeeper", {}).get("alert", {})
        if self.detector and info.get("detector") != self.detector:
            return False
        if self.category and info.get("category") != self.category:
            return False
        if self.cidr:
            actor = schema.get(alert, "source.ip")
            if not actor or ipaddress.ip_address(actor) not in \
                    ipaddress.ip_network(self.cidr, strict=False):
                return False
        return bool(self.cidr or self.detector or self.category)


class AlertContext:
    """`suppressions` returns the rules in force (a RuleCache reading the store)."""

    def __init__(self, inventory: Inventory | None = None,
                 allowlist: list[AllowRule] | None = None,
                 suppressions: Callable[[float], list[SuppressionRule]] | None = None,
                 clock: Callable[[], float] = time.time,
                 evidence_gaps: Callable[[float], list] | None = None):
        self.inventory = inventory or Inventory()
        self.allowlist = allowlist or []
        self.suppressions = suppressions or (lambda now: [])
        self.clock = clock
        self.evidence_gaps = evidence_gaps    # alerting/evidence.py: drops, silent collectors

    def apply(self, alert: dict) -> dict:
        source = self.inventory.lookup(schema.get(alert, "source.ip"))
        target = self.inventory.lookup(schema.get(alert, "destination.ip"))
        if source or target:
            alert["watchkeeper"]["asset"] = {
                k: v.as_ecs() for k, v in (("source", source), ("destination", target)) if v}
            alert.setdefault("labels", {})["site"] = (target or source).asset.site
        alert["event"]["risk_score"] = adjusted_risk(alert["event"]["risk_score"], source, target)
        info = alert["watchkeeper"]["alert"]
        now = self.clock()
        if self.evidence_gaps is not None:
            stamp(alert, self.evidence_gaps(now))
        allowed = next((rule for rule in self.allowlist if rule.matches(alert)), None)
        if allowed is not None:
            info.update(close_fields(ALLOWLIST, "benign_positive", now),
                        suppressed_reason=allowed.reason)
            return alert
        rule = next((r for r in self.suppressions(now) if r.matches(alert, now)), None)
        if rule is not None:
            info.update(close_fields(rule.id, rule.verdict, now), suppressed_reason=rule.reason)
            return alert
        info["incident_id"] = incident_id(alert)   # fixed at birth: see correlate.py
        return alert


def adjusted_risk(base: float, source: AssetInfo | None, target: AssetInfo | None) -> float:
    """The most critical asset involved scales the detector's risk: criticality 3 (the
    default, or no inventory entry) leaves it unchanged; 5 raises it by 20 %, 1 lowers it by
    20 %; a system at MLPS level 3 or above adds 5 points."""
    involved = [a.asset for a in (source, target) if a]
    if not involved:
        return base
    criticality = max(a.criticality for a in involved)
    bonus = 5 if max(a.mlps_level for a in involved) >= 3 else 0
    return round(min(100.0, max(0.0, base * (1 + 0.1 * (criticality - 3)) + bonus)), 1)
