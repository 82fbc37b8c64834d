"""Syslog collector (DESIGN.md §1): RFC 3164/5424 over UDP and TCP (RFC 6587 framing) ->
ECS events on wk.events, with sshd, sudo, PAM, netfilter and CEF fields parsed in place.

    server = SyslogServer(EventPublisher(bus.producer(), "syslog"), "127.0.0.1", 5514, 5514)
    server.start(); ...; server.stop(); server.stats

Modules: framing (TCP/UDP message boundaries), rfc + timestamps (headers), one module per
source (sshd, sudo, pam, netfilter, cef) chosen by programs, document (ECS), pipeline
(parse + publish), listener (sockets, queue, threads).
"""
from collectors.syslog.listener import SyslogServer
from collectors.syslog.message import SyslogError, SyslogMessage
from collectors.syslog.pipeline import SyslogStats

__all__ = ["SyslogError", "SyslogMessage", "SyslogServer", "SyslogStats"]
