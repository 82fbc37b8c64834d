"""nftables text for blocking addresses: one table, a timeout set per IP version, drop rules.

Applying the same ruleset twice changes nothing (`add` of an existing table, set, chain or
element is a no-op; the chains are flushed and refilled), so a block retried after a crash is
harmless. The kernel removes an element when its timeout passes: that is the scheduled unblock.
"""
from __future__ import annotations

import ipaddress
import os
import subprocess
from dataclasses import dataclass


def ruleset(table: str, address: str, seconds: int) -> str:
    addr = ipaddress.ip_address(address)
    family = "4" if addr.version == 4 else "6"
    lines = [f"add table inet {table}",
             f"add set inet {table} blocked4 {{ type ipv4_addr; flags timeout; }}",
             f"add set inet {table} blocked6 {{ type ipv6_addr; flags timeout; }}"]
    for hook in ("input", "forward"):
        lines += [f"add chain inet {table} {hook} {{ type filter hook {hook} priority -10; "
                  f"policy accept; }}",
                  f"flush chain inet {table} {hook}",
                  f"add rule inet {table} {hook} ip saddr @blocked4 drop",
                  f"add rule inet {table} {hook} ip6 saddr @blocked6 drop"]
    lines.append(f"add element inet {table} blocked{family} {{ {addr} timeout {seconds}s }}")
    return "\n".join(lines) + "\n"


def unblock_ruleset(table: str, address: str) -> str:
    addr = ipaddress.ip_address(address)
    family = "4" if addr.version == 4 else "6"
    return f"delete element inet {table} blocked{family} {{ {addr} }}\n"


@dataclass
class Applied:
    returncode: int
    stderr: str


def apply(command: list[str], allowed: list[str], text: str, timeout: float = 20) -> Applied:
    """Run the configured argument list with the ruleset on stdin; never through a shell."""
    program = command[0]
    if program not in allowed and os.path.basename(program) not in allowed:
        raise PermissionError(f"command {program!r} is not in allowed_commands {allowed}")
    done = subprocess.run(command, input=text, capture_output=True, text=True,
                          timeout=timeout, shell=False, check=False)
    return Applied(done.returncode, done.stderr.strip()[:2000])
