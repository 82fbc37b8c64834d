"""An alert's undecayed posture weight, stamped on the alert when the store takes it.

    weight = SEVERITY_WEIGHT[severity] × criticality / 3 × mlps_level / 2

(docs/api-posture.md). The store writes it as `watchkeeper.alert.weight_points` = weight × 6
= SEVERITY_WEIGHT × criticality × mlps_level, a whole number, so both backends sum it exactly;
the posture then asks for one sum per site × hour instead of grouping every alert by
severity, criticality and MLPS level of two assets (six fields) — fewer, smaller groups.
"""
from __future__ import annotations

SEVERITY_WEIGHT = {1: 1, 2: 3, 3: 6, 4: 10}
DEFAULT_CRITICALITY, DEFAULT_MLPS = 3, 2
POINTS_FIELD = "watchkeeper.alert.weight_points"
POINTS_PER_WEIGHT = 6            # criticality / 3 × mlps / 2 = criticality × mlps / 6


def stake(dst_crit, dst_mlps, src_crit, src_mlps) -> tuple[int, int]:
    """(criticality, MLPS level) of the asset at stake: the destination's if the inventory
    knows it, else the source's; out of range or missing: 3 and 2 (factor 1)."""
    if dst_crit is not None or dst_mlps is not None:
        crit, mlps = dst_crit, dst_mlps
    else:
        crit, mlps = src_crit, src_mlps
    crit = crit if _level(crit) else DEFAULT_CRITICALITY
    mlps = mlps if _level(mlps) else DEFAULT_MLPS
    return crit, mlps


def _level(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5


def points(severity, dst_crit, dst_mlps, src_crit, src_mlps) -> int:
    crit, mlps = stake(dst_crit, dst_mlps, src_crit, src_mlps)
    return SEVERITY_WEIGHT.get(severity, 1) * crit * mlps


def alert_points(alert: dict) -> int:
    """weight_points of one alert document, from its severity and asset context."""
    assets = (alert.get("watchkeeper") or {}).get("asset") or {}
    dst, src = assets.get("destination") or {}, assets.get("source") or {}
    return points((alert.get("event") or {}).get("severity"), dst.get("criticality"),
                  dst.get("mlps_level"), src.get("criticality"), src.get("mlps_level"))
