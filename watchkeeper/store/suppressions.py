"""Suppression rules (kind `suppressions`): an analyst's "this is not worth an alert" made durable.

A rule matches alerts by detector and/or category, actor (source) and target (destination)
CIDR and site; it carries a required reason, the verdict its alerts are closed with and an
expiry (default 30 days). Creating one closes the stored open alerts it matches (counted);
the alerting stage (alerting/context.py) closes new matching alerts as they pass, reading
the rules through `RuleCache` (a few seconds old at most, so no restart is needed). A closed
alert is still stored and searchable, with `suppressed_by` = the rule id. Every rule write
is audited. The API (api/routes/suppressions.py) and the CLI call these functions.
"""
from __future__ import annotations

import ipaddress
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from watchkeeper import schema, timeutil
from watchkeeper.store.audit import audit_record
from watchkeeper.store.base import Query, Store, StoreError

log = logging.getLogger(__name__)

KIND = "suppressions"
DATASET = "watchkeeper.suppression"
DEFAULT_DAYS = 30
MAX_DAYS = 366
OPEN_STATUSES = ("new", "acknowledged", "investigating", "in_progress")
Verdict = Literal["false_positive", "benign_positive"]
MATCH_FIELDS = ("detector", "category", "source_cidr", "destination_cidr")
EDITABLE = frozenset({"reason", "verdict", "expires_at", *MATCH_FIELDS})


def close_fields(suppressed_by: str, verdict: str, now: float) -> dict:
    """What closing an alert by policy writes (the alert contract: closed + verdict)."""
    return {"status": "closed", "verdict": verdict, "suppressed_by": suppressed_by,
            "closed_at": timeutil.format(now)}


def _network(value: str | None) -> str | None:
    if value is not None:
        return str(ipaddress.ip_network(value, strict=False))
    return value


def _in(ip: str | None, cidr: str) -> bool:
    try:
        return ip is not None and ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)
    except ValueError:
        return False


class SuppressionRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    reason: str = Field(min_length=3, max_length=500)
    verdict: Verdict = "benign_positive"
    detector: str | None = Field(None, min_length=1, max_length=100)
    category: str | None = None
    source_cidr: str | None = None
    destination_cidr: str | None = None
    site: str | None = Field(None, description="the site the rule was made for (None: root)")
    sites: list[str] | None = Field(None, description="site ids covered (None: every site)")
    created_by: str
    created_at: str
    updated_at: str
    expires_at: str
    expired: bool = False
    expired_at: str | None = None

    @field_validator("source_cidr", "destination_cidr")
    @classmethod
    def _cidr(cls, value: str | None) -> str | None:
        return _network(value)

    @field_validator("category")
    @classmethod
    def _category(cls, value: str | None) -> str | None:
        if value is not None and value not in schema.CATEGORIES:
            raise ValueError(f"category must be one of {sorted(schema.CATEGORIES)}")
        return value

    @field_validator("created_at", "updated_at", "expires_at", "expired_at")
    @classmethod
    def _time(cls, value: str | None) -> str | None:
        return None if value is None else timeutil.format(timeutil.parse(value))

    @model_validator(mode="after")
    def _narrow(self) -> SuppressionRule:
        if not any(getattr(self, name) for name in MATCH_FIELDS):
            raise ValueError(f"give at least one of {', '.join(MATCH_FIELDS)}")
        return self

    def active(self, now: float) -> bool:
        return not self.expired and timeutil.parse(self.expires_at) > now

    def matches(self, alert: dict, now: float) -> bool:
        if not self.active(now):
            return False
        info = (alert.get("watchkeeper") or {}).get("alert") or {}
        if self.detector and info.get("detector") != self.detector:
            return False
        if self.category and info.get("category") != self.category:
            return False
        if self.source_cidr and not _in(schema.get(alert, "source.ip"), self.source_cidr):
            return False
        if self.destination_cidr and not _in(schema.get(alert, "destination.ip"),
                                             self.destination_cidr):
            return False
        if self.sites is not None and (alert.get("labels") or {}).get("site") not in self.sites:
            return False
        return True


def fields_from_alert(alert: dict, parts: list[str]) -> dict:
    """Match fields of a rule made from `alert` (closing it as a false/benign positive):
    any of its detector, category, source (actor /32 or /128), destination. ValueError
    names a part the alert does not have."""
    fields: dict[str, str] = {}
    for part in parts:
        if part in ("detector", "category"):
            value = schema.get(alert, f"watchkeeper.alert.{part}")
            if not value:
                raise ValueError(f"the alert has no {part}")
            fields[part] = value
        elif part in ("source", "destination"):
            ip = schema.get(alert, f"{part}.ip")
            if not ip:
                raise ValueError(f"the alert has no {part}.ip")
            fields[f"{part}_cidr"] = str(ipaddress.ip_network(ip))
        else:
            raise ValueError(f"cannot match on {part!r}")
    return fields


def _doc(rule: SuppressionRule) -> dict:
    return {"@timestamp": rule.created_at,
            "event": {"id": rule.id, "kind": "state", "dataset": DATASET},
            **({"labels": {"site": rule.site}} if rule.site else {}),
            "watchkeeper": {"suppression": rule.model_dump()}}


def get_rule(store: Store, rule_id: str) -> SuppressionRule | None:
    found = store.get_by_ids(KIND, [rule_id])
    return SuppressionRule(**found[0]["watchkeeper"]["suppression"]) if found else None


def list_rules(store: Store, scope: list[str] | None = None) -> list[SuppressionRule]:
    """The rules visible from `scope` (a principal's subtree; None = root), oldest first."""
    found = [SuppressionRule(**d["watchkeeper"]["suppression"])
             for d in store.scan(KIND, Query(order="asc"))]
    return [rule for rule in found if visible(rule, scope)]


def visible(rule: SuppressionRule, scope: list[str] | None) -> bool:
    """Tenancy: a rule belongs to its site; one for every site (None) to the root only."""
    return scope is None or (rule.site is not None and rule.site in scope)


def _save(store: Store, rule: SuppressionRule, action: str, actor: str,
          changes: dict) -> SuppressionRule:
    store.bulk_upsert(KIND, [_doc(rule)])
    store.refresh(KIND)
    store.append_audit(audit_record(action, actor, object_kind="suppression",
                                    object_id=rule.id, changes=changes, message=rule.reason))
    return rule


@dataclass
class Created:
    rule: SuppressionRule
    closed: int          # stored open alerts the new rule closed


def create_rule(store: Store, fields: dict, actor: str, now: float,
                sites: list[str] | None = None) -> Created:
    """Store a new rule (expiry default 30 days), then close the open alerts it matches.
    `sites`: the site ids the rule covers (the subtree of fields["site"]; None = all)."""
    stamp = timeutil.format(now)
    fields = {"expires_at": timeutil.format(now + DEFAULT_DAYS * 86_400), **fields}
    rule = SuppressionRule(**fields, id=f"sup-{uuid.uuid4().hex[:16]}", sites=sites,
                           created_by=actor, created_at=stamp, updated_at=stamp)
    _check_expiry(rule, now)
    _save(store, rule, "suppression.create", actor,
          {k: {"from": None, "to": v} for k, v in rule.model_dump().items()
           if v is not None and k in (*EDITABLE, "site")})
    return Created(rule, close_matching(store, rule, actor, now))


def update_rule(store: Store, rule_id: str, changes: dict, actor: str,
                now: float) -> SuppressionRule:
    """Edit reason, verdict, expiry or match fields (KeyError: no such rule)."""
    unknown = set(changes) - EDITABLE
    if unknown:
        raise ValueError(f"cannot change {sorted(unknown)}; changeable: {sorted(EDITABLE)}")
    rule = get_rule(store, rule_id)
    if rule is None:
        raise KeyError(rule_id)
    edited = SuppressionRule(**{**rule.model_dump(), **changes,
                                "updated_at": timeutil.format(now)})
    if "expires_at" in changes:
        _check_expiry(edited, now)
    before, after = rule.model_dump(), edited.model_dump()
    diff = {k: {"from": before[k], "to": after[k]} for k in changes if before[k] != after[k]}
    return _save(store, edited, "suppression.update", actor, diff)


def expire_rule(store: Store, rule_id: str, actor: str, now: float) -> SuppressionRule:
    """Stop a rule matching from now on (kept, with who and when, for the record)."""
    rule = get_rule(store, rule_id)
    if rule is None:
        raise KeyError(rule_id)
    stamp = timeutil.format(now)
    expired = rule.model_copy(update={"expired": True, "expired_at": stamp, "updated_at": stamp})
    return _save(store, expired, "suppression.expire", actor,
                 {"expired": {"from": rule.expired, "to": True}})


def _check_expiry(rule: SuppressionRule, now: float) -> None:
    expires = timeutil.parse(rule.expires_at)
    if not now < expires <= now + MAX_DAYS * 86_400:
        raise ValueError(f"expires_at must be in the future and within {MAX_DAYS} days")


def close_matching(store: Store, rule: SuppressionRule, actor: str, now: float) -> int:
    """Close the stored open alerts `rule` matches (each change audited); how many."""
    query = Query(terms={"watchkeeper.alert.status": list(OPEN_STATUSES)},
                  sites=rule.sites, order="asc")
    matching = [a["event"]["id"] for a in store.scan("alerts", query) if rule.matches(a, now)]
    if not matching:
        return 0
    # updated_at: a person's rule changed stored alerts (the live feed follows it, so an open
    # screen sees them close); closing new alerts in the alerting stage does not stamp it.
    changes = {**close_fields(rule.id, rule.verdict, now), "updated_at": timeutil.format(now)}
    closed = store.update_alerts(matching, changes, actor=actor,
                                 comment=f"suppression {rule.id}: {rule.reason}")
    store.refresh("alerts")
    return closed


class RuleCache:
    """The rules in force, read from the store at most every `ttl_s` seconds; a store
    error keeps the last rules (alerting must not stop because a read failed)."""

    def __init__(self, store: Store, ttl_s: float = 5.0,
                 monotonic: Callable[[], float] = time.monotonic):
        self.store, self.ttl_s, self.monotonic = store, ttl_s, monotonic
        self._rules: list[SuppressionRule] = []
        self._read_at: float | None = None
        self._lock = threading.Lock()

    def __call__(self, now: float) -> list[SuppressionRule]:
        with self._lock:
            if self._read_at is None or self.monotonic() - self._read_at >= self.ttl_s:
                self._reload()
            return [rule for rule in self._rules if rule.active(now)]

    def _reload(self) -> None:
        try:
            self._rules = list_rules(self.store)
        except (StoreError, OSError) as exc:
            log.warning("suppression rules: cannot read the store (%s); keeping %d rules",
                        exc, len(self._rules))
        self._read_at = self.monotonic()
