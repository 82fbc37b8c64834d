"""Load playbook files the pySigma way: every error with its file and line, all at once.

A broken file is reported and skipped; the valid ones load. `Library` keeps the loaded set
and reloads it when a file in a watched folder changes (hot reload by modification time, so
a customer's edit is picked up by the running worker without a restart).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from playbooks import yamllines
from playbooks.actions import REGISTRY, check_params
from playbooks.model import Playbook

log = logging.getLogger(__name__)
SHIPPED = Path(__file__).parent / "library"


@dataclass(frozen=True)
class LoadError:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass
class LoadResult:
    playbooks: dict[str, Playbook] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)      # name -> file
    errors: list[LoadError] = field(default_factory=list)


def _files(folder: Path) -> list[Path]:
    if folder.is_file():
        return [folder]
    return sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def load_folders(folders: list[Path]) -> LoadResult:
    """Every playbook file under `folders`; later folders may not redefine a name."""
    result = LoadResult()
    for folder in folders:
        if not folder.exists():
            result.errors.append(LoadError(str(folder), 0, "folder does not exist"))
            continue
        for path in _files(folder):
            playbook, errors = load_file(path)
            result.errors += errors
            if playbook is None:
                continue
            if playbook.name in result.playbooks:
                result.errors.append(LoadError(str(path), 1, f"playbook name {playbook.name!r} "
                                               f"is already defined in "
                                               f"{result.sources[playbook.name]}"))
                continue
            result.playbooks[playbook.name] = playbook
            result.sources[playbook.name] = str(path)
    return result


def load_file(path: Path) -> tuple[Playbook | None, list[LoadError]]:
    name = str(path)
    try:
        parsed = yamllines.load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return None, [LoadError(name, 0, f"cannot read: {exc}")]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        return None, [LoadError(name, line, f"not valid YAML: {getattr(exc, 'problem', exc)}")]
    if not isinstance(parsed.data, dict):
        return None, [LoadError(name, parsed.line_of(()), "a playbook is a mapping "
                                                          "(name, version, trigger, steps)")]
    errors = _schema_errors(name, parsed) + _action_errors(name, parsed)
    if errors:
        return None, sorted(errors, key=lambda e: e.line)
    return Playbook.model_validate(parsed.data), []


def _schema_errors(name: str, parsed: yamllines.LinedYaml) -> list[LoadError]:
    try:
        Playbook.model_validate(parsed.data)
    except ValidationError as exc:
        return [LoadError(name, parsed.line_of(_yaml_path(e["loc"])), _describe(e))
                for e in exc.errors()]
    return []


def _yaml_path(loc: tuple) -> tuple:
    # pydantic names aliased fields by alias already; tagged/union parts are dropped
    return tuple(part for part in loc if isinstance(part, int) or not str(part).startswith(
        "function-"))


def _describe(error: dict) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "playbook"
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message}"


def _action_errors(name: str, parsed: yamllines.LinedYaml) -> list[LoadError]:
    steps = parsed.data.get("steps")
    if not isinstance(steps, list):
        return []
    errors = []
    for index, step in enumerate(steps):
        if not isinstance(step, dict) or not isinstance(step.get("action"), str):
            continue
        action = step["action"]
        if action not in REGISTRY:
            errors.append(LoadError(name, parsed.line_of(("steps", index, "action")),
                                    f"steps.{index}.action: unknown action {action!r}; "
                                    f"known: {', '.join(sorted(REGISTRY))}"))
            continue
        params = step.get("with") or {}
        for problem in check_params(action, params if isinstance(params, dict) else {}):
            path = ("steps", index, "with", *problem.loc)
            errors.append(LoadError(name, parsed.line_of(path),
                                    f"steps.{index}.with: {problem.message}"))
    return errors


class Library:
    """The playbooks in force: shipped ones plus the customer's folder, reloaded on change."""

    def __init__(self, folders: list[Path]):
        self.folders = [Path(f) for f in folders]
        self._stamp: tuple = ()
        self.current = LoadResult()
        self.reload_if_changed()

    def _fingerprint(self) -> tuple:
        stamp = []
        for folder in self.folders:
            if folder.exists():
                stamp += [(str(p), os.stat(p).st_mtime_ns, os.stat(p).st_size)
                          for p in _files(folder)]
        return tuple(stamp)

    def reload_if_changed(self) -> bool:
        stamp = self._fingerprint()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        self.current = load_folders(self.folders)
        for error in self.current.errors:
            log.warning("playbook not loaded: %s", error)
        log.info("playbooks loaded: %s", ", ".join(sorted(self.current.playbooks)) or "none")
        return True

    @property
    def playbooks(self) -> dict[str, Playbook]:
        return self.current.playbooks
