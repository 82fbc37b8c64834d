"""Header timestamps: RFC 3339 (RFC 5424, rsyslog's forward formats) and BSD `Mmm dd hh:mm:ss`.

Only a timestamp with a zone becomes event time. An RFC 3164 timestamp is the sender's wall
clock in an unknown zone and without a year: we keep it (as a zone-less ISO string, year
inferred) for the analyst and for the event id, but the event time is the receive time.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from collectors.syslog.message import SyslogError

_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?([Zz]|[+-]\d\d:\d\d)")
_BSD = re.compile(
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([ 0-3]\d) (?:(\d{4}) )?"
    r"(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?= |$)")
_MONTHS = {name: i + 1 for i, name in enumerate(
    "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())}
# Epoch bounds datetime can format back (years 1..9999) with a day's margin for zones.
_FUTURE_SLACK = timedelta(days=31)   # sender clocks run ahead; whole years never do
_MIN_EPOCH, _MAX_EPOCH = -62135510400.0, 253402214400.0


@dataclass
class BsdTime:
    """A zone-less RFC 3164 timestamp; `local` is None when no year makes it a real date."""
    text: str
    local: str | None


def parse_rfc3339(text: str) -> float:
    """RFC 3339 with a zone -> epoch seconds; SyslogError when it is not exactly that."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise SyslogError(f"timestamp {text[:40]!r} is not RFC 3339 with a zone")
    frac = (match.group(7) or "")[:6].ljust(6, "0")   # datetime keeps microseconds
    iso = f"{text[:19]}.{frac}{'+00:00' if match.group(8) in 'Zz' else match.group(8)}"
    try:
        epoch = datetime.fromisoformat(iso.replace("t", "T")).timestamp()
    except ValueError as exc:
        raise SyslogError(f"timestamp {text[:40]!r}: {exc}") from None
    if not _MIN_EPOCH < epoch < _MAX_EPOCH:
        raise SyslogError(f"timestamp {text[:40]!r} is out of range")
    return epoch


def match_rfc3339_prefix(text: str) -> str | None:
    """The RFC 3339 timestamp starting `text` (followed by a space or the end), if any."""
    match = _RFC3339.match(text)
    if match is None or (match.end() < len(text) and text[match.end()] != " "):
        return None
    return match.group(0)


def match_bsd_prefix(text: str, received: float) -> BsdTime | None:
    """The `Mmm dd [yyyy] hh:mm:ss[.frac]` timestamp starting `text`, if any."""
    match = _BSD.match(text)
    if match is None:
        return None
    month, day = _MONTHS[match.group(1)], int(match.group(2))
    clock = tuple(int(g) for g in match.group(4, 5, 6))
    micros = int((match.group(7) or "0").ljust(6, "0"))
    if match.group(3):   # a sender that writes the year (Cisco style) is taken at its word
        local = _latest([int(match.group(3))], month, day, clock, micros, datetime.max)
    else:
        local = _latest(_candidate_years(received), month, day, clock, micros,
                        _utc_naive(received) + _FUTURE_SLACK)
    return BsdTime(match.group(0), local.isoformat() if local else None)


def _candidate_years(received: float) -> list[int]:
    year = _utc_naive(received).year
    return [year - 1, year, year + 1]


def _utc_naive(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).replace(tzinfo=None)


def _latest(years, month, day, clock, micros, limit: datetime) -> datetime | None:
    """The latest real date not far in the future of the receive time: logs are about the
    past, so a `Dec 31` line read on Jan 1 is last year's; a `Jan 1` line from a sender whose
    clock runs a little ahead on Dec 31 is next year's (up to _FUTURE_SLACK ahead)."""
    best: datetime | None = None
    for year in years:
        try:
            moment = datetime(year, month, day, *clock, micros)
        except ValueError:   # Feb 29 outside a leap year, Apr 31, 24:00:00 ...
            continue
        if moment <= limit and (best is None or moment > best):
            best = moment
    return best
