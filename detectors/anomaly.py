"""Anomalous host behaviour: per-host window features scored by a trained model.

Each internal host's flows are summed into tumbling event-time windows (detectors/features.py).
A window closes once event time is `grace_seconds` past its end (so flows that arrive a little
late still count); it is then scored by the model that `watchkeeper train` produced
(detectors/model.py) and, when it is past the model's fitted threshold and `min_score`, raised as
an alert naming the features that made it unusual. Without a model the detector raises nothing
(and says so once in the log). Closed windows are discarded, so state always expires.
"""
from __future__ import annotations

import logging
import math
import os

from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field

if TYPE_CHECKING:     # scikit-learn takes seconds to import: only when a model is loaded
    from detectors import model as model_mod
from detectors.base import Detector, DetectorConfig
from detectors.features import (FEATURE_LABELS, HostWindow, internal_host, window_start)
from watchkeeper import schema, timeutil
from watchkeeper.documents import AlertSpec

log = logging.getLogger(__name__)
_LOGGED: set[str] = set()
_MODELS: dict[tuple[str, int], model_mod.LoadedModel] = {}   # (path, mtime) -> model
Z_HALF = 3.0          # |z| that maps to subscore 0.5: subscore = |z| / (|z| + Z_HALF)


class AnomalyConfig(DetectorConfig):
    model_path: str | None = Field(None, description="model file written by `watchkeeper train`;"
                                                     " None: the detector raises nothing")
    window_seconds: int = Field(300, ge=10, le=86_400,
                                description="event-time window per host; must match the model's")
    grace_seconds: float = Field(60.0, ge=0, le=3600,
                                 description="event time past a window's end before it is scored")
    min_score: float = Field(0.0, ge=0, le=100,
                             description="extra floor on the 0-100 score, on top of the model's "
                                         "fitted threshold")
    max_windows: int = Field(50_000, ge=10, le=1_000_000,
                             description="open (host, window) rows kept; events of new hosts past"
                                         " it are dropped and counted")
    top_features: int = Field(3, ge=1, le=10, description="features named in an alert")


def _log_once(key: str, message: str, *args) -> None:
    if key not in _LOGGED:
        _LOGGED.add(key)
        log.warning(message, *args)


def load_model(path: str, window_seconds: float) -> model_mod.LoadedModel:
    """The model at `path` (cached per file version), checked against this detector's window."""
    key = (path, os.stat(path).st_mtime_ns)
    loaded = _MODELS.get(key)
    from detectors import model as model_mod
    if loaded is None:
        loaded = _MODELS[key] = model_mod.load(path)
    if loaded.metadata.window_seconds != window_seconds:
        raise model_mod.ModelMismatchError(
            f"{path}: trained on {loaded.metadata.window_seconds:g}-second windows but "
            f"detectors.anomaly.window_seconds is {window_seconds}; set it to match or retrain")
    return loaded


class AnomalyDetector(Detector):
    name = "anomaly"
    version = "1"
    category = "anomaly"
    datasets = frozenset({schema.FLOW})
    Config = AnomalyConfig

    def __init__(self, config: AnomalyConfig | None = None):
        super().__init__(config)
        cfg = self.config
        self.model = load_model(cfg.model_path, cfg.window_seconds) if cfg.model_path else None
        if self.model is None:
            _log_once("no-model", "anomaly detector has no model_path: it raises no alerts "
                                  "(train one with `watchkeeper train`)")
        self._windows: dict[str, HostWindow] = {}       # "host|start" -> running totals
        self._watermark = -math.inf
        self._next_close = math.inf
        self.late = 0          # events whose window had already been scored
        self.dropped = 0       # events refused because max_windows was reached

    # --- events and time --------------------------------------------------------------------

    def on_event(self, event: dict, event_time: float) -> list[AlertSpec]:
        if self.model is None:
            return []
        host = internal_host(event)
        if host is not None:
            self._add(host, event, event_time)
        return self._advance(event_time)

    def on_timer(self, now: float) -> list[AlertSpec]:
        return self._advance(now) if self.model is not None else []

    def _add(self, host: str, event: dict, event_time: float) -> None:
        w = self.config.window_seconds
        start = window_start(event_time, w)
        if start + w + self.config.grace_seconds <= self._watermark:
            self.late += 1
            return
        key = f"{host}|{start:.0f}"
        win = self._windows.get(key)
        if win is None:
            if len(self._windows) >= self.config.max_windows:
                self.dropped += 1
                _log_once("full", "anomaly detector: %d open host windows, dropping new hosts "
                                  "(raise detectors.anomaly.max_windows)", len(self._windows))
                return
            win = self._windows[key] = HostWindow(host, start, event_time, event_time)
            self._next_close = min(self._next_close, self._close_time(win))
        win.add(event, event_time)

    def _close_time(self, win: HostWindow) -> float:
        return win.start + self.config.window_seconds + self.config.grace_seconds

    def _advance(self, now: float) -> list[AlertSpec]:
        self._watermark = max(self._watermark, now)
        if self._watermark < self._next_close:
            return []
        closed = [k for k, win in self._windows.items() if self._close_time(win) <= self._watermark]
        done = [self._windows.pop(k) for k in sorted(closed)]
        self._next_close = min((self._close_time(w) for w in self._windows.values()),
                               default=math.inf)
        return self._score(done)

    # --- scoring ------------------------------------------------------------------------------

    def _score(self, windows: list[HostWindow]) -> list[AlertSpec]:
        if not windows:
            return []
        scorer = self.model.scorer
        X = np.asarray([w.vector() for w in windows], dtype=np.float64)
        flagged = scorer.predict(X) == -1
        risk = scorer.risk(X)
        return [self._alert(win, X[i], float(risk[i])) for i, win in enumerate(windows)
                if flagged[i] and risk[i] >= self.config.min_score]

    def _alert(self, win: HostWindow, x: np.ndarray, score: float) -> AlertSpec:
        scorer = self.model.scorer
        top = scorer.explain(x, top=self.config.top_features)
        threshold = scorer.risk_threshold_
        described = "; ".join(_describe(c) for c in top)
        minutes = self.config.window_seconds / 60
        return AlertSpec(
            detector=self.name, detector_version=self.version, category=self.category,
            rule_id="wk.anomaly.host_window", rule_name="Unusual host behaviour",
            severity=2 if score >= threshold + (100 - threshold) / 2 else 1,
            message=f"{win.host} behaved unusually in the {minutes:g}-minute window from "
                    f"{timeutil.format(win.start)} (score {score:.0f}/100, threshold "
                    f"{threshold:.0f}): {described}",
            rule_name_zh="主机行为异常",
            message_zh=f"{win.host} 在 {timeutil.format(win.start)} 起的 {minutes:g} 分钟窗口内"
                       f"行为异常（评分 {score:.0f}/100，阈值 {threshold:.0f}）：{described}",
            entity=f"{win.host}|{timeutil.format(win.start)}",
            first_seen=win.first_seen, last_seen=win.last_seen, source_ip=win.host,
            related_ips=sorted(win.dsts)[:50], evidence=list(win.evidence),
            subscores={c.feature: abs(c.z) / (abs(c.z) + Z_HALF) for c in top},
            count=win.flows)

    # --- recovery ----------------------------------------------------------------------------

    def snapshot(self) -> dict:
        return {"watermark": None if self._watermark == -math.inf else self._watermark,
                "late": self.late, "dropped": self.dropped,
                "windows": {k: w.to_json() for k, w in self._windows.items()}}

    def restore(self, state: dict) -> None:
        mark = state.get("watermark")
        self._watermark = -math.inf if mark is None else float(mark)
        self.late, self.dropped = state.get("late", 0), state.get("dropped", 0)
        self._windows = {k: HostWindow.from_json(w) for k, w in state.get("windows", {}).items()}
        self._next_close = min((self._close_time(w) for w in self._windows.values()),
                               default=math.inf)


def _describe(c: model_mod.Contribution) -> str:
    """'distinct destinations 301 (usual 9, z=+25.3)' in the feature's natural unit."""
    label = FEATURE_LABELS.get(c.feature, c.feature)
    return f"{label} {_natural(c.feature, c.value)} (usual {_natural(c.feature, c.median)}, " \
           f"z={c.z:+.1f})"


def _natural(feature: str, value: float) -> str:
    if feature.endswith("_ratio"):
        return f"{value:.2f}"
    raw = math.expm1(value)          # every other feature is log1p of a count, size or seconds
    if feature == "mean_duration":
        return f"{raw:.1f}s"
    return f"{raw:,.0f}"
