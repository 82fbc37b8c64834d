"""The console's compliance reports page in Chromium: a responder makes a monthly report for a
site, sees it listed, and downloads the same PDF the API stores; a period written wrongly is
said in Chinese before anything is sent. axe-core on the page."""
from __future__ import annotations

import hashlib
import os
import subprocess
import time

import httpx

from tests.integration.conftest import WATCHKEEPER

from .conftest import axe_violations, console_login, screenshot

LIST = "[data-testid=report-list] tbody tr[data-id]"


def _open_reports(page, demo, user: str = "demo-responder") -> None:
    console_login(page, demo, user)
    page.wait_for_selector("a[href='#/reports']")
    page.click("a[href='#/reports']")
    page.wait_for_selector("[data-testid=report-form]")


def test_a_responder_makes_a_monthly_report_and_downloads_its_pdf(demo, page):
    _open_reports(page, demo)
    page.fill("#report-period", "2026年12月")
    page.click("[data-testid=report-form] button[type=submit]")
    error = page.locator("[data-testid=report-form] .error")
    error.wait_for()
    assert "统计周期格式应如 2026-11" in error.inner_text()

    month = time.strftime("%Y-%m", time.gmtime())
    page.fill("#report-period", month)
    page.locator("#report-site option", has_text="A1县").wait_for(state="attached")
    page.select_option("#report-site", "county-a1")
    page.click("[data-testid=report-form] button[type=submit]")
    row = page.locator(LIST, has_text="A1县").first
    row.wait_for(timeout=90000)                       # a PDF takes a few seconds to render
    text = row.inner_text()
    assert "月报" in text and month in text and "api:demo-responder" in text
    report_id = row.get_attribute("data-id")
    assert report_id.startswith(f"WK-MONTHLY-{month}-COUNTY-A1")
    screenshot(page, "console-reports-zh-CN")
    assert axe_violations(page) == []

    with page.expect_download() as download:
        row.locator("button").click()
    pdf = open(download.value.path(), "rb").read()
    assert download.value.suggested_filename == f"{report_id}.pdf" and pdf.startswith(b"%PDF-")
    stored = httpx.get(f"{demo.base}/api/v1/reports/{report_id}",
                       headers=demo.token("demo-responder"), timeout=10).json()
    assert hashlib.sha256(pdf).hexdigest() == stored["sha256"]   # the stored bytes, unaltered


def test_a_county_analyst_lists_only_its_subtree(demo, page):
    """Tenancy comes from the API: an analyst of the sibling county sees no A1 report."""
    month = time.strftime("%Y-%m", time.gmtime())
    made = httpx.post(f"{demo.base}/api/v1/reports", headers=demo.token("demo-responder"),
                      json={"type": "monthly", "period": month, "site": "county-a1"}, timeout=120)
    assert made.status_code == 201, made.text              # there is an A1 report to hide
    made = subprocess.run([*WATCHKEEPER, "users", "add", "a2-analyst", "--role", "analyst",
                           "--site", "county-a2", "--store", demo.store, "--password-stdin"],
                          input="a2-analyst-password-1\n", capture_output=True, text=True,
                          env={**os.environ, **demo.env}, timeout=120)
    assert made.returncode == 0, made.stderr
    demo.passwords["a2-analyst"] = "a2-analyst-password-1"
    console_login(page, demo, "a2-analyst")
    page.click("a[href='#/reports']")
    # Loaded (not sampled while loading): the empty-list row shows once the answer is in.
    page.locator("[data-testid=report-list] tbody tr", has_text="暂无报告").wait_for()
    assert page.locator(LIST).count() == 0
