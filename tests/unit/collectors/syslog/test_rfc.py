"""RFC 5424 / RFC 3164 headers: the RFCs' own examples, common variants and broken input."""
from __future__ import annotations

from datetime import datetime

import pytest

from collectors.syslog import rfc, timestamps
from collectors.syslog.message import SyslogError
from syslog_helpers import RECEIVED


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


VALID = [
    # RFC 5424 §6.5, examples 1-4 (example 3 with its BOM)
    (b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - BOM'su root' failed "
     b"for lonvick on /dev/pts/8",
     dict(format="rfc5424", pri=34, hostname="mymachine.example.com", app_name="su",
          procid=None, msgid="ID47", timestamp=epoch("2003-10-11T22:14:15.003+00:00"),
          message="'su root' failed for lonvick on /dev/pts/8")),      # BOM dropped
    (b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make "
     b"the do-nuts.", dict(procid="8710", timestamp=epoch("2003-08-24T12:14:15.000003+00:00"),
                           structured_data={}, message="%% It's time to make the do-nuts.")),
    (b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473'
     b' iut="3" eventSource="Application" eventID="1011"] \xef\xbb\xbfAn application event log'
     b' entry...', dict(message="An application event log entry...", structured_data={
         "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"}})),
    (b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473'
     b' iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]',
     dict(message="", structured_data={"exampleSDID@32473": {
         "iut": "3", "eventSource": "Application", "eventID": "1011"},
         "examplePriority@32473": {"class": "high"}})),
    (b'<13>1 - - - - - [a@1 q="say \\"hi\\"" b="x\\]y" c="back\\\\slash" d="keep\\n"] m',
     dict(timestamp=None, hostname=None, app_name=None, message="m", structured_data={
         "a@1": {"q": 'say "hi"', "b": "x]y", "c": "back\\slash", "d": "keep\\n"}})),
    # RFC 3164 §5.4 examples
    (b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
     dict(format="rfc3164", hostname="mymachine", app_name="su", timestamp=None,
          timestamp_text="Oct 11 22:14:15", local_time="2026-10-11T22:14:15",
          message="'su root' failed for lonvick on /dev/pts/8")),
    (b"<0>Oct 22 10:52:01 10.1.2.3 sched[0]: That's All Folks!",
     dict(pri=0, hostname="10.1.2.3", app_name="sched", procid="0",
          message="That's All Folks!")),
    # practice: no hostname (local socket style), rsyslog's RFC 3339 forward format, Cisco year
    (b"<38>Nov 22 20:20:01 sshd[42]: Accepted", dict(hostname=None, app_name="sshd",
                                                     procid="42", message="Accepted")),
    (b"<86>2026-11-22T20:20:01.5+08:00 bastion sudo: x",
     dict(format="rfc3164", timestamp=epoch("2026-11-22T12:20:01.5+00:00"), hostname="bastion",
          app_name="sudo", message="x")),
    (b"<189>Nov 22 2025 20:20:01 core-sw1 %LINK-3-UPDOWN: Interface Gi0/1, changed state",
     dict(local_time="2025-11-22T20:20:01", hostname="core-sw1", app_name="%LINK-3-UPDOWN")),
    # rsyslog's traditional forward of an RFC 5424 message: `host app text`, no colon
    (b"<13>Nov 22 20:20:01 vm wkrelay relayed n=1", dict(app_name="wkrelay",
                                                          message="relayed n=1")),
    (b"<13>hello there", dict(format="bare", hostname=None, app_name=None,
                              message="hello there")),
    (b"no pri at all\n", dict(pri=13, pri_present=False, message="no pri at all")),
    (b"<191>Nov 22 20:20:01 h t: \xff\xfe bytes",
     dict(facility=23, severity=7, message="\\xff\\xfe bytes")),
]


@pytest.mark.parametrize("raw,expected", VALID,
                         ids=lambda v: v[:40] if isinstance(v, bytes) else "")
def test_valid_headers(raw, expected):
    msg = rfc.parse(raw.replace(b"BOM", b"\xef\xbb\xbf"), RECEIVED)
    for name, value in expected.items():
        assert getattr(msg, name) == value, name


INVALID = [
    (b"", "empty"), (b"\r\n", "empty"), (b"<>x", "PRI"), (b"<abc>x", "PRI"),
    (b"<1000>x", "PRI"), (b"<192>x", "above 191"),
    (b"<13>1 2003-13-11T22:14:15Z h a p m - x", "timestamp"),
    (b"<13>1 2003-10-11 22:14:15Z h a p m - x", "RFC 3339"),
    (b"<13>1 2003-10-11T22:14:15 h a p m - x", "RFC 3339"),       # no zone
    (b"<13>1 - h a p", "fewer than 7"),
    (b"<13>1 - h a p m x", "neither"),
    (b'<13>1 - h a p m [id k="v"', "not closed"),
    (b'<13>1 - h a p m [id k=v]', "SD-PARAM"),
    (b'<13>1 - h a p m [id k="v]', "not closed"),
    (b'<13>1 - h a p m [id k="v"]x', "no space"),
    (b"<13>1 - " + b"h" * 256 + b" a p m -", "hostname"),
    (b"<13>1 - h " + b"a" * 49 + b" p m -", "app-name"),
]


@pytest.mark.parametrize("raw,reason", INVALID, ids=lambda v: v[:30] if isinstance(v, bytes) else v)
def test_invalid_headers(raw, reason):
    with pytest.raises(SyslogError, match=reason):
        rfc.parse(raw, RECEIVED)


@pytest.mark.parametrize("stamp,received,local", [
    ("Nov 22 20:00:00", "2026-11-22T20:23:28", "2026-11-22T20:00:00"),
    ("Feb  5 17:32:18", "2026-11-22T00:00:00", "2026-02-05T17:32:18"),   # earlier this year
    ("Dec 31 23:59:59", "2027-01-01T00:00:10", "2026-12-31T23:59:59"),   # read after New Year
    ("Jan  1 00:00:05", "2026-12-31T23:59:50", "2027-01-01T00:00:05"),   # sender clock ahead
    ("Dec 20 10:00:00", "2026-11-22T00:00:00", "2026-12-20T10:00:00"),   # within the slack
    ("Dec 30 10:00:00", "2026-11-22T00:00:00", "2025-12-30T10:00:00"),   # beyond: last year
    ("Feb 29 12:00:00", "2028-03-01T00:00:00", "2028-02-29T12:00:00"),
    ("Feb 29 12:00:00", "2026-11-22T00:00:00", None),                  # no leap year near
    ("Nov 22 20:00:00.250", "2026-11-22T20:23:28", "2026-11-22T20:00:00.250000"),
])
def test_bsd_year_inference(stamp, received, local):
    found = timestamps.match_bsd_prefix(stamp, epoch(received + "+00:00"))
    assert found is not None and found.text == stamp and found.local == local


@pytest.mark.parametrize("text,iso", [
    ("2026-11-22T20:23:28Z", "2026-11-22T20:23:28+00:00"),
    ("2026-11-22t20:23:28.123456789z", "2026-11-22T20:23:28.123456+00:00"),
    ("2026-11-22T20:23:28.5-03:30", "2026-11-22T23:53:28.5+00:00"),
])
def test_rfc3339(text, iso):
    assert timestamps.parse_rfc3339(text) == pytest.approx(epoch(iso))


@pytest.mark.parametrize("text", ["2026-11-22T20:23:28", "2026-02-30T00:00:00Z",
                                  "2026-11-22T25:00:00Z", "0000-01-01T00:00:00Z"])
def test_rfc3339_refused(text):
    with pytest.raises(SyslogError):
        timestamps.parse_rfc3339(text)
