"""DGA detector and model: generated families, benign look-alikes, event time, snapshot."""
from __future__ import annotations

import csv
import json
import random
import string
from dataclasses import asdict

import pytest

from detectors import dgamodel
from detectors.dga import DgaConfig, DgaDetector
from tests.datafiles import data_file
from tests.unit.detectors.ongoing import assert_kept_current


def _query(i, name, rcode="NOERROR", src="10.0.0.20"):
    return {"event": {"id": f"q{i}", "dataset": "watchkeeper.dns"}, "source": {"ip": src},
            "dns": {"question": {"name": name, "type": "A"}, "response_code": rcode}}


def _stream(names, gap=2.0, start=1000.0, **kw):
    return [(_query(i, name, **kw), start + i * gap) for i, name in enumerate(names)]


def dga_names(n=30, seed=5, tld="com", alphabet=string.ascii_lowercase):
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(12, 20))) + f".{tld}"
            for _ in range(n)]


BROWSING = [f"{w}.com" for w in ("wikipedia", "microsoft", "government", "weather", "football",
                                 "newspaper", "facebook", "university", "bankofchina",
                                 "taxoffice", "cloudflare", "shoppingmall")] * 5


def _run(det, stream, timer_every=None):
    alerts = []
    for i, (event, now) in enumerate(stream):
        alerts += det.on_event(event, now)
        if timer_every and i % timer_every == 0:
            alerts += det.on_timer(now)
    return alerts


@pytest.mark.parametrize("stream, severity", [
    (_stream(dga_names(), rcode="NXDOMAIN"), 3),
    (_stream(dga_names(alphabet="0123456789abcdef", tld="net")), 2),
    (_stream(dga_names(12, alphabet=string.ascii_lowercase + string.digits)), 2),
    (_stream(BROWSING), None),
    (_stream(dga_names(5), rcode="NXDOMAIN"), None),                 # below min_names
    (_stream(dga_names(30), gap=600.0), None),                       # slower than the window
    (_stream([f"{n.split('.')[0][:5]}.com" for n in dga_names()]), None),  # too short to score
])
def test_shapes(stream, severity):
    alerts = _run(DgaDetector(), stream)
    if severity is None:
        assert alerts == []
        return
    assert {a.source_ip for a in alerts} == {"10.0.0.20"}
    assert alerts[-1].severity == severity and alerts[-1].technique_id == "T1568.002"
    assert all(0 <= v <= 1 for v in alerts[-1].subscores.values())


def test_share_gate_and_nxdomain_override():
    mixed = dga_names(10) + BROWSING * 2 + [f"site{i}-{w}.org" for i, w in enumerate("abcdefgh"
                                                                                    * 10)]
    stream = _stream(sorted(set(mixed)))
    assert _run(DgaDetector(), stream) == []                           # 10 of ~100: a small share
    nx = [(e, t) for e, t in stream]
    for event, _ in nx:
        if event["dns"]["question"]["name"] in dga_names(10):
            event["dns"]["response_code"] = "NXDOMAIN"
    assert _run(DgaDetector(), nx)


def test_repeats_are_raised_only_as_the_names_double():
    alerts = _run(DgaDetector(DgaConfig(min_names=5)), _stream(dga_names(60)))
    assert [a.count for a in alerts] == [5, 10, 20, 40]


def test_a_burst_that_stops_is_stored_with_its_final_count():
    # 60 generated names in two minutes, raised at 5, 10, 20, 40. Another host's browsing moves
    # the clock on; a refresh period (60 s) after the last name, the final count is sent once.
    burst = _stream(dga_names(60), gap=2.0)
    clock = _stream(BROWSING[:12], gap=10.0, start=1130.0, src="10.0.0.30")
    det = DgaDetector(DgaConfig(min_names=5))
    alerts = _run(det, burst + clock, timer_every=1)
    flagged = len(det.snapshot()["sources"]["10.0.0.20"]["flagged"])    # 52 of the 60 names
    assert [a.count for a in alerts] == [5, 10, 20, 40, flagged] and flagged > 40
    assert {a.first_seen for a in alerts} == {alerts[0].first_seen}
    early = [(e, t) for e, t in burst + clock if t < 1118.0 + 55]
    assert [a.count for a in _run(DgaDetector(DgaConfig(min_names=5)), early, 1)][-1] == 40


def test_a_slow_dga_keeps_its_alert_current():
    # 120 generated names, one every 10 s: doubling alone last raised at the 80th (~13 min).
    # Refreshed by the first flagged name a minute on: at most 60 s + one gap apart.
    alerts = _run(DgaDetector(), _stream(dga_names(120), gap=10.0))
    assert_kept_current(alerts, 1000.0 + 119 * 10.0, most=60.0 + 10.0)


def test_timers_do_not_change_alerts_and_state_expires():
    stream = _stream(dga_names(40), rcode="NXDOMAIN")
    plain = _run(DgaDetector(), stream)
    det = DgaDetector()
    assert [asdict(a) for a in _run(det, stream, timer_every=1)] == [asdict(a) for a in plain]
    det.on_timer(stream[-1][1] + det.config.window_seconds + 1)
    assert det.snapshot()["sources"] == {}


def test_snapshot_restore_mid_stream_gives_the_same_alerts():
    stream = _stream(dga_names(60), rcode="NXDOMAIN")
    whole = _run(DgaDetector(), stream)
    first = DgaDetector()
    head = _run(first, stream[:20])
    second = DgaDetector()
    second.restore(json.loads(json.dumps(first.snapshot())))
    assert [asdict(a) for a in head + _run(second, stream[20:])] == [asdict(a) for a in whole]


def test_memory_is_bounded_and_counted():
    det = DgaDetector(DgaConfig(max_sources=100, max_domains_per_source=100))
    _run(det, _stream([f"www.site{i}.com" for i in range(300)]))
    assert len(det.snapshot()["sources"]["10.0.0.20"]["domains"]) == 100
    for i in range(150):
        det.on_event(_query(i, "example.com", src=f"10.9.{i // 250}.{i % 250}"), 2000.0 + i)
    assert len(det.snapshot()["sources"]) == 100 and det.evicted_sources == 51


@pytest.mark.parametrize("params", [{"min_names": 1}, {"min_score": 0.2}, {"min_ratio": 2},
                                    {"window_seconds": 0}, {"unknown": 1}])
def test_config_rejects_invalid_values(params):
    with pytest.raises(ValueError):
        DgaConfig(**params)


def test_persisted_model_metrics_and_explanation():
    model = dgamodel.load_default()
    meta = json.loads(dgamodel.MODEL_PATH.read_text())["metadata"]
    assert meta["held_out"]["precision"] >= 0.98 and meta["held_out"]["recall"] >= 0.95
    assert model.threshold_ >= 0.5 and all(k.endswith("_") for k in ("weights_", "intercept_"))
    assert model.score_samples(["xjkqzvbwpleqrt"])[0] > 0.9 > model.score_samples(["weather"])[0]
    assert model.explain("xjkqzvbwpleqrt")


def test_training_is_deterministic():
    pytest.importorskip("sklearn")
    pytest.importorskip("english_words")
    first, meta1 = dgamodel.train(seed=3, n_per_class=600)
    second, meta2 = dgamodel.train(seed=3, n_per_class=600)
    assert first.to_dict(meta1) == second.to_dict(meta2)


def test_real_benign_names_are_rarely_flagged():
    """netrack plain qnames (MANIFEST.md flows/): ordinary names, label 0."""
    path = data_file("flows/netrack_dns-plain-qnames.csv")
    from detectors.dns import split_name
    with open(path, newline="") as fh:
        labels = {p.registered.split(".")[0] for row in csv.DictReader(fh)
                  if (p := split_name(row["qname"]))}
    labels = [x for x in labels if len(x) >= DgaConfig().min_label_length]
    scores = dgamodel.load_default().score_samples(labels)
    assert sum(s >= DgaConfig().min_score for s in scores) / len(labels) < 0.04


def test_a_resolver_relaying_a_client_is_not_the_actor():
    relayed = _stream(dga_names(), rcode="NXDOMAIN")
    for event, _ in relayed:
        event["watchkeeper"] = {"dns": {"forwarded_for": "10.0.0.77"}}
    assert _run(DgaDetector(), relayed) == []
    assert _run(DgaDetector(), _stream(dga_names(), rcode="NXDOMAIN"))
