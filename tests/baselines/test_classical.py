"""Classical radiomics baselines: pipeline, grid search, inner threshold."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from radpersona.baselines.classical import build_search, fit_classical
from radpersona.errors import ConfigError, InputDataError
from radpersona.settings import ClassicalSettings
from radpersona.vocabulary import CLASSICAL_BASELINES

SETTINGS = ClassicalSettings.from_config(
    {
        "features_from": "proposed",
        "variance_threshold": 0.0,
        "inner_folds": 3,
        "C": [0.1, 1.0],
        "rf_trees": 20,
        "rf_max_depth": [3, None],
        "rf_min_samples_leaf": [1],
    }
)


def _problem(n: int = 80, p: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n // 2), np.zeros(n - n // 2)].astype(int)
    X = rng.normal(0, 1, (n, p))
    X[:, 0] += 1.5 * y  # one informative column
    X[:, 1] = 3.0  # constant: removed by the variance filter
    X[rng.random((n, p)) < 0.02] = np.nan  # missing values: training-mean imputation
    X[:, 1] = 3.0
    return X, y


@pytest.mark.parametrize("kind", CLASSICAL_BASELINES)
def test_every_classical_baseline_learns_and_thresholds_on_inner_validation(kind):
    X, y = _problem()
    Xt, yt = _problem(seed=1)
    out = fit_classical(kind, X, y, Xt, settings=SETTINGS, inner_validation=0.25, seed=3, what=f"{kind} test")
    assert out["prob"].shape == (Xt.shape[0],) and np.all((out["prob"] >= 0) & (out["prob"] <= 1))
    assert roc_auc_score(yt, out["prob"]) > 0.75
    assert out["n_features_kept"] == X.shape[1] - 1  # the constant column dropped
    assert out["n_inner_validation"] == 20 and out["n_inner_train"] == 60
    again = fit_classical(kind, X, y, Xt, settings=SETTINGS, inner_validation=0.25, seed=3, what="again")
    assert np.array_equal(out["prob"], again["prob"]) and out["threshold"] == again["threshold"]  # seeded


def test_grid_search_is_seeded_stratified_and_rejects_bad_input():
    _, y = _problem()
    search = build_search("lr_l1", SETTINGS, y, seed=4)
    assert search.cv.n_splits == 3 and search.cv.random_state == 4 and search.scoring == "roc_auc"
    assert search.param_grid == {"clf__C": [0.1, 1.0]}
    with pytest.raises(ConfigError, match="must be one of"):
        build_search("knn", SETTINGS, y, seed=0)
    with pytest.raises(InputDataError, match="smallest class has 1"):
        build_search("lr_l2", SETTINGS, np.r_[np.zeros(10), 1].astype(int), seed=0, what="lr_l2 acl fold 0")


@pytest.mark.parametrize("kind", CLASSICAL_BASELINES)
def test_baselines_fit_a_fold_with_few_positives(kind):
    """A fold as small as the demo's ACL folds (3-4 tears among ~30 cases): the grid search's inner-training
    splits then hold two tears, where a fixed 3-fold SVM calibration used to fail."""
    X, y = _problem(n=30)
    y = np.zeros(30, dtype=int)
    y[[0, 7, 15, 22]] = 1
    X[:, 0] += 1.5 * y
    Xt, _ = _problem(n=10, seed=2)
    out = fit_classical(kind, X, y, Xt, settings=SETTINGS, inner_validation=0.25, seed=0, what=f"{kind} acl fold 0")
    assert out["prob"].shape == (10,) and np.all(np.isfinite(out["prob"]))


def test_calibrated_svm_with_one_case_of_a_class_uses_its_training_scores():
    from radpersona.baselines.classical import CalibratedLinearSVC

    X, _ = _problem(n=12)
    X = np.nan_to_num(X)
    y = np.r_[1, np.zeros(11)].astype(int)
    X[0, 0] += 5.0
    model = CalibratedLinearSVC(C=1.0, random_state=0).fit(X, y)
    prob = model.predict_proba(X)[:, 1]
    assert prob.shape == (12,) and prob[0] == prob.max()
