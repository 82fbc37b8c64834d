"""Per-exporter NetFlow state is bounded: spoofed observation domains evict the least
recently seen (exporter, domain) pair from every table, idle pairs are swept, and a real
exporter that was evicted is learned again from its next template."""
from __future__ import annotations

import logging

from collectors.netflow import NetflowDecoder
from collectors.netflow import fields as ie
from collectors.netflow.exporters import EVICTIONS
from watchkeeper import ratelog

EXPORTER = "198.51.100.7"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sampled(pk, domain: int, interval: int = 64) -> bytes:
    """Template + sampling options + one flow record, from one observation domain."""
    return pk.v9([pk.flowset(ie.V9_OPTIONS_SET, pk.v9_options_template(400)),
                  pk.flowset(ie.V9_TEMPLATE_SET, pk.template_record(300, pk.V4_FIELDS)),
                  pk.flowset(400, pk.v9_options_data(interval)),
                  pk.flowset(300, pk.v4_data())], domain=domain, seq=domain)


def tables(decoder: NetflowDecoder) -> dict[str, int]:
    inner = decoder._decoder
    return {"templates": len(decoder.templates.templates),
            "sampling": len(inner.sampling.rates), "sequence": len(inner.sequence.streams),
            "pairs": len(decoder.exporters)}


def test_spoofed_domains_are_capped_in_every_table(pk):
    decoder = NetflowDecoder(max_exporters=8)
    evicted_before = EVICTIONS.labels(reason="cap")._value.get()
    for domain in range(500):
        result = decoder.decode(sampled(pk, domain), EXPORTER)
        assert result.documents[0]["source"]["packets"] == 640   # each one decoded in full
    assert tables(decoder) == {"templates": 16, "sampling": 8, "sequence": 8, "pairs": 8}
    assert decoder.exporters.evicted["cap"] == 492
    assert EVICTIONS.labels(reason="cap")._value.get() - evicted_before == 492
    # the newest pairs are the ones kept: their templates still decode a data-only datagram
    data_only = pk.v9([pk.flowset(300, pk.v4_data())], domain=499, seq=600)
    assert len(decoder.decode(data_only, EXPORTER).documents) == 1
    evicted = pk.v9([pk.flowset(300, pk.v4_data())], domain=3, seq=600)
    assert decoder.decode(evicted, EXPORTER).sets_without_template == 1


def test_idle_pairs_are_swept_and_relearned(pk):
    clock = Clock()
    decoder = NetflowDecoder(clock=clock, max_exporters=100, exporter_idle_s=600,
                             template_timeout=10_000)
    decoder.decode(sampled(pk, 1), EXPORTER)
    clock.now += 300
    decoder.decode(sampled(pk, 2), EXPORTER)
    clock.now += 301                       # domain 1 idle 601 s, domain 2 only 301 s
    decoder.decode(sampled(pk, 3), EXPORTER)
    assert decoder.exporters.evicted == {"cap": 0, "idle": 1}
    assert tables(decoder)["pairs"] == 2 and tables(decoder)["sampling"] == 2
    assert decoder._decoder.sampling.rate_for(EXPORTER, 1) == 1     # forgotten
    again = decoder.decode(sampled(pk, 1, interval=32), EXPORTER)   # it re-sends its templates
    assert again.documents[0]["source"]["packets"] == 320


def test_templates_per_pair_are_capped(pk):
    decoder = NetflowDecoder()
    records = b"".join(pk.template_record(256 + i, pk.V4_FIELDS) for i in range(600))
    decoder.decode(pk.v9([pk.flowset(ie.V9_TEMPLATE_SET, records)]), EXPORTER)
    assert len(decoder.templates.templates) == 512
    assert decoder.templates.per_stream_evicted == 88


def test_unsupported_versions_are_one_reason_kind(pk):
    from watchkeeper.deadletter import reason_kind
    decoder = NetflowDecoder()
    kinds = {reason_kind(decoder.decode(bytes([v >> 8, v & 255]) + bytes(30), EXPORTER).problem)
             for v in range(11, 3000)}
    assert kinds == {"unsupported_version"}


def test_sampling_warnings_per_spoofed_domain_are_rate_limited(pk, caplog):
    ratelog.FILTER.flush()
    caplog.clear()
    decoder = NetflowDecoder(max_exporters=4)
    with caplog.at_level(logging.INFO, logger="netflume"):
        for domain in range(300):
            decoder.decode(sampled(pk, domain), EXPORTER)
        ratelog.FILTER.flush()
    sampling = [r for r in caplog.records if r.name == "netflume.sampling"]
    assert 1 <= len(sampling) <= ratelog.BURST + 1
    assert "suppressed 295 similar messages" in sampling[-1].getMessage()
    assert "(domain 0) reports 1-in-64 sampling" in sampling[-1].getMessage()
