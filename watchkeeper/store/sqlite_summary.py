"""Store.summarise on SQLite in one pass (issues 10/15): one GROUP BY over every asked field
(and each series' interval) reads the matching rows once; the few resulting groups are then
folded in Python into each `terms` and `series` answer. Asking each aggregation alone scans
the table once per aggregation (the screen's statistics and the posture asked five).

The answers are those of SqliteStore.terms / group_counts (the contract tests compare them):
terms ordered by count descending then value in SQLite's order (numbers before text), series
as group_counts' groups (None for a missing value) in group_order."""
from __future__ import annotations

from collections import Counter

from watchkeeper.store.query import MAX_GROUPS, Bucket, Group, TooManyGroups, group_order


def summary_sql(kind: str, columns: list[str], clause: str) -> str:
    names = ", ".join(columns)
    return f"SELECT {names}, count(*) FROM {kind} {clause} GROUP BY {names}"


def fold(rows: list[tuple], fields: list[str], widths: list[int],
         terms: dict[str, tuple[str, int]],
         series: dict[str, tuple[str, int]]) -> dict[str, list]:
    """`rows` = (interval starts in µs per width..., field values..., count) groups."""
    at = {name: len(widths) + i for i, name in enumerate(fields)}
    width_at = {width: i for i, width in enumerate(widths)}
    out: dict[str, list] = {}
    for name, (field_name, size) in terms.items():
        counts: Counter = Counter()
        for row in rows:
            counts[row[at[field_name]]] += row[-1]
        counts.pop(None, None)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], *_sqlite_order(kv[0])))
        out[name] = [Bucket(key, n) for key, n in ranked[:size]]
    for name, (field_name, interval) in series.items():
        counts = Counter()
        start_at = width_at[int(interval) * 1_000_000]
        for row in rows:
            counts[(row[start_at], row[at[field_name]])] += row[-1]
        if len(counts) > MAX_GROUPS:
            raise TooManyGroups(f"more than {MAX_GROUPS} groups: narrow the query")
        out[name] = sorted((Group((value,), n, start // 1_000_000)
                            for (start, value), n in counts.items()), key=group_order)
    return out


def _sqlite_order(value: object) -> tuple:
    """SQLite's ORDER BY across types: numbers before text (BINARY collation = code points)."""
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))
