from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


@given(st.floats(min_value=0, max_value=253402300799, allow_nan=False))
def test_fast_format_equals_datetime_formatting(seconds):
    assert timeutil.format(seconds) == timeutil.reference_format(seconds)


def test_fast_format_rounds_into_the_next_second():
    assert timeutil.format(1.9999999) == timeutil.reference_format(1.9999999) \
        == "1970-01-01T00:00:02.000000Z"
