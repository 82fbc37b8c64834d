"""The wall screen shows the posture's detection-health warnings (a silent collector), in
zh-CN and English, only to the viewers of the collector's subtree."""
from __future__ import annotations

import time

import httpx

from watchkeeper.status import status_document
from watchkeeper.store import open_store

from .conftest import axe_violations, screenshot

WARNINGS = "[data-testid=health-warnings]"


def _collector_fell_silent(demo, observer: str, site: str) -> None:
    """What a syslog collector killed two minutes ago leaves in the store: its last status
    report (watchkeeper.status's own document, not a final one), nothing since."""
    now = time.time()
    doc = status_document("syslog", {"parsed": 40}, observer, started=now - 300, now=now - 120,
                          every=10, site=site)
    store = open_store(demo.store)
    try:
        store.bulk_upsert("events", [doc])
    finally:
        store.close()


def _wait_for_api_warning(demo, key: str, observer: str, deadline_s: float = 40) -> None:
    """Until the posture answer has it (answers are kept per scope for a few seconds)."""
    end = time.monotonic() + deadline_s
    warnings: list = []
    while time.monotonic() < end:
        answer = httpx.get(f"{demo.base}/api/v1/posture", headers={"X-API-Key": key}, timeout=30)
        assert answer.status_code == 200, answer.text
        warnings = answer.json()["warnings"]
        if any(w["observer"] == observer for w in warnings):
            return
        time.sleep(1)
    raise AssertionError(f"no posture warning for {observer} within {deadline_s} s: {warnings}")


def test_a_silent_collector_is_a_warning_on_the_screen_of_its_subtree_only(demo, page):
    observer = f"sensor-e2e-{int(time.time())}"
    _collector_fell_silent(demo, observer, "county-b1")
    key = demo.key("city-b")
    _wait_for_api_warning(demo, key, observer)

    page.goto(f"{demo.base}/screen?key={key}")
    item = page.locator(f"{WARNINGS} li[data-kind=collector_silent]", has_text=observer)
    item.wait_for(timeout=20000)
    assert "采集器 syslog" in item.inner_text() and "无上报" in item.inner_text()
    screenshot(page, "screen-health-warning-zh-CN")
    assert axe_violations(page) == []

    page.goto(f"{demo.base}/screen?lang=en")          # the same tab: the key is kept
    item = page.locator(f"{WARNINGS} li[data-kind=collector_silent]", has_text=observer)
    item.wait_for(timeout=20000)
    assert "Collector syslog" in item.inner_text() and "is silent" in item.inner_text()

    other = page.context.new_page()                   # another city's wall: not its collector
    other.goto(f"{demo.base}/screen?key={demo.key('city-a')}&lang=zh-CN")
    other.wait_for_selector(".wall[data-loaded~=posture]", timeout=30000)
    assert other.locator(f"{WARNINGS} li", has_text=observer).count() == 0


def test_a_collector_falling_silent_shows_at_the_next_posture_tick(demo, page):
    """Without a reload: the full posture answers are stripped of their warnings here, so only
    the live feed's posture tick can bring it (every feed.posture_seconds, 15 s)."""
    def without_warnings(route):
        answer = route.fetch()
        body = answer.json()
        body["warnings"] = []
        route.fulfill(response=answer, json=body)

    page.route("**/api/v1/posture*", without_warnings)
    page.goto(f"{demo.base}/screen?key={demo.key('city-b')}&lang=zh-CN")
    page.wait_for_selector(".wall[data-loaded~=posture]", timeout=30000)
    observer = f"sensor-tick-{int(time.time())}"
    assert page.locator(f"{WARNINGS} li", has_text=observer).count() == 0
    _collector_fell_silent(demo, observer, "city-b")
    item = page.locator(f"{WARNINGS} li[data-kind=collector_silent]", has_text=observer)
    item.wait_for(timeout=40000)
    assert "无上报" in item.inner_text()
    screenshot(page, "screen-health-warning-by-tick-zh-CN")
