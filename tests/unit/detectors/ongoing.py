"""An attack that goes on keeps its stored alert current: raised again at least about once a
minute (detectors/kit/reraise.py, `refreshed`), not only when its count doubles."""
from __future__ import annotations


def assert_kept_current(alerts, end: float, most: float = 66.0) -> None:
    """One alert (same first-seen time and entity), raised no more than `most` seconds of
    last-seen time apart, the last within `most` of the attack's `end`."""
    assert len(alerts) >= 2, f"raised {len(alerts)} time(s)"
    assert len({(a.first_seen, a.entity) for a in alerts}) == 1
    times = [a.last_seen for a in alerts]
    assert max(b - a for a, b in zip(times, times[1:])) <= most
    assert times[-1] >= end - most
