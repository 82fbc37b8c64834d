"""Sigma rules over our syslog events (sshd, sudo, pam, netfilter, cef): policy violations.

Rules are parsed by pySigma and evaluated by detectors/sigma_eval.py. Rule files reload when
they change; a file with any error keeps its previous version (a half-saved edit must not drop
a working rule), and every error is collected with its file and line. One alert per (rule,
actor); repeats update it.
Hot reload and alert updates: `WatchedFiles` and `HitTable` from the toolkit (detectors/kit).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import Field
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.rule import SigmaRule

from detectors.base import Detector, DetectorConfig
from detectors.kit import FileLoad, HitTable, WatchedFiles, hit_alert
from detectors.sigma_eval import CompiledRule, RuleError, compile_rule
from watchkeeper import schema
from watchkeeper.documents import AlertSpec

log = logging.getLogger(__name__)


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
            "message_zh": f"命中 Sigma 规则“{rule.title}”（{actor or '未知主体'}）：{text}",
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
