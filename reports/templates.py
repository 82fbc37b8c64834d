"""Templates a customer edits without code: Jinja2 files and clauses.yaml, looked up first in
the configured folder (`reports.templates_dir`), then in the shipped defaults.

Edits are picked up on the next report (files are re-read when their mtime changes; no
restart). A broken file (syntax error, unknown variable, invalid YAML) is reported with its
file and line, and the last version that worked keeps serving; only a file that never worked
fails the report, naming the file and line.
"""
from __future__ import annotations

import logging
import os
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

import jinja2
import yaml

SHIPPED = Path(__file__).parent / "templates"
CLAUSES = "clauses.yaml"
log = logging.getLogger("watchkeeper.reports")


@dataclass(frozen=True)
class TemplateProblem:
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


class ReportTemplateError(RuntimeError):
    """A template or clause file that has never worked: nothing to fall back to."""

    def __init__(self, problem: TemplateProblem):
        super().__init__(f"report template error: {problem}")
        self.problem = problem


class TemplateSet:
    """Loads, hot-reloads and renders templates with a last-good fallback per file."""

    def __init__(self, custom_dir: str | Path | None = None):
        self.folders = [Path(custom_dir)] if custom_dir else []
        self.folders.append(SHIPPED)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(f) for f in self.folders]),
            autoescape=jinja2.select_autoescape(["html", "j2"]), auto_reload=True,
            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self._lock = threading.RLock()
        self._good: dict[str, jinja2.Template] = {}
        self._clauses: tuple[tuple[str, float], dict] | None = None
        self.problems: list[TemplateProblem] = []   # of the last render, for the caller

    def path_of(self, name: str) -> Path:
        for folder in self.folders:
            if (folder / name).is_file():
                return folder / name
        raise ReportTemplateError(TemplateProblem(name, None, "no such template in "
                                                  + ", ".join(map(str, self.folders))))

    def exists(self, name: str) -> bool:
        return any((folder / name).is_file() for folder in self.folders)

    # -- clauses.yaml ---------------------------------------------------------------------------
    def clauses(self) -> dict:
        path = self.path_of(CLAUSES)
        stamp = (str(path), os.stat(path).st_mtime_ns)
        with self._lock:
            if self._clauses and self._clauses[0] == stamp:
                return self._clauses[1]
            try:
                data = _load_clauses(path)
            except _ClauseFileError as exc:
                self._note(exc.problem)
                if self._clauses is None:
                    raise ReportTemplateError(exc.problem) from None
                return self._clauses[1]
            self._clauses = (stamp, data)
            return data

    # -- templates ------------------------------------------------------------------------------
    def render(self, name: str, **context) -> str:
        """Render `name`; on any template error fall back to its last good version."""
        with self._lock:
            try:
                template = self.env.get_template(name)
                text = template.render(**context)
            except jinja2.TemplateError as exc:
                problem = _problem(exc, name, self)
            except (TypeError, ValueError, KeyError, AttributeError, ZeroDivisionError) as exc:
                problem = _problem(exc, name, self)
            else:
                self._good[name] = template
                return text
            self._note(problem)
            previous = self._good.get(name)
            if previous is None:
                raise ReportTemplateError(problem) from None
            return previous.render(**context)

    def _note(self, problem: TemplateProblem) -> None:
        log.error("report template problem (previous good version kept): %s", problem)
        if problem not in self.problems:
            self.problems.append(problem)


class _ClauseFileError(Exception):
    def __init__(self, problem: TemplateProblem):
        self.problem = problem


def _load_clauses(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise _ClauseFileError(TemplateProblem(str(path), mark.line + 1 if mark else None,
                                               str(exc.problem or exc))) from None
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise _ClauseFileError(TemplateProblem(str(path), None, str(exc))) from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), dict)
                                             for k in ("clauses", "reasons", "labels")):
        raise _ClauseFileError(TemplateProblem(str(path), 1, "must be a mapping with "
                                               "clauses:, reasons: and labels:"))
    return data


def _problem(exc: Exception, name: str, templates: TemplateSet) -> TemplateProblem:
    """File and line of a template error: the syntax error's own, else the deepest template
    frame of the traceback (Jinja maps rendered code back to template lines)."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return TemplateProblem(exc.filename or name, exc.lineno, exc.message or str(exc))
    if isinstance(exc, jinja2.TemplateNotFound):
        return TemplateProblem(exc.name or name, None, "template not found")
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(".j2")]
    if frames:
        return TemplateProblem(frames[-1].filename, frames[-1].lineno, f"{type(exc).__name__}: "
                               f"{exc}")
    try:
        file = str(templates.path_of(name))
    except ReportTemplateError:
        file = name
    return TemplateProblem(file, None, f"{type(exc).__name__}: {exc}")
