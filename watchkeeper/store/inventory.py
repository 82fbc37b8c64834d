"""The asset inventory in the store (kinds `sites` and `assets`): what the API edits, what
alerting reads (through `Inventory.refreshing`), seeded once from the inventory YAML file.

A site document is labelled with its own id and an asset with its site, so the tenant scope
(watchkeeper/store/scoped.py) shows a principal the sites and assets of its subtree only.
Ids are stable: `site id` for a site, a hash of the normalised CIDR for an asset (the same
network is one asset, whoever imports it).
"""
from __future__ import annotations

import hashlib
import ipaddress
import time

from watchkeeper import timeutil
from watchkeeper.assets import Asset, Inventory, Site, build_inventory, load_inventory
from watchkeeper.store.audit import audit_record
from watchkeeper.store.base import Query, Store

SITE_DATASET, ASSET_DATASET = "watchkeeper.site", "watchkeeper.asset"


def normal_cidr(cidr: str) -> str:
    return str(ipaddress.ip_network(cidr, strict=False))


def asset_id(cidr: str) -> str:
    return "asset-" + hashlib.sha256(normal_cidr(cidr).encode()).hexdigest()[:20]


def site_document(site: Site, now: float) -> dict:
    return {"@timestamp": timeutil.format(now),
            "event": {"id": site.id, "kind": "state", "dataset": SITE_DATASET},
            "labels": {"site": site.id},
            "watchkeeper": {"inventory": {"site": site.model_dump()}}}


def asset_document(asset: Asset, now: float) -> dict:
    asset = asset.model_copy(update={"cidr": normal_cidr(asset.cidr)})
    return {"@timestamp": timeutil.format(now),
            "event": {"id": asset_id(asset.cidr), "kind": "state", "dataset": ASSET_DATASET},
            "labels": {"site": asset.site},
            "watchkeeper": {"inventory": {"asset": {"id": asset_id(asset.cidr),
                                                    **asset.model_dump()}}}}


def site_of(doc: dict) -> Site:
    return Site(**doc["watchkeeper"]["inventory"]["site"])


def asset_of(doc: dict) -> tuple[str, Asset]:
    fields = dict(doc["watchkeeper"]["inventory"]["asset"])
    return fields.pop("id"), Asset(**fields)


def stored_sites(reader) -> list[Site]:
    """Every site `reader` (a Store or a tenant-scoped one) may see."""
    return _all(reader, "sites", site_of)


def stored_assets(reader) -> list[tuple[str, Asset]]:
    return _all(reader, "assets", asset_of)


def _all(reader, kind: str, convert) -> list:
    """Page through every document of `kind` (the inventory: hundreds, not millions)."""
    out, cursor = [], None
    while True:
        page = reader.search(kind, Query(order="asc", limit=1000, cursor=cursor))
        out += [convert(d) for d in page.items]
        cursor = page.next_cursor
        if cursor is None or not page.items:
            return out


def load_from_store(store: Store) -> Inventory:
    """The whole inventory as stored (unchecked references are kept, not refused: the
    store is what the administrators made it)."""
    inventory = Inventory(sites={s.id: s for s in stored_sites(store)})
    for _, asset in stored_assets(store):
        net = ipaddress.ip_network(asset.cidr, strict=False)
        inventory._nets[net.version].append((net, asset))
    return inventory


def site_tree(store: Store) -> dict[str, Site]:
    return {s.id: s for s in stored_sites(store)}


def put_sites_and_assets(store: Store, sites: list[Site], assets: list[Asset], actor: str,
                         action: str, now: float, audit_each: bool = True) -> None:
    """Write (insert or replace) and audit: one record per object, or (`audit_each` False,
    an import of thousands) one record naming the counts and the first ids."""
    store.bulk_upsert("sites", [site_document(s, now) for s in sites])
    store.bulk_upsert("assets", [asset_document(a, now) for a in assets])
    store.refresh("sites")
    store.refresh("assets")
    if not audit_each:
        store.append_audit(audit_record(
            f"inventory.{action}", actor, object_kind="inventory",
            message=f"{len(sites)} sites, {len(assets)} assets",
            changes={"sites": {"to": [s.id for s in sites][:200]},
                     "assets": {"to": [normal_cidr(a.cidr) for a in assets][:200]}}))
        return
    for site in sites:
        store.append_audit(audit_record(f"site.{action}", actor, object_kind="site",
                                        object_id=site.id, changes=_changes(site.model_dump())))
    for asset in assets:
        store.append_audit(audit_record(f"asset.{action}", actor, object_kind="asset",
                                        object_id=asset_id(asset.cidr),
                                        changes=_changes(asset.model_dump())))


def delete(store: Store, kind: str, object_id: str, actor: str) -> int:
    removed = store.delete_ids(kind, [object_id])
    store.refresh(kind)
    if removed:
        store.append_audit(audit_record(f"{kind[:-1]}.delete", actor, object_kind=kind[:-1],
                                        object_id=object_id))
    return removed


def _changes(fields: dict) -> dict:
    return {k: {"to": v} for k, v in fields.items() if v is not None}


def seed_from_file(store: Store, path: str | None, actor: str = "seed") -> bool:
    """Import the inventory file once: only into a store that has no site and no asset yet
    (after that the store is the truth and the file is not read again)."""
    if not path:
        return False
    if store.search("sites", Query(limit=1)).total or store.search("assets", Query(limit=1)).total:
        return False
    inventory = load_inventory(path)
    put_sites_and_assets(store, list(inventory.sites.values()), inventory.assets(), actor,
                         "import", time.time(), audit_each=False)
    return True


def check_tree(sites: list[Site], assets: list[Asset]) -> Inventory:
    """The inventory these would make, or InventoryError naming every problem."""
    return build_inventory(sites, assets)


class SiteDirectory:
    """The site tree the API's tenancy and posture follow: id -> parent and id -> name,
    reloaded from the store every `every` seconds (another API process may have changed it)
    and at once after a change made here. `configured` (id -> parent, from `create_app`)
    is used while the store holds no site."""

    def __init__(self, store: Store, configured: dict[str, str | None] | None = None,
                 every: float = 10.0):
        self.store, self.configured, self.every = store, configured, every
        self.parents: dict[str, str | None] | None = configured
        self.names: dict[str, str] = {}
        self.org_types: dict[str, str] = {}
        self._loaded = float("-inf")

    def maybe_refresh(self) -> bool:
        """Reload if stale; True when the tree was (re)loaded from the store."""
        if time.monotonic() - self._loaded < self.every:
            return False
        return self.refresh()

    def refresh(self) -> bool:
        self._loaded = time.monotonic()
        sites = stored_sites(self.store)
        if not sites:
            return False
        self.parents = {s.id: s.parent for s in sites}
        self.names = {s.id: s.name for s in sites}
        self.org_types = {s.id: s.org_type for s in sites}
        return True
