"""Detectors by name; third parties add theirs through the `watchkeeper.detectors` entry point."""
from __future__ import annotations

from importlib.metadata import entry_points

from pydantic import ValidationError

from detectors.account_attack import AccountAttackDetector
from detectors.anomaly import AnomalyDetector
from detectors.base import Detector
from detectors.beacon import BeaconDetector
from detectors.bruteforce import BruteForceDetector
from detectors.dga import DgaDetector
from detectors.dns import DnsTunnelDetector
from detectors.dos import DosDetector
from detectors.exfil import ExfilDetector
from detectors.ioc import IocDetector
from detectors.lateral import LateralMovementDetector
from detectors.scan import ScanDetector
from detectors.sigma import SigmaDetector
from detectors.slowdos import SlowDosDetector

BUILTIN: dict[str, type[Detector]] = {
    cls.name: cls for cls in (
        ScanDetector, BruteForceDetector, BeaconDetector, DnsTunnelDetector, DgaDetector,
        IocDetector, SigmaDetector, AnomalyDetector, DosDetector, ExfilDetector,
        LateralMovementDetector, SlowDosDetector, AccountAttackDetector,
    )
}


def available() -> dict[str, type[Detector]]:
    found = dict(BUILTIN)
    for ep in entry_points(group="watchkeeper.detectors"):
        found.setdefault(ep.name, ep.load())
    return found


def build(params: dict[str, dict] | None = None, names: list[str] | None = None) -> list[Detector]:
    """Instantiate detectors with validated parameters; errors name `detectors.<name>.<key>`."""
    params = params or {}
    classes = available()
    unknown = (set(params) | set(names or [])) - set(classes)
    if unknown:
        raise ValueError(f"detectors: unknown {sorted(unknown)}; available: {sorted(classes)}")
    chosen = names if names is not None else sorted(classes)
    built = []
    for name in chosen:
        cls = classes[name]
        try:
            config = cls.Config(**params.get(name, {}))
        except ValidationError as exc:
            errors = "; ".join(f"detectors.{name}.{'.'.join(map(str, e['loc']))}: {e['msg']}"
                               for e in exc.errors())
            raise ValueError(errors) from None
        built.append(cls(config))
    return built
