"""The anomaly scorer: scikit-learn contract, threshold, scores, explanations, persistence."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import check_estimator

from detectors import model as model_mod
from detectors.features import FEATURE_NAMES, FEATURES_VERSION
from detectors.model import AnomalyScorer, ModelMetadata, ModelMismatchError

D = len(FEATURE_NAMES)
COL = {name: j for j, name in enumerate(FEATURE_NAMES)}


def normal_rows(n, seed=0):
    """Feature rows shaped like workstation windows (log1p counts/bytes, ratios in [0, 1])."""
    rng = np.random.default_rng(seed)
    flows = rng.normal(3.0, 0.4, n)
    X = np.column_stack([
        flows, flows - rng.uniform(0.3, 0.8, n), np.full(n, 1.4) + rng.normal(0, 0.15, n),
        rng.normal(9.5, 0.6, n), rng.normal(12.0, 0.7, n), np.clip(rng.normal(0.03, 0.03, n), 0, 1),
        np.clip(rng.normal(0.7, 0.08, n), 0, 1), rng.normal(1.5, 0.3, n),
        np.clip(rng.normal(0.1, 0.04, n), 0, 1), rng.normal(6.5, 0.5, n)])
    assert X.shape[1] == D
    return X


@pytest.fixture(scope="module")
def fitted():
    return AnomalyScorer(feature_names=list(FEATURE_NAMES)).fit(normal_rows(1500))


def test_params_untouched_and_clone_round_trip():
    names = tuple(FEATURE_NAMES)
    est = AnomalyScorer(n_neighbors=15, sensitivity=0.7, feature_names=names)
    assert est.feature_names is names and est.get_params()["sensitivity"] == 0.7
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    assert not [a for a in vars(est) if a.endswith("_")]          # nothing learned before fit
    est.fit(normal_rows(200))
    learned = {a for a in vars(est) if a.endswith("_") and not a.startswith("_")}
    assert {"lof_", "median_", "scale_", "threshold_", "train_scores_"} <= learned
    assert est.feature_names is names                              # fit did not rewrite it


def test_scikit_learn_check_estimator():
    # sensitivity=1 (flag 10% of training windows): at the default 0.3% the check's "some
    # training rows are predicted outliers" cannot hold for novelty-mode LOF, which counts a
    # training row as its own neighbour when it is scored again.
    check_estimator(AnomalyScorer(sensitivity=1.0))


@pytest.mark.parametrize("params", [{"sensitivity": 1.5}, {"sensitivity": -0.1},
                                    {"n_neighbors": 0}, {"min_scale": 0.0}, {"max_samples": 1}])
def test_invalid_parameters_are_refused_at_fit(params):
    est = AnomalyScorer(**params)                                   # stored untouched...
    with pytest.raises(ValueError, match="invalid parameters"):
        est.fit(normal_rows(50))                                    # ...refused at fit


def test_sensitivity_moves_the_threshold_monotonically(fitted):
    levels = np.linspace(0, 1, 11)
    thresholds = [fitted.threshold_for(s) for s in levels]
    assert thresholds == sorted(thresholds) and thresholds[0] < thresholds[-1]
    fits = [AnomalyScorer(sensitivity=s).fit(normal_rows(800)).threshold_ for s in (0.1, 0.5, 0.9)]
    assert fits[0] < fits[1] < fits[2]
    flagged = [(AnomalyScorer(sensitivity=s).fit(normal_rows(800)).predict(normal_rows(400, 9))
                == -1).sum() for s in (0.0, 1.0)]
    assert flagged[0] <= flagged[1]
    with pytest.raises(ValueError):
        fitted.threshold_for(2.0)


def test_threshold_is_apart_from_the_raw_score(fitted):
    X = normal_rows(100, seed=3)
    np.testing.assert_allclose(fitted.decision_function(X),
                               fitted.score_samples(X) - fitted.threshold_)
    assert fitted.offset_ == fitted.threshold_
    assert 0 < fitted.risk_threshold_ < 100


def _anomalies():
    scan = normal_rows(5, seed=11)
    scan[:, COL["distinct_dsts"]] = np.log1p(300)
    scan[:, COL["flows_out"]] = np.log1p(320)
    scan[:, COL["failed_ratio"]] = 0.95
    upload = normal_rows(5, seed=12)
    upload[:, COL["bytes_out"]] = np.log1p(2e9)
    upload[:, COL["upload_ratio"]] = 0.99
    upload[:, COL["bytes_per_flow_out"]] = np.log1p(1e8)
    return scan, upload


def test_anomalies_score_high_and_are_explained(fitted):
    scan, upload = _anomalies()
    normal = normal_rows(300, seed=5)
    assert fitted.risk(scan).min() > np.percentile(fitted.risk(normal), 99)
    assert (fitted.predict(scan) == -1).all() and (fitted.predict(upload) == -1).all()
    assert (fitted.predict(normal) == 1).mean() > 0.97
    risks = fitted.risk(np.vstack([normal, scan, upload]))
    assert ((risks >= 0) & (risks <= 100)).all()
    scan_top = {c.feature for c in fitted.explain(scan[0])}
    assert scan_top == {"distinct_dsts", "flows_out", "failed_ratio"}
    upload_top = fitted.explain(upload[0])
    assert {c.feature for c in upload_top} == {"bytes_out", "upload_ratio", "bytes_per_flow_out"}
    assert all(c.z > 3 for c in upload_top)                        # above normal, and by far


def _metadata(est, names=FEATURE_NAMES, version=FEATURES_VERSION):
    return ModelMetadata(feature_names=list(names), features_version=version, window_seconds=300,
                         train_start=0.0, train_end=3600.0, n_samples=1500, n_hosts=30,
                         sensitivity=est.sensitivity, threshold=est.threshold_,
                         risk_threshold=est.risk_threshold_)


def test_save_load_round_trip(fitted, tmp_path):
    path = str(tmp_path / "m.joblib")
    model_mod.save(fitted, path, _metadata(fitted))
    loaded = model_mod.load(path)
    X = normal_rows(50, seed=4)
    np.testing.assert_array_equal(loaded.scorer.score_samples(X), fitted.score_samples(X))
    assert loaded.scorer.threshold_ == fitted.threshold_
    meta = loaded.metadata
    assert meta.feature_names == list(FEATURE_NAMES) and meta.n_samples == 1500
    assert meta.sklearn_version and meta.numpy_version and meta.created > 0


def test_mismatched_features_are_refused(fitted, tmp_path):
    path = str(tmp_path / "old.joblib")
    model_mod.save(fitted, path, _metadata(fitted, version="0"))
    with pytest.raises(ModelMismatchError, match="retrain"):
        model_mod.load(path)
    renamed = [*FEATURE_NAMES[:-1], "something_else"]
    model_mod.save(fitted, path, _metadata(fitted, names=renamed))
    with pytest.raises(ModelMismatchError, match="something_else"):
        model_mod.load(path)


def test_a_foreign_file_is_refused(tmp_path):
    import joblib
    path = str(tmp_path / "x.joblib")
    joblib.dump({"hello": 1}, path)
    with pytest.raises(ModelMismatchError, match="not a Watchkeeper anomaly model"):
        model_mod.load(path)
