"""Which program parser reads a message: by content for formats any program can carry (CEF,
netfilter LOG lines, PAM module lines), then by program name (sshd, sudo).

A parser returns None when the message is not its kind; the first answer wins. Adding a
source = one module with `parse(SyslogMessage) -> Extraction | None`, listed here.
"""
from __future__ import annotations

from collectors.syslog import cef, netfilter, pam, sshd, sudo
from collectors.syslog.ecs import Extraction
from collectors.syslog.message import SyslogMessage

# Content-based first: sshd and sudo host PAM lines, and a firewall's CEF has any tag.
PARSERS = (cef.parse, netfilter.parse, pam.parse, sshd.parse, sudo.parse)


def extract(msg: SyslogMessage) -> Extraction | None:
    for parser in PARSERS:
        found = parser(msg)
        if found is not None:
            return found
    return None
