"""The inventory in the store on both backends: seeded once from the YAML file, edited through
the API by the security administrator within its subtree (audited), imported and exported as
YAML and CSV, looked up by IP, and read by alerting without a restart."""
from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest

from api import create_app
from alerting.context import AlertContext
from watchkeeper.assets import Inventory
from watchkeeper.config import AuthSettings
from watchkeeper.documents import AlertSpec, alert_document
from watchkeeper.identity import Principal, issue_access_token
from watchkeeper.store import inventory as inv
from watchkeeper.store.base import Query

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SECRET = "contract-tests-only-" + "inv3n-" * 4
EXAMPLE = Path(__file__).parents[2] / "deploy" / "examples" / "inventory.yaml"
T0 = 1_767_225_600.0


@pytest.fixture
def client(store):
    assert inv.seed_from_file(store, str(EXAMPLE))
    with TestClient(create_app(store, auth_settings=AuthSettings(secret_key=SECRET))) as made:
        yield made


def _as(client, site: str = "/", role: str = "security_admin") -> dict:
    name = f"{role}-{site.strip('/') or 'root'}"
    client.app.state.access.accounts.ids.put_user({
        "name": name, "role": role, "site": site, "disabled": False, "password_hash": "x",
        "failures": 0, "locked_until": 0.0}, T0)
    return {"Authorization": f"Bearer {issue_access_token(Principal(name, role, site), SECRET, 600)}"}


def test_the_file_seeds_an_empty_store_once(store):
    assert inv.seed_from_file(store, str(EXAMPLE))
    assert {s.id for s in inv.stored_sites(store)} == {"region", "city-a", "county-a1",
                                                       "dc-region"}
    assert len(inv.stored_assets(store)) == 4
    assert not inv.seed_from_file(store, str(EXAMPLE))        # the store is the truth now
    imports = store.search("audit", Query(terms={"event.action": ["inventory.import"]}))
    assert imports.total == 1


def test_crud_is_audited_and_refuses_a_broken_tree(client, store):
    admin = _as(client)
    made = client.post("/api/v1/sites", headers=admin, json={
        "id": "county-a2", "name": "A2县", "parent": "city-a", "org_type": "state_organ"})
    assert made.status_code == 201, made.text
    assert client.post("/api/v1/sites", headers=admin, json={
        "id": "county-a2", "name": "again", "parent": "city-a"}).status_code == 409
    tiles = {s["site"]: s for s in client.get("/api/v1/posture", headers=_as(
        client, role="viewer")).json()["sites"]}
    assert tiles["county-a2"]["name"] == "A2县" and tiles["county-a2"]["org_type"] == \
        "state_organ" and tiles["county-a2"]["parent"] == "city-a"
    orphan = client.post("/api/v1/sites", headers=admin, json={
        "id": "lost", "name": "x", "parent": "nowhere"})
    assert orphan.status_code == 422 and "nowhere" in orphan.json()["detail"]
    loop = client.patch("/api/v1/sites/region", headers=admin, json={"parent": "county-a1"})
    assert loop.status_code == 422, loop.text
    asset = client.post("/api/v1/assets", headers=admin, json={
        "cidr": "10.10.3.7/24", "site": "county-a2", "mlps_level": 4, "criticality": 5})
    assert asset.status_code == 201 and asset.json()["cidr"] == "10.10.3.0/24"
    asset_id = asset.json()["id"]
    assert client.delete("/api/v1/sites/county-a2", headers=admin).status_code == 409
    changed = client.patch(f"/api/v1/assets/{asset_id}", headers=admin, json={"criticality": 2})
    assert changed.status_code == 200 and changed.json()["criticality"] == 2
    assert client.patch(f"/api/v1/assets/{asset_id}", headers=admin,
                        json={"mlps_level": 9}).status_code == 422
    assert client.delete(f"/api/v1/assets/{asset_id}", headers=admin).status_code == 204
    assert client.delete("/api/v1/sites/county-a2", headers=admin).status_code == 204
    assert client.get("/api/v1/sites/county-a2", headers=_as(client, role="analyst")) \
        .status_code == 404
    store.refresh("audit")
    actions = {d["event"]["action"] for d in store.scan("audit", Query())}
    assert {"site.create", "asset.create", "asset.update", "asset.delete",
            "site.delete"} <= actions


def test_a_city_administrator_stays_in_its_city(client):
    city = _as(client, "city-a")
    listed = client.get("/api/v1/sites", headers=city).json()
    assert {s["id"] for s in listed["items"]} == {"city-a", "county-a1"}
    assets = client.get("/api/v1/assets", headers=city).json()["items"]
    assert {a["site"] for a in assets} == {"city-a", "county-a1"}
    assert client.post("/api/v1/sites", headers=city, json={
        "id": "county-a3", "name": "A3县", "parent": "city-a"}).status_code == 201
    for outside in ({"id": "top", "name": "x"}, {"id": "dc2", "name": "x", "parent": "region"}):
        assert client.post("/api/v1/sites", headers=city, json=outside).status_code == 404
    assert client.patch("/api/v1/sites/dc-region", headers=city,
                        json={"name": "mine"}).status_code == 404
    assert client.post("/api/v1/assets", headers=city, json={
        "cidr": "10.99.0.0/16", "site": "dc-region"}).status_code == 404
    # the new county is part of the tenancy tree at once: a county user can be bound to it
    assert "county-a3" in client.app.state.access.sites


def test_lookup_by_ip_within_the_subtree(client):
    root = client.get("/api/v1/assets/lookup", headers=_as(client, role="analyst"),
                      params={"ip": "10.10.2.9"}).json()
    assert root["asset"]["site"] == "dc-region" and root["site_path"] == ["region", "dc-region"]
    county = client.get("/api/v1/assets/lookup", headers=_as(client, "county-a1", "analyst"),
                        params={"ip": "10.10.2.9"}).json()
    assert county["asset"] is None                      # a sibling's asset: not found
    assert client.get("/api/v1/assets/lookup", headers=_as(client, role="analyst"),
                      params={"ip": "not-an-ip"}).status_code == 422


@pytest.mark.parametrize("fmt", ["yaml", "csv"])
def test_export_then_import_round_trips(client, store, fmt):
    admin = _as(client)
    exported = client.get("/api/v1/inventory/export", headers=admin, params={"format": fmt})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith(
        {"yaml": "application/yaml", "csv": "text/csv"}[fmt])
    before = (inv.stored_sites(store), inv.stored_assets(store))
    text = exported.text.replace("区域中心", "区域应急指挥中心")
    imported = client.post("/api/v1/inventory/import", headers=admin, params={"format": fmt},
                           content=text.encode())
    assert imported.status_code == 200, imported.text
    assert imported.json() == {"sites": 4, "assets": 4}
    after = (inv.stored_sites(store), inv.stored_assets(store))
    assert after[1] == before[1]
    assert {s.id: s.name for s in after[0]}["region"] == "区域应急指挥中心"


def test_bad_files_are_refused_with_every_problem(client, store):
    admin = _as(client)
    bad_csv = ("kind,id,name,parent,cidr,site,mlps_level\n"
               "site,c9,,region,,,\n"
               "asset,,,,10.300.0.0/16,region,\n"
               "asset,,,,10.5.0.0/16,nowhere,7\n"
               "thing,,,,,,\n")
    answer = client.post("/api/v1/inventory/import", headers=admin, params={"format": "csv"},
                         content=bad_csv.encode())
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert len(answer.json()["errors"]) >= 3
    for body in (b"- just a list", b"sites: 5", b"\xff\xfe", b"{unclosed: [", b"x: 1"):
        response = client.post("/api/v1/inventory/import", headers=admin, content=body)
        assert 400 <= response.status_code < 500, (body, response.text)
    assert len(inv.stored_sites(store)) == 4                 # nothing half-written


def _alert(dst: str) -> dict:
    spec = AlertSpec(detector="scan", detector_version="1", category="scan", rule_id="r",
                     rule_name="r", severity=3, message="m", entity=dst, first_seen=T0,
                     last_seen=T0 + 1, source_ip="203.0.113.5", destination_ip=dst,
                     subscores={"confidence": 0.8})
    return alert_document(spec, created=T0)


def test_an_edit_reaches_new_alerts_without_a_restart(client, store):
    context = AlertContext(Inventory.refreshing(lambda: inv.load_from_store(store), every=0.1))
    before = context.apply(_alert("10.10.1.20"))
    assert before["labels"]["site"] == "county-a1"
    admin = _as(client)
    asset = client.post("/api/v1/assets", headers=admin, json={
        "cidr": "10.10.1.16/28", "site": "dc-region", "mlps_level": 4, "criticality": 5})
    assert asset.status_code == 201
    time.sleep(0.2)
    after = context.apply(_alert("10.10.1.20"))
    assert after["labels"]["site"] == "dc-region"
    assert after["watchkeeper"]["asset"]["destination"]["mlps_level"] == 4
