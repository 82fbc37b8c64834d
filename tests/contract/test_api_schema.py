"""Schemathesis against the app's own OpenAPI schema on both backends, authenticated with a
role each route allows: no server error, and every answer matches the schema's content type
and body."""
from __future__ import annotations

import pytest
import schemathesis
from fastapi.routing import APIRoute, iter_route_contexts
from hypothesis import HealthCheck, settings
from schemathesis import checks as st_checks
from schemathesis.specs.openapi import checks as oa_checks

from api import create_app
from api.security import Allow
from watchkeeper.config import AuthSettings
from watchkeeper.identity import Principal, issue_access_token

SECRET = "schemathesis-only-" + "f4zz-" * 5


def _roles(app) -> dict[tuple[str, str], str | None]:
    """(METHOD, path) -> one role the route allows (None: public)."""
    found = {}
    for context in iter_route_contexts(app.routes):
        if isinstance(context.route, APIRoute):
            guards = [d.call for d in context.route.dependant.dependencies
                      if isinstance(d.call, Allow)]
            role = sorted(guards[0].roles)[0] if guards else None
            for method in context.methods:
                found[(method, context.path)] = role
    return found


def _seed(store) -> None:
    """Some of everything, so searches answer with documents to check against the schema."""
    from alerting.correlate import merge
    from watchkeeper.documents import AlertSpec, alert_document
    alerts = []
    for n in range(5):
        spec = AlertSpec(detector="scan", detector_version="1", category="scan",
                         rule_id="scan.h", rule_name="scan", severity=1 + n % 4,
                         message=f"alert {n}", entity=f"e{n}", first_seen=1.767e9 + n * 60,
                         last_seen=1.767e9 + n * 60 + 5, source_ip="10.0.0.5",
                         destination_ip="10.0.0.9", evidence=[f"missing-{n}"])
        alerts.append(alert_document(spec, created=1.767e9 + n * 60 + 9))
    store.bulk_upsert("alerts", alerts)
    store.bulk_upsert("incidents", [merge(None, alerts, "inc-1")])
    store.bulk_upsert("events", [{**alerts[0], "event": {**alerts[0]["event"], "kind": "event",
                                                          "dataset": "watchkeeper.flow"}}])
    store.refresh()


@pytest.fixture
def api_schema(store):
    _seed(store)
    from reports.cli import on_demand_generator
    from watchkeeper.config import Settings
    app = create_app(store, auth_settings=AuthSettings(secret_key=SECRET, public_docs=True),
                     report_generator=on_demand_generator(Settings(store=store.url), store))
    app.state.roles = _roles(app)
    for role in {r for r in app.state.roles.values() if r}:
        app.state.access.accounts.ids.put_user({
            "name": f"fuzz-{role}", "role": role, "site": "/", "disabled": False,
            "password_hash": "x", "failures": 0, "locked_until": 0.0}, 0.0)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")
CHECKS = [st_checks.not_a_server_error, oa_checks.content_type_conformance,
          oa_checks.response_schema_conformance]


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_server_error_and_answers_match_the_schema(case):
    app = case.operation.schema.app
    roles = app.state.roles
    role = roles.get((case.method.upper(), case.path),   # or a method the path does not have
                     next((r for (_, path), r in sorted(roles.items(), key=str)
                           if path == case.path), None))
    headers = {}
    if role:
        token = issue_access_token(Principal(f"fuzz-{role}", role), SECRET, 600)
        headers["Authorization"] = f"Bearer {token}"
    case.call_and_validate(headers=headers, checks=CHECKS)
