"""The console's approvals page in Chromium: a real run of the shipped block-external-scanner
playbook, started by hand on the demo's scan with an approval forced, waits in the demo's
playbook worker; the page says what it would do once approved; an analyst may only read it,
a responder approves (and denies another), the decision is recorded by the API."""
from __future__ import annotations

import time

import httpx

from .conftest import axe_violations, console_login, screenshot

PLAYBOOK = "block-external-scanner"


def _scan_alert(demo) -> dict:
    found = httpx.get(f"{demo.base}/api/v1/alerts", params={"category": "scan"},
                      headers=demo.token(), timeout=10).json()
    return found["items"][0]


def _waiting_run(demo, key: str, alert_id: str, attempt: str) -> str:
    """Started by a responder's API key (so the console's demo-responder is not the
    requester); `auto_blocks_per_hour: -1` makes the playbook's approval step apply."""
    headers = {"X-API-Key": key, "Idempotency-Key": attempt}
    made = httpx.post(f"{demo.base}/api/v1/playbooks/runs", headers=headers, timeout=30, json={
        "playbook": PLAYBOOK, "alert_id": alert_id, "inputs": {"auto_blocks_per_hour": -1}})
    assert made.status_code == 201, made.text
    run_id = made.json()["event"]["id"]
    end = time.monotonic() + 60
    status = None
    while time.monotonic() < end:
        status = _run(demo, key, run_id)["run"]["watchkeeper"]["run"]["status"]
        if status == "waiting":
            return run_id
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} is {status!r}, not waiting, after 60 s")


def _run(demo, key: str, run_id: str) -> dict:
    answer = httpx.get(f"{demo.base}/api/v1/playbooks/runs/{run_id}",
                       headers={"X-API-Key": key}, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _open_approvals(page, demo, user: str, lang: str = "zh-CN") -> None:
    console_login(page, demo, user, lang)
    page.wait_for_selector("a[href='#/approvals']")
    page.click("a[href='#/approvals']")
    page.wait_for_selector("[data-testid=approvals] article.approval")


def test_an_analyst_sees_a_waiting_run_and_what_it_would_do_but_cannot_decide(demo, page):
    key = demo.key("/", role="responder")
    alert = _scan_alert(demo)
    run_id = _waiting_run(demo, key, alert["event"]["id"], "e2e-approvals-read")
    _open_approvals(page, demo, "demo-analyst")
    card = page.locator(f"article.approval[data-run='{run_id}']")
    text = card.inner_text()
    assert PLAYBOOK in text and alert["source"]["ip"] in text
    assert "封禁扫描源" in text                        # the approval step's reason
    assert "纵向扫描" in text and "vertical scan" not in text   # the alert in zh-CN
    assert "封禁地址" in text and f"address={alert['source']['ip']}" in text  # what it would do
    assert card.locator("button").count() == 0 or not card.locator("button").first.is_visible()
    assert page.locator("[data-testid=approvals-readonly]").is_visible()
    refused = httpx.post(f"{demo.base}/api/v1/playbooks/runs/{run_id}/approve",
                         headers=demo.token("demo-analyst"), json={}, timeout=10)
    assert refused.status_code == 403, refused.text
    # The playbook runs one block per target at a time: end this one for the next test.
    _decide_and_wait(demo, key, run_id, approve=False)


def _decide_and_wait(demo, key: str, run_id: str, approve: bool) -> None:
    """demo-responder's decision through the API; until the worker has ended the run."""
    verb = "approve" if approve else "deny"
    made = httpx.post(f"{demo.base}/api/v1/playbooks/runs/{run_id}/{verb}", json={},
                      headers=demo.token("demo-responder"), timeout=10)
    assert made.status_code == 200, made.text
    _wait_until_ended(demo, key, run_id)


def _wait_until_ended(demo, key: str, run_id: str) -> str:
    end = time.monotonic() + 60
    while (status := _run(demo, key, run_id)["run"]["watchkeeper"]["run"]["status"]) in \
            ("queued", "running", "waiting"):
        assert time.monotonic() < end, f"run {run_id} still {status} after 60 s"
        time.sleep(0.5)
    return status


def test_a_responder_approves_one_run_and_denies_another(demo, page):
    key = demo.key("/", role="responder")
    alert_id = _scan_alert(demo)["event"]["id"]
    first = _waiting_run(demo, key, alert_id, "e2e-approvals-approve")

    _open_approvals(page, demo, "demo-responder")
    card = page.locator(f"article.approval[data-run='{first}']")
    card.locator("button", has_text="批准").wait_for()
    screenshot(page, "console-approvals-zh-CN")
    assert axe_violations(page) == []
    card.locator("input").fill("确认为外部扫描")
    card.locator("button", has_text="批准").click()
    card.locator(".decided", has_text="demo-responder").wait_for(timeout=10000)
    [decision] = _run(demo, key, first)["decisions"]
    assert decision["decision"] == "approved" and decision["by"] == "demo-responder"
    assert decision["comment"] == "确认为外部扫描"
    # Approved, the run goes on to the block (the demo's scanner is internal: refused, so
    # the run escalates); either way it is no longer waiting.
    assert _wait_until_ended(demo, key, first) != "denied"

    second = _waiting_run(demo, key, alert_id, "e2e-approvals-deny")
    english = page.context.new_page()        # a new tab: its own session, logged in in English
    _open_approvals(english, demo, "demo-responder", "en")
    other = english.locator(f"article.approval[data-run='{second}']")
    other.locator("button", has_text="Deny").wait_for()
    assert "Once approved it will" in other.inner_text()
    screenshot(english, "console-approvals-en")
    assert axe_violations(english) == []
    other.locator("button", has_text="Deny").click()
    other.locator(".decided").wait_for(timeout=10000)
    assert _wait_until_ended(demo, key, second) == "denied"
