"""Stored reports through the API: listed and downloaded with tenancy applied (a county
officer sees the county's reports only; outside the subtree = 404)."""
from __future__ import annotations

import hashlib

from watchkeeper.store.base import Query
from watchkeeper.store.reports import StoredReport, save_report

SITES = {"region": None, "city-a": "region", "county-a1": "city-a", "city-b": "region"}
T0 = 1_767_225_600.0


def _save(store, report_id: str, site: str | None, pdf: bytes, report_type="monthly") -> None:
    save_report(store, StoredReport(report_id=report_id, report_type=report_type,
                                    period="2026-11", period_start=T0, period_end=T0 + 86400,
                                    site=site, pdf=pdf, html="<p>报告</p>"), now=T0)


def _ids(client, headers, **params) -> set[str]:
    response = client.get("/api/v1/reports", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


def test_reports_are_listed_and_downloaded_within_the_subtree(store, sited_client):
    client, bearer = sited_client(SITES)
    _save(store, "r-all", None, b"%PDF-all")
    _save(store, "r-city-a", "city-a", b"%PDF-city-a")
    _save(store, "r-county", "county-a1", b"%PDF-county")
    _save(store, "r-city-b", "city-b", b"%PDF-city-b", report_type="weekly")
    root = bearer(client, "root.officer", "security_admin", "/")
    city = bearer(client, "city.officer", "analyst", "city-a")
    county = bearer(client, "county.officer", "analyst", "county-a1")

    assert _ids(client, root) == {"r-all", "r-city-a", "r-county", "r-city-b"}
    assert _ids(client, root, type="weekly") == {"r-city-b"}
    assert _ids(client, city) == {"r-city-a", "r-county"}
    assert _ids(client, county) == {"r-county"}

    got = client.get("/api/v1/reports/r-county/pdf", headers=county)
    assert got.status_code == 200 and got.content == b"%PDF-county"
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["x-report-sha256"] == hashlib.sha256(b"%PDF-county").hexdigest()
    meta = client.get("/api/v1/reports/r-county", headers=county).json()
    assert meta["sha256"] == hashlib.sha256(b"%PDF-county").hexdigest() and meta["size"] == 11

    for path in ("/api/v1/reports/r-city-a", "/api/v1/reports/r-city-a/pdf",
                 "/api/v1/reports/r-all/pdf", "/api/v1/reports/nope"):
        response = client.get(path, headers=county)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"


def test_report_routes_refuse_bad_input_and_other_roles(store, sited_client):
    client, bearer = sited_client(SITES)
    analyst = bearer(client, "an", "analyst", "/")
    assert client.get("/api/v1/reports", headers=analyst,
                      params={"cursor": "garbage"}).status_code == 400
    assert client.get("/api/v1/reports", headers=analyst,
                      params={"type": "yearly"}).status_code == 422
    assert client.get("/api/v1/reports", headers=analyst,
                      params={"limit": 0}).status_code == 422
    assert client.get("/api/v1/reports/" + "x" * 500, headers=analyst).status_code == 422
    auditor = bearer(client, "au", "audit_admin", "/")
    assert client.get("/api/v1/reports", headers=auditor).status_code == 403
    assert client.get("/api/v1/reports").status_code == 401



INVENTORY = """sites:
  - {id: region, name: 区域中心}
  - {id: city-a, name: A市, parent: region}
  - {id: county-a1, name: A1县, parent: city-a}
  - {id: city-b, name: B市, parent: region}
"""


def test_a_report_generated_through_the_api_is_stored_audited_and_scoped(store, tmp_path):
    """POST with the real generator (reports/), wired the way the composition root does."""
    import warnings

    from api import create_app
    from reports.cli import on_demand_generator
    from tests.unit.api.conftest import SECRET, bearer
    from tests.unit.reports import seed
    from watchkeeper.config import AuthSettings, Settings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    seed.seed(store)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(INVENTORY, encoding="utf-8")
    settings = Settings(store=store.url, inventory_file=str(inventory))
    app = create_app(store, auth_settings=AuthSettings(secret_key=SECRET), sites=SITES,
                     report_generator=on_demand_generator(settings, store))
    with TestClient(app) as client:
        county = bearer(client, "county.officer", "security_admin", "county-a1")
        made = client.post("/api/v1/reports", headers=county,
                           json={"type": "monthly", "period": "2026-11"})
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["site"] == "county-a1" and body["type"] == "monthly"
        pdf = client.get(f"/api/v1/reports/{body['id']}/pdf", headers=county)
        assert pdf.content.startswith(b"%PDF")
        assert hashlib.sha256(pdf.content).hexdigest() == body["sha256"]
        store.refresh("audit")
        assert any(r["event"]["action"] == "report.generate" and
                   r["watchkeeper"]["audit"]["object_id"] == body["id"]
                   for r in store.search("audit", Query(limit=20)).items)
        # Outside the subtree, bad periods, missing incidents: 4xx, never 5xx.
        for payload, status in (({"type": "monthly", "period": "2026-11", "site": "city-a"}, 404),
                                ({"type": "monthly", "period": "2026-13"}, 422),
                                ({"type": "weekly", "period": "2026-11"}, 422),
                                ({"type": "monthly"}, 422),
                                ({"type": "incident"}, 422),
                                ({"type": "incident", "incident_id": "inc-on-time"}, 404),
                                ({"type": "yearly", "period": "2026"}, 422),
                                ({"type": "monthly", "period": "2026-11", "extra": 1}, 422)):
            answer = client.post("/api/v1/reports", headers=county, json=payload)
            assert answer.status_code == status, (payload, answer.text)
