"""Document shape, event time and the event-id rules (replays dedupe, repeats don't)."""
from __future__ import annotations

from syslog_helpers import RECEIVED, to_doc
from watchkeeper import timeutil

LINE_3164 = ("<38>Nov 22 20:23:01 bastion sshd[1]: Failed password for root from 203.0.113.5 "
             "port 1 ssh2")
LINE_5424 = ("<38>1 2026-11-22T20:23:01.5+08:00 bastion sshd 1 - - Connection closed by 1.2.3.4 "
             "port 5")


def test_event_time_is_the_zoned_header_time_else_receipt():
    zoned = to_doc(LINE_5424)
    assert zoned["@timestamp"] == "2026-11-22T12:23:01.500000Z"
    assert zoned["watchkeeper"]["syslog"]["time_source"] == "message"
    assert zoned["event"]["created"] == timeutil.format(RECEIVED)
    local = to_doc(LINE_3164)
    assert local["@timestamp"] == timeutil.format(RECEIVED)
    assert local["watchkeeper"]["syslog"] == {"format": "rfc3164", "transport": "tcp",
                                              "time_source": "received",
                                              "local_time": "2026-11-22T20:23:01",
                                              "sshd": {"method": "password"}}


def test_retransmission_and_replay_keep_the_id():
    first = to_doc(LINE_3164, received=RECEIVED, port=40000)
    again = to_doc(LINE_3164, received=RECEIVED + 7, port=40001)    # new connection, later
    assert first["event"]["id"] == again["event"]["id"]


def test_same_text_at_another_time_or_from_another_peer_is_another_event():
    base = to_doc(LINE_3164)["event"]["id"]
    later = LINE_3164.replace("20:23:01", "20:23:02")
    assert to_doc(later)["event"]["id"] != base
    assert to_doc(LINE_3164, peer="192.0.2.99")["event"]["id"] != base


def test_lines_without_timestamp_are_all_kept():
    bare = "<13>app: disk full"
    assert to_doc(bare, received=RECEIVED)["event"]["id"] != \
        to_doc(bare, received=RECEIVED + 1)["event"]["id"]


def test_original_is_bounded_and_log_fields_are_ecs():
    doc = to_doc("<13>Nov 22 20:23:01 h app: " + "x" * 40_000)
    assert len(doc["event"]["original"]) == 16 * 1024
    assert doc["log"]["syslog"]["appname"] == "app"
    assert doc["log"]["source"]["address"] == "192.0.2.1:51514"
    assert to_doc("<13>x", peer="2001:db8::1")["log"]["source"]["address"] == "[2001:db8::1]:51514"
