"""Query-parameter types shared by the routers: each refuses bad input with a 422 naming it."""
from __future__ import annotations

import ipaddress
import math
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Query
from pydantic import AfterValidator, BeforeValidator

from watchkeeper import timeutil
from watchkeeper.schema import ALERT_STATUSES, CATEGORIES, SEVERITY_NAMES, VERDICTS
from watchkeeper.store.base import decode_cursor

MAX_EPOCH = 253402300799.0   # 9999-12-31T23:59:59Z: beyond it neither backend can store a time
SEVERITY_BY_NAME = {name: level for level, name in SEVERITY_NAMES.items()}

Category = Literal[tuple(sorted(CATEGORIES))]      # type: ignore[valid-type]
AlertStatus = Literal[ALERT_STATUSES]              # type: ignore[valid-type]
Verdict = Literal[VERDICTS]                        # type: ignore[valid-type]


def parse_instant(value: object) -> float | None:
    """ISO-8601 with a zone, or epoch seconds -> epoch seconds."""
    if value is None or isinstance(value, float | int):
        number = value
    else:
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            try:
                number = timeutil.parse(text)
            except ValueError:
                raise ValueError(f"{text!r} is neither an ISO-8601 time with a zone "
                                 "(2026-01-31T08:00:00Z) nor epoch seconds") from None
    if number is not None and not (math.isfinite(number) and 0 <= number <= MAX_EPOCH):
        raise ValueError(f"{value!r} is outside 1970-01-01 .. 9999-12-31")
    return number


def parse_severity(value: object) -> object:
    """1-4, or the names low/medium/high/critical."""
    if isinstance(value, str) and value.strip().lower() in SEVERITY_BY_NAME:
        return SEVERITY_BY_NAME[value.strip().lower()]
    if isinstance(value, str) and value.strip().isdigit() and 1 <= int(value) <= 4:
        return int(value)
    if isinstance(value, int) and 1 <= value <= 4:
        return value
    raise ValueError(f"{value!r} is not a severity: use 1-4 or {', '.join(SEVERITY_BY_NAME)}")


def parse_ip(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None


Instant = Annotated[float | None, BeforeValidator(parse_instant)]
Severity = Annotated[int, BeforeValidator(parse_severity)]
IpAddress = Annotated[str | None, AfterValidator(parse_ip)]

Since = Annotated[Instant, Query(description="Inclusive start: ISO-8601 with a zone, or epoch "
                                             "seconds")]
Until = Annotated[Instant, Query(description="Exclusive end: ISO-8601 with a zone, or epoch "
                                             "seconds")]
Ip = Annotated[IpAddress, Query(description="Any address involved (related.ip)")]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size")]
CursorParam = Annotated[str | None, Query(max_length=2048, description="`next_cursor` of the "
                                                                        "previous page")]


class TimeRange:
    """`since`/`until` checked together: an empty range is an input mistake, not an empty page."""

    def __init__(self, since: Since = None, until: Until = None):
        if since is not None and until is not None and until <= since:
            raise HTTPException(status_code=422, detail=[{
                "type": "value_error", "loc": ["query", "until"],
                "msg": "until must be later than since", "input": until}])
        self.since = since
        self.until = until


BAD_CURSOR = ("cursor is not one this server issued: pass the next_cursor of a previous page, "
              "or omit it to start over")


def checked_cursor(cursor: CursorParam = None) -> str | None:
    """Refuse a cursor this server did not issue before it reaches the store."""
    if cursor is None:
        return None
    try:
        timestamp, _ = decode_cursor(cursor)
        timeutil.parse(timestamp)
    except ValueError:
        raise HTTPException(status_code=400, detail=BAD_CURSOR) from None
    return cursor


TimeRangeDep = Annotated[TimeRange, Depends()]
CursorDep = Annotated[str | None, Depends(checked_cursor)]
