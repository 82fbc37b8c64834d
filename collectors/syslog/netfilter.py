"""iptables/nftables LOG lines (the kernel's nf_log format, identical for both):

    [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=203.0.113.5
    DST=192.0.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=4242 DF PROTO=TCP SPT=40000 DPT=22 ...

The text before IN= is the rule's log prefix: it names the action (drop, accept, ...).
"""
from __future__ import annotations

import re

from collectors.syslog.ecs import Extraction, valid_ip
from collectors.syslog.message import SyslogMessage

_START = re.compile(r"(?:^|\s)IN=(\S*) OUT=(\S*)")
_KERNEL_TIME = re.compile(r"^\[\s*\d+\.\d+\]\s*")     # dmesg time when klogd passes it on
_KV = re.compile(r"([A-Z][A-Z0-9_]*)=(\S*)")
_FLAG = re.compile(r"(?<!\S)([A-Z]{2,3})(?!\S)")        # DF, SYN, ACK ... stand alone
_TRANSPORTS = {"TCP": "tcp", "UDP": "udp", "ICMP": "icmp", "ICMPV6": "ipv6-icmp",
               "SCTP": "sctp", "UDPLITE": "udplite", "GRE": "gre", "ESP": "esp", "AH": "ah"}
_DENY = ("drop", "deny", "denied", "block", "reject")
_ALLOW = ("accept", "allow", "pass")


def parse(msg: SyslogMessage) -> Extraction | None:
    start = _START.search(msg.message)
    if start is None:
        return None
    prefix = _KERNEL_TIME.sub("", msg.message[:start.start()]).strip()
    body = msg.message[start.start():]
    values = dict(_KV.findall(body))
    out = Extraction("netfilter")
    out.put("event.category", ["network"])
    out.put("event.type", [_verdict(prefix)])
    out.put("event.action", _action(prefix))
    out.put("observer.ingress.interface.name", start.group(1))
    out.put("observer.egress.interface.name", start.group(2))
    out.endpoint("source", values.get("SRC"), values.get("SPT"))
    out.endpoint("destination", values.get("DST"), values.get("DPT"))
    _network(out, values)
    _macs(out, values.get("MAC", ""))
    out.put("watchkeeper.syslog.netfilter.prefix", prefix)
    out.put("watchkeeper.syslog.netfilter.fields", {k.lower(): v for k, v in values.items()})
    out.put("watchkeeper.syslog.netfilter.flags", _FLAG.findall(body) or None)
    return out


def _network(out: Extraction, values: dict[str, str]) -> None:
    proto = values.get("PROTO", "")
    if proto.isascii() and proto.isdigit():
        out.put("network.iana_number", proto)
    else:
        out.put("network.transport", _TRANSPORTS.get(proto.upper(), proto.lower()))
    source = valid_ip(values.get("SRC"))
    if source is not None:
        out.put("network.type", "ipv6" if ":" in source else "ipv4")


def _macs(out: Extraction, mac: str) -> None:
    """MAC= is destination(6):source(6):ethertype(2) octets for Ethernet."""
    octets = mac.split(":")
    if len(octets) != 14 or not all(len(o) == 2 for o in octets):
        return
    out.put("destination.mac", "-".join(octets[0:6]).upper())
    out.put("source.mac", "-".join(octets[6:12]).upper())


def _verdict(prefix: str) -> str:
    lowered = prefix.lower()
    if any(word in lowered for word in _DENY):
        return "denied"
    if any(word in lowered for word in _ALLOW):
        return "allowed"
    return "connection"


def _action(prefix: str) -> str:
    """'[UFW BLOCK]' -> 'ufw-block'; 'nft drop: ' -> 'nft-drop'; no prefix -> 'netfilter-log'."""
    words = re.findall(r"[a-z0-9]+", prefix.lower())
    return "-".join(words)[:64] or "netfilter-log"
