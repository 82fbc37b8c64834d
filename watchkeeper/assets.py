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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from watchkeeper.incidents import OrgType


class _Text(BaseModel):
    """Every text field must be encodable Unicode: a lone surrogate (which JSON's \\ud800
    escapes and YAML's can carry) could be stored but never shown again."""

    @model_validator(mode="after")
    def _encodable(self):
        for name, value in self.__dict__.items():
            if isinstance(value, str):
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueError(f"{name}: not valid Unicode (a lone surrogate)") from None
        return self


class Site(_Text):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=128)
    parent: str | None = None
    org_type: OrgType = Field(
        "other", description="organisation type for the incident reporting clock: cii "
                             "(critical information infrastructure), state_organ "
                             "(central/state organs), other")


class Asset(_Text):
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

    # refresh hook: a store-backed inventory reloads itself (see `refreshing`)
    _loader: Callable[[], Inventory] | None = None
    _every: float = 10.0
    _loaded_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def refreshing(cls, loader: Callable[[], Inventory], every: float = 10.0) -> Inventory:
        """An inventory that reloads from `loader` (the store) when older than `every`
        seconds, so inventory changes reach new alerts without a restart. A failed reload
        keeps the previous contents (and is retried on the next lookup)."""
        made = cls(_loader=loader, _every=every)
        made.reload()
        return made

    def reload(self) -> None:
        if self._loader is None:
            return
        with self._lock:
            self._loaded_at = time.monotonic()
            try:
                fresh = self._loader()
            except Exception:  # noqa: BLE001 - a store hiccup must not stop alerting
                return
            self.sites, self._nets = fresh.sites, fresh._nets

    def _fresh(self) -> None:
        if self._loader is not None and time.monotonic() - self._loaded_at >= self._every:
            self.reload()

    def assets(self) -> list[Asset]:
        return [asset for nets in self._nets.values() for _, asset in nets]

    def lookup(self, ip: str | None) -> AssetInfo | None:
        self._fresh()
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
    if not isinstance(data, dict):
        raise ValueError(f"inventory {path}: a mapping with `sites` and `assets` lists")
    return parse_inventory(data, str(path))


def parse_inventory(data: dict, where: str = "inventory") -> Inventory:
    """Sites and assets from plain data (a YAML file, an import), every error collected."""
    errors: list[str] = []
    sites = _parse(data.get("sites", []), Site, "sites", errors)
    assets = _parse(data.get("assets", []), Asset, "assets", errors)
    return build_inventory(sites, assets, where, errors)


def build_inventory(sites: list[Site], assets: list[Asset], where: str = "inventory",
                    errors: list[str] | None = None) -> Inventory:
    errors = [] if errors is None else errors
    seen: set[str] = set()
    for i, site in enumerate(sites):
        if site.id in seen:
            errors.append(f"sites[{i}].id: {site.id!r} twice")
        seen.add(site.id)
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
    errors += _cycles(inventory.sites)
    if errors:
        raise InventoryError(where, errors)
    return inventory


class InventoryError(ValueError):
    def __init__(self, where: str, errors: list[str]):
        self.errors = errors
        super().__init__(f"{where}:\n  " + "\n  ".join(errors))


def _cycles(sites: dict[str, Site]) -> list[str]:
    found = []
    for start in sites:
        seen, current = {start}, sites[start].parent
        while current in sites:
            if current in seen:
                found.append(f"sites[{start}].parent: the tree loops back to {current!r}")
                break
            seen.add(current)
            current = sites[current].parent
    return found


def _parse(items, model, where: str, errors: list[str]) -> list:
    parsed = []
    for i, item in enumerate(items if isinstance(items, list) else []):
        try:
            parsed.append(model(**item) if isinstance(item, dict) else model.model_validate(item))
        except ValidationError as exc:
            errors += [f"{where}[{i}].{'.'.join(map(str, e['loc']))}: {e['msg']}"
                       for e in exc.errors()]
    return parsed


