"""Report periods: calendar days, ISO weeks and months in the display zone (Asia/Shanghai),
held as UTC epoch seconds [start, end).

A 月报 for 2026-11 covers 2026-11-01 00:00 to 2026-12-01 00:00 Beijing time, i.e. from
2026-10-31T16:00Z: the store is queried in UTC with those bounds.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

DEFAULT_ZONE = "Asia/Shanghai"
PERIODIC = ("daily", "weekly", "monthly")


@dataclass(frozen=True)
class Period:
    kind: str            # daily | weekly | monthly
    label: str           # 2026-11-05 | 2026-W45 | 2026-11
    first_day: date      # local calendar day the period starts on
    days: int            # local calendar days covered
    zone: str = DEFAULT_ZONE

    @property
    def start(self) -> float:
        return _local_midnight(self.first_day, self.zone)

    @property
    def end(self) -> float:
        return _local_midnight(self.first_day + timedelta(days=self.days), self.zone)

    def local_days(self) -> list[date]:
        return [self.first_day + timedelta(days=i) for i in range(self.days)]

    def previous(self) -> Period:
        if self.kind == "monthly":
            last = self.first_day - timedelta(days=1)
            return month_period(last.year, last.month, self.zone)
        return period_of(self.kind, self.first_day - timedelta(days=self.days), self.zone)

    def shown(self, lang: str = "zh-CN") -> str:
        """The period as a reader sees it."""
        last = self.first_day + timedelta(days=self.days - 1)
        if lang == "zh-CN":
            if self.kind == "monthly":
                return f"{self.first_day.year}年{self.first_day.month}月"
            if self.kind == "daily":
                return f"{self.first_day:%Y-%m-%d}"
            return f"{self.label}（{self.first_day:%Y-%m-%d} 至 {last:%Y-%m-%d}）"
        return self.label if self.kind != "weekly" else \
            f"{self.label} ({self.first_day:%Y-%m-%d} to {last:%Y-%m-%d})"


def _local_midnight(day: date, zone: str) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).timestamp()


def month_period(year: int, month: int, zone: str = DEFAULT_ZONE) -> Period:
    first = date(year, month, 1)
    following = date(year + month // 12, month % 12 + 1, 1)
    return Period("monthly", f"{year:04d}-{month:02d}", first, (following - first).days, zone)


def period_of(kind: str, day: date, zone: str = DEFAULT_ZONE) -> Period:
    """The period of `kind` that contains the local calendar day `day`."""
    if kind == "daily":
        return Period("daily", f"{day:%Y-%m-%d}", day, 1, zone)
    if kind == "weekly":
        monday = day - timedelta(days=day.weekday())
        year, week, _ = monday.isocalendar()
        return Period("weekly", f"{year:04d}-W{week:02d}", monday, 7, zone)
    if kind == "monthly":
        return month_period(day.year, day.month, zone)
    raise ValueError(f"period kind {kind!r}: one of {', '.join(PERIODIC)}")


def parse_period(kind: str, text: str, zone: str = DEFAULT_ZONE) -> Period:
    """`2026-11` (monthly), `2026-W45` (weekly), `2026-11-05` (daily). Clear error otherwise."""
    try:
        if kind == "monthly" and re.fullmatch(r"\d{4}-\d{2}", text):
            year, month = map(int, text.split("-"))
            return month_period(year, month, zone)
        if kind == "weekly" and re.fullmatch(r"\d{4}-W\d{2}", text):
            return period_of("weekly", date.fromisocalendar(int(text[:4]), int(text[6:]), 1),
                             zone)
        if kind == "daily" and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return period_of("daily", date.fromisoformat(text), zone)
    except ValueError:
        pass
    examples = {"monthly": "2026-11", "weekly": "2026-W45", "daily": "2026-11-05"}
    raise ValueError(f"--period {text!r} is not a {kind} period; write e.g. "
                     f"{examples.get(kind, '2026-11')}")


def last_complete(kind: str, now: float, zone: str = DEFAULT_ZONE) -> Period:
    """The most recent period of `kind` that has ended at `now` (what a schedule reports on)."""
    today = datetime.fromtimestamp(now, ZoneInfo(zone)).date()
    return period_of(kind, today, zone).previous()


def local_time(epoch: float, zone: str = DEFAULT_ZONE) -> str:
    """2026-12-03 18:30:05 (the glossary's form; the caller adds 北京时间 where shown)."""
    return datetime.fromtimestamp(epoch, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")
