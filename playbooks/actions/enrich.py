"""What we know about an address: inventory asset, and its past alerts (IOC lookups come
from the ioc_match detector's alerts, which are among them)."""
from __future__ import annotations

from pydantic import Field

from playbooks.actions.base import Action, ActionContext, ActionResult, Params
from watchkeeper.store import Query


class EnrichParams(Params):
    address: str = Field(min_length=2, max_length=64)
    past_alerts: int = Field(20, ge=0, le=500)


class Enrich(Action):
    name = "enrich"
    Params = EnrichParams
    idempotent = True          # reads only
    audited = False

    def run(self, ctx: ActionContext, params: EnrichParams) -> ActionResult:
        asset = ctx.inventory.lookup(params.address)
        output: dict = {"address": params.address,
                        "internal": ctx.internal.is_internal(params.address),
                        "asset": asset.as_ecs() if asset else None}
        if params.past_alerts:
            page = ctx.store.search("alerts", Query(ip=params.address, limit=params.past_alerts))
            output["past_alerts"] = {"total": page.total, "items": [
                {"id": a["event"]["id"], "category": a["watchkeeper"]["alert"].get("category"),
                 "severity": a["event"].get("severity"), "at": a["@timestamp"]}
                for a in page.items]}
            output["ioc_matches"] = sum(1 for a in page.items
                                        if a["watchkeeper"]["alert"].get("category") == "ioc_match")
        return ActionResult("ok", output)
