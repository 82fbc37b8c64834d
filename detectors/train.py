"""Train the anomaly scorer from flow events and store it with its metadata.

`watchkeeper train --since/--until` reads flow events from the store and calls `train`; the
windows are cut exactly as the `anomaly` detector cuts them (detectors/features.py), so what the
model learned and what it scores are the same measurements.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from detectors import model as model_mod
from detectors.features import FEATURE_NAMES, FEATURES_VERSION, windows_from_events

MIN_WINDOWS = 50      # fewer (host, window) rows than this cannot describe "normal"


@dataclass
class TrainReport:
    windows: int                 # (host, window) rows the model was fitted on
    hosts: int
    start: float | None          # event time: first window's start, last window's end
    end: float | None
    threshold: float             # on the 0-100 score (the model's risk_threshold_)
    path: str


def train(events: Iterable[dict], out_path: str, sensitivity: float = 0.5,
          window_seconds: int = 300, random_state: int = 0) -> TrainReport:
    """Fit an AnomalyScorer on every internal host's windows of `events`; save it to `out_path`."""
    if not 0.0 <= sensitivity <= 1.0:
        raise ValueError(f"sensitivity must be in [0, 1], got {sensitivity}")
    if window_seconds < 10:
        raise ValueError(f"window_seconds must be at least 10, got {window_seconds}")
    rows, hosts, start, end = [], set(), None, None
    for win in windows_from_events(events, window_seconds):
        rows.append(win.vector())
        hosts.add(win.host)
        start = win.start if start is None else min(start, win.start)
        end = win.start + window_seconds if end is None else max(end, win.start + window_seconds)
    if len(rows) < MIN_WINDOWS:
        raise ValueError(f"only {len(rows)} host windows in the training events; need at least "
                         f"{MIN_WINDOWS} (a longer --since/--until, or more hosts)")
    scorer = model_mod.AnomalyScorer(sensitivity=sensitivity, feature_names=list(FEATURE_NAMES),
                                     random_state=random_state)
    scorer.fit(np.asarray(rows, dtype=np.float64))
    meta = model_mod.ModelMetadata(
        feature_names=list(FEATURE_NAMES), features_version=FEATURES_VERSION,
        window_seconds=float(window_seconds), train_start=start, train_end=end,
        n_samples=len(rows), n_hosts=len(hosts), sensitivity=sensitivity,
        threshold=float(scorer.threshold_), risk_threshold=float(scorer.risk_threshold_))
    model_mod.save(scorer, out_path, meta)
    return TrainReport(windows=len(rows), hosts=len(hosts), start=start, end=end,
                       threshold=round(float(scorer.risk_threshold_), 2), path=out_path)
