"""Password spraying against a real MIT Kerberos KDC, seen only on the wire.

The KDC (`krb5kdc`, pre-authentication required as in Active Directory) runs in its own network
namespace; MIT `kinit` in this namespace sprays one password over many accounts and then logs
in as one of them; tcpdump records port 88 on our side of the veth, and `watchkeeper ingest`
reads the capture with default settings. The spray must be named (and the login after it
raise severity 4: possible compromise); ordinary logons and a typo must raise nothing.

Needs Debian packages krb5-kdc, krb5-admin-server, krb5-user and tcpdump, and root.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.required import unavailable
from watchkeeper.store import Query
from watchkeeper.store.sqlite import SqliteStore

from .conftest import run_cli

REALM = "WK.TEST"
KDC_IP, CLIENT_IP = "10.98.0.2", "10.98.0.1"
USERS = {"alice": "Right-Pass-1", "bob": "Right-Pass-2", "carol": "Right-Pass-3"}
TOOLS = {"krb5kdc": "krb5-kdc", "kdb5_util": "krb5-kdc", "kadmin.local": "krb5-admin-server",
         "kinit": "krb5-user", "tcpdump": "tcpdump"}


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if not path:
        unavailable(f"`{name}` not found: apt-get install {TOOLS[name]}")
    return path


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def _configure(d: Path) -> dict[str, str]:
    (d / "krb5.conf").write_text(f"""[libdefaults]
  default_realm = {REALM}
  dns_lookup_kdc = false
  dns_lookup_realm = false
[realms]
  {REALM} = {{
    kdc = {KDC_IP}
  }}
""")
    (d / "kdc.conf").write_text(f"""[kdcdefaults]
  kdc_ports = 88
  kdc_tcp_ports = 88
[realms]
  {REALM} = {{
    database_name = {d}/principal
    key_stash_file = {d}/stash
    acl_file = {d}/kadm5.acl
    default_principal_flags = +preauth
  }}
[logging]
  kdc = FILE:{d}/kdc.log
""")
    return {**os.environ, "KRB5_CONFIG": str(d / "krb5.conf"),
            "KRB5_KDC_PROFILE": str(d / "kdc.conf"), "KRB5CCNAME": f"FILE:{d}/ccache"}


@pytest.fixture(scope="module")
def kdc(tmp_path_factory):
    if os.geteuid() != 0:
        unavailable("a KDC in a network namespace needs root")
    tools = {name: _tool(name) for name in TOOLS}
    d = tmp_path_factory.mktemp("kdc")
    env = _configure(d)
    subprocess.run([tools["kdb5_util"], "create", "-s", "-r", REALM, "-P", uuid.uuid4().hex],
                   env=env, check=True, capture_output=True, timeout=60)
    for user, password in USERS.items():
        subprocess.run([tools["kadmin.local"], "-r", REALM, "-q",
                        f"addprinc -pw {password} {user}"], env=env, check=True,
                       capture_output=True, timeout=60)
    tag = uuid.uuid4().hex[:6]
    ns, here, there = f"wkkdc-{tag}", f"wkk{tag}a", f"wkk{tag}b"
    _ip("netns", "add", ns)
    server = None
    try:
        _ip("link", "add", here, "type", "veth", "peer", "name", there, "netns", ns)
        _ip("addr", "add", f"{CLIENT_IP}/24", "dev", here)
        _ip("link", "set", here, "up")
        _ip("-n", ns, "addr", "add", f"{KDC_IP}/24", "dev", there)
        _ip("-n", ns, "link", "set", there, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        server = subprocess.Popen(["ip", "netns", "exec", ns, tools["krb5kdc"], "-n"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_kdc(tools, env)
        yield tools, env, here, d
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        subprocess.run(["ip", "link", "del", here], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def _record(kdc, name: str, logins: list[tuple[str, str]]) -> Path:
    """Run `kinit user` with each password while tcpdump records port 88; the capture."""
    tools, env, iface, d = kdc
    pcap = d / f"{name}.pcap"
    dump = subprocess.Popen([tools["tcpdump"], "-i", iface, "-U", "-w", str(pcap), "port", "88"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert "listening on" in dump.stderr.readline().decode()   # capturing from here on
        for user, password in logins:
            subprocess.run([tools["kinit"], f"{user}@{REALM}"], input=f"{password}\n",
                           env=env, capture_output=True, text=True, timeout=30)
        time.sleep(1.0)                         # the last answer is written out
    finally:
        dump.send_signal(signal.SIGINT)
        dump.wait(timeout=30)
    return pcap


def _wait_for_kdc(tools, env, deadline_s: float = 30.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        probe = subprocess.run([tools["kinit"], f"alice@{REALM}"], input="probe-wrong\n",
                               env=env, capture_output=True, text=True, timeout=30)
        if "Password incorrect" in probe.stderr or "Preauthentication failed" in probe.stderr:
            return
        time.sleep(0.5)
    pytest.fail(f"the KDC did not answer: {probe.stderr}")


def _alerts(pcap: Path, tmp_path: Path) -> list[dict]:
    store = tmp_path / f"{pcap.stem}.db"
    ingest = run_cli("ingest", str(pcap), "--bus", "memory://", "--store", f"sqlite:///{store}")
    assert ingest.returncode == 0, ingest.stderr
    return SqliteStore(f"sqlite:///{store}").search("alerts", Query(limit=100)).items


def test_a_password_spray_then_a_hit_is_named(kdc, tmp_path):
    accounts = ["administrator", "admin", "svc-backup", "helpdesk", "scanner", "printer",
                "bob", "carol", "test", "guest"]
    spray = [(user, "Winter2026!") for user in accounts] + [("alice", USERS["alice"])]
    alerts = _alerts(_record(kdc, "spray", spray), tmp_path)
    brute = [a for a in alerts if a["watchkeeper"]["alert"]["category"] == "brute_force"]
    assert brute, [a.get("message") for a in alerts]
    assert {a["source"]["ip"] for a in alerts} == {CLIENT_IP}       # never the KDC
    assert max(a["event"]["severity"] for a in brute) == 4
    assert any("alice" in a["message"] for a in brute)


def test_ordinary_logons_and_a_typo_raise_nothing(kdc, tmp_path):
    logons = [(user, password) for user, password in USERS.items()] * 3
    logons.insert(2, ("bob", "Right-Pass-2x"))                      # one typo, then it works
    assert _alerts(_record(kdc, "benign", logons), tmp_path) == []
