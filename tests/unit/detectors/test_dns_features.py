"""DNS tunnels the long-random-name rule missed (idle, hex, short labels, REFUSED zones), and
the look-alikes that must stay quiet (CDN hashes, inventory names, anti-virus look-ups)."""
from __future__ import annotations

import random

import pytest

from detectors.dns import DnsTunnelConfig, DnsTunnelDetector
from detectors.dns_features import is_clock, looks_encoded

HEX = "0123456789abcdef"
B32 = "abcdefghijklmnopqrstuvwxyz234567"
TYPES = ("TXT", "CNAME", "MX")


def _event(i, name, qtype="A", rcode="NOERROR", answers=(), src="10.0.0.9", dst="10.0.0.53"):
    return {"event": {"id": f"q{i}", "dataset": "watchkeeper.dns"},
            "source": {"ip": src}, "destination": {"ip": dst, "port": 53},
            "dns": {"question": {"name": name, "type": qtype}, "response_code": rcode,
                    "answers": [{"data": a} for a in answers]}}


def _times(n, period, jitter, seed=1):
    rng, t, out = random.Random(seed), 1000.0, []
    for _ in range(n):
        out.append(t)
        t += period * rng.uniform(1 - jitter, 1 + jitter)
    return out


def _run(stream, config=None):
    det = DnsTunnelDetector(config)
    alerts, last_timer = [], None
    for event, t in stream:
        alerts += det.on_event(event, t)
        if last_timer is None or t - last_timer >= 5:
            alerts += det.on_timer(t)
            last_timer = t
    return alerts


def _rand(rng, alphabet, n):
    return "".join(rng.choice(alphabet) for _ in range(n))


def idle_dnscat(n=40, period=5.0):
    """dnscat2 idling: an 18-hex-char poll (header only) every ~5 s +-30 %, TXT/CNAME/MX."""
    rng = random.Random(7)
    return [(_event(i, f"{_rand(rng, HEX, 18)}.c2-updates.com", TYPES[i % 3],
                    answers=[_rand(rng, HEX, 18)]), t)
            for i, t in enumerate(_times(n, period, 0.3))]


def idle_short_a(n=40, period=60.0):
    """An APT-style beacon: a short base32 nonce in an A query once a minute +-20 %."""
    rng = random.Random(8)
    return [(_event(i, f"{_rand(rng, B32, 8)}.ns.cdn-metrics.net", "A",
                    answers=["10.1.2.3"]), t)
            for i, t in enumerate(_times(n, period, 0.2))]


def hex_plaintext(n=30):
    """Unencrypted exfiltration: the hex of a text file, 60 characters a name, as fast as it
    can; hex of text sits near 3.3 bits a character, below the 3.5-bit entropy rule."""
    text = ("Quarterly budget of the county finance bureau, draft for review. " * 40).encode()
    chunks = [text[k:k + 30].hex() for k in range(0, 30 * n, 30)]
    return [(_event(i, f"{c}.{i}.exfil-data.org", "A", rcode="NXDOMAIN"), 1000 + i * 0.3)
            for i, c in enumerate(chunks)]


def hex_idle(n=40):
    """Unencrypted and idle: five bytes of text as hex (mostly digits) and a counter, every
    ~10 s."""
    text = b"ls -la /home; cat /etc/passwd; whoami; uname -a; " * 10
    return [(_event(i, f"{text[5 * i:5 * i + 5].hex()}.{i:x}.poll.upd-svc.info", "A"), t)
            for i, t in enumerate(_times(n, 10.0, 0.2))]


def refused_internal(n=30):
    """A tunnel to a zone under no public suffix, which the internal resolver refuses."""
    rng = random.Random(9)
    return [(_event(i, f"{_rand(rng, B32, 10)}.{_rand(rng, B32, 6)}.t.corp-tunnel.lan",
                    "A", rcode="REFUSED"), 1000 + i * 2.0 * random.Random(i).uniform(0.2, 2))
            for i in range(n)]


def short_label_bulk(n=160):
    """A tunnel in A records with 12-character labels, in irregular bursts: volume alone."""
    rng = random.Random(10)
    return [(_event(i, f"{_rand(rng, B32 + HEX, 12)}.dl.exfil-a.net", "A",
                    answers=["192.0.2.1"]), 1000 + (i // 20) * 7 + (i % 20) * 0.05)
            for i in range(n)]


@pytest.mark.parametrize("stream, domain", [
    (idle_dnscat(), "c2-updates.com"),
    (idle_short_a(), "cdn-metrics.net"),
    (hex_plaintext(), "exfil-data.org"),
    (hex_idle(), "upd-svc.info"),
    (refused_internal(), "corp-tunnel.lan"),
    (short_label_bulk(), "exfil-a.net"),
])
def test_tunnels_beyond_long_random_names_are_found(stream, domain):
    alerts = _run(stream)
    assert {a.entity for a in alerts} == {f"10.0.0.9->{domain}"}
    assert alerts[0].count >= 10 and "encoded" in alerts[0].subscores


def test_idle_tunnel_is_named_within_a_dozen_polls():
    alerts = _run(idle_short_a(n=40, period=300.0))         # one poll every five minutes
    assert alerts and alerts[0].count <= 12


def cloudfront(n=40):
    """A browsing user: CloudFront distributions' hashed names, answered with addresses."""
    rng = random.Random(11)
    return [(_event(i, f"d{_rand(rng, B32[:26] + '0123456789', 13)}.cloudfront.net", "A",
                    answers=["13.32.0.1", "13.32.0.2"]), 1000 + rng.expovariate(1 / 40) * i)
            for i in range(n)]


def inventory_lookups(n=200):
    """A management server resolving workstation names on a clock; a third are stale."""
    return [(_event(i, f"ws{i:05d}.corp.lan", "A",
                    rcode="NXDOMAIN" if i % 3 == 0 else "NOERROR"), 1000 + i * 2.0)
            for i in range(n)]


def antivirus_hashes(n=100):
    rng = random.Random(13)
    return [(_event(i, f"{_rand(rng, HEX, 32)}.avqs.mcafee.com", "A",
                    answers=["127.0.0.1"]), 1000 + i * 3.0) for i in range(n)]


def api_poller(n=200):
    """A monitoring agent asking the same two names on a clock: regular, but not fresh."""
    return [(_event(i, f"{'api' if i % 2 else 'status'}.vendor2024.com", "A"), 1000 + i * 30.0)
            for i in range(n)]


@pytest.mark.parametrize("stream", [cloudfront(), inventory_lookups(),
                                    antivirus_hashes(), api_poller()])
def test_look_alikes_stay_quiet(stream):
    assert _run(stream) == []


def test_a_resolver_is_never_blamed_even_unmarked():
    """Zeek and Suricata logs carry no forwarded_for: the resolver is known because it
    answers other hosts' queries, so its own recursive queries are its clients'."""
    client = [(_event(i, e["dns"]["question"]["name"], "TXT"), t)
              for i, (e, t) in enumerate(idle_dnscat())]
    relayed = [(_event(1000 + i, e["dns"]["question"]["name"], "TXT", src="10.0.0.53",
                       dst="198.51.100.53"), t + 0.01) for i, (e, t) in enumerate(idle_dnscat())]
    alerts = _run(sorted(client + relayed, key=lambda p: p[1]))
    assert {a.source_ip for a in alerts} == {"10.0.0.9"}


@pytest.mark.parametrize("label, encoded", [
    ("4a6f686e20536d697468", True), ("mzxw6ytboi", True), ("mzxw6ytb2i4q", True),
    ("gezdgnbvgy3tqojq", True), ("web01", False), ("server2019", False), ("ws00123", False),
    ("rr3---sn-ab5l6nzr", False), ("d3c4fx9ab1k2", True), ("www", False),
    ("2062756467657420", True), ("443", False), ("20261203", False), ("74696e", True),
    ("cdn2", False), ("mail25", False),
    # iodine Base128 as the capture writes it, and as a Zeek log unescapes it
    ("1eaba82\\xca2hb\\xbe\\xeey\\xd6wgi", True), ("1eaba82\xca2hb\xbe\xeey", True),
    ("xn--80ak6aa92e", False),
])
def test_looks_encoded(label, encoded):
    assert looks_encoded(label) is encoded


def test_clock():
    assert is_clock(_times(12, 60.0, 0.3), 10)
    assert not is_clock(_times(12, 60.0, 0.3)[:9], 10)
    rng = random.Random(3)
    assert not is_clock(sorted(rng.uniform(0, 3600) for _ in range(30)), 10)


def test_min_encoded_names_is_configurable():
    assert _run(idle_dnscat(n=12)) != []
    assert _run(idle_dnscat(n=12), DnsTunnelConfig(min_encoded_names=20)) == []


def test_hosts_answering_llmnr_are_still_judged():
    """Every Windows host answers LLMNR/mDNS for its own name: not a resolver."""
    llmnr = [(_event(900 + i, "fileserver", src="10.0.0.20", dst="10.0.0.9") | {
        "destination": {"ip": "10.0.0.9", "port": 5355}}, 990.0 + i) for i in range(3)]
    alerts = _run(llmnr + idle_dnscat())
    assert {a.source_ip for a in alerts} == {"10.0.0.9"}


def test_learned_resolvers_expire_on_event_time():
    det = DnsTunnelDetector()
    for event, t in idle_dnscat(n=5):
        det.on_event(event, t)
    assert det.snapshot()["resolvers"] == {"10.0.0.53": pytest.approx(idle_dnscat(n=5)[-1][1])}
    det.on_timer(idle_dnscat(n=5)[-1][1] + 2 * 86_400)
    assert det.snapshot()["resolvers"] == {}



B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _txt(data: str) -> str:
    """A TXT answer as the packet collector and Zeek write it."""
    return f"TXT {len(data)} {data}"


def txt_stager(n=20, framed=True):
    """A stager pulling a script in base64 TXT answers to plain numbered names (no data in the
    queries), one chunk per name; some frame each chunk ("@…@")."""
    rng = random.Random(17)
    chunk = (lambda: f"@{_rand(rng, B64, 252)}@") if framed else (lambda: _rand(rng, B64, 255))
    return [(_event(i, f"l.{i + 1}.ns.update-cache.net", "TXT", answers=[_txt(chunk())]),
             1000 + i * 0.4) for i in range(n)]


def cobalt_stage(n=20):
    """Cobalt Strike's DNS stager: `aaa.stage.<id>`, `baa.stage.<id>`…, 255 characters each."""
    rng = random.Random(18)
    names = [f"{chr(97 + i % 26)}{chr(97 + i // 26)}a.stage.48213.cdn-static.org"
             for i in range(n)]
    return [(_event(i, name, "TXT", answers=[_txt(_rand(rng, B64, 255))]), 1000 + i * 0.05)
            for i, name in enumerate(names)]


@pytest.mark.parametrize("stream, domain", [
    (txt_stager(), "update-cache.net"),
    (txt_stager(framed=False), "update-cache.net"),
    (cobalt_stage(), "cdn-static.org"),
])
def test_downstream_only_channels_are_found(stream, domain):
    alerts = _run(stream)
    assert {a.entity for a in alerts} == {f"10.0.0.9->{domain}"}
    assert "encoded_answers" in alerts[0].message or alerts[0].subscores["encoded_answers"] > 0
    assert alerts[0].count == 10                # the tenth chunk of data


def dkim_checks(n=40):
    """A mail server checking DKIM for many mails of one sender: base64 keys under
    `_domainkey`, a 255-character string split in two as DNS requires."""
    rng = random.Random(19)
    return [(_event(i, f"sel{i % 12}._domainkey.bulk-mailer.com", "TXT",
                    answers=[_txt("v=DKIM1; k=rsa; p=" + _rand(rng, B64, 200)) + " "
                             + _txt(_rand(rng, B64, 192))]), 1000 + i * 20.0)
            for i in range(n)]


def spf_chain(n=30):
    """SPF evaluation: the include chain of a big provider, asked again for every mail."""
    names = ["_spf.mail-provider.com"] + [f"_netblocks{i}.mail-provider.com" for i in range(4)]
    return [(_event(i, names[i % len(names)], "TXT",
                    answers=[_txt("v=spf1 ip4:35.190.247.0/24 ip4:64.233.160.0/19 "
                                  "ip6:2001:4860:4000::/36 ~all")]), 1000 + i * 7.0)
            for i in range(n)]


def repeated_config_fetch(n=60):
    """An agent reading one base64 TXT record on a clock: big answers, but never a fresh name."""
    rng = random.Random(20)
    blob = _rand(rng, B64, 240)
    return [(_event(i, "cfg.agent-vendor.com", "TXT", answers=[_txt(blob)]), 1000 + i * 60.0)
            for i in range(n)]


@pytest.mark.parametrize("stream", [dkim_checks(), spf_chain(), repeated_config_fetch()])
def test_txt_look_alikes_stay_quiet(stream):
    assert _run(stream) == []


@pytest.mark.parametrize("kind, data, carried", [
    ("AAAA", "4a47:5a70:6247:5656:6347:7876:5957:5167", True),      # "JGZpbGVVcGxvYWQg"
    ("AAAA", "2a00:1450:4001:82b::200e", False),
    ("AAAA", "2606:4700:4700::1111", False),
    ("AAAA", "not an address", False),
    ("CNAME", "341-VGhpcyB0ZXh0IGlzIGEgY29tcGFjdCwgc3-.c2-example.net", True),
    ("MX", "731-RydWN0dXJlZCBzdHJpbmcgZGVzaWduZWQgdG8gY-.c2-example.net", True),
    ("CNAME", "e1234.dscb.akamaiedge.net", False),
    ("CNAME", "224i4yxa5dv7c2xz3womw6peuasteono.dkim.amazonses.com", False),   # lower case
    ("CNAME", "star-azurefd-prod.trafficmanager.net", False),
    ("CNAME", "Exchange2019Server01.Corp.Example.com", False),   # mixed case, but a name
    ("TXT", _txt("google-site-verification=4uX7rT0pLmQ2zY9wVbN3cD8eF1gH5jK6sA0qR2tU9vW"), False),
    ("NULL", "<unknown type=10>", True),
    ("", "<unknown type=10>", True),          # Zeek's answers carry no type
])
def test_answers_that_carry_data(kind, data, carried):
    from detectors.dns_features import is_data_answer
    assert is_data_answer(kind, data) is carried


def _answered(i, name, kind, data, t):
    event = _event(i, name, kind)
    event["dns"]["answers"] = [{"type": kind, "data": data}]
    return event, t


def rotated_downstream(n=30, domains=6):
    """An implant pulling data in AAAA answers (16 bytes of text each) to counter names,
    asking each under the next of several domains (RogueRobin's rotation)."""
    rng = random.Random(21)
    stream = []
    for i in range(n):
        text = _rand(rng, B64, 16).encode()
        address = ":".join(text[k:k + 2].hex() for k in range(0, 16, 2))
        stream.append(_answered(i, f"201-93172-{i * 37}.look-alike{i % domains}.stream",
                                "AAAA", address, 1000 + i * 3.0))
    return stream


def browsing_many_domains(n=60):
    """A browser: AAAA and CNAME answers of ordinary addresses and CDN targets, many sites."""
    stream = []
    for i in range(n):
        site = f"news-site{i % 15}.com"
        stream.append(_answered(2 * i, f"img{i}.{site}", "CNAME",
                                f"e{4000 + i}.dscb.akamaiedge.net", 1000 + i * 2.0))
        stream.append(_answered(2 * i + 1, f"static{i}.{site}", "AAAA",
                                f"2a02:26f0:{i:x}::5f64:{i:x}", 1000 + i * 2.0 + 1))
    return stream


def test_a_downstream_channel_rotated_over_domains_is_named():
    alerts = _run(rotated_downstream())
    assert {(a.entity, a.rule_id) for a in alerts} == {
        ("10.0.0.9->*", "wk.dns_tunneling.spread_answers")}
    assert alerts[0].count >= 10 and "answers of encoded data" in alerts[0].message


def test_browsing_many_domains_brings_back_no_data():
    assert _run(browsing_many_domains()) == []
