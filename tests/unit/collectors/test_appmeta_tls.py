"""collectors.capture.appmeta.tlshello: real hellos from the ssl module, crafted and cut ones."""
from __future__ import annotations

import ssl
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.capture.appmeta.errors import AppParseError
from collectors.capture.appmeta.tlshello import (ClientHello, ServerHello, parse_client_hello,
                                         parse_server_hello, version_text)

from .appmeta_cases import parse_or_error


# Self-signed P-256 certificate for CN=example.org, only for local handshakes in tests.
KEY_AND_CERT = """\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgOoG2UespeDDd6ZN6
zDI6RZJ0sOz22v5hw2zXLRGy1kChRANCAARqAjmldPbVLmXyho2gGCOakP9KRd9R
uRztJL5iT91zQZA78lQtJuc0Sy7eAnClkppdIKHluwQwXvgk7aHGL/Ew
-----END PRIVATE KEY-----
-----BEGIN CERTIFICATE-----
MIIBhDCCASmgAwIBAgIUaAvHTu2fy2ix2dXVJUA9TgeOxMswCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLZXhhbXBsZS5vcmcwIBcNMjYxMTIyMjMzMTIzWhgPMjEyNjEw
MjkyMzMxMjNaMBYxFDASBgNVBAMMC2V4YW1wbGUub3JnMFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEagI5pXT21S5l8oaNoBgjmpD/SkXfUbkc7SS+Yk/dc0GQO/JU
LSbnNEsu3gJwpZKaXSCh5bsEMF74JO2hxi/xMKNTMFEwHQYDVR0OBBYEFLTro9YU
ms2+ZkF60EoCiOjk9X/qMB8GA1UdIwQYMBaAFLTro9YUms2+ZkF60EoCiOjk9X/q
MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAORoiqCneXgjFDZm
WBpsJZ3ywqEBxMls/O2bBurQ49tqAiEAqXwDPWshHtvVuNQrVh7ZmBE1qDOqadDV
OtX5V3VBM/g=
-----END CERTIFICATE-----
"""


def _step(obj: ssl.SSLObject) -> None:
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass


def handshake(tmp_path, max_version: ssl.TLSVersion | None = None):
    """A real in-memory handshake: (client first flight, server first flight, cipher id)."""
    pem = tmp_path / "keycert.pem"
    pem.write_text(KEY_AND_CERT)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(pem))
    server_ctx.set_alpn_protocols(["h2"])
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    client_ctx.set_alpn_protocols(["h2", "http/1.1"])
    if max_version:
        client_ctx.maximum_version = max_version
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="example.org")
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    _step(client)
    first = c_out.read()
    s_in.write(first)
    _step(server)
    answer = s_out.read()
    c_in.write(answer)
    _step(client)
    ids = {c["name"]: c["id"] & 0xFFFF for c in client_ctx.get_ciphers()}
    return first, answer, ids[client.cipher()[0]], client.selected_alpn_protocol()


def test_real_tls13_hellos(tmp_path):
    first, answer, cipher, alpn = handshake(tmp_path)
    ch = parse_client_hello(first)
    assert ch.server_name == "example.org" and 0x0304 in ch.supported_versions
    assert ch.alpn == ["h2", "http/1.1"] and ch.client_version == 0x0303
    assert ch.record_version in (0x0301, 0x0303) and not ch.truncated
    assert parse_server_hello(answer) == ServerHello(0x0304, cipher)
    assert alpn == "h2"
    assert parse_server_hello(first) is None and parse_client_hello(answer) is None


def test_real_tls12_hellos(tmp_path):
    first, answer, cipher, _ = handshake(tmp_path, ssl.TLSVersion.TLSv1_2)
    ch = parse_client_hello(first)
    assert ch.server_name == "example.org" and ch.supported_versions == []
    sh = parse_server_hello(answer)
    assert sh == ServerHello(0x0303, cipher) and version_text(sh.version) == ("tls", "1.2")


def test_every_cut_of_a_client_hello(tmp_path):
    first = handshake(tmp_path)[0]
    full = parse_client_hello(first)
    for cut in range(len(first)):
        ch = parse_client_hello(first[:cut])
        if cut < 6:
            assert ch is None
            continue
        assert ch.truncated and ch.record_version == full.record_version
        assert ch.client_version in (0, full.client_version)
        assert ch.server_name in (None, full.server_name)
        assert ch.supported_versions in ([], full.supported_versions)
        assert ch.alpn in ([], full.alpn)


def test_every_cut_of_a_server_hello(tmp_path):
    answer = handshake(tmp_path)[1]
    full = parse_server_hello(answer)
    hello_end = 5 + ((answer[3] << 8) | answer[4])
    for cut in range(6, hello_end):
        sh = parse_server_hello(answer[:cut])
        assert sh.truncated and sh.cipher in (0, full.cipher)
        assert sh.version in (0, 0x0303, full.version)


def _ext(etype: int, data: bytes) -> bytes:
    return struct.pack("!HH", etype, len(data)) + data


def _sni(*names: bytes, kind: int = 0) -> bytes:
    entries = b"".join(bytes([kind]) + struct.pack("!H", len(n)) + n for n in names)
    return _ext(0, struct.pack("!H", len(entries)) + entries)


def _client_hello(exts: bytes | None, sid: bytes = b"", suites: bytes = b"\x13\x01\x13\x02",
                  comp: bytes = b"\x00", hs_extra: int = 0, record_extra: int = 0) -> bytes:
    body = (b"\x03\x03" + bytes(range(32)) + bytes([len(sid)]) + sid
            + struct.pack("!H", len(suites)) + suites + bytes([len(comp)]) + comp)
    if exts is not None:
        body += struct.pack("!H", len(exts)) + exts
    hs = b"\x01" + (len(body) + hs_extra).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs) + record_extra) + hs


def test_crafted_client_hello_fields():
    exts = (_ext(0x0A0A, b"") + _sni(b"www.example.com")
            + _ext(43, b"\x08\x0a\x0a\x03\x04\x03\x03\xfa\xfa")
            + _ext(16, b"\x00\x0c\x02h2\x08http/1.1") + _ext(0xFAFA, b"\x00"))
    ch = parse_client_hello(_client_hello(exts, sid=b"\x11" * 32))
    assert ch == ClientHello(0x0301, 0x0303, "www.example.com", [0x0304, 0x0303],
                             ["h2", "http/1.1"])


@pytest.mark.parametrize("exts,server_name", [
    (None, None),                                       # SSLv3-style: no extensions
    (b"", None),
    (_sni(), None),                                     # empty server_name (server echo)
    (_ext(0, b""), AppParseError),
    (_sni(b"a\x00b\\"), "a\\x00b\\x5c"),
    (_ext(0, b"\x00\x0c\x01\x00\x05other\x00\x00\x01x"), "x"),   # name type 1 skipped
    (_sni(b"first") + _sni(b"second"), "first"),       # first extension wins
    (_sni(b"other", kind=1), None),
])
def test_server_name_variants(exts, server_name):
    result = parse_or_error(parse_client_hello, _client_hello(exts))
    if server_name is AppParseError:
        assert result is AppParseError
    else:
        assert result.server_name == server_name and not result.truncated


@pytest.mark.parametrize("payload", [
    _client_hello(b"", sid=b"\x00" * 33),                          # session id > 32
    _client_hello(b"", suites=b"\x13"),                            # odd cipher suites
    _client_hello(b"", suites=b""),                                # no cipher suites
    _client_hello(b"", comp=b""),                                  # no compression methods
    _client_hello(b"", hs_extra=-3),                               # fields past hs length
    b"\x16\x03\x01\x00\x00\x01",                                   # record length 0
    b"\x16\x03\x01\xff\xff\x01" + b"\x00" * 100,                   # record length > 2^14+2048
    _client_hello(_ext(0, b"\x00\x10\x00\x00\x03abc")),            # SNI list past extension
    _client_hello(_ext(43, b"\x03\x03\x04\x03")),                  # odd versions length
    _client_hello(_ext(16, b"\x00\x04\x05h2")),                    # ALPN name past its list
    _client_hello(_ext(0, b"") + b"\x00"),                         # partial extension header
    _client_hello(_ext(0, b"") * 200),                             # absurd extension count
])
def test_impossible_client_hellos(payload):
    with pytest.raises(AppParseError):
        parse_client_hello(payload)


def test_fragmented_hello_counts_as_cut():
    hello = _client_hello(_sni(b"example.org") + _ext(21, b"\x00" * 600))
    body = hello[5:]
    # The same handshake message split over two records: reads stop at the first's end.
    frag = (b"\x16\x03\x01" + struct.pack("!H", 300) + body[:300]
            + b"\x16\x03\x01" + struct.pack("!H", len(body) - 300) + body[300:])
    ch = parse_client_hello(frag)
    assert ch.server_name == "example.org" and ch.truncated


def test_not_a_hello():
    for payload in (b"", b"\x16\x03", b"\x16\x03\x01\x00", b"\x17\x03\x03\x00\x20\x01",
                    b"\x16\x02\x00\x00\x20\x01", b"\x16\x03\x01\x00\x20\x0b",
                    b"GET / HTTP/1.1\r\n"):
        assert parse_client_hello(payload) is None and parse_server_hello(payload) is None


def _server_hello(exts: bytes) -> bytes:
    body = (b"\x03\x03" + b"\x01" * 32 + b"\x20" + b"\x02" * 32 + b"\x13\x02\x00"
            + struct.pack("!H", len(exts)) + exts)
    hs = b"\x02" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x03" + struct.pack("!H", len(hs)) + hs


def test_crafted_server_hello():
    assert parse_server_hello(_server_hello(_ext(43, b"\x03\x04"))) == ServerHello(0x0304, 0x1302)
    assert parse_server_hello(_server_hello(_ext(51, b"\x00\x1d"))) == ServerHello(0x0303, 0x1302)
    for bad in (_ext(43, b"\x03"), _ext(43, b"\x03\x04") + b"\x00\x2b", _ext(43, b"\x03\x04")[:-1]):
        with pytest.raises(AppParseError):
            parse_server_hello(_server_hello(bad))


def test_version_text():
    assert [version_text(v) for v in (0x0300, 0x0301, 0x0302, 0x0303, 0x0304, 0x7F1C)] == [
        ("ssl", "3.0"), ("tls", "1.0"), ("tls", "1.1"), ("tls", "1.2"), ("tls", "1.3"),
        ("tls", "0x7f1c")]


@settings(max_examples=2000, deadline=None)
@given(st.sampled_from([b"", b"\x16\x03\x01", b"\x16\x03\x03\x00\x80\x01",
                        b"\x16\x03\x01\x01\x00\x02"]),
       st.binary(max_size=400))
def test_tls_fuzz(prefix, data):
    for fn in (parse_client_hello, parse_server_hello):
        parse_or_error(fn, prefix + data)


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4),
       st.integers(6, 700))
def test_tls_fuzz_mutated_real_hello(edits, cut):
    data = bytearray(REAL_HELLO)
    for pos, value in edits:
        data[6 + pos % (len(data) - 6)] = value        # keep record header and type
    result = parse_or_error(parse_client_hello, bytes(data[:cut]))
    assert result is AppParseError or isinstance(result, ClientHello)


def _real_hello() -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    out = ssl.MemoryBIO()
    _step(ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname="example.org"))
    return out.read()


REAL_HELLO = _real_hello()


def test_client_hello_from_memory_bio_only():
    ch = parse_client_hello(REAL_HELLO)
    assert ch.server_name == "example.org" and 0x0304 in ch.supported_versions
    assert ch.alpn == ["h2", "http/1.1"]
