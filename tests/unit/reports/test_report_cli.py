"""`watchkeeper report …` as an operator runs it: a PDF on disk, the report in the store, and
one clear line with exit 2 for bad input."""
from __future__ import annotations

import re
import subprocess

from tests.unit.reports import seed
from app.cli import main
from watchkeeper.store.base import Query
from watchkeeper.store.sqlite import SqliteStore

INVENTORY = """sites:
  - {id: region, name: 区域中心}
  - {id: city-a, name: A市, parent: region}
  - {id: county-a1, name: A1县, parent: city-a}
  - {id: city-b, name: B市, parent: region}
"""


def test_monthly_report_for_a_site_from_the_command_line(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path}/wk.db"
    store = SqliteStore(url)
    seed.seed(store)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(INVENTORY, encoding="utf-8")
    monkeypatch.setenv("WATCHKEEPER_INVENTORY_FILE", str(inventory))
    out = tmp_path / "city-a.pdf"
    assert main(["report", "monthly", "--site", "city-a", "--period", "2026-11",
                 "--store", url, "--out", str(out), "--html", str(tmp_path / "r.html")]) == 0
    report_id, path, digest = capsys.readouterr().out.split()
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert report_id in text.replace("\n", "") and "A市" in text and "2026年11月" in text
    store.refresh()
    [stored] = store.search("reports", Query()).items
    assert stored["event"]["id"] == report_id and stored["labels"]["site"] == "city-a"
    assert digest == f"sha256={stored['watchkeeper']['report']['sha256']}"

    for argv, message in (
            (["monthly", "--period", "2026-13"], "not a monthly period"),
            (["weekly", "--period", "2026-11"], "2026-W45"),
            (["monthly"], "needs --period"),
            (["incident"], "needs --incident"),
            (["incident", "--incident", "no-such"], "no incident"),
            (["monthly", "--period", "2026-11", "--site", "atlantis"], "not a site")):
        assert main(["report", *argv, "--store", url, "--out", str(tmp_path / "x.pdf")]) == 2
        assert message in capsys.readouterr().err
    store.close()


def test_the_report_follows_the_sites_in_the_store(tmp_path, capsys):
    """Sites live in the store (seeded once from the inventory file, then edited through the
    API; `run --demo` seeds its sample region): a report needs no inventory file to know
    them, and sees a site added after the generator was made."""
    from reports.cli import deployment_inventory
    from reports.generate import generate
    from reports.periods import parse_period
    from reports.builder import ReportRequest
    from reports.settings import report_settings
    from reports.templates import TemplateSet
    from watchkeeper.assets import Site
    from watchkeeper.config import Settings
    from watchkeeper.store.inventory import put_sites_and_assets

    url = f"sqlite:///{tmp_path}/wk.db"
    store = SqliteStore(url)
    seed.seed(store)
    put_sites_and_assets(store, [Site(id="dc-region", name="区域政务云")], [], "test", "import",
                         1.0e9)
    out = tmp_path / "dc.pdf"
    assert main(["report", "monthly", "--site", "dc-region", "--period", "2026-11",
                 "--store", url, "--out", str(out)]) == 0, capsys.readouterr().err
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "区域政务云" in text

    settings = Settings(store=url)
    options = report_settings(settings.reports)
    inventory = deployment_inventory(settings, store)
    put_sites_and_assets(store, [Site(id="city-z", name="Z市")], [], "test", "import", 1.0e9)
    period = parse_period("monthly", "2026-11", options.timezone)
    made = generate(store, ReportRequest("monthly", site="city-z", period=period), options,
                    TemplateSet(options.templates_dir), inventory)   # would raise: unknown site
    assert "Z市" in made.html
    store.close()


def test_a_chinese_incident_report_says_what_the_detectors_said_in_chinese(tmp_path, capsys,
                                                                          monkeypatch):
    url = f"sqlite:///{tmp_path}/wk.db"
    store = SqliteStore(url)
    seed.seed(store)
    [incident] = store.get_by_ids("incidents", ["inc-late"])
    first = incident["watchkeeper"]["incident"]["alerts"][0]
    [alert] = store.get_by_ids("alerts", [first])
    alert["watchkeeper"]["alert"]["message_zh"] = "来自 203.0.113.5 的口令猜测：12 次登录失败"
    store.bulk_upsert("alerts", [alert])
    store.refresh()
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(INVENTORY, encoding="utf-8")
    monkeypatch.setenv("WATCHKEEPER_INVENTORY_FILE", str(inventory))
    out = tmp_path / "inc.pdf"
    assert main(["report", "incident", "--incident", "inc-late", "--store", url,
                 "--out", str(out), "--html", str(tmp_path / "inc.html")]) == 0, \
        capsys.readouterr().err
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True,
                          text=True, check=True).stdout
    html = (tmp_path / "inc.html").read_text(encoding="utf-8")   # PDF text interleaves cells
    assert "<td>来自 203.0.113.5 的口令猜测：12 次登录失败</td>" in html
    assert alert["message"] not in html
    status = incident["watchkeeper"]["incident"]["status"]
    words = {"new": "待处理", "acknowledged": "已确认", "investigating": "处置中",
             "contained": "已控制", "closed": "已关闭"}
    assert re.search(rf"状态\s+{words[status]}", text), status
    store.close()
