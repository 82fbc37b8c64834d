"""`?site=ID` on the screen's reads: narrow the caller's view to one site's subtree (a map
tile that was clicked). The site must be in the caller's subtree, else 404 (like any
resource outside it); without `site` the caller's own scope."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi import Query as Param

from api.deps import CurrentPrincipal, RawStoreDep, SiteTreeDep, StoreDep
from watchkeeper.store.scoped import ScopedStore, subtree

FocusSite = Annotated[str | None, Param(max_length=64, description="Focus on this site's "
                                      "subtree (within yours): a tile of the map, clicked")]
FOCUS_404 = {404: {"description": "No such site in your subtree"}}


@dataclass
class Focus:
    store: ScopedStore          # reads limited to the focused subtree
    scope: str                  # the focused site, or the caller's own


def get_focus(store: StoreDep, raw: RawStoreDep, tree: SiteTreeDep,
              principal: CurrentPrincipal, site: FocusSite = None) -> Focus:
    if site is None or site == principal.site:
        return Focus(store, principal.site)
    if site not in tree or (store.sites is not None and site not in store.sites):
        raise HTTPException(404, f"no site {site!r} in your subtree")
    parents = {sid: node.parent for sid, node in tree.items()}
    return Focus(ScopedStore(raw, subtree(parents, site)), site)


FocusDep = Annotated[Focus, Depends(get_focus)]
