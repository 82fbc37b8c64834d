"""Threat posture: one score per site from the open alerts, rolled up the site tree, on the
four warning colours (docs/api-posture.md has the formula and the thresholds).

    alert weight = SEVERITY_WEIGHT[severity] × criticality / 3 × mlps_level / 2
                   × 0.5 ** (age_hours / HALF_LIFE_HOURS)

The asset at stake is the alert's destination asset if the inventory knows it, else its source
asset; without either, criticality 3 and MLPS level 2 (factor 1). The store stamps each
alert's undecayed weight when it takes it (watchkeeper/posture_weight.py), and every sum runs
over the store's groups (`Store.group_counts` summing it per site × hour), never over alert
documents. Alerts stored before the stamp are weighed from their asset fields (read-time).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from watchkeeper import posture_weight
from watchkeeper.posture_weight import POINTS_FIELD, POINTS_PER_WEIGHT
from watchkeeper.store.base import Group, Query, TooManyGroups

OPEN_STATUSES = ["new", "acknowledged", "investigating", "in_progress"]
HALF_LIFE_HOURS = 24.0
OPEN_WINDOW_DAYS = 7            # open alerts older than this weigh < 1/128: left out
# score >= threshold -> colour; below the last one: blue (一般)
LEVELS = (("red", 200.0), ("orange", 80.0), ("yellow", 20.0))
TIER_NAMES = ("region", "city", "county")
HOUR = 3600
SIX_HOURS = 6 * HOUR
# what an alert stored before weight_points was stamped is weighed by (read-time fallback)
STAKE_FIELDS = ["event.severity",
                "watchkeeper.asset.destination.criticality",
                "watchkeeper.asset.destination.mlps_level",
                "watchkeeper.asset.source.criticality",
                "watchkeeper.asset.source.mlps_level"]

def level_of(score: float) -> str:
    for colour, threshold in LEVELS:
        if score >= threshold:
            return colour
    return "blue"


def stake_factor(dst_crit, dst_mlps, src_crit, src_mlps) -> float:
    """criticality / 3 × MLPS level / 2 of the asset at stake (destination first)."""
    crit, mlps = posture_weight.stake(dst_crit, dst_mlps, src_crit, src_mlps)
    return crit / 3 * mlps / 2


def decay(age_seconds: float) -> float:
    return 0.5 ** (max(age_seconds, 0.0) / 3600 / HALF_LIFE_HOURS)


def group_weight(keys: tuple) -> float:
    """Undecayed weight of one alert in a group keyed by STAKE_FIELDS (after any prefix)."""
    return posture_weight.points(*keys) / POINTS_PER_WEIGHT


@dataclass
class SiteNode:
    id: str
    name: str
    parent: str | None
    org_type: str = "other"         # cii | state_organ | other (the inventory's)


@dataclass
class SitePosture:
    site: str
    name: str
    parent: str | None
    tier: str
    depth: int
    org_type: str = "other"
    own_score: float = 0.0
    score: float = 0.0              # the site and everything below it
    open_alerts: int = 0            # the site and everything below it
    level: str = "blue"


@dataclass
class Overall:
    score: float
    level: str
    open_alerts: int
    sites: list[SitePosture] = field(default_factory=list)


def tier_name(depth: int) -> str:
    return TIER_NAMES[depth] if depth < len(TIER_NAMES) else f"tier-{depth}"


@dataclass
class Weighed:
    """Alerts raised in one interval sharing `keys`: how many, their undecayed weight, and
    the middle of the interval (where their age is taken)."""
    keys: tuple
    start: int
    middle: float
    count: int
    weight: float


def _grouped(reader, fields: list[str], query: Query, since: float, until: float,
             interval: int, sum_field: str | None = None) -> tuple[list[Group], int]:
    """Groups of alerts raised in [since, until) and the interval they came in."""
    window = Query(since=since, until=until, terms=query.terms, limit=1)
    while True:
        try:
            return reader.group_counts("alerts", fields, window, interval, sum_field), interval
        except TooManyGroups:
            if interval >= 86400:
                raise
            interval = min(interval * 6, 86400)    # coarser time, same sums: degrade, not fail


def _weighted(reader, fields: list[str], query: Query, since: float, until: float,
              interval: int) -> list[Weighed]:
    """Per `fields` × interval: the sum of the stamped weights; alerts stored before the
    weight was stamped (none of them after one week) are weighed from their asset fields."""
    if until <= since:
        return []
    groups, width = _grouped(reader, fields, query, since, until, interval, POINTS_FIELD)
    weighed = [Weighed(g.keys, g.start, g.start + width / 2, g.count,
                       (g.total or 0) / POINTS_PER_WEIGHT) for g in groups]
    if any(g.summed is not None and g.summed < g.count for g in groups):
        weighed += _unstamped(reader, fields, query, since, until, interval)
    return weighed


def _unstamped(reader, fields: list[str], query: Query, since: float, until: float,
               interval: int) -> list[Weighed]:
    """The weight of alerts without weight_points (their count is already in _weighted's)."""
    legacy, width = _grouped(reader, [*fields, POINTS_FIELD, *STAKE_FIELDS], query, since,
                             until, interval)
    n = len(fields)
    return [Weighed(g.keys[:n], g.start, g.start + width / 2, 0,
                    g.count * group_weight(g.keys[n + 1:]))
            for g in legacy if g.keys[n] is None]


def _recent_and_older(reader, fields: list[str], query: Query, since: float,
                      now: float) -> list[Weighed]:
    """Hourly groups for the last day (aligned to 6 h), 6-hourly before: an alert's age is
    taken at the middle of its hour, or of its 6 hours when older than a day (a decay error
    of at most 2^(3/24) ≈ 9 % on alerts that weigh half or less), and the store returns up to
    six times fewer groups."""
    split = (now - 86400) // SIX_HOURS * SIX_HOURS
    return (_weighted(reader, fields, query, split, window_end(now), HOUR)
            + _weighted(reader, fields, query, since // SIX_HOURS * SIX_HOURS, split, SIX_HOURS))


def window_end(now: float) -> float:
    """The end of a window that reaches `now`: the next whole minute. Windows whose ends
    move only once a minute are the same query from one request to the next, which the
    store may answer from its cache (Elasticsearch's request cache, until the next write)."""
    return (now // 60 + 1) * 60


def open_scores(reader, now: float) -> tuple[dict[str | None, float], dict[str | None, int]]:
    """Decayed score and open-alert count per labels.site (None: alerts without a site)."""
    query = Query(terms={"watchkeeper.alert.status": OPEN_STATUSES}, limit=1)
    scores: dict[str | None, float] = {}
    counts: dict[str | None, int] = {}
    for w in _recent_and_older(reader, ["labels.site"], query,
                               now - OPEN_WINDOW_DAYS * 86400, now):
        site = w.keys[0]
        scores[site] = scores.get(site, 0.0) + w.weight * decay(now - w.middle)
        counts[site] = counts.get(site, 0) + w.count
    return scores, counts


def site_postures(tree: dict[str, SiteNode], visible: list[str] | None,
                  scores: dict, counts: dict) -> list[SitePosture]:
    """Every visible site with its own score and its subtree's, parents before children."""
    ids = [s for s in tree if visible is None or s in visible]
    depth = {s: _depth(tree, s) for s in ids}
    entries = {s: SitePosture(s, tree[s].name, tree[s].parent, tier_name(depth[s]), depth[s],
                              tree[s].org_type, own_score=round(scores.get(s, 0.0), 2),
                              score=scores.get(s, 0.0), open_alerts=counts.get(s, 0))
               for s in ids}
    for s in sorted(ids, key=lambda s: -depth[s]):         # leaves first: roll up
        parent = tree[s].parent
        if parent in entries:
            entries[parent].score += entries[s].score
            entries[parent].open_alerts += entries[s].open_alerts
    for entry in entries.values():
        entry.score = round(entry.score, 2)
        entry.level = level_of(entry.score)
    return sorted(entries.values(), key=lambda e: (e.depth, e.parent or "", e.site))


def _depth(tree: dict[str, SiteNode], site: str) -> int:
    depth, seen = 0, {site}
    while tree[site].parent in tree and tree[site].parent not in seen:
        site = tree[site].parent
        seen.add(site)
        depth += 1
    return depth


def overall(reader, tree: dict[str, SiteNode], visible: list[str] | None,
            now: float) -> Overall:
    """The caller's whole subtree (and, for the root, alerts without a site)."""
    scores, counts = open_scores(reader, now)
    total = round(sum(scores.values()), 2)
    return Overall(total, level_of(total), sum(counts.values()),
                   site_postures(tree, visible, scores, counts))


@dataclass
class TrendPoint:
    start: int
    score: float
    level: str
    raised: int                  # alerts raised in this interval (any status now)


def trend(reader, now: float, span_seconds: int, interval: int) -> list[TrendPoint]:
    """Threat raised over time: every alert raised (whatever its status now), weighted as above
    and decayed to the end of each interval; three half-lives of warm-up before the window
    (in 6-hour groups when the points are finer)."""
    warmup = int(3 * HALF_LIFE_HOURS * 3600)
    first = int((now - span_seconds) // interval * interval) + interval
    every = Query(limit=1)
    groups = _weighted(reader, [], every, first, window_end(now), interval) + _weighted(
        reader, [], every, first - warmup, first, max(interval, SIX_HOURS))
    weighted = [(w.start, w.middle, w.weight) for w in groups]
    raised: dict[int, int] = {}
    for w in groups:
        raised[w.start] = raised.get(w.start, 0) + w.count
    points = []
    for start in range(first, int(now) + 1, interval):
        end = min(start + interval, now)
        score = sum(w * decay(end - middle) for b, middle, w in weighted if b <= start)
        points.append(TrendPoint(start, round(score, 2), level_of(score), raised.get(start, 0)))
    return points


def series(groups: list[Group]) -> list[dict]:
    """group_counts with one field and an interval -> [{start, key, count}]."""
    return [{"start": g.start, "key": g.keys[0], "count": g.count} for g in groups
            if g.keys[0] is not None]
