"""Browser tests: a real `watchkeeper run --demo` (temp SQLite store, free port, the small
inventory next to this file) driven by Debian's Chromium through Playwright."""
from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import ANY_PORTS, ROOT, WATCHKEEPER, free_port, run_cli
from tests.required import unavailable

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("WATCHKEEPER_TEST_CHROMIUM", "/usr/bin/chromium")
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ROOT / "test-reports" / "screenshots"     # reports/ is the reports package
# The scanner of the scan `run --demo` simulates; other modules ingest scans of their own
# (other scanners) into the same shared demo, so tests about the demo's alert find it by this.
DEMO_SCANNER = "10.10.1.30"
DEMO_ROLES = ("viewer", "analyst", "responder", "system-admin", "security-admin", "audit-admin")


@dataclass
class Demo:
    base: str
    env: dict
    store: str
    passwords: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    output: list[str] = field(default_factory=list)

    def token(self, user: str = "demo-analyst") -> dict:
        answer = httpx.post(f"{self.base}/api/v1/auth/token", timeout=30,
                            data={"username": user, "password": self.passwords[user]})
        assert answer.status_code == 200, answer.text
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def key(self, site: str = "/", role: str = "viewer") -> str:
        made = run_cli("keys", "create", f"e2e {site}", "--role", role, "--site", site,
                       "--store", self.store, env=self.env)
        assert made.returncode == 0, made.stderr
        return made.stdout.strip().split()[-1]


def _drain(process: subprocess.Popen, demo: Demo, ready: threading.Event) -> None:
    """Keep reading the server's stderr (a full pipe would block it); note the passwords."""
    for line in process.stderr:
        demo.output.append(line)
        fields = line.split()
        if fields and fields[0].startswith("demo-") and len(fields) == 3:
            demo.passwords[fields[0]] = fields[2]
        if len(demo.passwords) == len(DEMO_ROLES):
            ready.set()
    ready.set()


def _wait_for_scan_alert(demo: Demo, deadline_s: float = 90) -> None:
    headers = demo.token()
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        found = httpx.get(f"{demo.base}/api/v1/alerts", params={"category": "scan"},
                          headers=headers, timeout=5).json()
        if found.get("total"):
            return
        time.sleep(0.5)
    pytest.fail("the demo's scan alert did not appear within 90 s:\n" + "".join(demo.output))


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    if not (ROOT / "web" / "dist" / "console" / "index.html").is_file():
        pytest.fail("the web front end is not built: run `make install`")
    tmp = tmp_path_factory.mktemp("e2e")
    port = free_port()
    env = {**os.environ, "WATCHKEEPER_INVENTORY_FILE": str(HERE / "inventory.yaml")}
    store = f"sqlite:///{tmp}/wk.db"
    demo = Demo(base=f"http://127.0.0.1:{port}", env=env, store=store)
    demo.process = subprocess.Popen(
        [*WATCHKEEPER, "run", "--demo", "--port", str(port), *ANY_PORTS, "--store", store],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ready = threading.Event()
    threading.Thread(target=_drain, args=(demo.process, demo, ready), daemon=True).start()
    try:
        ready.wait(120)
        _wait_until_serving(demo)
        _wait_for_scan_alert(demo)
        yield demo
    finally:
        demo.process.terminate()
        try:
            demo.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            demo.process.kill()


def _wait_until_serving(demo: Demo, deadline_s: float = 90) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if demo.process.poll() is not None:
            pytest.fail("`run --demo` exited:\n" + "".join(demo.output))
        try:
            if httpx.get(f"{demo.base}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail("`run --demo` did not serve /health in time:\n" + "".join(demo.output))


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        unavailable(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1920, "height": 1080},
                                  timezone_id="Asia/Shanghai", bypass_csp=True)
    # bypass_csp: axe-core is injected as an inline script, which the pages' policy refuses.
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def screenshot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def axe_violations(page) -> list[dict]:
    """axe-core (from web/node_modules) on the page: violations of impact serious/critical."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => (await axe.run(document)).violations")
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result if v["impact"] in ("serious", "critical")]


def console_login(page, demo: Demo, user: str = "demo-analyst", lang: str = "zh-CN") -> None:
    page.goto(f"{demo.base}/?lang={lang}")
    page.fill("#login-user", user)
    page.fill("#login-password", demo.passwords[user])
    page.click("form button[type=submit]")


def show_demo_alerts(page) -> None:
    """Filter the console's alert list down to the demo scanner's alerts (the IP filter, as an
    analyst would), so a test of "the first row" is one of the demo's whatever other modules
    ingested before it; keyboard focus leaves the filter so j/k/a/x/c reach the list."""
    page.wait_for_selector("[data-testid=alert-list] tbody tr")
    page.fill(".filters input[x-model='filters.ip']", DEMO_SCANNER)
    page.click(".filters button[type=submit]")
    page.wait_for_function(
        "ip => { const rows = [...document.querySelectorAll('[data-testid=alert-list] tbody tr')];"
        " return rows.length > 0 && rows.every(r => r.textContent.includes(ip)); }",
        arg=DEMO_SCANNER, timeout=15000)
    page.evaluate("document.activeElement && document.activeElement.blur()")
