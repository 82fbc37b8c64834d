"""A real SqliteStore at a tmp path behind FastAPI's TestClient, plus document builders."""
from __future__ import annotations

import functools
import warnings

import pytest

from api import create_app
from watchkeeper.identity import Principal, hash_password, issue_access_token
from watchkeeper.documents import AlertSpec, FlowRecord, alert_document, flow_document
from watchkeeper.networks import InternalNetworks
from watchkeeper.config import AuthSettings, FeedSettings
from watchkeeper.store import open_store

with warnings.catch_warnings():
    warnings.simplefilter("ignore")   # starlette's httpx deprecation notice
    from fastapi.testclient import TestClient

T0 = 1_767_225_600.0   # 2026-01-01T00:00:00Z (test modules repeat it: importlib mode)
NETWORKS = InternalNetworks()


def build_alert(n: int, *, at: float = T0, category: str = "scan", severity: int = 2,
               source_ip: str = "10.0.0.5", destination_ip: str | None = None,
               message: str | None = None, evidence: list[str] | None = None,
               status: str | None = None) -> dict:
    spec = AlertSpec(detector=f"det{n % 3}", detector_version="1", category=category,
                     rule_id=f"{category}.rule", rule_name=f"{category} rule", severity=severity,
                     message=message or f"alert {n} from {source_ip}", entity=f"entity-{n}",
                     first_seen=at, last_seen=at + 30, source_ip=source_ip,
                     destination_ip=destination_ip, evidence=evidence or [],
                     subscores={"confidence": 0.8})
    doc = alert_document(spec, created=at + 60)
    if status:
        doc["watchkeeper"]["alert"]["status"] = status
    return doc


def build_flow(uid: str, *, at: float = T0, src: str = "10.0.0.5", dst: str = "93.184.216.34",
              dport: int = 443) -> dict:
    record = FlowRecord(uid=uid, start=at, end=at + 2, proto=6, orig_ip=src, orig_port=40000,
                        resp_ip=dst, resp_port=dport, orig_pkts=5, resp_pkts=4, orig_bytes=100,
                        resp_bytes=2000, orig_ip_bytes=360, resp_ip_bytes=2200,
                        conn_state="SF", history="ShADadFf", service="ssl")
    return flow_document(record, observer="sensor-1", networks=NETWORKS)


@pytest.fixture
def make_alert():
    return build_alert


@pytest.fixture
def make_flow():
    return build_flow


@pytest.fixture
def page_through(client):
    return lambda url, params: _page_through(client, url, params)


@pytest.fixture
def store(tmp_path):
    store = open_store(f"sqlite:///{tmp_path}/wk.db")
    yield store
    store.close()


SECRET = "unit-tests-only-" + "k3y-" * 6          # 40 characters, not a placeholder
PASSWORD = "correct horse battery staple"


def make_app(store, sites=None):
    # a stream that ends quickly: the role matrix calls GET /api/v1/stream too
    return create_app(store, auth_settings=AuthSettings(secret_key=SECRET), sites=sites,
                      feed=FeedSettings(lifetime_seconds=0.3, poll_seconds=0.1))


def login(client, name: str, role: str, site: str = "/") -> dict:
    """Create `name` with `role` at `site` and log in at /auth/token: its Authorization header."""
    add_user(client, name, role, site)
    response = client.post("/api/v1/auth/token", data={"username": name, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@functools.cache
def password_hash() -> str:
    return hash_password(PASSWORD)     # argon2 is slow on purpose: once per session


def add_user(client, name: str, role: str, site: str = "/") -> None:
    client.app.state.access.accounts.ids.put_user({
        "name": name, "role": role, "site": site, "disabled": False,
        "password_hash": password_hash(), "failures": 0, "locked_until": 0.0,
        "created_by": "tests"}, T0)


def bearer(client, name: str, role: str, site: str = "/") -> dict:
    """Like login, without paying for argon2 on every test: the user exists, the token is
    signed with the app's secret (tests/unit/api/test_auth.py covers the real login)."""
    add_user(client, name, role, site)
    token = issue_access_token(Principal(name, role, site), SECRET, 900)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def bearer_for(client):
    return lambda name, role, site="/": bearer(client, name, role, site)


@pytest.fixture
def sited_client(store):
    """(client without credentials on an app whose inventory is `sites`, the bearer helper)."""
    made = []

    def build(sites):
        client = TestClient(make_app(store, sites))
        made.append(client)
        return client, bearer
    yield build
    for client in made:
        client.close()


@pytest.fixture
def anonymous(store):
    """A client without credentials."""
    with TestClient(make_app(store)) as client:
        yield client


@pytest.fixture
def client(store):
    """A client logged in as an analyst bound to the root (sees every site)."""
    with TestClient(make_app(store)) as client:
        client.headers.update(bearer(client, "li.wei", "analyst"))
        yield client


def _page_through(client, url: str, params: dict) -> list[dict]:
    """Every item of every page, following next_cursor."""
    items, cursor = [], None
    while True:
        body = client.get(url, params={**params, **({"cursor": cursor} if cursor else {})}).json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
