"""Editing the stored inventory within a principal's subtree: every change is checked
against the whole resulting tree (unknown parent, loop, unknown site of an asset) before it
is written, then audited (watchkeeper/store/inventory.py writes).

`scope` is the principal's site (`/` = root). Outside the subtree = not found (the API's 404);
an id already taken = Conflict (409); a tree that would be broken = InventoryError (422).
"""
from __future__ import annotations

from watchkeeper.assets import Asset, Site, build_inventory
from watchkeeper.identity import ROOT
from watchkeeper.store import inventory as inv
from watchkeeper.store.base import Store
from watchkeeper.store.scoped import subtree


class Conflict(ValueError):
    pass


class NotVisible(KeyError):
    pass


class InUse(ValueError):
    pass


def _state(store: Store) -> tuple[dict[str, Site], dict[str, Asset]]:
    sites = {s.id: s for s in inv.stored_sites(store)}
    assets = dict(inv.stored_assets(store))
    return sites, assets


def _visible(sites: dict[str, Site], scope: str) -> set[str] | None:
    found = subtree({s.id: s.parent for s in sites.values()}, scope)
    return None if found is None else set(found)


def _check_in_scope(site_id: str | None, visible: set[str] | None, what: str) -> None:
    if visible is None:
        return
    if site_id is None or site_id not in visible:
        raise NotVisible(f"no {what} {site_id!r}" if site_id else
                         "only principals bound to the root create top-level sites")


def _check(sites: dict[str, Site], assets: dict[str, Asset]) -> None:
    build_inventory(list(sites.values()), list(assets.values()))


def create_site(store: Store, site: Site, scope: str, actor: str, now: float) -> Site:
    sites, assets = _state(store)
    if site.id in sites:
        raise Conflict(f"site {site.id!r} exists")
    _check_in_scope(site.parent, _visible(sites, scope), "parent site")
    _check({**sites, site.id: site}, assets)
    inv.put_sites_and_assets(store, [site], [], actor, "create", now)
    return site


def update_site(store: Store, site_id: str, changes: dict, scope: str, actor: str,
                now: float) -> Site:
    sites, assets = _state(store)
    visible = _visible(sites, scope)
    if site_id not in sites or (visible is not None and site_id not in visible):
        raise NotVisible(f"no site {site_id!r}")
    updated = sites[site_id].model_copy(update=changes)
    if "parent" in changes and changes["parent"] != sites[site_id].parent:
        _check_in_scope(updated.parent, visible, "parent site")
    Site.model_validate(updated.model_dump())
    _check({**sites, site_id: updated}, assets)
    inv.put_sites_and_assets(store, [updated], [], actor, "update", now)
    return updated


def delete_site(store: Store, site_id: str, scope: str, actor: str) -> None:
    sites, assets = _state(store)
    visible = _visible(sites, scope)
    if site_id not in sites or (visible is not None and site_id not in visible):
        raise NotVisible(f"no site {site_id!r}")
    children = [s.id for s in sites.values() if s.parent == site_id]
    held = [a.cidr for a in assets.values() if a.site == site_id]
    if children or held:
        raise InUse(f"site {site_id!r} still has sites {children[:10]} and assets {held[:10]}: "
                    "move or delete them first")
    inv.delete(store, "sites", site_id, actor)


def create_asset(store: Store, asset: Asset, scope: str, actor: str, now: float) -> str:
    sites, assets = _state(store)
    asset_id = inv.asset_id(asset.cidr)
    if asset_id in assets:
        raise Conflict(f"asset {inv.normal_cidr(asset.cidr)} exists (id {asset_id})")
    _check_in_scope(asset.site, _visible(sites, scope), "site")
    _check(sites, {**assets, asset_id: asset})
    inv.put_sites_and_assets(store, [], [asset], actor, "create", now)
    return asset_id


def update_asset(store: Store, asset_id: str, changes: dict, scope: str, actor: str,
                 now: float) -> Asset:
    sites, assets = _state(store)
    visible = _visible(sites, scope)
    if asset_id not in assets or (visible is not None and assets[asset_id].site not in visible):
        raise NotVisible(f"no asset {asset_id!r}")
    updated = assets[asset_id].model_copy(update=changes)
    Asset.model_validate(updated.model_dump())
    _check_in_scope(updated.site, visible, "site")
    _check(sites, {**assets, asset_id: updated})
    inv.put_sites_and_assets(store, [], [updated], actor, "update", now)
    return updated


def delete_asset(store: Store, asset_id: str, scope: str, actor: str) -> None:
    sites, assets = _state(store)
    visible = _visible(sites, scope)
    if asset_id not in assets or (visible is not None and assets[asset_id].site not in visible):
        raise NotVisible(f"no asset {asset_id!r}")
    inv.delete(store, "assets", asset_id, actor)


def import_inventory(store: Store, sites: list[Site], assets: list[Asset], scope: str,
                     actor: str, now: float) -> tuple[int, int]:
    """Create or replace every site and asset given; all must fall in the caller's subtree
    of the resulting tree (a city administrator imports counties under its city)."""
    stored_sites, stored_assets = _state(store)
    merged_sites = {**stored_sites, **{s.id: s for s in sites}}
    merged_assets = {**stored_assets, **{inv.asset_id(a.cidr): a for a in assets}}
    if scope != ROOT:
        own = stored_sites.get(scope)
        if own is not None and merged_sites[scope].parent != own.parent:
            raise NotVisible("a principal cannot move its own site")
        visible = _visible(merged_sites, scope) or set()
        outside = [s.id for s in sites if s.id not in visible] + \
            [a.cidr for a in assets if a.site not in visible]
        if outside:
            raise NotVisible(f"outside your sites: {outside[:20]}")
    _check(merged_sites, merged_assets)
    inv.put_sites_and_assets(store, sites, assets, actor, "import", now, audit_each=False)
    return len(sites), len(assets)
