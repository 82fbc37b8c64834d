"""Role × endpoint matrix, generated from the app's routes.

A route that declares no roles (`allow(...)` or `public(...)`) fails; a route missing from
EXPECTED fails (add it there, reviewed); every role is tried on every route: allowed roles get
past the guard (not 401/403, never 5xx), the others get 403; without credentials only /health
(and /metrics, /docs when configured) answer.
"""
from __future__ import annotations

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from api.security import Allow, Public
from watchkeeper.identity import ROLES

READ = {"analyst", "responder", "security_admin"}
EXPECTED: dict[tuple[str, str], set[str] | str] = {
    ("GET", "/health"): "public",
    ("POST", "/api/v1/auth/token"): "public",
    ("POST", "/api/v1/auth/logout"): set(ROLES),
    ("GET", "/api/v1/auth/me"): set(ROLES),
    ("GET", "/api/v1/alerts"): READ,
    ("GET", "/api/v1/alerts/{alert_id}"): READ,
    ("GET", "/api/v1/alerts/{alert_id}/evidence"): READ,
    ("PATCH", "/api/v1/alerts/{alert_id}"): {"analyst", "responder"},
    ("GET", "/api/v1/alerts/{alert_id}/comments"): READ,
    ("POST", "/api/v1/alerts/{alert_id}/comments"): {"analyst", "responder"},
    ("GET", "/api/v1/alerts/{alert_id}/history"): READ,
    ("POST", "/api/v1/alerts/bulk"): {"analyst", "responder"},
    ("GET", "/api/v1/events"): READ,
    ("GET", "/api/v1/incidents"): READ,
    ("GET", "/api/v1/incidents/{incident_id}"): READ,
    ("GET", "/api/v1/incidents/{incident_id}/alerts"): READ,
    ("GET", "/api/v1/incidents/{incident_id}/timeline"): READ,
    ("GET", "/api/v1/incidents/response-times"): READ,
    ("PATCH", "/api/v1/incidents/{incident_id}"): {"analyst", "responder"},
    ("PUT", "/api/v1/incidents/{incident_id}/level"): {"responder"},
    ("POST", "/api/v1/incidents/{incident_id}/report"): {"analyst", "responder"},
    ("POST", "/api/v1/incidents/{incident_id}/alerts"): {"analyst", "responder"},
    ("DELETE", "/api/v1/incidents/{incident_id}/alerts/{alert_id}"): {"analyst", "responder"},
    ("POST", "/api/v1/incidents/{incident_id}/escalate"): {"analyst", "responder"},
    ("POST", "/api/v1/incidents/{incident_id}/comments"): {"analyst", "responder"},
    ("GET", "/api/v1/stats/alerts"): READ | {"viewer"},
    ("GET", "/api/v1/posture"): READ | {"viewer"},
    ("GET", "/api/v1/stream"): READ | {"viewer"},
    ("POST", "/api/v1/stream/token"): READ | {"viewer"},
    ("GET", "/api/v1/sites"): READ,
    ("GET", "/api/v1/sites/{site_id}"): READ,
    ("POST", "/api/v1/sites"): {"security_admin"},
    ("PATCH", "/api/v1/sites/{site_id}"): {"security_admin"},
    ("DELETE", "/api/v1/sites/{site_id}"): {"security_admin"},
    ("GET", "/api/v1/assets"): READ,
    ("GET", "/api/v1/assets/lookup"): READ,
    ("GET", "/api/v1/assets/{asset_id}"): READ,
    ("POST", "/api/v1/assets"): {"security_admin"},
    ("PATCH", "/api/v1/assets/{asset_id}"): {"security_admin"},
    ("DELETE", "/api/v1/assets/{asset_id}"): {"security_admin"},
    ("GET", "/api/v1/inventory/export"): READ,
    ("POST", "/api/v1/inventory/import"): {"security_admin"},
    ("GET", "/api/v1/users"): {"system_admin"},
    ("POST", "/api/v1/users"): {"system_admin"},
    ("PATCH", "/api/v1/users/{name}"): {"system_admin"},
    ("GET", "/api/v1/keys"): {"system_admin"},
    ("POST", "/api/v1/keys"): {"system_admin"},
    ("DELETE", "/api/v1/keys/{key_id}"): {"system_admin"},
    ("GET", "/api/v1/audit"): {"audit_admin"},
    ("GET", "/api/v1/audit/verify"): {"audit_admin"},
    ("GET", "/api/v1/audit/export"): {"audit_admin"},
    ("GET", "/api/v1/suppressions"): {"security_admin"},
    ("POST", "/api/v1/suppressions"): {"security_admin"},
    ("GET", "/api/v1/suppressions/{rule_id}"): {"security_admin"},
    ("PATCH", "/api/v1/suppressions/{rule_id}"): {"security_admin"},
    ("POST", "/api/v1/suppressions/{rule_id}/expire"): {"security_admin"},
    ("POST", "/api/v1/alerts/{alert_id}/suppress"): {"analyst", "responder", "security_admin"},
    ("GET", "/api/v1/reports"): READ,
    ("POST", "/api/v1/reports"): READ,
    ("GET", "/api/v1/reports/{report_id}"): READ,
    ("GET", "/api/v1/reports/{report_id}/pdf"): READ,
    ("GET", "/api/v1/playbooks/runs"): READ,
    ("GET", "/api/v1/playbooks/runs/{run_id}"): READ,
    ("POST", "/api/v1/playbooks/runs"): {"responder"},
    ("POST", "/api/v1/playbooks/runs/{run_id}/approve"): {"responder"},
    ("POST", "/api/v1/playbooks/runs/{run_id}/deny"): {"responder"},
    # The web pages' shells and assets (api/web.py): static files, no data.
    ("GET", "/"): "public",
    ("GET", "/console"): "public",
    ("GET", "/console/{path:path}"): "public",
    ("GET", "/screen"): "public",
    ("GET", "/screen/{path:path}"): "public",
    ("GET", "/assets/{path:path}"): "public",
}
WEB_SHELLS = {path for (_, path), roles in EXPECTED.items()
              if roles == "public" and not path.startswith(("/api", "/health"))}
# The three administrators (三员) share no route: none can do another's job.
ADMINS = ("system_admin", "security_admin", "audit_admin")


def _guards(dependant) -> list:
    found = [d.call for d in dependant.dependencies if isinstance(d.call, Allow | Public)]
    for sub in dependant.dependencies:
        found += _guards(sub)
    return found


def _routes(app) -> list[tuple[str, str, APIRoute]]:
    routes = []
    for context in iter_route_contexts(app.routes):
        if isinstance(context.route, APIRoute):
            for method in sorted(context.methods or ()):
                routes.append((method, context.path, context.route))
    return routes


def declared(route: APIRoute) -> set[str] | str | None:
    guards = _guards(route.dependant)
    if any(isinstance(g, Public) for g in guards):
        return "public"
    return set().union(*(g.roles for g in guards)) if guards else None


def test_every_route_declares_its_roles_as_reviewed(client):
    routes = _routes(client.app)
    assert len(routes) == len(EXPECTED)
    for method, path, route in routes:
        assert declared(route) is not None, f"{method} {path} declares no roles"
        assert declared(route) == EXPECTED.get((method, path)), f"{method} {path}"


def test_the_three_administrators_share_no_route():
    for roles in EXPECTED.values():
        if roles != "public":
            held = [r for r in ADMINS if r in roles]
            assert len(held) <= 1 or set(roles) == set(ROLES), (roles, held)


def _call(client, method: str, path: str, headers: dict):
    url = path.replace("{", "").replace("}", "")      # {alert_id} -> alert_id: no such thing
    body = {} if method in ("POST", "PATCH", "PUT") else None
    return client.request(method, url, headers=headers, json=body)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_on_each_route(client, bearer_for, role):
    headers = bearer_for(f"matrix-{role}", role)
    for method, path, _ in _routes(client.app):
        allowed = EXPECTED[(method, path)]
        response = _call(client, method, path, headers)
        assert response.status_code < 500, (method, path, response.text)
        if allowed == "public" or role in allowed:
            assert response.status_code not in (401, 403), (role, method, path, response.text)
        else:
            assert response.status_code == 403, (role, method, path, response.text)
            assert response.headers["content-type"] == "application/problem+json"


def test_nothing_but_health_and_metrics_answers_without_credentials(anonymous):
    for method, path, _ in _routes(anonymous.app):
        response = _call(anonymous, method, path, {})
        if path == "/health":
            assert response.status_code == 200
        elif path in WEB_SHELLS:   # a page shell, an asset or a 404: never data
            assert response.status_code in (200, 303, 404), (path, response.status_code)
            assert "json" not in response.headers["content-type"] or response.status_code == 404
        else:
            assert response.status_code in (401, 422) if path == "/api/v1/auth/token" else \
                response.status_code == 401, (method, path, response.status_code)
            if response.status_code == 401:
                assert response.headers["www-authenticate"] == "Bearer"
    assert anonymous.get("/metrics/").status_code == 200
    for other in ("/docs", "/openapi.json", "/redoc", "/api/v1"):
        assert anonymous.get(other).status_code == 404, other


@pytest.mark.parametrize("header", ["Bearer not-a-token", "Bearer eyJ.bad.token", "Basic abc",
                                    "Bearer " + "x" * 5000])
def test_bad_credentials_are_401_not_500(anonymous, header):
    response = anonymous.get("/api/v1/alerts", headers={"Authorization": header})
    assert response.status_code == 401, response.text


def test_metrics_can_be_switched_off(store):
    from watchkeeper.config import AuthSettings
    from api import create_app
    app = create_app(store, auth_settings=AuthSettings(public_metrics=False))
    assert not [r for r in app.routes if getattr(r, "path", "") == "/metrics"]


def test_a_store_down_while_checking_credentials_is_503_not_401(client, store, monkeypatch):
    from watchkeeper.store.base import StoreUnavailable

    def down(*args, **kwargs):
        raise StoreUnavailable("cannot reach the store")
    monkeypatch.setattr(store, "get_by_ids", down)
    response = client.get("/api/v1/alerts")
    assert response.status_code == 503 and "cannot reach" in response.json()["detail"]
