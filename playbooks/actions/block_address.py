"""Block an offending address with nftables for a while: dry run unless configured to apply.

Refuses addresses that are ours (internal networks, the asset inventory: critical assets are
in it), configured never-block CIDRs, and addresses no firewall should drop (loopback,
multicast, unspecified, link-local). The element's timeout unblocks it (`unblock_at`).
"""
from __future__ import annotations

import ipaddress
import subprocess

from pydantic import Field

from playbooks import nft
from playbooks.actions.base import Action, ActionContext, ActionResult, Params
from watchkeeper import timeutil


class BlockParams(Params):
    address: str = Field(min_length=2, max_length=64)
    seconds: int | None = Field(None, ge=60, le=30 * 86_400)
    reason: str = Field("", max_length=500)


def refusal(ctx: ActionContext, address: str) -> tuple[str, str] | None:
    """Why this address must not be blocked (English, zh-CN), or None."""
    try:
        addr = ipaddress.ip_address(address)
    except ValueError:
        return f"{address!r} is not an IP address", f"{address!r} 不是 IP 地址"
    if addr.is_loopback or addr.is_multicast or addr.is_unspecified or addr.is_link_local:
        return (f"{addr} is a loopback/multicast/unspecified/link-local address",
                f"{addr} 是环回/组播/未指定/链路本地地址")
    if ctx.internal.is_internal(str(addr)):
        nets = ", ".join(ctx.internal.cidrs)
        return f"{addr} is internal ({nets})", f"{addr} 是内部地址（{nets}）"
    for cidr in ctx.settings.block.never_block:
        net = ipaddress.ip_network(cidr, strict=False)
        if addr.version == net.version and addr in net:
            return (f"{addr} is allowlisted (never_block {cidr})",
                    f"{addr} 在禁止封禁名单中（never_block {cidr}）")
    asset = ctx.inventory.lookup(str(addr))
    if asset is not None:
        name, level = asset.asset.name or asset.asset.cidr, asset.asset.criticality
        return (f"{addr} is an inventory asset ({name}, criticality {level})",
                f"{addr} 是资产清单中的资产（{name}，重要程度 {level}）")
    return None


class BlockAddress(Action):
    name = "block_address"
    Params = BlockParams
    idempotent = True         # the ruleset is idempotent (playbooks/nft.py)

    def run(self, ctx: ActionContext, params: BlockParams) -> ActionResult:
        why = refusal(ctx, params.address)
        if why:
            return ActionResult("failed", {"refused": why[0]}, f"block refused: {why[0]}",
                                retry=False, message_zh=f"拒绝封禁：{why[1]}")
        block = ctx.settings.block
        seconds = params.seconds or block.default_seconds
        text = nft.ruleset(block.table, params.address, seconds)
        output = {"address": str(ipaddress.ip_address(params.address)), "seconds": seconds,
                  "ruleset": text, "unblock_at": timeutil.format(ctx.now + seconds),
                  "applied": False, "dry_run": not block.apply}
        if not block.apply:
            return ActionResult("ok", output, "dry run: ruleset generated, not applied",
                                message_zh="演练模式：已生成规则集，未下发")
        try:
            done = nft.apply(block.command, block.allowed_commands, text)
        except PermissionError as exc:
            return ActionResult("failed", output, str(exc), retry=False,
                                message_zh=f"不允许执行：{exc}")
        except (OSError, subprocess.TimeoutExpired) as exc:
            return ActionResult("failed", output, f"cannot run {block.command[0]}: {exc}",
                                message_zh=f"无法执行 {block.command[0]}：{exc}")
        if done.returncode != 0:
            return ActionResult("failed", {**output, "stderr": done.stderr},
                                f"{block.command[0]} exited {done.returncode}: {done.stderr}",
                                message_zh=f"{block.command[0]} 退出码 {done.returncode}："
                                           f"{done.stderr}")
        return ActionResult("ok", {**output, "applied": True})
