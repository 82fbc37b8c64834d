"""Alert categories -> kill-chain stage and GB/T 20986-2023 subcategory (STANDARDS.md §4).

Codes follow a published seed table and should be checked against the standard's Annex B;
they live here, in one table, so a customer can correct them without touching detectors.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CategoryInfo:
    stage: int            # kill-chain order: what usually comes first sorts first
    stage_name: str
    gbt_code: str         # GB/T 20986-2023 subcategory code
    gbt_name: str


CATEGORY_INFO = {
    "scan": CategoryInfo(1, "reconnaissance", "NASCAN", "网络扫描探测事件"),
    "ioc_match": CategoryInfo(2, "delivery", "MPZOMB", "僵尸网络事件"),
    "brute_force": CategoryInfo(3, "credential_access", "NACRED", "凭据攻击事件"),
    "policy_violation": CategoryInfo(3, "credential_access", "RO", "违规操作事件"),
    "ids": CategoryInfo(3, "exploitation", "NA", "网络攻击事件"),
    "lateral_movement": CategoryInfo(4, "lateral_movement", "NAHACKED", "失陷主机事件"),
    "beaconing": CategoryInfo(5, "command_and_control", "MPZOMB", "僵尸网络事件"),
    "dga": CategoryInfo(5, "command_and_control", "MPZOMB", "僵尸网络事件"),
    "dns_tunneling": CategoryInfo(6, "exfiltration", "DS", "数据安全事件"),
    "exfiltration": CategoryInfo(6, "exfiltration", "DS", "数据安全事件"),
    "dos": CategoryInfo(7, "impact", "NADOS", "拒绝服务事件"),
    "anomaly": CategoryInfo(0, "anomaly", "ABTRAFFIC", "流量异常事件"),
}
