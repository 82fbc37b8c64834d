"""OpenSSH sshd: logins accepted and failed, invalid users, pre-auth disconnects.

Lines as OpenSSH 7-9 writes them (auth.c, auth2.c, sshd.c, packet.c). Since OpenSSH 9.8 the
per-connection work runs in `sshd-session`, so that tag is sshd too.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from collectors.syslog.ecs import Extraction
from collectors.syslog.message import SyslogMessage

PROGRAMS = frozenset({"sshd", "sshd-session", "sshd-auth"})
_AT = r"(?P<ip>\S+) port (?P<port>\d+)"


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern
    action: str
    category: str
    type: str
    outcome: str | None


def _rule(regex: str, action: str, category: str, type_: str, outcome: str | None) -> _Rule:
    return _Rule(re.compile(r"(?:error: )?" + regex), action, category, type_, outcome)


_RULES = (
    _rule(rf"Accepted (?P<method>\S+) for (?P<user>.*?) from {_AT}", "ssh_login",
          "authentication", "start", "success"),
    _rule(rf"Failed (?P<method>\S+) for (?P<invalid>invalid user )?(?P<user>.*?) from {_AT}",
          "ssh_login", "authentication", "info", "failure"),
    _rule(r"Invalid user (?P<user>.*?) from (?P<ip>\S+)(?: port (?P<port>\d+))?$",
          "invalid_user", "authentication", "info", "failure"),
    _rule(rf"(?:Connection closed by|Disconnected from) (?P<invalid>invalid|authenticating) "
          rf"user (?P<user>.*?) {_AT}", "preauth_disconnect", "authentication", "info", "failure"),
    _rule(rf"maximum authentication attempts exceeded for (?P<invalid>invalid user )?"
          rf"(?P<user>.*?) from {_AT}", "max_auth_attempts", "authentication", "info", "failure"),
    _rule(r"User (?P<user>\S+) from (?P<ip>\S+) not allowed because", "user_not_allowed",
          "authentication", "info", "failure"),
    _rule(rf"Disconnected from user (?P<user>.*?) {_AT}", "ssh_logout", "session", "end",
          "success"),
    _rule(rf"Connection from {_AT} on (?P<dip>\S+) port (?P<dport>\d+)", "connection",
          "network", "start", None),
    _rule(rf"(?:Connection closed by|Received disconnect from|Disconnected from) {_AT}",
          "disconnect", "network", "end", None),
    _rule(r"Did not receive identification string from (?P<ip>\S+)(?: port (?P<port>\d+))?",
          "no_identification", "network", "info", None),
)


def parse(msg: SyslogMessage) -> Extraction | None:
    if msg.app_name not in PROGRAMS:
        return None
    for rule in _RULES:
        match = rule.pattern.match(msg.message)
        if match is not None:
            return _extraction(rule, match)
    return Extraction("sshd")        # an sshd line we do not model: still tagged as sshd


def _extraction(rule: _Rule, match: re.Match) -> Extraction:
    found = match.groupdict()
    out = Extraction("sshd")
    out.put("event.action", rule.action)
    out.put("event.category", [rule.category])
    out.put("event.type", [rule.type])
    out.put("event.outcome", rule.outcome)
    out.user("user.name", found.get("user"))
    out.endpoint("source", found.get("ip"), found.get("port"))
    out.endpoint("destination", found.get("dip"), found.get("dport"))
    out.put("watchkeeper.syslog.sshd.method", found.get("method"))
    # "invalid user" / "Invalid user": the account does not exist on the server
    if (found.get("invalid") or "").startswith("invalid") or rule.action == "invalid_user":
        out.put("watchkeeper.syslog.sshd.invalid_user", True)
    return out
