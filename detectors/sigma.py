"""Sigma rules over our syslog events (sshd, sudo, pam, netfilter, cef): policy violations.

Rules are parsed by pySigma and evaluated by detectors/sigma_eval.py. Rule files reload when
they change; a file with any error keeps its previous version (a half-saved edit must not drop
a working rule), and every error is collected with its file and line. One alert per (rule,
actor); repeats update it.

Also home of the machinery both file-driven detectors (this one and ioc.py) share:
`FileLoad`, `WatchedFiles` (hot reload) and `HitTable` (alerts that update in place).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import Field
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.rule import SigmaRule

from detectors.base import Detector, DetectorConfig, plain
from detectors.sigma_eval import CompiledRule, RuleError, compile_rule
from watchkeeper import schema
from watchkeeper.documents import AlertSpec

log = logging.getLogger(__name__)
MAX_EVIDENCE = 100


# --- shared machinery: files that reload themselves, alerts that update in place -----------
@dataclass
class FileLoad:
    """What one file gave: its items, every problem found, and whether the file as a whole is
    unusable (`fatal`: a broken file never replaces the version already loaded)."""
    items: list = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    fatal: bool = False

class WatchedFiles:
    """Loads files (or every matching file in a directory) and re-reads one when its mtime or
    size changes. Checks run at most every `every` seconds of *wall clock* (monotonic): a file's
    mtime is a wall-clock fact unrelated to event time, which stands still while no traffic
    arrives and races through a replay; the interval is an I/O budget, not a detection window."""

    def __init__(self, paths: tuple[str, ...], suffixes: tuple[str, ...],
                 load: Callable[[str, int, int], FileLoad], every: float,
                 clock: Callable[[], float] = time.monotonic):
        self.paths, self.suffixes, self.load, self.every, self.clock = (
            paths, suffixes, load, every, clock)
        self.loaded: dict[str, FileLoad] = {}
        self.errors: dict[str, list[str]] = {}     # per file, from its latest read
        self._stamps: dict[str, tuple[int, int]] = {}
        self._next = clock() + every
        self.refresh()

    def poll(self) -> bool:
        """True when the loaded content changed."""
        if self.clock() < self._next:
            return False
        self._next = self.clock() + self.every
        return self.refresh()

    def refresh(self) -> bool:
        files, changed = self._files(), False
        for gone in [f for f in self.loaded if f not in files]:
            del self.loaded[gone]
            self._stamps.pop(gone, None)
            changed = True
        for name, stat in files.items():
            if stat is not None and self._stamps.get(name) != stat:
                self._stamps[name] = stat
                changed |= self._read(name, stat)
        return changed

    def _read(self, name: str, stat: tuple[int, int]) -> bool:
        result = self.load(name, *stat)
        self.errors[name] = result.errors
        for error in result.errors:
            log.warning("%s", error)
        if result.fatal and name in self.loaded:
            log.warning("%s: unusable, keeping the version loaded before", name)
            return False
        self.loaded[name] = result
        return True

    def _files(self) -> dict[str, tuple[int, int] | None]:
        """Current files and their (mtime_ns, size); a configured path that is missing keeps its
        old content (it is likely being replaced), a file gone from a directory is dropped."""
        out: dict[str, tuple[int, int] | None] = {}
        for raw in self.paths:
            path = Path(raw)
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in self.suffixes
                           and p.is_file()) if path.is_dir() else [path]
            for file in found:
                try:
                    st = file.stat()
                    out[str(file)] = (st.st_mtime_ns, st.st_size)
                except OSError as exc:
                    self.errors[str(file)] = [f"{file}: {exc.strerror or exc}"]
                    out[str(file)] = None
        return out

    def items(self) -> list:
        return [item for result in self.loaded.values() for item in result.items]

    def all_errors(self) -> list[str]:
        return [e for errors in self.errors.values() for e in errors]


@dataclass
class Hit:
    """One (rule or indicator, actor) pair: the alert it raised and how it grew since."""
    first_seen: float
    last_seen: float
    context: dict                   # AlertSpec fields fixed at the first hit (JSON-safe)
    count: int = 0
    evidence: list[str] = field(default_factory=list)
    reported_count: int = 0
    reported_at: float = 0.0


class HitTable:
    """Repeats of one match update one alert (same entity, same first_seen, so the same alert
    id): it is raised at the first hit and whenever its count doubles, and `due()` sends the
    grown count of a busy pair at most every `update_seconds`. Pairs quiet for `idle_seconds`
    (event time) are forgotten; at most `max_tracked`, least recently seen dropped first."""

    def __init__(self, idle_seconds: float, update_seconds: float, max_tracked: int):
        self.idle, self.update, self.max_tracked = idle_seconds, update_seconds, max_tracked
        self.hits: dict[str, Hit] = {}      # insertion order = least recently seen first

    def record(self, entity: str, event_time: float, event_id: str | None,
               context: dict) -> Hit | None:
        hit = self.hits.pop(entity, None)
        if hit is None or event_time - hit.last_seen > self.idle:
            while len(self.hits) >= self.max_tracked:
                del self.hits[next(iter(self.hits))]
            hit = Hit(event_time, event_time, context)
        self.hits[entity] = hit
        hit.first_seen = min(hit.first_seen, event_time)
        hit.last_seen = max(hit.last_seen, event_time)
        hit.count += 1
        if event_id and len(hit.evidence) < MAX_EVIDENCE and event_id not in hit.evidence:
            hit.evidence.append(event_id)
        return self._report(hit, event_time) if hit.count >= 2 * hit.reported_count else None

    def due(self, now: float) -> list[tuple[str, Hit]]:
        for entity in [e for e, h in self.hits.items() if now - h.last_seen > self.idle]:
            del self.hits[entity]
        return [(e, self._report(h, now)) for e, h in self.hits.items()
                if h.count > h.reported_count and now - h.reported_at >= self.update]

    @staticmethod
    def _report(hit: Hit, now: float) -> Hit:
        hit.reported_count, hit.reported_at = hit.count, now
        return hit

    def snapshot(self) -> dict:
        return {entity: plain(hit) for entity, hit in self.hits.items()}

    def restore(self, state: dict) -> None:
        self.hits = {entity: Hit(**hit) for entity, hit in state.items()}


def hit_alert(detector: Detector, entity: str, hit: Hit) -> AlertSpec:
    return AlertSpec(detector=detector.name, detector_version=detector.version,
                     category=detector.category, entity=entity, first_seen=hit.first_seen,
                     last_seen=hit.last_seen, evidence=list(hit.evidence), count=hit.count,
                     **hit.context)


# --- Sigma -----------------------------------------------------------------------------------
@lru_cache(maxsize=128)
def load_rules(path: str, mtime_ns: int = 0, size: int = 0) -> FileLoad:
    """Every rule of one YAML file (one rule per document); cached on the file's stamp."""
    try:
        documents = _documents(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return FileLoad(errors=[f"{path}: {exc}"], fatal=True)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path
        problem = getattr(exc, "problem", None) or str(exc)
        return FileLoad(errors=[f"{where}: invalid YAML: {problem}"], fatal=True)
    out = FileLoad()
    for line, document in documents:
        _load_document(out, path, line, document)
    out.fatal = bool(out.errors)
    return out


def _documents(text: str) -> list[tuple[int, object]]:
    """(first line, data) of each YAML document, so an error can name the rule's line."""
    loader = yaml.SafeLoader(text)
    try:
        found = []
        while loader.check_node():
            node = loader.get_node()
            found.append((node.start_mark.line + 1, loader.construct_document(node)))
        return found
    finally:
        loader.dispose()


def _load_document(out: FileLoad, path: str, line: int, document: object) -> None:
    where = f"{path}:{line}"
    if not isinstance(document, dict):
        out.errors.append(f"{where}: a Sigma rule must be a YAML mapping")
        return
    collection = SigmaCollection.from_dicts([document], collect_errors=True,
                                            source=SigmaRuleLocation(Path(path), line))
    own = [id(e) for rule in collection.rules for e in rule.errors]    # reported per rule below
    out.errors += [f"{where}: {_plain(e)}" for e in collection.errors if id(e) not in own]
    for rule in collection.rules:
        if not isinstance(rule, SigmaRule):
            out.errors.append(f"{where}: {type(rule).__name__} is not supported")
            continue
        if rule.errors:
            out.errors += [f"{where}: rule {rule.id}: {_plain(e)}" for e in rule.errors]
            continue
        try:
            out.items.append(compile_rule(rule, where))
        except (RuleError, SigmaError) as exc:
            out.errors.append(f"{where}: rule {rule.id}: {_plain(exc)}")


def _plain(exc: Exception) -> str:
    """pySigma appends ' in <file>' to its messages; we already say where."""
    return str(exc.args[0]) if exc.args else str(exc)


# The rules shipped with Watchkeeper (detectors/rules/sigma): on unless `paths` is replaced.
BUILTIN_RULES = str(Path(__file__).resolve().parent / "rules" / "sigma")


class SigmaConfig(DetectorConfig):
    paths: tuple[str, ...] = Field((BUILTIN_RULES,), max_length=256, description=(
        "Sigma rule files (.yml/.yaml) or directories holding them; the default is the "
        "rule set shipped in detectors/rules/sigma (list it too when adding your own)"))
    reload_seconds: float = Field(30.0, ge=1, le=86_400, description=(
        "wall-clock seconds between checks of the rule files' modification times"))
    include_informational: bool = Field(False, description=(
        "also alert on rules of level informational (as severity 1)"))
    idle_seconds: float = Field(3600.0, ge=60, le=7 * 86_400, description=(
        "event time after which a quiet (rule, actor) pair is forgotten"))
    update_seconds: float = Field(60.0, ge=5, le=86_400, description=(
        "event time between updates of an alert whose count kept growing"))
    max_tracked: int = Field(50_000, ge=100, le=5_000_000, description=(
        "(rule, actor) pairs kept; the least recently seen is dropped first"))


class SigmaDetector(Detector):
    name = "sigma"
    version = "1"
    category = "policy_violation"
    datasets = frozenset({schema.SYSLOG})
    Config = SigmaConfig

    def __init__(self, config: SigmaConfig | None = None,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(config)
        cfg = self.config
        self.files = WatchedFiles(cfg.paths, (".yml", ".yaml"), load_rules, cfg.reload_seconds,
                                  clock)
        self.hits = HitTable(cfg.idle_seconds, cfg.update_seconds, cfg.max_tracked)
        self._index()

    def _index(self) -> None:
        """Rules by event.module, so an event is tested only against the rules for its source."""
        self.by_module: dict[str | None, list[CompiledRule]] = {}
        seen: dict[str, str] = {}
        for rule in self.files.items():
            if rule.rule_id in seen:    # one id, one alert stream: the first file read wins
                log.warning("%s: duplicate %s (first in %s), ignored", rule.origin,
                            rule.rule_id, seen[rule.rule_id])
                continue
            seen[rule.rule_id] = rule.origin
            if rule.level == "informational" and not self.config.include_informational:
                continue
            for module in rule.modules if rule.modules is not None else (None,):
                self.by_module.setdefault(module, []).append(rule)

    @property
    def rules(self) -> list[CompiledRule]:
        return [r for rules in self.by_module.values() for r in rules]

    def on_event(self, event: dict, event_time: float) -> list[AlertSpec]:
        if self.files.poll():
            self._index()
        module = schema.get(event, "event.module")
        alerts = []
        for rule in self.by_module.get(module, []) + self.by_module.get(None, []):
            if rule.matches(event):
                entity, context = self._context(rule, event)
                hit = self.hits.record(entity, event_time, schema.get(event, "event.id"), context)
                if hit is not None:
                    alerts.append(hit_alert(self, entity, hit))
        return alerts

    def _context(self, rule: CompiledRule, event: dict) -> tuple[str, dict]:
        src, user = schema.get(event, "source.ip"), schema.get(event, "user.name")
        actor = src or (f"user:{user}" if user else None) or schema.get(event, "host.hostname")
        text = str(schema.get(event, "message") or "")[:300]
        return f"{rule.rule_id}|{actor or '-'}", {
            "rule_id": rule.rule_id, "rule_name": rule.title, "severity": rule.severity,
            "message": f"{rule.title} ({actor or 'unknown actor'}): {text}",
            "source_ip": src, "destination_ip": schema.get(event, "destination.ip"),
            "related_ips": list(schema.get(event, "related.ip") or [])[:50],
            "subscores": {"rule_level": rule.severity / 4},
            "technique_id": rule.technique_id, "technique_name": rule.technique_name}

    def on_timer(self, now: float) -> list[AlertSpec]:
        if self.files.poll():
            self._index()
        return [hit_alert(self, entity, hit) for entity, hit in self.hits.due(now)]

    def snapshot(self) -> dict:
        return {"hits": self.hits.snapshot()}

    def restore(self, state: dict) -> None:
        self.hits.restore(state.get("hits", {}))
