"""What the payload-parser tests share: the no-other-exception probe and a real request."""
from __future__ import annotations

from collectors.capture.appmeta.errors import AppParseError

BROWSER_GET = (
    b"GET /wiki/Main_Page?action=view&x=%20y HTTP/1.1\r\n"
    b"Host: en.wikipedia.org\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    b"Accept: text/html,application/xhtml+xml\r\n"
    b"Referer: https://www.google.com/search?q=wiki\r\n"
    b"Connection: keep-alive\r\n\r\n")


def parse_or_error(fn, data: bytes):
    """fn(data), or AppParseError (the class) when it raised that; anything else propagates."""
    try:
        return fn(data)
    except AppParseError:
        return AppParseError
