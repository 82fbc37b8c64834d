"""sudo: who ran what as whom, and the refusals.

    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update
    bob : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/sh
    eve : user NOT in sudoers ; TTY=pts/2 ; PWD=/tmp ; USER=root ; COMMAND=/bin/bash
"""
from __future__ import annotations

import re

from collectors.syslog.ecs import Extraction
from collectors.syslog.message import SyslogMessage

_LINE = re.compile(r"\s*(?P<user>\S+) : (?P<rest>.*)", re.DOTALL)
_KEY = re.compile(r"([A-Z_]+)=(.*)", re.DOTALL)


def parse(msg: SyslogMessage) -> Extraction | None:
    if msg.app_name != "sudo":
        return None
    match = _LINE.match(msg.message)
    if match is None:
        return Extraction("sudo")
    # COMMAND= comes last and may itself contain " ; ": split only what precedes it.
    head, sep, command = match.group("rest").partition("COMMAND=")
    keys: dict[str, str] = {}
    reasons: list[str] = []
    for part in filter(None, (p.strip() for p in head.split(" ;"))):
        key = _KEY.fullmatch(part)
        if key is None:
            reasons.append(part)
        else:
            keys[key.group(1)] = key.group(2)
    return _extraction(match.group("user"), keys, "; ".join(reasons),
                       command.strip() if sep else None)


def _extraction(user: str, keys: dict[str, str], reason: str, command: str | None) -> Extraction:
    out = Extraction("sudo")
    out.user("user.name", user)
    out.user("user.effective.name", keys.get("USER"))
    out.put("process.command_line", command)
    out.put("process.working_directory", keys.get("PWD"))
    out.put("watchkeeper.syslog.sudo.tty", keys.get("TTY"))
    if not reason:
        out.put("event.action", "sudo_command")
        out.put("event.category", ["process"])
        out.put("event.type", ["start"])
        out.put("event.outcome", "success")
        return out
    password = "password" in reason
    out.put("event.action", "sudo_auth_failure" if password else "sudo_denied")
    out.put("event.category", ["authentication"])
    out.put("event.type", ["info"])
    out.put("event.outcome", "failure")
    out.put("event.reason", reason)
    return out
