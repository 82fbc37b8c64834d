"""collectors.capture.appmeta.sshbanner: identification lines (RFC 4253 4.2)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.capture.appmeta.errors import AppParseError
from collectors.capture.appmeta.sshbanner import parse_banner

from .appmeta_cases import BROWSER_GET, parse_or_error


@pytest.mark.parametrize("payload,banner", [
    (b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n", "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"),
    (b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n\x00\x00\x05\xdc\x07\x14kexinit...",
     "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"),
    (b"SSH-1.99-Cisco-1.25\n", "SSH-1.99-Cisco-1.25"),
    (b"SSH-2.0-dropbear_2022.83\r\n", "SSH-2.0-dropbear_2022.83"),
    (b"SSH-2.0-libssh_0.10.6", "SSH-2.0-libssh_0.10.6"),          # cut before CR LF
    (b"SSH-2.0-Go\r\n", "SSH-2.0-Go"),
    (b"SSH-2.0-" + b"x" * 246 + b"\r\n", "SSH-2.0-" + "x" * 246),   # LF at index 255
    (b"SSH-2.0-" + b"x" * 247 + b"\n", "SSH-2.0-" + "x" * 247),      # 255 characters
])
def test_banners(payload, banner):
    assert parse_banner(payload) == banner


@pytest.mark.parametrize("payload", [
    b"SSH-2.0-" + b"x" * 300,                   # no line end within 255 bytes
    b"SSH-2.0-" + b"x" * 247 + b"\r\n",         # LF at index 256
    b"SSH-2.0-" + b"x" * 248 + b"\n",            # 256 characters
    b"SSH-2.0-Open\x00SSH\r\n",
    b"SSH-2.0-Open\xffSSH\r\n",
    b"SSH-2.0-Open\rSSH\r\n",
    b"SSH-2.0-\r\n",
    b"SSH-2.0\r\n",
    b"SSH--OpenSSH\r\n",
    b"SSH-\r\n",
])
def test_bad_banners(payload):
    with pytest.raises(AppParseError):
        parse_banner(payload)


def test_not_a_banner():
    for payload in (b"", b"SSH", b"ssh-2.0-x\r\n", b"Welcome\r\nSSH-2.0-x\r\n", BROWSER_GET):
        assert parse_banner(payload) is None


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from([b"", b"SSH-", b"SSH-2.0-"]), st.binary(max_size=400))
def test_ssh_fuzz(prefix, data):
    result = parse_or_error(parse_banner, prefix + data)
    assert result is None or result is AppParseError or (
        isinstance(result, str) and len(result) <= 255 and "\n" not in result)
