"""Program parsers, table-driven with lines as the programs write them, valid and not."""
from __future__ import annotations

import pytest

from syslog_helpers import to_doc
from watchkeeper import schema

H = "<38>Nov 22 20:23:01 bastion"        # auth.info from host bastion, RFC 3164
K = "<4>Nov 22 20:23:01 fw kernel:"      # kern.warning

SSHD = [
    (f"{H} sshd[4242]: Accepted password for alice from 192.0.2.10 port 50122 ssh2",
     {"event.outcome": "success", "event.category": ["authentication"], "event.type": ["start"],
      "user.name": "alice", "source.ip": "192.0.2.10", "source.port": 50122,
      "event.action": "ssh_login", "watchkeeper.syslog.sshd.method": "password"}),
    (f"{H} sshd[4242]: Accepted publickey for deploy from 2001:db8::7 port 60022 ssh2: "
     "ED25519 SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
     {"event.outcome": "success", "user.name": "deploy", "source.ip": "2001:db8::7",
      "watchkeeper.syslog.sshd.method": "publickey", "related.ip": ["2001:db8::7"]}),
    (f"{H} sshd[4243]: Failed password for root from 203.0.113.5 port 40022 ssh2",
     {"event.outcome": "failure", "event.category": ["authentication"], "user.name": "root",
      "source.ip": "203.0.113.5", "source.port": 40022, "related.user": ["root"]}),
    (f"{H} sshd[4243]: Failed password for invalid user admin from 203.0.113.5 port 40024 ssh2",
     {"event.outcome": "failure", "user.name": "admin",
      "watchkeeper.syslog.sshd.invalid_user": True}),
    (f"{H} sshd[4244]: Invalid user oracle from 198.51.100.23 port 33910",
     {"event.action": "invalid_user", "event.outcome": "failure", "user.name": "oracle",
      "source.ip": "198.51.100.23", "source.port": 33910}),
    (f"{H} sshd[4245]: Connection closed by authenticating user root 203.0.113.5 port 40030 "
     "[preauth]", {"event.action": "preauth_disconnect", "event.outcome": "failure",
                   "user.name": "root", "source.ip": "203.0.113.5", "source.port": 40030}),
    (f"{H} sshd[4246]: Disconnected from invalid user test 203.0.113.9 port 5122 [preauth]",
     {"event.outcome": "failure", "user.name": "test",
      "watchkeeper.syslog.sshd.invalid_user": True}),
    (f"{H} sshd[4247]: error: maximum authentication attempts exceeded for root from "
     "203.0.113.5 port 40040 ssh2 [preauth]",
     {"event.action": "max_auth_attempts", "event.outcome": "failure", "user.name": "root"}),
    (f"{H} sshd-session[990]: Failed publickey for git from 192.0.2.77 port 41000 ssh2: "
     "RSA SHA256:abc", {"event.module": "sshd", "event.outcome": "failure", "user.name": "git"}),
    (f"{H} sshd[4248]: Disconnected from user alice 192.0.2.10 port 50122",
     {"event.category": ["session"], "event.type": ["end"], "user.name": "alice"}),
    (f"{H} sshd[4249]: Received disconnect from 203.0.113.5 port 40022:11: Bye Bye [preauth]",
     {"event.category": ["network"], "source.ip": "203.0.113.5", "event.outcome": None}),
    # not a login: an sshd event without outcome; an address that is not one stays out
    (f"{H} sshd[1]: Server listening on 0.0.0.0 port 22.",
     {"event.module": "sshd", "event.outcome": None, "source.ip": None}),
    (f"{H} sshd[1]: Failed password for root from not-an-ip port 22 ssh2",
     {"event.outcome": "failure", "source.ip": None, "user.name": "root"}),
    (f"{H} sshd[1]: Failed password for root from 203.0.113.5 port 99999 ssh2",
     {"source.ip": "203.0.113.5", "source.port": None}),
]

SUDO = [
    ("<85>Nov 22 20:23:01 bastion sudo[777]:    alice : TTY=pts/0 ; PWD=/home/alice ; "
     "USER=root ; COMMAND=/usr/bin/apt-get update",
     {"event.module": "sudo", "event.outcome": "success", "event.category": ["process"],
      "user.name": "alice", "user.effective.name": "root",
      "process.command_line": "/usr/bin/apt-get update",
      "process.working_directory": "/home/alice", "related.user": ["alice", "root"]}),
    ("<85>1 2026-11-22T20:23:01.120+08:00 bastion sudo 778 - - bob : 3 incorrect password "
     "attempts ; TTY=pts/1 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/sh -c 'id ; whoami'",
     {"event.outcome": "failure", "event.action": "sudo_auth_failure",
      "event.reason": "3 incorrect password attempts", "user.name": "bob",
      "process.command_line": "/bin/sh -c 'id ; whoami'",
      "@timestamp": "2026-11-22T12:23:01.120000Z"}),
    ("<85>Nov 22 20:23:01 bastion sudo[779]: eve : user NOT in sudoers ; TTY=pts/2 ; "
     "PWD=/tmp ; USER=root ; COMMAND=/bin/bash",
     {"event.outcome": "failure", "event.action": "sudo_denied", "user.name": "eve"}),
    ("<85>Nov 22 20:23:01 bastion sudo[780]: alice : TTY=pts/0 ; PWD=/srv ; USER=postgres ; "
     "ENV=PGDATA=/srv/pg ; COMMAND=/usr/bin/psql",
     {"user.effective.name": "postgres", "process.command_line": "/usr/bin/psql"}),
    ("<85>Nov 22 20:23:01 bastion sudo[781]: gibberish without the separator",
     {"event.module": "sudo", "event.outcome": None, "user.name": None}),
]

PAM = [
    (f"{H} sshd[5001]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
     "tty=ssh ruser= rhost=203.0.113.5  user=root",
     {"event.module": "pam", "event.outcome": "failure", "user.name": "root",
      "source.ip": "203.0.113.5", "watchkeeper.syslog.pam.service": "sshd",
      "watchkeeper.syslog.pam.module": "pam_unix", "process.name": "sshd"}),
    (f"{H} sshd[5001]: PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh "
     "ruser= rhost=203.0.113.5  user=root",
     {"event.outcome": "failure", "watchkeeper.syslog.pam.count": 3, "source.ip": "203.0.113.5"}),
    ("<85>Nov 22 20:23:01 bastion sudo[6]: pam_unix(sudo:auth): authentication failure; "
     "logname=bob uid=1001 euid=0 tty=/dev/pts/1 ruser=bob rhost=  user=bob",
     {"event.module": "pam", "user.name": "bob", "source.user.name": "bob", "source.ip": None}),
    (f"{H} login[7]: pam_unix(login:auth): authentication failure; logname=LOGIN uid=0 "
     "euid=0 tty=tty1 ruser= rhost=office-pc.example.gov  user=carol",
     {"source.domain": "office-pc.example.gov", "source.ip": None, "user.name": "carol"}),
    (f"{H} sshd[5002]: pam_unix(sshd:session): session opened for user alice(uid=1000) by "
     "(uid=0)", {"event.category": ["session"], "event.type": ["start"], "user.name": "alice"}),
    (f"{H} sshd[5002]: pam_unix(sshd:session): session closed for user alice",
     {"event.type": ["end"], "event.action": "session_closed"}),
    (f"{H} sshd[5003]: pam_faillock(sshd:auth): Consecutive login failures for user root "
     "account temporarily locked", {"event.action": "account_locked", "user.name": "root"}),
    (f"{H} cron[8]: pam_env(cron:session): Unable to open env file: /etc/default/locale",
     {"event.module": "pam", "event.outcome": None, "watchkeeper.syslog.pam.module": "pam_env"}),
]

NETFILTER = [
    (f"{K} [UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 "
     "SRC=203.0.113.5 DST=192.0.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=52 ID=4242 DF PROTO=TCP "
     "SPT=40000 DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0",
     {"event.module": "netfilter", "event.category": ["network"], "event.type": ["denied"],
      "event.action": "ufw-block", "source.ip": "203.0.113.5", "source.port": 40000,
      "destination.ip": "192.0.2.10", "destination.port": 22, "network.transport": "tcp",
      "network.type": "ipv4", "observer.ingress.interface.name": "eth0",
      "source.mac": "52-54-00-65-43-21", "destination.mac": "52-54-00-12-34-56",
      "watchkeeper.syslog.netfilter.flags": ["DF", "SYN"]}),
    (f"{K} [12345.678901] IPTABLES-DROPPED: IN=eth1 OUT= MAC= SRC=198.51.100.4 "
     "DST=192.0.2.20 LEN=78 TOS=0x00 PREC=0x00 TTL=117 ID=2581 PROTO=UDP SPT=5353 DPT=161 "
     "LEN=58", {"event.action": "iptables-dropped", "network.transport": "udp",
                "destination.port": 161, "event.type": ["denied"]}),
    (f"{K} nft-accept-out: IN= OUT=eth0 SRC=2001:db8::1 DST=2001:db8::2 LEN=104 TC=0 "
     "HOPLIMIT=64 FLOWLBL=0 PROTO=ICMPv6 TYPE=128 CODE=0 ID=9 SEQ=1",
     {"event.type": ["allowed"], "network.transport": "ipv6-icmp", "network.type": "ipv6",
      "observer.egress.interface.name": "eth0", "source.port": None,
      "watchkeeper.syslog.netfilter.fields.type": "128"}),
    (f"{K} IN=eth0 OUT= SRC=10.0.0.5 DST=10.0.0.1 LEN=32 PROTO=2",
     {"event.action": "netfilter-log", "event.type": ["connection"],
      "network.iana_number": "2"}),
    (f"{K} IN=eth0 OUT= SRC=999.1.1.1 DST=10.0.0.1 PROTO=TCP SPT=x DPT=22",
     {"source.ip": None, "destination.port": 22, "related.ip": ["10.0.0.1"]}),
]

CEF = [
    # The ArcSight CEF guide's own examples.
    ("<134>Nov 22 20:23:01 host CEF:0|Security|threatmanager|1.0|100|worm successfully "
     "stopped|10|src=10.0.0.1 dst=2.1.2.2 spt=1232",
     {"event.module": "cef", "observer.vendor": "Security", "observer.product": "threatmanager",
      "event.code": "100", "message": "worm successfully stopped", "event.severity": 4,
      "source.ip": "10.0.0.1", "source.port": 1232, "destination.ip": "2.1.2.2"}),
    ("<134>Nov 22 20:23:01 host CEF:0|security|threatmanager|1.0|100|detected a \\| in "
     "message|10|src=10.0.0.1 act=blocked a \\= dst=1.1.1.1",
     {"message": "detected a | in message", "event.action": "blocked a =",
      "destination.ip": "1.1.1.1"}),
    ("<134>Nov 22 20:23:01 host CEF:0|security|threatmanager|1.0|100|detected a \\\\ in "
     "packet|10|src=10.0.0.1 act=blocked a \\\\ dst=1.1.1.1",
     {"message": "detected a \\ in packet", "event.action": "blocked a \\"}),
    ("<134>Nov 22 20:23:01 host CEF:0|security|threatmanager|1.0|100|detected an = in "
     "message|10|src=10.0.0.1 act=blocked a \\= dst=1.1.1.1 msg=line one\\nline two",
     {"message": "detected an = in message", "event.reason": "line one\nline two"}),
    ("<134>1 2026-11-22T20:23:01Z fw01 CEF - - - CEF:0|Fortinet|FortiGate|7.2|0000000013|"
     "traffic denied|Medium|src=192.0.2.50 spt=51000 dst=198.51.100.9 dpt=443 proto=TCP "
     "suser=jdoe act=deny in=512 out=0 outcome=failure",
     {"event.severity": 2, "network.transport": "tcp", "source.user.name": "jdoe",
      "related.user": ["jdoe"], "event.action": "deny", "source.bytes": 512,
      "event.outcome": "failure", "destination.port": 443}),
    ("<134>Nov 22 20:23:01 host CEF:0|only|three|fields",      # too few: generic event
     {"event.module": "syslog", "message": "CEF:0|only|three|fields"}),
    ("<134>Nov 22 20:23:01 host CEF:0|V|P|1|1|n|99|src=300.1.1.1 spt=70000",
     {"event.module": "cef", "event.severity": None, "source.ip": None}),
]

GENERIC = [
    ("<30>Nov 22 20:23:01 web01 nginx[311]: 192.0.2.5 - - GET / 200",
     {"event.module": "syslog", "message": "192.0.2.5 - - GET / 200", "host.hostname": "web01",
      "process.name": "nginx", "process.pid": 311, "log.syslog.facility.name": "daemon",
      "log.syslog.severity.name": "informational", "event.outcome": None, "related": None}),
]


@pytest.mark.parametrize("line,expected", SSHD + SUDO + PAM + NETFILTER + CEF + GENERIC,
                         ids=lambda v: v[:60] if isinstance(v, str) else "")
def test_program_fields(line, expected):
    doc = to_doc(line)
    assert doc["event"]["dataset"] == schema.SYSLOG and doc["event"]["kind"] == "event"
    for dotted, value in expected.items():
        assert schema.get(doc, dotted) == value, dotted
