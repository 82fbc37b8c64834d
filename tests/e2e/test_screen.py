"""The wall screen in Chromium with viewer API keys: panels with the demo's data, tenancy by
the key's site, the "disconnected since" banner and recovery, axe-core, screenshots."""
from __future__ import annotations

import re
import time

from tests.integration.conftest import run_cli

from .conftest import axe_violations, screenshot

PANELS = ("threat-level", "alerts-per-minute", "severity", "site-map", "incidents", "ticker")


def _open(page, demo, key: str, extra: str = "") -> None:
    page.goto(f"{demo.base}/screen?key={key}{extra}")
    page.wait_for_selector("[data-testid=threat-level]")
    assert "key=" not in page.url            # the key leaves the address bar at once


def _severity_title(page) -> str:
    return page.locator("[data-testid=severity] h2").inner_text()


def test_screen_renders_every_panel_with_the_demo_data(demo, page):
    _open(page, demo, demo.key("/"))
    for panel in PANELS:
        assert page.locator(f"[data-testid={panel}]").is_visible(), panel
    page.wait_for_function("document.querySelector('[data-testid=severity] h2')"
                           ".textContent.includes('共 1 条')")
    assert "橙色预警" in page.locator("[data-testid=threat-level]").inner_text()  # one high alert
    assert page.locator("[data-testid=severity] canvas").count() == 1
    # The tiered map from the inventory is the posture's; without it one tile for the scope.
    assert page.locator("[data-testid=site-map] .tile").count() >= 1
    screenshot(page, "screen-zh-CN")
    page.set_viewport_size({"width": 3840, "height": 2160})     # the 4K wall: same layout
    page.wait_for_timeout(300)
    screenshot(page, "screen-zh-CN-3840")
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.click("text=采集器状态")                                 # pipeline stages from /health
    page.wait_for_selector("[data-testid=collectors] tbody tr")
    assert page.locator("[data-testid=collectors] tbody tr").count() >= 3
    assert axe_violations(page) == []


def test_english_screen(demo, page):
    _open(page, demo, demo.key("/"), "&lang=en")
    page.wait_for_function("document.querySelector('[data-testid=severity] h2')"
                           ".textContent.includes('(1)')")
    assert "warning" in page.locator("[data-testid=threat-level]").inner_text()
    screenshot(page, "screen-en")
    assert axe_violations(page) == []


def test_a_county_viewer_sees_only_its_county(demo, page):
    _open(page, demo, demo.key("county-a1"))
    page.wait_for_function("document.querySelector('[data-testid=severity] h2')"
                           ".textContent.includes('共 1 条')")
    assert "county-a1" in page.locator(".scope").inner_text()
    sibling = page.context.new_page()
    _open(sibling, demo, demo.key("county-a2"))
    sibling.wait_for_function("document.querySelector('[data-testid=severity] h2')"
                              ".textContent.includes('共 0 条')")
    assert "蓝色预警" in sibling.locator("[data-testid=threat-level]").inner_text()


def test_disconnected_banner_while_the_api_is_unreachable_then_recovery(demo, page):
    _open(page, demo, demo.key("/"), "&poll=2")
    banner = page.locator("[data-testid=disconnected]")
    assert not banner.is_visible()
    # The network drops: every API request fails as if the server were gone.
    page.route("**/api/v1/**", lambda route: route.abort("connectionrefused"))
    banner.wait_for(state="visible", timeout=15000)
    assert "连接已断开" in banner.inner_text()
    page.unroute("**/api/v1/**")
    banner.wait_for(state="hidden", timeout=15000)
    assert "共 1 条" in _severity_title(page)


def test_a_scan_ingested_while_the_screen_is_open_reaches_the_ticker_and_the_counts(
        demo, page, tmp_path):
    """Through the live feed when the API has one, else by polling (every 2 s here); an
    analyst key, because until the feed exists only roles that may list alerts fill the ticker.
    Runs last in this file: it adds an alert to the shared demo store."""
    _open(page, demo, demo.key("/", role="analyst"), "&poll=2")
    page.wait_for_selector(".wall[data-loaded~=day]")
    before = page.locator(".tick").count()
    capture = tmp_path / "scan.pcap"
    made = run_cli("simulate", str(capture), "--seed", "23", "--start", str(time.time() - 120))
    assert made.returncode == 0, made.stderr
    scanner = re.search(r"scanner (\S+)", made.stderr).group(1)
    assert scanner not in page.locator("[data-testid=ticker]").inner_text()
    done = run_cli("ingest", str(capture), "--bus", "memory://", "--store", demo.store,
                   env=demo.env)
    assert done.returncode == 0, done.stderr
    page.wait_for_function(f"[...document.querySelectorAll('.tick')].some(t => "
                           f"t.textContent.includes('{scanner}'))", timeout=15000)
    assert page.locator(".tick").count() > before
    page.wait_for_function("/共 2 条/.test(document.querySelector("
                           "'[data-testid=severity] h2').textContent)", timeout=15000)
