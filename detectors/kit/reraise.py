"""The re-raise policy: an alert that keeps growing is raised again (same id, so the stored
alert is updated) once the quantity behind it has doubled since the last time it was raised
(scan fan-out, beacon connections, DoS flows, exfiltration bytes, new lateral hosts, DGA
names, DNS tunnel names, brute-force failures, slow-DoS connections, Sigma/IOC hits). A first
alert (nothing reported yet, `last` = 0) is always due.

Doubling alone lets an attack that goes on fall silent: a count that grows linearly doubles
ever more rarely, and a count over a window levels off and never doubles again. The stored
alert then shows a last-seen time long past while the attack runs. `refreshed` is the other
half: raised before, and not for `refresh_seconds` (one setting, `refresh_field()`). Kept in
the detectors for now: the quantity and its episode live in detector state
(docs/decisions.md).

Both halves wait for new evidence, so an attack that grows fast and then stops (a sweep of 245
addresses in two seconds) keeps the count of its last doubling (128). `Unreported` closes that
gap: a detector names the keys whose count grew past their last raise, and its timer raises
each once more when no growth has come for `refresh_seconds`. A stored alert is then never
more than `refresh_seconds` of event time behind its evidence."""
from __future__ import annotations

from pydantic import Field

REFRESH_SECONDS = 60.0


def doubled(quantity: float, last: float) -> bool:
    """True when `quantity` is at least twice what was reported last (0: never reported)."""
    return quantity >= 2 * last


def refreshed(last: float, raised_at: float | None, now: float, every: float) -> bool:
    """True when the alert was raised in this episode (`last` > 0) but not for `every` seconds
    of event time: the attack is still going (the caller saw its evidence just now).
    `raised_at` None: no refresh now (the evidence in hand does not count)."""
    return last > 0 and raised_at is not None and now - raised_at >= every


def due(quantity: float, last: float, raised_at: float | None, now: float,
        every: float) -> bool:
    """The whole policy: doubled since the last raise, or refreshed."""
    return doubled(quantity, last) or refreshed(last, raised_at, now, every)


class Unreported:
    """Keys whose count has grown since their alert's last raise, in order of last growth."""

    def __init__(self):
        self.since: dict[str, float] = {}

    def grew(self, key: str, now: float) -> None:
        self.since.pop(key, None)           # moved to the end: the order stays by last growth
        self.since[key] = now

    def reported(self, key: str) -> None:
        self.since.pop(key, None)

    def settled(self, now: float, quiet: float) -> list[str]:
        """The keys that have not grown for `quiet` seconds, handed back once each."""
        done = []
        while self.since:
            key, grown_at = next(iter(self.since.items()))
            if now - grown_at < quiet:
                break
            del self.since[key]
            done.append(key)
        return done

    def settled_in(self, table, now: float, quiet: float) -> list[tuple]:
        """(key, record) of the settled keys whose record `table` (a KeyedState or a dict)
        still holds: a key evicted or expired meanwhile has nothing left to raise."""
        return [(key, rec) for key in self.settled(now, quiet)
                if (rec := table.get(key)) is not None]

    def snapshot(self) -> list:
        return [[key, t] for key, t in self.since.items()]

    def restore(self, raw) -> None:
        self.since = {str(key): float(t) for key, t in raw or []}


def refresh_field():
    """The `refresh_seconds` setting, the same in every detector that has it."""
    return Field(REFRESH_SECONDS, ge=5, le=3600, description=(
        "an alert already raised is raised again (same alert: current count and last-seen "
        "time) on new evidence this long after its last raise, even before its count doubles"))
