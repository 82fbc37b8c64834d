"""Tenancy in one place: a store seen through a principal's site subtree.

A user or key bound to a site sees documents whose `labels.site` is that site or one below it
in the inventory tree (region → city → county), never a sibling's or a parent's. Documents
without a site belong to the root: only principals bound to the root (`/`) see them. Every API
read goes through `ScopedStore`, so a handler cannot forget the filter: searches, aggregations
and id lookups (a document outside the subtree is simply not found → 404).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

from watchkeeper.identity import ROOT
from watchkeeper.store.base import Bucket, Group, Modified, Page, Query, Store

# Kinds that carry tenant data; the others (audit, identity, state) are not reachable here.
TENANT_KINDS = frozenset({"events", "alerts", "incidents", "reports", "comments", "runs",
                          "sites", "assets"})


def subtree(sites: dict, site: str) -> list[str] | None:
    """Site ids visible from `site` (itself and every descendant); None = everything (root).

    `sites` maps id -> parent id (None for a top-level site)."""
    if site == ROOT:
        return None
    children: dict[str | None, list[str]] = {}
    for sid, parent in sites.items():
        children.setdefault(parent, []).append(sid)
    seen, todo = [], [site]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.append(current)
        todo += children.get(current, [])
    return sorted(seen)


class ScopedStore:
    """The read (and alert update) side of a Store, limited to a list of site ids."""

    def __init__(self, store: Store, sites: list[str] | None):
        self.store = store
        self.sites = sites
        self.url = getattr(store, "url", "")

    def _scoped(self, kind: str, query: Query) -> Query:
        if kind not in TENANT_KINDS:
            raise ValueError(f"{kind!r} documents are not readable through the tenant scope")
        return query if self.sites is None else replace(query, sites=list(self.sites))

    def visible(self, doc: dict) -> bool:
        if self.sites is None:
            return True
        return ((doc.get("labels") or {}).get("site")) in self.sites

    def search(self, kind: str, query: Query) -> Page:
        return self.store.search(kind, self._scoped(kind, query))

    def scan(self, kind: str, query: Query, limit: int | None = None) -> Iterator[dict]:
        return self.store.scan(kind, self._scoped(kind, query), limit)

    def terms(self, kind: str, field_name: str, query: Query, size: int = 10) -> list[Bucket]:
        return self.store.terms(kind, field_name, self._scoped(kind, query), size)

    def date_histogram(self, kind: str, interval_seconds: int, query: Query) -> list[Bucket]:
        return self.store.date_histogram(kind, interval_seconds, self._scoped(kind, query))

    def group_counts(self, kind: str, fields: list[str], query: Query,
                     interval_seconds: int | None = None,
                     sum_field: str | None = None) -> list[Group]:
        return self.store.group_counts(kind, fields, self._scoped(kind, query), interval_seconds,
                                       sum_field)

    def summarise(self, kind: str, query: Query, terms: dict[str, tuple[str, int]],
                  series: dict[str, tuple[str, int]]) -> dict[str, list]:
        return self.store.summarise(kind, self._scoped(kind, query), terms, series)

    def changes_after(self, kind: str, time_field: str, after: tuple[str, str] | None,
                      until: float, query: Query) -> list[dict]:
        return self.store.changes_after(kind, time_field, after, until, self._scoped(kind, query))

    def get_by_ids(self, kind: str, ids: list[str]) -> list[dict]:
        self._scoped(kind, Query())
        return [d for d in self.store.get_by_ids(kind, ids) if self.visible(d)]

    def update_alert(self, alert_id: str, changes: dict, actor: str, comment: str = "") -> dict:
        if not self.get_by_ids("alerts", [alert_id]):
            raise KeyError(alert_id)          # outside the subtree: as if it did not exist
        return self.store.update_alert(alert_id, changes, actor=actor, comment=comment)

    def modify_alert(self, alert_id: str, decide: Callable[[dict], dict]) -> tuple[dict, dict]:
        return self.store.modify_alert(alert_id, self._if_visible(decide))

    def modify_alerts(self, alert_ids: list[str], decide: Callable[[dict], dict]
                      ) -> list[Modified]:
        return self.store.modify_alerts(alert_ids, self._if_visible(decide))

    def _if_visible(self, decide: Callable[[dict], dict]) -> Callable[[dict], dict]:
        def decide_if_visible(alert: dict) -> dict:
            if not self.visible(alert):       # outside the subtree: as if it did not exist
                raise KeyError(alert["event"]["id"])
            return decide(alert)
        return decide_if_visible

    def insert_new(self, kind: str, doc: dict) -> bool:
        """Tenant documents only inside the subtree (a comment carries its object's site)."""
        self._scoped(kind, Query())
        if not self.visible(doc):
            raise KeyError(doc["event"]["id"])
        return self.store.insert_new(kind, doc)

    def append_audit(self, record: dict) -> dict:
        return self.store.append_audit(record)

    def refresh(self, kind: str | None = None) -> None:
        self.store.refresh(kind)
