"""NetflowDecoder on hand-built datagrams: fields, times, sampling, templates, sequence gaps."""
from __future__ import annotations

import pytest

from collectors.netflow import NetflowDecoder
from collectors.netflow import fields as ie
from watchkeeper import schema, timeutil
from watchkeeper.documents import community_id

EXPORTER = "198.51.100.7"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def decoder() -> NetflowDecoder:
    return NetflowDecoder()


def test_v5_record_becomes_an_ecs_flow(decoder, pk):
    result = decoder.decode(pk.v5([{}], nsecs=500_000_000), EXPORTER)
    assert result.problem is None
    (doc,) = result.documents
    schema.validate(doc)
    # export at 1_700_000_000.5 s with uptime 100 s: first=90 s -> 10 s before export
    assert doc["@timestamp"] == doc["event"]["start"] == timeutil.format(1_699_999_990.5)
    assert doc["event"]["end"] == timeutil.format(1_699_999_995.5)
    assert doc["event"]["duration"] == 5_000_000_000
    assert doc["event"]["module"] == "netflow" and doc["event"]["dataset"] == schema.FLOW
    assert doc["observer"] == {"ip": EXPORTER, "name": EXPORTER, "type": "router"}
    assert doc["source"] == {"ip": "10.0.0.1", "port": 40000, "bytes": 1500, "packets": 10}
    assert doc["destination"] == {"ip": "192.0.2.9", "port": 443}
    assert doc["network"]["bytes"] == 1500 and doc["network"]["packets"] == 10
    assert doc["network"]["transport"] == "tcp" and doc["network"]["direction"] == "outbound"
    assert doc["network"]["community_id"] == community_id(6, "10.0.0.1", "192.0.2.9", 40000, 443)


def test_event_id_is_deterministic_and_depends_on_the_exporter(pk):
    first = NetflowDecoder().decode(pk.v5([{}]), EXPORTER).documents[0]["event"]["id"]
    again = NetflowDecoder().decode(pk.v5([{}]), EXPORTER).documents[0]["event"]["id"]
    other = NetflowDecoder().decode(pk.v5([{}]), "198.51.100.8").documents[0]["event"]["id"]
    assert first == again != other


def test_uptime_wrap_between_first_switched_and_export(decoder, pk):
    # uptime wrapped to 1 s after first_switched was stamped 2 s before the wrap
    doc = decoder.decode(pk.v5([{"first": 2**32 - 2000, "last": 500}], uptime=1000), EXPORTER)
    assert doc.documents[0]["event"]["start"] == timeutil.format(1_700_000_000 - 3)


def test_a_flow_stamped_more_than_half_the_uptime_range_ago_is_in_the_past(decoder, pk):
    # first_switched is 30 days (> 2^31 ms) before the header's uptime, across a wrap: the
    # flow started before the export, never 19.7 days after it (a signed reading's answer)
    thirty_days_ms = 30 * 86_400_000
    first = (1000 - thirty_days_ms) % 2**32
    doc = decoder.decode(pk.v5([{"first": first, "last": first}], uptime=1000), EXPORTER)
    assert doc.documents[0]["event"]["start"] == timeutil.format(1_700_000_000 - 30 * 86_400)


def test_a_record_stamped_just_after_its_export_is_clock_skew_not_a_wrap(decoder, pk):
    doc = decoder.decode(pk.v5([{"first": 1500, "last": 1500}], uptime=1000), EXPORTER)
    assert doc.documents[0]["event"]["start"] == timeutil.format(1_700_000_000 + 0.5)


def test_v5_header_sampling_scales_counters(decoder, pk):
    sampled = pk.v5([{}], sampling=(1 << 14) | 100)   # mode 1, 1 in 100
    doc = decoder.decode(sampled, EXPORTER).documents[0]
    assert doc["source"]["packets"] == 1000 and doc["network"]["bytes"] == 150_000
    assert doc["watchkeeper"]["netflow"]["sampling_rate"] == 100
    # the next unsampled header is believed at once: no stale rate
    assert decoder.decode(pk.v5([{}], seq=1), EXPORTER).documents[0]["source"]["packets"] == 10


def test_v9_data_before_template_is_counted_then_decoded(decoder, pk):
    data = pk.flowset(300, pk.v4_data())
    early = decoder.decode(pk.v9([data], seq=0), EXPORTER)
    assert early.documents == [] and early.sets_without_template == 1 and early.problem is None
    template = pk.flowset(ie.V9_TEMPLATE_SET, pk.template_record(300, pk.V4_FIELDS))
    late = decoder.decode(pk.v9([template, data], seq=1), EXPORTER)
    assert len(late.documents) == 1 and late.sets_without_template == 0
    assert late.documents[0]["source"]["port"] == 40000


def test_v9_ipv6_record(decoder, pk):
    template = pk.flowset(ie.V9_TEMPLATE_SET, pk.template_record(301, pk.V6_FIELDS))
    result = decoder.decode(pk.v9([template, pk.flowset(301, pk.v6_data())]), EXPORTER)
    (doc,) = result.documents
    schema.validate(doc)
    assert doc["source"]["ip"] == "2001:db8::1" and doc["destination"]["ip"] == "fd00::2"
    assert doc["network"]["transport"] == "udp" and doc["network"]["direction"] == "inbound"
    assert doc["network"]["community_id"] == community_id(17, "2001:db8::1", "fd00::2", 5353, 53)


def test_v9_options_template_sampling_scales_counters(decoder, pk):
    options = pk.flowset(ie.V9_OPTIONS_SET, pk.v9_options_template(400))
    template = pk.flowset(ie.V9_TEMPLATE_SET, pk.template_record(300, pk.V4_FIELDS))
    datagram = pk.v9([options, template, pk.flowset(400, pk.v9_options_data(64)),
                      pk.flowset(300, pk.v4_data())], domain=3)
    result = decoder.decode(datagram, EXPORTER)
    assert result.option_records == 1
    (doc,) = result.documents
    assert doc["source"]["packets"] == 640 and doc["source"]["bytes"] == 96_000
    # the rate belongs to (exporter, domain 3): domain 4 is unsampled
    template4 = pk.flowset(ie.V9_TEMPLATE_SET, pk.template_record(300, pk.V4_FIELDS))
    other = decoder.decode(pk.v9([template4, pk.flowset(300, pk.v4_data())], domain=4), EXPORTER)
    assert other.documents[0]["source"]["packets"] == 10


def test_ipfix_absolute_times_and_psamp_sampling(decoder, pk):
    sets = [pk.flowset(ie.IPFIX_OPTIONS_SET, pk.ipfix_options_template(500)),
            pk.flowset(ie.IPFIX_TEMPLATE_SET, pk.template_record(256, pk.IPFIX_FIELDS)),
            pk.flowset(500, pk.ipfix_options_data(1, 9)),   # take 1, skip 9: 1 in 10
            pk.flowset(256, pk.ipfix_data())]
    (doc,) = decoder.decode(pk.ipfix(sets), EXPORTER).documents
    assert doc["event"]["module"] == "ipfix"
    assert doc["event"]["start"] == timeutil.format(1_699_999_990.0)
    assert doc["event"]["end"] == timeutil.format(1_699_999_995.0)
    assert doc["source"]["packets"] == 100


def test_templates_are_per_exporter_and_domain(decoder, pk):
    template = pk.flowset(ie.V9_TEMPLATE_SET, pk.template_record(300, pk.V4_FIELDS))
    decoder.decode(pk.v9([template], domain=1), EXPORTER)
    data = pk.flowset(300, pk.v4_data())
    assert decoder.decode(pk.v9([data], domain=2), EXPORTER).sets_without_template == 1
    assert decoder.decode(pk.v9([data], domain=1), "203.0.113.1").sets_without_template == 1
    assert len(decoder.decode(pk.v9([data], domain=1), EXPORTER).documents) == 1


def test_template_expires_unless_refreshed(pk):
    clock = FakeClock()
    decoder = NetflowDecoder(template_timeout=60, clock=clock)
    template = pk.flowset(ie.V9_TEMPLATE_SET, pk.template_record(300, pk.V4_FIELDS))
    data = pk.flowset(300, pk.v4_data())
    decoder.decode(pk.v9([template]), EXPORTER)
    clock.now += 50
    decoder.decode(pk.v9([template], seq=1), EXPORTER)          # refresh
    clock.now += 50
    assert len(decoder.decode(pk.v9([data], seq=2), EXPORTER).documents) == 1
    clock.now += 61
    expired = decoder.decode(pk.v9([data], seq=3), EXPORTER)
    assert expired.documents == [] and expired.sets_without_template == 1
    assert decoder.templates.expired == 1


def test_ipfix_template_withdrawal(decoder, pk):
    template = pk.flowset(ie.IPFIX_TEMPLATE_SET, pk.template_record(256, pk.IPFIX_FIELDS))
    data = pk.flowset(256, pk.ipfix_data())
    assert len(decoder.decode(pk.ipfix([template, data]), EXPORTER).documents) == 1
    gone = pk.flowset(ie.IPFIX_TEMPLATE_SET, pk.withdrawal(256))
    assert decoder.decode(pk.ipfix([gone], seq=1), EXPORTER).problem is None
    after = decoder.decode(pk.ipfix([data], seq=1), EXPORTER)
    assert after.documents == [] and after.sets_without_template == 1
    assert decoder.templates.withdrawn == 1


def test_ipfix_withdraw_all_templates(decoder, pk):
    template = pk.flowset(ie.IPFIX_TEMPLATE_SET, pk.template_record(256, pk.IPFIX_FIELDS)
                          + pk.template_record(257, pk.IPFIX_FIELDS))
    decoder.decode(pk.ipfix([template]), EXPORTER)
    decoder.decode(pk.ipfix([pk.flowset(ie.IPFIX_TEMPLATE_SET, pk.withdrawal(2))]), EXPORTER)
    assert decoder.templates.withdrawn == 2


def test_v5_sequence_gap_counts_lost_flows(decoder, pk):
    decoder.decode(pk.v5([{}, {}], seq=0), EXPORTER)
    decoder.decode(pk.v5([{}, {}], seq=2), EXPORTER)       # counts flows: 0 + 2
    result = decoder.decode(pk.v5([{}, {}], seq=9), EXPORTER)
    assert result.lost_exports == 5
    assert decoder.export_gaps()[0].missed == 5


def test_v9_sequence_gap_counts_lost_packets(decoder, pk):
    template = pk.flowset(ie.V9_TEMPLATE_SET, pk.template_record(300, pk.V4_FIELDS))
    two = pk.flowset(300, pk.v4_data() + pk.v4_data(sport=1))
    decoder.decode(pk.v9([template, two], seq=10), EXPORTER)
    decoder.decode(pk.v9([two], seq=11), EXPORTER)           # counts packets: 10 + 1
    assert decoder.decode(pk.v9([two], seq=14), EXPORTER).lost_exports == 2


def test_ipfix_sequence_gap_counts_lost_records(decoder, pk):
    template = pk.flowset(ie.IPFIX_TEMPLATE_SET, pk.template_record(256, pk.IPFIX_FIELDS))
    two = pk.flowset(256, pk.ipfix_data() + pk.ipfix_data(sport=1))
    decoder.decode(pk.ipfix([template, two], seq=0), EXPORTER)
    decoder.decode(pk.ipfix([two], seq=2), EXPORTER)         # counts data records: 0 + 2
    assert decoder.decode(pk.ipfix([two], seq=7), EXPORTER).lost_exports == 3


def test_icmp_type_and_code_come_from_the_destination_port(decoder, pk):
    doc = decoder.decode(pk.v5([{"proto": 1, "sport": 0, "dport": 0x0800}]), EXPORTER)
    doc = doc.documents[0]
    assert (doc["source"]["port"], doc["destination"]["port"]) == (8, 0)
    assert doc["network"]["transport"] == "icmp"
