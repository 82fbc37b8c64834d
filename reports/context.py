"""What every section builder reads: the tenant-scoped store, the period and the settings.

All tenant data is read through `ScopedStore` (the report's site subtree), so a county's
report can count only the county's alerts. Counting is done by the store (`search(...).total`,
`terms`, `date_histogram`), never by fetching alerts and looping over them in Python.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from reports.periods import Period
from reports.settings import ReportSettings
from watchkeeper.assets import Inventory
from watchkeeper.store.base import Bucket, Query, Store
from watchkeeper.store.scoped import ScopedStore

OPEN_ALERT_STATUSES = ["new", "acknowledged", "investigating"]
# Words builders put into figures (the rest of the wording is in clauses.yaml).
WORDS = {"no_data": {"zh-CN": "无数据", "en": "not available"},
         "not_reported": {"zh-CN": "未上报", "en": "not reported"},
         "not_applicable": {"zh-CN": "不适用", "en": "not applicable"},
         "unregistered": {"zh-CN": "未登记", "en": "not in the inventory"},
         "indefinite": {"zh-CN": "长期", "en": "no expiry"},
         "all_sites": {"zh-CN": "全部", "en": "all sites"}}
OPEN_INCIDENT_STATUSES = ["new", "acknowledged", "investigating", "contained"]
HIGH_SEVERITIES = [3, 4]


@dataclass
class ReportContext:
    store: Store                 # unscoped: the audit trail and state are deployment-wide
    scoped: ScopedStore
    site: str | None             # None = the whole deployment
    period: Period
    now: float
    settings: ReportSettings
    inventory: Inventory = field(default_factory=Inventory)
    incident_id: str | None = None
    lang: str = "zh-CN"
    configured_retention_months: int | None = None     # the deployment's deletion setting
    results: list = field(default_factory=list)        # sections built so far, in order

    @property
    def previous(self) -> Period:
        return self.period.previous()

    def query(self, period: Period | None = None, **kwargs) -> Query:
        span = period or self.period
        return Query(since=span.start, until=span.end, **kwargs)

    def total(self, kind: str, query: Query) -> int:
        return self.scoped.search(kind, replace(query, limit=1)).total

    def count(self, kind: str, period: Period | None = None, **terms) -> int:
        """Documents of `kind` in the period matching `terms` (dotted names with __ for .)."""
        return self.total(kind, self.query(period, terms=_terms(terms)))

    def terms(self, kind: str, field_name: str, size: int = 10, period: Period | None = None,
              **terms) -> list[Bucket]:
        return self.scoped.terms(kind, field_name, self.query(period, terms=_terms(terms)),
                                 size)

    def site_name(self, site_id: str | None) -> str:
        if not site_id:
            return self.word("all_sites")
        found = self.inventory.sites.get(site_id)
        return found.name if found else site_id

    def word(self, key: str) -> str:
        return WORDS[key].get(self.lang) or WORDS[key]["zh-CN"]

    def scope_sites(self) -> list[str]:
        """Inventory sites inside the report's subtree (all of them for the root)."""
        if self.scoped.sites is None:
            return sorted(self.inventory.sites)
        return [s for s in self.scoped.sites if s in self.inventory.sites]


def _terms(terms: dict) -> dict[str, list]:
    return {name.replace("__", "."): list(v) if isinstance(v, (list, tuple)) else [v]
            for name, v in terms.items()}


def get(doc: dict, dotted: str, default=None):
    """A dotted field of a document that may not have it (fields still being built elsewhere
    are read defensively: a missing one is shown as 无数据, never a crash)."""
    node = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node
