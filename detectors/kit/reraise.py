"""The re-raise policy: an alert that keeps growing is raised again (same id, so the stored
alert is updated) once the quantity behind it has doubled since the last time it was raised
(scan fan-out, beacon connections, DoS flows, exfiltration bytes, new lateral hosts, DGA
names, DNS tunnel names, brute-force failures, slow-DoS connections, Sigma/IOC hits). A first
alert (nothing reported yet, `last` = 0) is always due. Kept in the detectors for now: the
quantity and its episode live in detector state (docs/decisions.md)."""
from __future__ import annotations


def doubled(quantity: float, last: float) -> bool:
    """True when `quantity` is at least twice what was reported last (0: never reported)."""
    return quantity >= 2 * last
