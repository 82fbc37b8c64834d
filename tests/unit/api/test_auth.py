"""Logging in, refresh rotation, logout, lockout, API keys, user administration, the audit
route: each as the API answers it, with what lands on the audit chain."""
from __future__ import annotations

import time

import pytest

from watchkeeper.store import audit as chain
from watchkeeper.store.base import Query

TOKEN = "/api/v1/auth/token"
PASSWORD = "correct horse battery staple"    # conftest's
SITES = {"region": None, "city-a": "region", "city-b": "region", "county-a1": "city-a"}


def _actions(store, action: str, outcome: str | None = None) -> list[dict]:
    terms = {"event.action": [action], **({"event.outcome": [outcome]} if outcome else {})}
    return store.search("audit", Query(terms=terms)).items


def _login(client, name, password=PASSWORD):
    return client.post(TOKEN, data={"username": name, "password": password})


@pytest.fixture
def user(anonymous, store):
    anonymous.app.state.access.accounts.add_user("zhang.min", "analyst", "/", PASSWORD, "tests")
    return "zhang.min"


def test_login_refresh_rotation_and_logout(anonymous, store, user):
    pair = _login(anonymous, user).json()
    assert pair["token_type"] == "bearer" and pair["expires_in"] == 900
    me = anonymous.get("/api/v1/auth/me",
                       headers={"Authorization": f"Bearer {pair['access_token']}"}).json()
    assert me == {"name": user, "role": "analyst", "site": "/", "kind": "user"}
    second = anonymous.post(TOKEN, data={"grant_type": "refresh_token",
                                         "refresh_token": pair["refresh_token"]})
    assert second.status_code == 200 and second.json()["refresh_token"] != pair["refresh_token"]
    # The first refresh token was rotated away: presenting it again revokes every session.
    reused = anonymous.post(TOKEN, data={"grant_type": "refresh_token",
                                         "refresh_token": pair["refresh_token"]})
    assert reused.status_code == 401
    after = anonymous.post(TOKEN, data={"grant_type": "refresh_token",
                                        "refresh_token": second.json()["refresh_token"]})
    assert after.status_code == 401
    third = _login(anonymous, user).json()
    headers = {"Authorization": f"Bearer {third['access_token']}"}
    out = anonymous.post("/api/v1/auth/logout", json={"refresh_token": third["refresh_token"]},
                         headers=headers)
    assert out.status_code == 204
    assert anonymous.post(TOKEN, data={"grant_type": "refresh_token",
                                       "refresh_token": third["refresh_token"]}).status_code == 401
    assert len(_actions(store, "auth.login", "success")) == 2
    assert len(_actions(store, "auth.logout")) == 1
    assert "revoked" in _actions(store, "auth.refresh", "failure")[0]["message"]
    assert chain.verify(store).ok


def test_wrong_password_unknown_user_and_lockout(anonymous, store, user):
    accounts = anonymous.app.state.access.accounts
    accounts.settings = accounts.settings.model_copy(update={"max_failures": 3,
                                                             "lockout_seconds": 600})
    assert _login(anonymous, "nobody").status_code == 401
    for _ in range(3):
        response = _login(anonymous, user, "wrong password!")
        assert response.status_code == 401
        assert response.json()["detail"] == "wrong user name or password"   # same as unknown
    locked = _login(anonymous, user)                  # even the right password, for a while
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 500
    failures = _actions(store, "auth.login", "failure")
    assert len(failures) == 5
    assert {f["user"]["name"] for f in failures} == {"nobody", user}
    assert any("locked for 600 s" in f["message"] for f in failures)
    stored = accounts.ids.get_user(user)
    stored["locked_until"] = time.time() - 1            # the lockout ran out
    accounts.ids.put_user(stored, time.time())
    assert _login(anonymous, user).status_code == 200


def test_disabled_user_is_refused_at_once(anonymous, store, user):
    access = _login(anonymous, user).json()["access_token"]
    anonymous.app.state.access.accounts.set_disabled(user, True, "tests")
    response = anonymous.get("/api/v1/alerts", headers={"Authorization": f"Bearer {access}"})
    assert response.status_code == 401
    assert _login(anonymous, user).status_code == 401


def test_api_keys_bearer_and_header_revocation_last_used(client, bearer_for, store):
    admin = bearer_for("root-admin", "system_admin")
    del client.headers["Authorization"]                  # no analyst token beside the key
    made = client.post("/api/v1/keys", json={"name": "wall screen", "role": "viewer"},
                       headers=admin)
    assert made.status_code == 201, made.text
    key, key_id = made.json()["key"], made.json()["id"]
    assert "digest" not in made.json()
    for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
        assert client.get("/api/v1/stats/alerts", headers=headers).status_code == 200
        assert client.get("/api/v1/alerts", headers=headers).status_code == 403   # viewer
    listed = client.get("/api/v1/keys", headers=admin).json()["items"]
    assert [k["id"] for k in listed] == [key_id] and listed[0]["last_used"] is not None
    assert "key" not in listed[0] and "digest" not in listed[0]
    assert client.delete(f"/api/v1/keys/{key_id}", headers=admin).json()["revoked"] is True
    refused = client.get("/api/v1/stats/alerts", headers={"X-API-Key": key})
    assert refused.status_code == 401
    wrong = client.get("/api/v1/stats/alerts", headers={"X-API-Key": key[:-4] + "AAAA"})
    assert wrong.status_code == 401
    failures = _actions(store, "auth.key", "failure")
    assert sorted(f["message"] for f in failures) == ["revoked", "wrong secret"]
    assert _actions(store, "key.create") and _actions(store, "key.revoke")


def test_system_admin_cannot_appoint_administrators(client, bearer_for):
    admin = bearer_for("root-admin", "system_admin")
    for role in ("system_admin", "security_admin", "audit_admin"):
        response = client.post("/api/v1/users", headers=admin, json={
            "name": f"new-{role}", "role": role, "password": PASSWORD})
        assert response.status_code == 403, response.text
        assert client.post("/api/v1/keys", headers=admin, json={
            "name": "k", "role": role}).status_code == 403


def test_users_are_managed_within_the_admins_subtree(sited_client):
    client, bearer = sited_client(SITES)
    admin = bearer(client, "city-admin", "system_admin", "city-a")
    ok = client.post("/api/v1/users", headers=admin, json={
        "name": "county-analyst", "role": "analyst", "site": "county-a1", "password": PASSWORD})
    assert ok.status_code == 201, ok.text
    bearer(client, "other-analyst", "analyst", "city-b")
    outside = client.post("/api/v1/users", headers=admin, json={
        "name": "x-analyst", "role": "analyst", "site": "city-b", "password": PASSWORD})
    assert outside.status_code == 422 and outside.json()["errors"][0]["field"] == "body.site"
    unknown = client.post("/api/v1/users", headers=admin, json={
        "name": "y-analyst", "role": "analyst", "site": "atlantis", "password": PASSWORD})
    assert unknown.status_code == 422
    names = {u["name"] for u in client.get("/api/v1/users", headers=admin).json()["items"]}
    assert names == {"city-admin", "county-analyst"}
    assert client.patch("/api/v1/users/other-analyst", headers=admin,
                        json={"disabled": True}).status_code == 404


def test_user_create_disable_and_field_errors(client, bearer_for, store):
    admin = bearer_for("root-admin", "system_admin")
    made = client.post("/api/v1/users", headers=admin, json={
        "name": "wang.fang", "role": "responder", "password": PASSWORD})
    assert made.status_code == 201 and made.json()["disabled"] is False
    assert "password_hash" not in made.text
    assert client.post("/api/v1/users", headers=admin, json={
        "name": "wang.fang", "role": "responder", "password": PASSWORD}).status_code == 409
    short = client.post("/api/v1/users", headers=admin, json={
        "name": "x y", "role": "boss", "password": "short"})
    assert short.status_code == 422
    fields = {e["field"] for e in short.json()["errors"]}
    assert fields == {"body.name", "body.role", "body.password"}
    off = client.patch("/api/v1/users/wang.fang", headers=admin, json={"disabled": True})
    assert off.status_code == 200 and off.json()["disabled"] is True
    assert client.patch("/api/v1/users/nobody", headers=admin,
                        json={"disabled": True}).status_code == 404
    assert [r["watchkeeper"]["audit"]["object_id"] for r in _actions(store, "user.disable")] == \
        ["wang.fang"]


def test_only_the_audit_admin_reads_and_exports_the_audit(client, bearer_for, store):
    auditor = bearer_for("auditor", "audit_admin")
    client.patch("/api/v1/alerts/nothing", json={"status": "acknowledged"})   # 404, no record
    _login(client, "nobody")                                                  # audited
    page = client.get("/api/v1/audit", headers=auditor, params={"outcome": "failure"}).json()
    assert page["total"] == 1 and page["items"][0]["event"]["action"] == "auth.login"
    exported = client.get("/api/v1/audit/export", headers=auditor)
    lines = exported.text.splitlines()
    assert exported.status_code == 200 and len(lines) == 2      # the failure and the export
    assert '"audit.export"' in lines[-1]
    assert client.get("/api/v1/audit/verify", headers=auditor).json()["ok"] is True
    assert client.get("/api/v1/audit").status_code == 403         # the analyst


def test_one_address_spraying_many_names_is_throttled(anonymous, store, user):
    accounts = anonymous.app.state.access.accounts
    accounts.settings = accounts.settings.model_copy(update={"max_failures_per_source": 4})
    for n in range(4):
        assert _login(anonymous, f"guess-{n}").status_code == 401
    throttled = _login(anonymous, user)          # the right password, the wrong neighbourhood
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
    assert "address throttled" in _actions(store, "auth.login", "failure")[0]["message"]
