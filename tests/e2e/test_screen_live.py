"""The wall screen live, in Chromium beside the console: a port scan reaches the ticker and
the counts within 3 s of being stored (issue 10); triage done with the console's keys
(acknowledge, close as false positive with a suppression) shows on the open screen; a site
tile clicked focuses every panel on that subtree (the API's ?site=)."""
from __future__ import annotations

import threading
import time

import httpx

from watchkeeper.store import open_store
from watchkeeper.store.base import Query

from .conftest import console_login
from .test_screen import _open, ingest_scan, ticker_ids, total

DELIVERY_BUDGET_S = 3.0          # issue 10: "appears on the ticker and in the counts within 3 s"
ROWS = "[data-testid=alert-list] tbody tr"

# Browser-side clock of when each tick and each total first showed (same machine clock as the
# test's time.time(): both read the system's wall clock).
WATCH = """() => {
  window.__ticks = {}; window.__totals = {};
  const seen = () => {
    for (const t of document.querySelectorAll('.tick')) window.__ticks[t.dataset.id] ??= Date.now();
    const m = /共 ([0-9,]+) 条/.exec(document.querySelector('[data-testid=severity] h2').textContent);
    if (m) window.__totals[m[1].replace(/,/g, '')] ??= Date.now();
  };
  new MutationObserver(seen).observe(document.body, {subtree: true, childList: true,
                                                     characterData: true});
  seen();
}"""


def _stored_at(demo, known: set[str], stop: threading.Event, found: dict) -> None:
    """Poll the store every 20 ms: when each scan alert not `known` was first readable."""
    store = open_store(demo.store)
    try:
        while not stop.is_set():
            query = Query(since=time.time() - 3600, limit=200,
                          terms={"watchkeeper.alert.category": ["scan"]})
            for alert in store.search("alerts", query).items:
                if alert["event"]["id"] not in known:
                    found.setdefault(alert["event"]["id"], time.time())
            time.sleep(0.02)
    finally:
        store.close()


def _scan_ids(demo) -> set[str]:
    store = open_store(demo.store)
    try:
        query = Query(since=time.time() - 3600, limit=200,
                      terms={"watchkeeper.alert.category": ["scan"]})
        return {a["event"]["id"] for a in store.search("alerts", query).items}
    finally:
        store.close()


def test_a_scan_reaches_ticker_and_counts_within_3s_and_console_triage_shows(
        demo, page, tmp_path):
    _open(page, demo, demo.key("/"))                          # the wall's viewer key
    page.wait_for_selector(".wall[data-loaded~=day]")
    page.evaluate(WATCH)
    before, shown = total(page), ticker_ids(page)
    stop, stored = threading.Event(), {}
    watcher = threading.Thread(target=_stored_at, args=(demo, _scan_ids(demo), stop, stored))
    watcher.start()
    try:
        scanner = ingest_scan(demo, tmp_path, seed=47)
        page.wait_for_function(
            "([shown, scanner]) => [...document.querySelectorAll('.tick')].some(t => "
            "!shown.includes(t.dataset.id) && t.textContent.includes(scanner))",
            arg=[shown, scanner], timeout=20000)
        page.wait_for_function(f"Object.keys(window.__totals).some(n => +n > {before})",
                               timeout=20000)
    finally:
        stop.set()
        watcher.join(10)
    new_id = page.evaluate(
        "([shown, scanner]) => [...document.querySelectorAll('.tick')].find(t => "
        "!shown.includes(t.dataset.id) && t.textContent.includes(scanner)).dataset.id",
        [shown, scanner])
    ticks, totals = page.evaluate("[window.__ticks, window.__totals]")
    on_ticker = ticks[new_id] / 1000 - stored[new_id]
    in_counts = min(at for n, at in totals.items() if int(n) > before) / 1000 - stored[new_id]
    print(f"stored -> ticker {on_ticker:.2f} s, stored -> counts {in_counts:.2f} s")
    assert on_ticker <= DELIVERY_BUDGET_S, f"ticker after {on_ticker:.2f} s"
    assert in_counts <= DELIVERY_BUDGET_S, f"counts after {in_counts:.2f} s"

    console = page.context.browser.new_context(viewport={"width": 1920, "height": 1080},
                                               timezone_id="Asia/Shanghai").new_page()
    console_login(console, demo)
    console.wait_for_selector(ROWS)
    console.fill("[x-model='filters.ip']", scanner)         # the analyst narrows to it
    console.press("[x-model='filters.ip']", "Enter")
    row = console.locator(f"{ROWS}[data-id='{new_id}']")
    row.wait_for()
    console.press("[x-model='filters.ip']", "Escape")        # keys go to the list again
    for _ in range(int(row.get_attribute("data-row"))):
        console.keyboard.press("j")
    console.keyboard.press("a")
    page.wait_for_selector(f".tick[data-id='{new_id}'] >> text=已确认", timeout=15000)

    console.keyboard.press("c")
    console.select_option("#close-verdict", "false_positive")
    console.check(".dialog .suppress input[type=checkbox]")
    console.fill("#close-comment", "e2e: our own vulnerability scanner")
    console.click(".dialog button[type=submit]")
    page.wait_for_selector(f".tick[data-id='{new_id}'] >> text=已关闭", timeout=15000)
    info = httpx.get(f"{demo.base}/api/v1/alerts/{new_id}", headers=demo.token(),
                     timeout=10).json()["watchkeeper"]["alert"]
    assert (info["status"], info["verdict"]) == ("closed", "false_positive")
    assert info.get("suppressed_by")                         # closed by the rule it made
    console.context.close()


def test_a_site_tile_click_focuses_every_panel_on_that_subtree(demo, page):
    """An analyst's key, so the ticker's alert list is read too (a viewer's is the feed's)."""
    _open(page, demo, demo.key("/", role="analyst"))
    page.wait_for_selector(".wall[data-loaded~=day]")
    page.keyboard.press(" ")                                 # pause the rotation on the map
    whole = total(page)
    assert whole >= 1
    county = page.locator("[data-testid=site-map] .tile", has_text="A2县")
    with page.expect_response(lambda r: "/api/v1/posture?site=county-a2" in r.url), \
            page.expect_response(lambda r: "/api/v1/stats/alerts?" in r.url
                                 and "site=county-a2" in r.url), \
            page.expect_response(lambda r: "/api/v1/incidents?" in r.url
                                 and "site=county-a2" in r.url), \
            page.expect_response(lambda r: "/api/v1/alerts?" in r.url
                                 and "site=county-a2" in r.url):
        county.click()
    page.wait_for_function("document.querySelector('[data-testid=severity] h2')"
                           ".textContent.includes('共 0 条')")           # nothing in A2
    page.wait_for_function("document.querySelector('.scope').textContent.includes('A2县')")
    assert "蓝色预警" in page.locator("[data-testid=threat-level]").inner_text()
    tiles = page.locator("[data-testid=site-map] .tier-root .tile").all_inner_texts()
    assert [t.split("\n")[0] for t in tiles] == ["A2县"]           # the map: that subtree

    page.locator("[data-testid=site-map] .tile", has_text="A2县").click()   # unfocus
    page.wait_for_function(f"/共 {whole:,} 条/.test(document.querySelector("
                           "'[data-testid=severity] h2').textContent)")
    a1 = httpx.get(f"{demo.base}/api/v1/stats/alerts", headers=demo.token(), timeout=10,
                   params={"site": "county-a1",
                           "since": time.time() - 86400}).json()["total"]
    assert a1 >= 1                                          # the demo's scan targets A1
    page.locator("[data-testid=site-map] .tile", has_text="A1县").click()
    page.wait_for_function(f"/共 {a1:,} 条/.test(document.querySelector("
                           "'[data-testid=severity] h2').textContent)")
    sites = page.eval_on_selector_all(".tick", "ts => ts.map(t => t.dataset.site)")
    assert sites and set(sites) == {"county-a1"}            # the ticker: A1's alerts only
