"""Renders page 1 of each report type over the seeded dataset to docs/images/ (README).

    .venv/bin/python -m tests.unit.reports.doc_images
"""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from reports.builder import ReportRequest
from reports.generate import generate
from reports.periods import parse_period
from reports.settings import ReportSettings
from reports.templates import TemplateSet
from tests.unit.reports import seed
from watchkeeper.store.sqlite import SqliteStore

OUT = Path(__file__).resolve().parents[3] / "docs" / "images"
REQUESTS = {
    "daily": ReportRequest("daily", "/", parse_period("daily", "2026-11-11")),
    "weekly": ReportRequest("weekly", "city-a", parse_period("weekly", "2026-W46")),
    "monthly": ReportRequest("monthly", "/", parse_period("monthly", "2026-11")),
    "incident": ReportRequest("incident", "/", incident_id="inc-late"),
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(f"sqlite:///{tmp}/wk.db")
        inventory = seed.seed(store)
        for name, request in REQUESTS.items():
            made = generate(store, request, ReportSettings(), TemplateSet(), inventory,
                            now=seed.utc(2026, 12, 1, 2))
            pdf = Path(tmp) / f"{name}.pdf"
            pdf.write_bytes(made.pdf)
            subprocess.run(["pdftoppm", "-f", "1", "-l", "1", "-r", "70", "-png",
                            "-singlefile", str(pdf), str(OUT / f"report-{name}")], check=True)
            print(OUT / f"report-{name}.png")
        store.close()


if __name__ == "__main__":
    main()
