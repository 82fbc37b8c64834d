"""group_counts on Elasticsearch as nested terms aggregations (elastic_reads.py pages a
composite aggregation when this shape cannot answer).

Nested `terms` (one level per field, a `missing` sibling for documents without it) with the
`date_histogram` innermost answer the same groups as the composite aggregation in one request,
and 1.3-2x faster on the posture's open-alert sums (bench/RESULTS.md, issue 15): a composite
walks every document's whole key in order; the nested form collects into a few small
per-field bucket sets. Only keyword and long fields: their bucket keys come back as the
composite's do (strings, ints)."""
from __future__ import annotations

from watchkeeper.store.mappings import ECS_COMMON, WATCHKEEPER, typed_fields
from watchkeeper.store.query import MAX_GROUPS, Group, TooManyGroups

NESTABLE = frozenset(typed_fields(ECS_COMMON, "keyword") | typed_fields(ECS_COMMON, "long")
                     | typed_fields(WATCHKEEPER["properties"], "keyword", "watchkeeper.")
                     | typed_fields(WATCHKEEPER["properties"], "long", "watchkeeper."))


def nestable(fields: list[str]) -> bool:
    return all(name in NESTABLE for name in fields)


def nested_aggs(fields: list[str], interval_seconds: int | None,
                sum_field: str | None) -> dict:
    """The aggregation tree; leaves carry the sum and how many documents have the field."""
    leaf = {"s": {"sum": {"field": sum_field}},
            "n": {"value_count": {"field": sum_field}}} if sum_field else {}
    inner = leaf
    if interval_seconds:
        inner = {"t": {"date_histogram": {"field": "@timestamp", "min_doc_count": 1,
                                          "fixed_interval": f"{int(interval_seconds)}s"},
                       **({"aggs": leaf} if leaf else {})}}
    for i in reversed(range(len(fields))):
        sub = {"aggs": inner} if inner else {}
        inner = {f"f{i}": {"terms": {"field": fields[i], "size": MAX_GROUPS + 1}, **sub},
                 f"m{i}": {"missing": {"field": fields[i]}, **sub}}
    return inner


def flatten(result: dict, width: int, interval_seconds: int | None,
            sum_field: str | None) -> list[Group]:
    """The nested buckets as groups (unordered); TooManyGroups past MAX_GROUPS."""
    groups: list[Group] = []
    _walk(result, 0, (), width, interval_seconds, sum_field, groups)
    return groups


def _walk(node: dict, level: int, keys: tuple, width: int, interval_seconds: int | None,
          sum_field: str | None, out: list[Group]) -> None:
    if level < width:
        terms = node[f"f{level}"]
        if terms.get("sum_other_doc_count"):
            raise TooManyGroups(f"more than {MAX_GROUPS} groups: narrow the query")
        for bucket in terms["buckets"]:
            _walk(bucket, level + 1, (*keys, bucket["key"]), width, interval_seconds,
                  sum_field, out)
        if node[f"m{level}"]["doc_count"]:
            _walk(node[f"m{level}"], level + 1, (*keys, None), width, interval_seconds,
                  sum_field, out)
    elif interval_seconds:
        for bucket in node["t"]["buckets"]:
            out.append(_leaf(bucket, keys, bucket["key"] // 1000, sum_field))
    elif node["doc_count"]:
        out.append(_leaf(node, keys, None, sum_field))
    if len(out) > MAX_GROUPS:
        raise TooManyGroups(f"more than {MAX_GROUPS} groups: narrow the query")


def _leaf(bucket: dict, keys: tuple, start: int | None, sum_field: str | None) -> Group:
    group = Group(keys, bucket["doc_count"], start)
    if sum_field:
        total = bucket["s"]["value"]
        group.total = int(total) if isinstance(total, float) and total.is_integer() else total
        group.summed = bucket["n"]["value"]
    return group
