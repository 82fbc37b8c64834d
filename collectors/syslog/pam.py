"""Linux-PAM module lines, whatever program hosts them (sshd, sudo, login, su, cron ...).

    pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser=
        rhost=203.0.113.5  user=root
    PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=...
    pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)
    pam_faillock(sshd:auth): Consecutive login failures for user root account temporarily locked
"""
from __future__ import annotations

import re

from collectors.syslog.ecs import Extraction, valid_ip
from collectors.syslog.message import SyslogMessage

_HEAD = re.compile(r"(?P<module>pam_\w+)\((?P<service>[^:()\s]+):(?P<kind>\w+)\):\s*(?P<text>.*)",
                   re.DOTALL)
_MORE = re.compile(r"PAM (?P<count>\d+) more authentication failures?;(?P<text>.*)", re.DOTALL)
_KV = re.compile(r"(\w+)=(\S*)")
_SESSION = re.compile(r"session (?P<what>opened|closed) for user (?P<user>[^\s(]+)")
_LOCKED = re.compile(r"Consecutive login failures for user (?P<user>\S+)")


def parse(msg: SyslogMessage) -> Extraction | None:
    text = msg.message
    if "pam_" not in text and not text.startswith("PAM "):
        return None
    head = _HEAD.match(text)
    more = None if head else _MORE.match(text)
    if head is None and more is None:
        return None
    out = Extraction("pam")
    if head is not None:
        out.put("watchkeeper.syslog.pam.module", head.group("module"))
        out.put("watchkeeper.syslog.pam.service", head.group("service"))
        _describe(out, head.group("text"))
    else:
        out.put("watchkeeper.syslog.pam.count", int(more.group("count")) + 1)
        _failure(out, "authentication_failure", more.group("text"))
    return out


def _describe(out: Extraction, text: str) -> None:
    if text.startswith("authentication failure"):
        _failure(out, "authentication_failure", text)
    elif text.startswith("check pass; user unknown"):
        _failure(out, "user_unknown", "")
    elif (session := _SESSION.match(text)) is not None:
        opened = session.group("what") == "opened"
        _set(out, "session_opened" if opened else "session_closed", "session",
             "start" if opened else "end", "success")
        out.user("user.name", session.group("user"))
    elif (locked := _LOCKED.match(text)) is not None:
        _failure(out, "account_locked", "")
        out.user("user.name", locked.group("user"))


def _failure(out: Extraction, action: str, text: str) -> None:
    """The key=value tail: user= is the account tried, rhost= the remote end (IP or name)."""
    _set(out, action, "authentication", "info", "failure")
    values = dict(_KV.findall(text))
    out.user("user.name", values.get("user"))
    out.user("source.user.name", values.get("ruser"))
    rhost = values.get("rhost")
    if valid_ip(rhost):
        out.endpoint("source", rhost)
    else:
        out.put("source.domain", rhost)
    out.put("watchkeeper.syslog.pam.tty", values.get("tty"))


def _set(out: Extraction, action: str, category: str, type_: str, outcome: str) -> None:
    out.put("event.action", action)
    out.put("event.category", [category])
    out.put("event.type", [type_])
    out.put("event.outcome", outcome)
