"""Asset inventory: which site, department and owner an address belongs to, its MLPS level
(GB/T 22239-2019, 1–5) and its criticality. Sites nest region → city → county.

    sites:
      - {id: region, name: 区域中心, org_type: state_organ}   # cii | state_organ | other
      - {id: city-a, name: A市, parent: region}
      - {id: county-a1, name: A1县, parent: city-a}
    assets:
      - {cidr: 10.20.0.0/16, site: county-a1, department: 政务服务, owner: zhang.san,
         mlps_level: 3, criticality: 4, name: 政务外网门户}

The most specific CIDR wins. Loading collects every error with its position, then fails.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from watchkeeper.incidents import OrgType


class Site(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=128)
    parent: str | None = None
    org_type: OrgType = Field(
        "other", description="organisation type for the incident reporting clock: cii "
                             "(critical information infrastructure), state_organ "
                             "(central/state organs), other")


class Asset(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cidr: str
    site: str
    name: str | None = None
    department: str | None = None
    owner: str | None = None
    mlps_level: int = Field(2, ge=1, le=5, description="等级保护 level of the system")
    criticality: int = Field(3, ge=1, le=5, description="1 = lab box … 5 = core service")


@dataclass
class AssetInfo:
    asset: Asset
    site_path: list[str]          # region → … → the asset's site (ids)

    def as_ecs(self) -> dict:
        return {k: v for k, v in {
            "name": self.asset.name, "site": self.asset.site, "site_path": self.site_path,
            "department": self.asset.department, "owner": self.asset.owner,
            "mlps_level": self.asset.mlps_level, "criticality": self.asset.criticality,
        }.items() if v is not None}


@dataclass
class Inventory:
    sites: dict[str, Site] = field(default_factory=dict)
    # per IP version: (network, asset); lookups keep the longest matching prefix
    _nets: dict[int, list] = field(default_factory=lambda: {4: [], 6: []})

    def lookup(self, ip: str | None) -> AssetInfo | None:
        if not ip:
            return None
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        best = None
        for net, asset in self._nets[addr.version]:   # few hundred CIDRs: a scan is fine
            if addr in net and (best is None or net.prefixlen > best[0].prefixlen):
                best = (net, asset)
        return AssetInfo(best[1], self.site_path(best[1].site)) if best else None

    def site_path(self, site_id: str) -> list[str]:
        path, seen = [], set()
        while site_id in self.sites and site_id not in seen:
            seen.add(site_id)
            path.insert(0, site_id)
            site_id = self.sites[site_id].parent or ""
        return path


def load_inventory(path: str | Path | None) -> Inventory:
    if not path:
        return Inventory()
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"inventory {path}: {exc}") from None
    errors: list[str] = []
    sites = _parse(data.get("sites", []), Site, "sites", errors)
    assets = _parse(data.get("assets", []), Asset, "assets", errors)
    inventory = Inventory(sites={s.id: s for s in sites})
    for i, asset in enumerate(assets):
        try:
            net = ipaddress.ip_network(asset.cidr, strict=False)
        except ValueError as exc:
            errors.append(f"assets[{i}].cidr: {exc}")
            continue
        if asset.site not in inventory.sites:
            errors.append(f"assets[{i}].site: unknown site {asset.site!r}")
        inventory._nets[net.version].append((net, asset))
    for site in sites:
        if site.parent and site.parent not in inventory.sites:
            errors.append(f"sites[{site.id}].parent: unknown site {site.parent!r}")
    if errors:
        raise ValueError(f"inventory {path}:\n  " + "\n  ".join(errors))
    return inventory


def _parse(items, model, where: str, errors: list[str]) -> list:
    parsed = []
    for i, item in enumerate(items if isinstance(items, list) else []):
        try:
            parsed.append(model(**item) if isinstance(item, dict) else model.model_validate(item))
        except ValidationError as exc:
            errors += [f"{where}[{i}].{'.'.join(map(str, e['loc']))}: {e['msg']}"
                       for e in exc.errors()]
    return parsed


