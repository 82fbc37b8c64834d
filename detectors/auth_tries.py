"""Counting password tries in sshd's auth log (brute_force, account_attack).

An unknown account's connection logs "Invalid user X from A port P" once, then one
"Failed password for invalid user X from A port P" per password tried (up to sshd's
MaxAuthTries), then a closing line ("Connection closed by invalid user X ..."). Each password
is a try; the announcement stands for the first, so a connection that only announces (a key
offered and refused) is one try and the announcement + first failure are not two.
"""
from __future__ import annotations

from detectors.kit import part


def connection_key(event: dict) -> str | None:
    """One connection of an unknown account (port and name); None for known accounts, whose
    every "Failed" line is a try on its own."""
    sshd = part(event, "watchkeeper", "syslog", "sshd")
    if not sshd.get("invalid_user"):
        return None
    return f"{event['source'].get('port')}|{event.get('user', {}).get('name')}"


def counts_as_try(counted: dict[str, float], event: dict, t: float, scope: str = "") -> bool:
    """Whether this failure line is a new try; `counted` (connection key -> last seen, pruned
    by the caller's window) remembers the connections seen and those with a try counted.
    `scope` names the connection's source where the caller's state holds several sources."""
    key = connection_key(event)
    if key is None:
        return True
    key = f"{scope}|{key}" if scope else key
    seen, tried = key in counted, f"{key}|try" in counted
    counted[key] = t
    if part(event, "event").get("action") != "ssh_login":
        return not seen                   # announcement / closing line: once per connection
    counted[f"{key}|try"] = t
    return not seen or tried              # the first "Failed" after the announcement is it
