"""api/web.py: the page shells and assets of a built front end (a tmp folder shaped like
web/dist), public but data-free, gzip when asked, nothing outside the folder."""
from __future__ import annotations

import gzip
import warnings

import pytest

from api import create_app
from watchkeeper.config import AuthSettings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

SECRET = "unit-tests-only-" + "k3y-" * 6
SCRIPT = b"console.log('screen');" * 200


@pytest.fixture
def built(tmp_path):
    root = tmp_path / "dist"
    for page in ("console", "screen"):
        (root / page).mkdir(parents=True)
        (root / page / "index.html").write_text(f"<html><body>{page} shell</body></html>")
    (root / "assets").mkdir()
    (root / "assets" / "screen-abc123.js").write_bytes(SCRIPT)
    (tmp_path / "secret.txt").write_text("not for the web")
    return root


def web_client(store, root) -> TestClient:
    app = create_app(store, auth_settings=AuthSettings(secret_key=SECRET), web_root=root)
    return TestClient(app, follow_redirects=False)


def test_root_leads_to_the_console_login_keeping_the_language(store, built):
    client = web_client(store, built)
    assert client.get("/").headers["location"] == "/console"
    assert client.get("/?lang=en").headers["location"] == "/console?lang=en"


@pytest.mark.parametrize("path", ["/console", "/console/alerts/x", "/screen", "/screen/any"])
def test_page_shells_answer_without_credentials_and_refuse_outside_sources(store, built, path):
    answer = web_client(store, built).get(path)
    assert answer.status_code == 200
    assert f"{path.split('/')[1]} shell" in answer.text
    assert "default-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["cache-control"] == "no-cache"


def test_assets_are_gzipped_when_accepted_and_cached_for_long(store, built):
    client = web_client(store, built)
    packed = client.get("/assets/screen-abc123.js", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.content == SCRIPT          # the client decoded it: the bytes survive
    assert int(packed.headers["content-length"]) < len(SCRIPT) // 10
    assert "immutable" in packed.headers["cache-control"]
    plain = client.get("/assets/screen-abc123.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == SCRIPT
    assert plain.headers["content-type"].startswith("text/javascript")


@pytest.mark.parametrize("path", ["/assets/../../secret.txt", "/assets/%2e%2e/%2e%2e/secret.txt",
                                  "/assets/..%2f..%2fsecret.txt", "/assets/nothing.js",
                                  "/assets/", "/assets/" + "a" * 5000,
                                  "/assets/a%00.js"])
def test_nothing_outside_the_assets_folder_is_served(store, built, path):
    answer = web_client(store, built).get(path)
    assert answer.status_code == 404, path
    assert "not for the web" not in answer.text


def test_an_unbuilt_front_end_is_a_clear_404(store, tmp_path):
    answer = web_client(store, tmp_path / "missing").get("/console")
    assert answer.status_code == 404
    assert "make install" in answer.json()["detail"]
