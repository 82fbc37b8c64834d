from __future__ import annotations

import pytest

from watchkeeper import timeutil


def test_round_trip_keeps_microseconds():
    text = "2026-11-22T20:23:28.123456Z"
    assert timeutil.format(timeutil.parse(text)) == text


@pytest.mark.parametrize("now, months, expected", [
    ("2026-11-22T00:00:00Z", 6, "2026-05-22T00:00:00.000000Z"),
    ("2026-08-31T12:00:00Z", 6, "2026-02-28T12:00:00.000000Z"),   # clamped to month end
    ("2026-03-15T00:00:00Z", 6, "2025-09-15T00:00:00.000000Z"),   # across a year
    ("2028-08-30T00:00:00Z", 6, "2028-02-29T00:00:00.000000Z"),   # leap year
])
def test_calendar_months(now, months, expected):
    assert timeutil.format(timeutil.months_before(timeutil.parse(now), months)) == expected


def test_naive_times_are_refused():
    with pytest.raises(ValueError):
        timeutil.parse("2026-01-01T00:00:00")
