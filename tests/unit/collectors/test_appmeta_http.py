"""collectors.capture.appmeta.httphead: request and response heads from one TCP segment."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.capture.appmeta.errors import AppParseError
from collectors.capture.appmeta.httphead import (HttpRequest, HttpResponse, parse_request,
                                         parse_response)

from .appmeta_cases import BROWSER_GET, parse_or_error


POST = (b"POST /api/v1/login HTTP/1.0\r\nhost:   api.example.org:8443  \r\n"
        b"content-type: application/json\r\ncontent-length: 17\r\n\r\n{\"user\": \"root\"}")


def test_browser_get():
    assert parse_request(BROWSER_GET) == HttpRequest(
        "GET", "/wiki/Main_Page?action=view&x=%20y", "1.1", "en.wikipedia.org",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "https://www.google.com/search?q=wiki")


def test_post_lowercase_headers_and_body():
    assert parse_request(POST) == HttpRequest("POST", "/api/v1/login", "1.0",
                                              "api.example.org:8443", None, None)


@pytest.mark.parametrize("payload,expected", [
    (b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n",
     ("CONNECT", "example.org:443", "1.1", "example.org:443")),
    (b"OPTIONS * HTTP/1.1\r\n\r\n", ("OPTIONS", "*", "1.1", None)),
    (b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n\r\n",
     ("M-SEARCH", "*", "1.1", "239.255.255.250:1900")),
    (b"PROPFIND /dav/ HTTP/1.1\nHost: files\nDepth: 1\n\n", ("PROPFIND", "/dav/", "1.1", "files")),
    (b"GET /\r\n", ("GET", "/", "0.9", None)),
    (b"GET /a b  HTTP/1.1\r\nHost: h\r\n\r\n", ("GET", "/a b", "1.1", "h")),
    (b"HEAD http://proxy.example/x HTTP/1.1\r\nHost: proxy.example\r\nHost: other\r\n\r\n",
     ("HEAD", "http://proxy.example/x", "1.1", "proxy.example")),
    (b"GET /\xe9t\xe9 HTTP/1.1\r\nUser-Agent: caf\xe9\r\n\r\n", ("GET", "/\xe9t\xe9", "1.1", None)),
])
def test_request_variants(payload, expected):
    r = parse_request(payload)
    assert (r.method, r.uri, r.version, r.host) == expected


def test_headers_after_the_blank_line_are_body():
    r = parse_request(b"GET / HTTP/1.1\r\n\r\nHost: smuggled\r\n\r\n")
    assert r.host is None
    r = parse_request(b"GET / HTTP/1.1\r\nX: 1\n\nHost: smuggled\r\n\r\n")   # bare-LF blank line
    assert r.host is None


@pytest.mark.parametrize("payload", [
    b"", b"get / HTTP/1.1\r\n", b"FOO / HTTP/1.1\r\n", b"GET/ HTTP/1.1\r\n", b"GET",
    b"\x16\x03\x01\x02\x00", b"SSH-2.0-x\r\n", b"HTTP/1.1 200 OK\r\n",
])
def test_not_a_request(payload):
    assert parse_request(payload) is None


@pytest.mark.parametrize("payload", [
    b"GET  HTTP/1.1\r\n", b"GET / HTTP/x.y\r\n", b"GET / HTTP/\r\n", b"GET \r\n",
    b"GET /a /b\r\n",
])
def test_bad_request_line(payload):
    with pytest.raises(AppParseError):
        parse_request(payload)


def test_every_cut_of_a_request():
    full = parse_request(BROWSER_GET)
    for cut in range(len(BROWSER_GET) + 1):
        r = parse_request(BROWSER_GET[:cut])
        if cut < 4:
            assert r is None
            continue
        assert r.method == "GET" and full.uri.startswith(r.uri)
        assert r.version in ("", "1", "1.", "1.1")
        for got, whole in ((r.host, full.host), (r.user_agent, full.user_agent),
                           (r.referrer, full.referrer)):
            assert got in (None, whole)
    # Complete lines count even without the blank line.
    r = parse_request(BROWSER_GET.split(b"Accept")[0])
    assert r.host == "en.wikipedia.org" and r.user_agent.startswith("Mozilla") and not r.referrer


def test_long_request_line_is_cut_not_fatal():
    r = parse_request(b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: h\r\n\r\n")
    assert r.version == "" and len(r.uri) < 10000 and r.host is None


@pytest.mark.parametrize("payload,expected", [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", HttpResponse("1.1", 200, "OK")),
    (b"HTTP/1.0 304 Not Modified\r\n\r\n", HttpResponse("1.0", 304, "Not Modified")),
    (b"HTTP/1.1 404\r\n\r\n", HttpResponse("1.1", 404, "")),
    (b"HTTP/2 421 Misdirected Request\n\n", HttpResponse("2", 421, "Misdirected Request")),
    (b"HTTP/1.1 200 OK", HttpResponse("1.1", 200, "OK")),
])
def test_responses(payload, expected):
    assert parse_response(payload) == expected


@pytest.mark.parametrize("payload", [
    b"HTTP/1.1 2000 OK\r\n", b"HTTP/1.1 20 OK\r\n", b"HTTP/1.1 abc OK\r\n", b"HTTP/1.1\r\n",
    b"HTTP/ 200 OK\r\n", b"HTTP/1.1 +20 OK\r\n",
])
def test_bad_status_line(payload):
    with pytest.raises(AppParseError):
        parse_response(payload)


def test_not_a_response():
    for payload in (b"", b"HTTP", b"http/1.1 200 OK\r\n", BROWSER_GET):
        assert parse_response(payload) is None


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from([b"", b"GET ", b"POST /", b"HTTP/", b"HTTP/1.1 ", b"GET / HTTP/1.1\r\n"]),
       st.binary(max_size=300))
def test_http_fuzz(prefix, data):
    for fn in (parse_request, parse_response):
        result = parse_or_error(fn, prefix + data)
        assert result is None or result is AppParseError or isinstance(
            result, (HttpRequest, HttpResponse))
