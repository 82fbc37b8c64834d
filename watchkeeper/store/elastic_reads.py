"""Elasticsearch store, the read side: searches with cursors, terms, histograms, composite
group counts (with sums) and the live feed's changes (watchkeeper/store/elastic.py writes)."""
from __future__ import annotations

from dataclasses import replace

from elasticsearch import ApiError, TransportError

from watchkeeper import timeutil
from watchkeeper.store.base import (MAX_GROUPS, MISSING_SORT_VALUE, Bucket, Group, Page, Query,
                                    StoreError, StoreUnavailable, TooManyGroups,
                                    check_change_field, check_group_fields, check_kind,
                                    cursor_position, group_order, page_cursor)
from watchkeeper.store.elastic_groups import flatten, nestable, nested_aggs
from watchkeeper.store.mappings import IP_FIELDS


def _millis(timestamp: str) -> int:
    return round(timeutil.parse(timestamp) * 1_000_000) // 1000   # ES keeps milliseconds


def _plain(value):
    """Composite keys of long fields come back as ints; keep them ints, like SQLite does."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _group(bucket: dict, width: int, interval_seconds: int | None,
           sum_field: str | None) -> Group:
    key = bucket["key"]
    group = Group(tuple(_plain(key[f"f{i}"]) for i in range(width)), bucket["doc_count"],
                  key["t"] // 1000 if interval_seconds else None)
    if sum_field:
        group.total, group.summed = _plain(bucket["s"]["value"]), bucket["n"]["value"]
    return group


def _cause(exc: ApiError) -> str:
    """Why a search failed (e.g. too_many_buckets_exception), which the error's own text
    leaves out: the caller may answer another way."""
    error = exc.body.get("error") if isinstance(exc.body, dict) else None
    cause = error.get("caused_by") if isinstance(error, dict) else None
    return f" ({cause.get('type')})" if isinstance(cause, dict) and cause.get("type") else ""


def _terms_agg(field_name: str, size: int) -> dict:
    """Most frequent first, ties by key; address fields hash the matching documents' values
    (mappings.IP_FIELDS) rather than rebuild global ordinals after every refresh."""
    return {"terms": {"field": field_name, "size": size,
                      "order": [{"_count": "desc"}, {"_key": "asc"}],
                      **({"execution_hint": "map"} if field_name in IP_FIELDS else {})}}


def _iso(epoch: float) -> str:
    return timeutil.format(epoch)


class ElasticReads:
    """Reads of ElasticStore (needs `es`, `url`, `index_for`)."""

    def _search(self, kind: str, **body) -> dict:
        try:
            return self.es.search(index=self.index_for(kind), ignore_unavailable=True,
                                  allow_no_indices=True, **body)
        except TransportError as exc:
            raise StoreUnavailable(f"Elasticsearch at {self.url} did not answer: {exc}") from None
        except ApiError as exc:
            raise StoreError(f"Elasticsearch refused the query: {exc}{_cause(exc)}") from None

    def search(self, kind: str, query: Query) -> Page:
        check_kind(kind)
        order = query.order
        sort: list[dict] = [{"@timestamp": order}, {"event.id": order}]
        if query.sort:
            sort.insert(0, {query.sort: {"order": order, "missing": MISSING_SORT_VALUE}})
        body: dict = {"query": self._filter(query), "size": query.limit + 1,
                      "track_total_hits": True, "sort": sort}
        if query.cursor:
            ts, doc_id, key = cursor_position(query)
            body["search_after"] = [_millis(ts), doc_id] if key is None else \
                [key, _millis(ts), doc_id]
        hits = self._search(kind, **body)["hits"]
        items = [h["_source"] for h in hits["hits"][:query.limit]]
        more = len(hits["hits"]) > query.limit
        cursor = page_cursor(query, items[-1]) if more else None
        return Page(items, hits["total"]["value"], cursor)

    def get_by_ids(self, kind: str, ids: list[str]) -> list[dict]:
        check_kind(kind)
        if not ids:
            return []
        wanted = list(dict.fromkeys(ids))
        hits = self._search(kind, query={"ids": {"values": wanted}}, size=len(wanted))
        found = {h["_id"]: h["_source"] for h in hits["hits"]["hits"]}
        return [found[i] for i in wanted if i in found]

    def terms(self, kind: str, field_name: str, query: Query, size: int = 10) -> list[Bucket]:
        check_kind(kind)
        Query(terms={field_name: []})  # validates the field name
        aggs = {"t": _terms_agg(field_name, size)}
        result = self._search(kind, query=self._filter(query), size=0, aggs=aggs)
        buckets = result.get("aggregations", {}).get("t", {}).get("buckets", [])
        return [Bucket(b["key"], b["doc_count"]) for b in buckets]

    def summarise(self, kind: str, query: Query, terms: dict[str, tuple[str, int]],
                  series: dict[str, tuple[str, int]]) -> dict[str, list]:
        """One search: the filter is evaluated once and the request queued once (the
        posture's 24 h tops and series; base.Store.summarise has the contract)."""
        check_kind(kind)
        for field_name, _size in terms.values():
            Query(terms={field_name: []})
        for field_name, interval in series.values():
            check_group_fields([field_name], interval)
        if not all(nestable([f]) for f, _ in series.values()):
            return super().summarise(kind, query, terms, series)
        aggs = {f"t_{name}": _terms_agg(f, size) for name, (f, size) in terms.items()}
        aggs.update({f"s_{name}": {"filter": {"match_all": {}},
                                   "aggs": nested_aggs([f], interval, None)}
                     for name, (f, interval) in series.items()})
        try:
            result = self._search(kind, query=self._filter(query), size=0, aggs=aggs)
        except StoreError as exc:
            if "too_many_buckets" in str(exc):
                return super().summarise(kind, query, terms, series)
            raise
        got = result.get("aggregations")
        out: dict[str, list] = {
            name: [Bucket(b["key"], b["doc_count"]) for b in got[f"t_{name}"]["buckets"]]
            if got else [] for name in terms}
        out.update({name: sorted(flatten(got[f"s_{name}"], 1, interval, None), key=group_order)
                    if got else [] for name, (_f, interval) in series.items()})
        return out

    def date_histogram(self, kind: str, interval_seconds: int, query: Query) -> list[Bucket]:
        check_kind(kind)
        aggs = {"h": {"date_histogram": {"field": "@timestamp", "min_doc_count": 1,
                                         "fixed_interval": f"{int(interval_seconds)}s"}}}
        result = self._search(kind, query=self._filter(query), size=0, aggs=aggs)
        buckets = result.get("aggregations", {}).get("h", {}).get("buckets", [])
        return [Bucket(b["key"] // 1000, b["doc_count"]) for b in buckets]

    def group_counts(self, kind: str, fields: list[str], query: Query,
                     interval_seconds: int | None = None,
                     sum_field: str | None = None) -> list[Group]:
        check_kind(kind)
        check_group_fields(fields, interval_seconds, sum_field)
        if nestable(fields):
            groups = self._nested_groups(kind, fields, query, interval_seconds, sum_field)
            if groups is not None:
                return sorted(groups, key=group_order)
        sources = [{f"f{i}": {"terms": {"field": name, "missing_bucket": True}}}
                   for i, name in enumerate(fields)]
        if interval_seconds:
            sources.insert(0, {"t": {"date_histogram": {
                "field": "@timestamp", "fixed_interval": f"{int(interval_seconds)}s"}}})
        sums = {"s": {"sum": {"field": sum_field}}, "n": {"value_count": {"field": sum_field}}}
        groups: list[Group] = []
        after = None
        while True:
            composite = {"composite": {"sources": sources, "size": 10_000,
                                       **({"after": after} if after else {})},
                         **({"aggs": sums} if sum_field else {})}
            result = self._search(kind, query=self._filter(query), size=0,
                                  aggs={"g": composite})
            agg = result.get("aggregations", {}).get("g", {})
            groups += [_group(b, len(fields), interval_seconds, sum_field)
                       for b in agg.get("buckets", [])]
            if len(groups) > MAX_GROUPS:
                raise TooManyGroups(f"more than {MAX_GROUPS} groups: narrow the query")
            after = agg.get("after_key")
            if not agg.get("buckets") or after is None:
                return sorted(groups, key=group_order)

    def _nested_groups(self, kind: str, fields: list[str], query: Query,
                       interval_seconds: int | None, sum_field: str | None) -> list | None:
        """group_counts in one request (elastic_groups.py); None when Elasticsearch refuses
        that many buckets (search.max_buckets): the composite pages through them instead."""
        try:
            result = self._search(kind, query=self._filter(query), size=0,
                                  aggs=nested_aggs(fields, interval_seconds, sum_field))
        except StoreError as exc:
            if "too_many_buckets" in str(exc):
                return None
            raise
        if "aggregations" not in result:     # no index yet
            return []
        return flatten(result["aggregations"], len(fields), interval_seconds, sum_field)

    def changes_after(self, kind: str, time_field: str, after: tuple[str, str] | None,
                      until: float, query: Query) -> list[dict]:
        check_kind(kind)
        check_change_field(time_field)
        base = self._filter(replace(query, since=None, until=None))
        base["bool"]["filter"].append({"range": {time_field: {"lt": _iso(until)}}})
        body: dict = {"query": base, "size": query.limit,
                      # unmapped_type: an index made before the field was mapped still sorts
                      "sort": [{time_field: {"order": "asc", "unmapped_type": "date"}},
                               {"event.id": "asc"}]}
        if after:
            body["search_after"] = [_millis(after[0]), after[1]]
        return [h["_source"] for h in self._search(kind, **body)["hits"]["hits"]]

    @staticmethod
    def _filter(query: Query) -> dict:
        clauses: list[dict] = []
        span = {}
        if query.since is not None:
            span["gte"] = _iso(query.since)
        if query.until is not None:
            span["lt"] = _iso(query.until)
        if span:
            clauses.append({"range": {"@timestamp": span}})
        if query.sites is not None:   # tenancy: see watchkeeper/store/scoped.py
            clauses.append({"terms": {"labels.site": query.sites}})
        clauses += [{"terms": {name: values}} for name, values in query.terms.items() if values]
        if query.ip:
            clauses.append({"term": {"related.ip": query.ip}})
        if query.q:
            clauses.append({"multi_match": {"query": query.q, "operator": "and",   # either tongue
                                            "fields": ["message", "watchkeeper.alert.message_zh"]}})
        return {"bool": {"filter": clauses}}
