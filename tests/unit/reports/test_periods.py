"""Report periods are Beijing calendar periods held as UTC bounds."""
from __future__ import annotations

from datetime import date

import pytest

from reports.periods import last_complete, parse_period
from tests.unit.reports.seed import utc


def test_month_week_and_day_bounds_in_beijing_time():
    november = parse_period("monthly", "2026-11")
    assert (november.start, november.end) == (utc(2026, 10, 31, 16), utc(2026, 11, 30, 16))
    assert november.previous().label == "2026-10" and november.previous().days == 31
    assert parse_period("monthly", "2026-12").end == utc(2026, 12, 31, 16)   # year rollover
    week = parse_period("weekly", "2026-W46")
    assert (week.first_day, week.days, week.previous().label) == (date(2026, 11, 9), 7,
                                                                  "2026-W45")
    assert week.start == utc(2026, 11, 8, 16)
    day = parse_period("daily", "2026-11-01")
    assert (day.start, day.end, day.previous().label) == (utc(2026, 10, 31, 16),
                                                          utc(2026, 11, 1, 16), "2026-10-31")
    assert parse_period("weekly", "2027-W01").first_day == date(2027, 1, 4)


def test_last_complete_period_follows_the_beijing_calendar():
    # 2026-12-01 07:30 UTC is 15:30 in Beijing on 1 December: November is complete.
    assert last_complete("monthly", utc(2026, 12, 1, 7, 30)).label == "2026-11"
    # 2026-11-30 17:00 UTC is already 1 December in Beijing.
    assert last_complete("monthly", utc(2026, 11, 30, 17)).label == "2026-11"
    assert last_complete("monthly", utc(2026, 11, 30, 15)).label == "2026-10"
    assert last_complete("daily", utc(2026, 11, 16, 1)).label == "2026-11-15"
    assert last_complete("weekly", utc(2026, 11, 16, 1)).label == "2026-W46"


@pytest.mark.parametrize("kind, text", [("monthly", "2026-13"), ("monthly", "2026-1"),
                                        ("weekly", "2026-W54"), ("weekly", "2026-11"),
                                        ("daily", "2026-02-30"), ("daily", "yesterday"),
                                        ("yearly", "2026")])
def test_bad_periods_are_refused_with_an_example(kind, text):
    with pytest.raises(ValueError, match="write e.g."):
        parse_period(kind, text)
