"""Bad input to the inventory and posture routes: a clear 4xx problem, never a 5xx."""
from __future__ import annotations

import pytest

PROBLEM = "application/problem+json"


@pytest.fixture
def admin(client, bearer_for):
    return bearer_for("sec.admin", "security_admin")


@pytest.mark.parametrize("method, path, body, status", [
    ("POST", "/api/v1/sites", {"id": "a/b", "name": "x"}, 422),             # id pattern
    ("POST", "/api/v1/sites", {"id": "ok", "name": ""}, 422),
    ("POST", "/api/v1/sites", {"id": "ok", "name": "x", "org_type": "bank"}, 422),
    ("POST", "/api/v1/sites", {"id": "ok", "name": "x", "colour": "red"}, 422),
    ("POST", "/api/v1/sites", {"id": "ok", "name": "x", "parent": "nowhere"}, 422),
    ("PATCH", "/api/v1/sites/nowhere", {"name": "x"}, 404),
    ("DELETE", "/api/v1/sites/nowhere", None, 404),
    ("POST", "/api/v1/assets", {"cidr": "10.0.0.0/33", "site": "ok"}, 422),
    ("POST", "/api/v1/assets", {"cidr": "10.0.0.0/8", "site": "nowhere"}, 422),
    ("POST", "/api/v1/assets", {"cidr": "10.0.0.0/8", "site": "x", "mlps_level": 6}, 422),
    ("PATCH", "/api/v1/assets/asset-none", {"criticality": 2}, 404),
    ("PATCH", "/api/v1/assets/asset-none", {"cidr": "10.0.0.0/8"}, 422),   # not editable
    ("DELETE", "/api/v1/assets/asset-none", None, 404),
    ("GET", "/api/v1/assets/lookup?ip=10.0.0.300", None, 422),
    ("GET", "/api/v1/assets/lookup", None, 422),
    ("GET", "/api/v1/inventory/export?format=xml", None, 422),
    ("POST", "/api/v1/inventory/import?format=xml", None, 422),
])
def test_bad_input_is_a_problem(client, admin, method, path, body, status):
    response = client.request(method, path, headers=admin, json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM


@pytest.mark.parametrize("path, body", [
    ("/api/v1/sites", b'{"id": "x1", "name": "a\\ud9c6b"}'),
    ("/api/v1/assets", b'{"cidr": "10.0.0.0/8", "site": "x1", "owner": "\\udc00"}'),
    ("/api/v1/inventory/import", b'sites: [{id: x2, name: "\\ud9c6"}]'),
])
def test_a_lone_surrogate_is_refused_not_stored(client, admin, path, body):
    response = client.post(path, headers={**admin, "content-type": "application/json"},
                           content=body)
    assert response.status_code == 422, response.text
    assert client.get("/api/v1/sites", headers=admin).status_code == 200


def test_an_oversized_import_is_refused(client, admin):
    response = client.post("/api/v1/inventory/import", headers=admin,
                           content=b"#" * (5 * 1024 * 1024 + 1))
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM


def test_a_bad_cidr_in_an_import_is_listed(client, admin):
    response = client.post("/api/v1/inventory/import", headers=admin, params={"format": "csv"},
                           content=b"kind,cidr,site\nasset,10.300.0.0/16,x\n")
    assert response.status_code == 422 and "10.300.0.0/16" in response.json()["detail"]


def test_posture_on_an_empty_store(client):
    body = client.get("/api/v1/posture").json()
    assert body["level"] == "blue" and body["score"] == 0 and body["sites"] == []
    assert len(body["trend_24h"]["points"]) == 24 and body["collectors"] == []
