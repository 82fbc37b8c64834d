"""The inventory as a file: YAML (the format of the inventory file, `sites` and `assets`
lists) or CSV (one row per site or asset, a `kind` column saying which). Parsing collects
every error with its row or position (InventoryError), as loading the inventory file does."""
from __future__ import annotations

import csv
import io
import ipaddress

import yaml

from watchkeeper.assets import Asset, InventoryError, Site, _parse

CSV_COLUMNS = ("kind", "id", "name", "parent", "org_type", "cidr", "site", "department",
               "owner", "mlps_level", "criticality")
SITE_COLUMNS = ("id", "name", "parent", "org_type")
ASSET_COLUMNS = ("cidr", "site", "name", "department", "owner", "mlps_level", "criticality")


def to_yaml(sites: list[Site], assets: list[Asset]) -> str:
    data = {"sites": [_plain(s.model_dump()) for s in sites],
            "assets": [_plain(a.model_dump()) for a in assets]}
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def to_csv(sites: list[Site], assets: list[Asset]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for site in sites:
        writer.writerow({"kind": "site", **_plain(site.model_dump())})
    for asset in assets:
        writer.writerow({"kind": "asset", **_plain(asset.model_dump())})
    return out.getvalue()


def _plain(fields: dict) -> dict:
    return {k: v for k, v in fields.items() if v is not None}


def from_yaml(text: str) -> tuple[list[Site], list[Asset]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InventoryError("YAML", [str(exc)]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict) or set(data) - {"sites", "assets"}:
        raise InventoryError("YAML", ["a mapping with `sites` and `assets` lists, nothing else"])
    errors: list[str] = []
    for name in ("sites", "assets"):
        if not isinstance(data.get(name, []), list):
            errors.append(f"{name}: a list")
    sites = _parse(data.get("sites") or [], Site, "sites", errors)
    assets = _parse(data.get("assets") or [], Asset, "assets", errors)
    _check_cidrs(assets, errors)
    if errors:
        raise InventoryError("YAML", errors)
    return sites, assets


def from_csv(text: str) -> tuple[list[Site], list[Asset]]:
    try:
        return _from_csv(text)
    except csv.Error as exc:
        raise InventoryError("CSV", [str(exc)]) from None


def _from_csv(text: str) -> tuple[list[Site], list[Asset]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = {"kind"} - set(reader.fieldnames or ())
    if missing:
        raise InventoryError("CSV", [f"header: columns {', '.join(CSV_COLUMNS)} (kind first)"])
    sites_raw, assets_raw, errors = [], [], []
    for row_number, row in enumerate(reader, start=2):
        kind = (row.get("kind") or "").strip()
        if None in row:
            errors.append(f"row {row_number}: more cells than columns")
        elif kind == "site":
            sites_raw.append(_cells(row, SITE_COLUMNS))
        elif kind == "asset":
            assets_raw.append(_cells(row, ASSET_COLUMNS))
        else:
            errors.append(f"row {row_number}: kind {kind!r}: site or asset")
    sites = _parse(sites_raw, Site, "sites", errors)
    assets = _parse(assets_raw, Asset, "assets", errors)
    _check_cidrs(assets, errors)
    if errors:
        raise InventoryError("CSV", errors)
    return sites, assets


def _check_cidrs(assets: list[Asset], errors: list[str]) -> None:
    for i, asset in enumerate(assets):
        try:
            ipaddress.ip_network(asset.cidr, strict=False)
        except ValueError as exc:
            errors.append(f"assets[{i}].cidr: {exc}")


def _cells(row: dict, columns: tuple[str, ...]) -> dict:
    """Empty cells are absent (defaults apply), not empty strings."""
    return {c: row[c].strip() for c in columns if isinstance(row.get(c), str) and row[c].strip()}
