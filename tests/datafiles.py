"""The one way tests (and bench/) find their data: the captures and expected logs vendored in
tests/data (provenance and licences in tests/data/MANIFEST.md). A missing file is an error,
never a skip: the data ships with the repository."""
from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
CAPTURE_SUFFIXES = (".pcap", ".pcapng")


def data_file(relative: str, base: Path = DATA) -> Path:
    """`relative` under tests/data (e.g. "scan/cs_synscan.pcapng"), which must exist."""
    path = base / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: see tests/data/MANIFEST.md")
    return path


def _found(paths: list[Path], what: str, base: Path) -> list[Path]:
    if not paths:
        raise FileNotFoundError(f"no {what} under {base}: see tests/data/MANIFEST.md")
    return paths


def captures(base: Path = DATA) -> list[Path]:
    """Every capture file (pcap and pcapng), sorted."""
    return _found(sorted(p for p in base.glob("**/*") if p.suffix in CAPTURE_SUFFIXES),
                  "captures", base)


def zeek_baselines(log: str = "*", base: Path = DATA) -> list[Path]:
    """Zeek btest baselines `<capture>.zeek-<log>.log`, sorted (ts masked, see the manifest)."""
    return _found(sorted(base.glob(f"**/*.zeek-{log}.log")), f"zeek-{log} baselines", base)


def manifest(base: Path = DATA) -> str:
    return data_file("MANIFEST.md", base).read_text()
