"""block_address: refusals, dry run by default, only an allowlisted argument list, and the
real thing: nftables in a network namespace drops the blocked address, lets others through,
and lets it through again when the element's timeout passes."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid

import pytest

from playbooks import nft
from playbooks.actions import REGISTRY, ActionContext
from playbooks.settings import BlockSettings, PlaybookSettings
from tests.required import unavailable
from watchkeeper.assets import Asset, Inventory
from watchkeeper.networks import InternalNetworks

ACTION = REGISTRY["block_address"]


def _ctx(store, block: BlockSettings | None = None, inventory: Inventory | None = None):
    return ActionContext(store=store, settings=PlaybookSettings(block=block or BlockSettings()),
                         run={"playbook": "t"}, run_id="r", step_id="s", target=None, key="k",
                         now=1_767_225_600.0, internal=InternalNetworks(),
                         inventory=inventory or Inventory())


def _inventory_with(cidr: str) -> Inventory:
    import ipaddress
    inventory = Inventory()
    inventory._nets[4].append((ipaddress.ip_network(cidr),
                               Asset(cidr=cidr, site="s", name="门户", criticality=5)))
    return inventory


@pytest.mark.parametrize("address, why, why_zh", [
    ("10.1.2.3", "internal", "内部地址"), ("192.168.1.1", "internal", "内部地址"),
    ("127.0.0.1", "loopback", "环回"), ("224.0.0.1", "multicast", "组播"),
    ("0.0.0.0", "unspecified", "未指定"), ("169.254.1.1", "link-local", "链路本地"),
    ("203.0.113.9", "allowlisted", "禁止封禁名单"), ("198.51.100.20", "inventory asset", "门户"),
    ("not-an-ip", "not an IP", "不是 IP 地址"),
])
def test_refuses_addresses_that_must_not_be_blocked(store, address, why, why_zh):
    block = BlockSettings(apply=True, never_block=["203.0.113.0/24"], command=["/bin/false"],
                          allowed_commands=["/bin/false"])
    params = ACTION.Params(address=address)
    result = ACTION.run(_ctx(store, block, _inventory_with("198.51.100.16/28")), params)
    assert result.outcome == "failed" and why in result.output["refused"]
    assert result.message_zh.startswith("拒绝封禁：") and why_zh in result.message_zh


def test_dry_run_by_default_generates_the_ruleset_only(store):
    result = ACTION.run(_ctx(store), ACTION.Params(address="198.51.100.77", seconds=600))
    assert result.outcome == "ok" and result.output["dry_run"] and not result.output["applied"]
    text = result.output["ruleset"]
    assert "flags timeout" in text and "198.51.100.77 timeout 600s" in text
    assert "ip saddr @blocked4 drop" in text
    assert result.output["unblock_at"] == "2026-01-01T00:10:00.000000Z"


def test_only_an_allowlisted_program_runs_and_never_through_a_shell(store, tmp_path):
    marker = tmp_path / "ran"
    block = BlockSettings(apply=True, command=["touch", str(marker)], allowed_commands=["nft"])
    result = ACTION.run(_ctx(store, block), ACTION.Params(address="198.51.100.77"))
    assert result.outcome == "failed" and "not in allowed_commands" in result.message
    assert not marker.exists()
    with pytest.raises(ValueError):
        BlockSettings(command=["nft -f - ; rm -rf /"])


# -- the real thing, in network namespaces -------------------------------------------------

def _sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=check)


@pytest.fixture
def netns():
    """Namespace A (198.51.100.1, the protected host) and B (198.51.100.2 and .3, two
    outside senders), joined by a veth pair. Removed afterwards."""
    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ip"):
        unavailable("needs root, ip and nft (deploy/local/debian-packages.txt: nftables)")
    tag = uuid.uuid4().hex[:6]
    a, b = f"wkpb-{tag}-a", f"wkpb-{tag}-b"
    va, vb = f"wkpb{tag}a", f"wkpb{tag}b"
    try:
        _sh("ip", "netns", "add", a)
        _sh("ip", "netns", "add", b)
        _sh("ip", "link", "add", va, "netns", a, "type", "veth", "peer", "name", vb, "netns", b)
        _sh("ip", "-n", a, "addr", "add", "198.51.100.1/24", "dev", va)
        _sh("ip", "-n", b, "addr", "add", "198.51.100.2/24", "dev", vb)
        _sh("ip", "-n", b, "addr", "add", "198.51.100.3/24", "dev", vb)
        for ns, dev in ((a, va), (b, vb)):
            _sh("ip", "-n", ns, "link", "set", dev, "up")
            _sh("ip", "-n", ns, "link", "set", "lo", "up")
        yield a, b
    finally:
        _sh("ip", "netns", "del", a, check=False)
        _sh("ip", "netns", "del", b, check=False)


def _reaches(ns: str, source: str) -> bool:
    return _sh("ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", "-I", source,
               "198.51.100.1", check=False).returncode == 0


def _until(predicate, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_block_in_a_namespace_stops_the_address_and_lets_others_through(store, netns):
    protected, outside = netns
    assert _until(lambda: _reaches(outside, "198.51.100.2"), 5)   # DAD may delay the first
    assert _reaches(outside, "198.51.100.3")
    table = f"wkpb{uuid.uuid4().hex[:6]}"
    block = BlockSettings(apply=True, table=table, allowed_commands=["ip"],
                          command=["ip", "netns", "exec", protected, "nft", "-f", "-"])
    params = ACTION.Params(address="198.51.100.2", seconds=600)
    result = ACTION.run(_ctx(store, block), params)
    assert result.outcome == "ok" and result.output["applied"], result.message
    assert not _reaches(outside, "198.51.100.2")
    assert _reaches(outside, "198.51.100.3")
    again = ACTION.run(_ctx(store, block), params)            # idempotent: no second rule
    assert again.outcome == "ok"
    chain = _sh("ip", "netns", "exec", protected, "nft", "list", "chain", "inet", table,
                "input").stdout
    assert chain.count("@blocked4 drop") == 1
    listed = _sh("ip", "netns", "exec", protected, "nft", "list", "set", "inet", table,
                 "blocked4").stdout
    assert "198.51.100.2" in listed and "expires" in listed


def test_the_element_timeout_unblocks(store, netns):
    protected, outside = netns
    assert _until(lambda: _reaches(outside, "198.51.100.2"), 5)
    command = ["ip", "netns", "exec", protected, "nft", "-f", "-"]
    done = nft.apply(command, ["ip"], nft.ruleset("wkpbtimeout", "198.51.100.2", 2))
    assert done.returncode == 0, done.stderr
    assert not _reaches(outside, "198.51.100.2")
    assert _until(lambda: _reaches(outside, "198.51.100.2"), 8)    # the kernel removed it
