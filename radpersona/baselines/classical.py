"""Classical radiomics baselines (paper, Sec. 3.1) with scikit-learn.

Pipeline per training fold: ``SimpleImputer(mean)`` (the training fold's column means, as the
fingerprint does) -> ``VarianceThreshold`` -> ``StandardScaler`` -> classifier; the classifier's
hyperparameters are chosen by ``GridSearchCV`` (ROC AUC, ``StratifiedKFold`` shuffled with the
baseline seed) on the inner-training cases. The decision threshold is Youden's J on the held-out
inner validation cases, exactly as the fingerprint chooses its own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_selection import VarianceThreshold
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from radpersona.errors import ConfigError, InputDataError
from radpersona.fingerprint import inner_validation_split, youden_threshold
from radpersona.settings import ClassicalSettings
from radpersona.vocabulary import CLASSICAL_BASELINES


class CalibratedLinearSVC(ClassifierMixin, BaseEstimator):
    """Class-balanced ``LinearSVC`` with sigmoid (Platt) probabilities, for cohorts with few positives.

    Calibration uses sklearn's ``CalibratedClassifierCV`` with stratified folds sized to the data it
    is fitted on (``min(calibration_folds, smallest class)``): the grid search's inner-training splits
    of a small fold may hold only two or three cases of a class, where fixed 3-fold calibration fails.
    With a single case of a class, the sigmoid is fitted on the SVM's own training scores.
    """

    def __init__(
        self, C: float = 1.0, calibration_folds: int = 3, max_iter: int = 20000, random_state: int | None = None
    ) -> None:
        self.C = C
        self.calibration_folds = calibration_folds
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> CalibratedLinearSVC:
        svc = LinearSVC(C=self.C, class_weight="balanced", max_iter=self.max_iter, random_state=self.random_state)
        smallest = int(np.bincount(np.asarray(y, dtype=int), minlength=2).min())
        folds = min(int(self.calibration_folds), smallest)
        if folds >= 2:
            cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.random_state)
            self.model_ = CalibratedClassifierCV(svc, method="sigmoid", cv=cv).fit(X, y)
        else:
            self.model_ = CalibratedClassifierCV(FrozenEstimator(svc.fit(X, y)), method="sigmoid").fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model_.predict(X)


def _inner_cv(y: np.ndarray, folds: int, seed: int, what: str) -> StratifiedKFold:
    smallest = int(min((y == 0).sum(), (y == 1).sum()))
    if smallest < 2:
        raise InputDataError(
            f"{what}: the grid search needs >= 2 cases of each class, the smallest class has {smallest}"
        )
    return StratifiedKFold(n_splits=min(folds, smallest), shuffle=True, random_state=seed)


def build_search(
    kind: str, settings: ClassicalSettings, y: np.ndarray, seed: int, what: str = "classical baseline"
) -> GridSearchCV:
    """The grid-searched pipeline of ``kind`` (one of :data:`radpersona.vocabulary.CLASSICAL_BASELINES`).

    Args:
        kind: ``lr_l1``, ``lr_l2``, ``svm`` or ``rf``.
        settings: ``baselines.classical`` (``variance_threshold``, ``inner_folds``, ``C``,
            ``rf_trees``, ``rf_max_depth``, ``rf_min_samples_leaf``).
        y: labels of the cases the search will be fitted on (to size the inner folds).
        seed: seeds the inner folds, the SVM's calibration folds and the forest.
        what: prefix of error messages (e.g. ``"lr_l2 acl fold 0"``).
    """
    cv = _inner_cv(y, settings.inner_folds, seed, what)
    steps: list[tuple[str, Any]] = [
        ("impute", SimpleImputer(strategy="mean")),
        ("variance", VarianceThreshold(threshold=float(settings.variance_threshold))),
        ("scale", StandardScaler()),
    ]
    C = [float(c) for c in settings.C]
    grid: dict[str, list[Any]]
    clf: Any
    if kind in ("lr_l1", "lr_l2"):
        clf = LogisticRegression(
            l1_ratio=1.0 if kind == "lr_l1" else 0.0,
            solver="liblinear",
            class_weight="balanced",
            max_iter=5000,
            random_state=seed,
        )
        grid = {"clf__C": C}
    elif kind == "svm":
        clf = CalibratedLinearSVC(random_state=seed)
        grid = {"clf__C": C}
    elif kind == "rf":
        clf = RandomForestClassifier(
            n_estimators=settings.rf_trees, class_weight="balanced", random_state=seed, n_jobs=1
        )
        grid = {
            "clf__max_depth": list(settings.rf_max_depth),
            "clf__min_samples_leaf": [int(v) for v in settings.rf_min_samples_leaf],
        }
    else:
        raise ConfigError(f"classical baseline must be one of {list(CLASSICAL_BASELINES)}, not {kind!r}")
    steps.append(("clf", clf))
    return GridSearchCV(Pipeline(steps), grid, scoring="roc_auc", cv=cv, refit=True, n_jobs=1, error_score="raise")


def fit_classical(
    kind: str,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_reported: np.ndarray,
    *,
    settings: ClassicalSettings,
    inner_validation: float,
    seed: int,
    what: str,
) -> dict[str, Any]:
    """Fit a classical baseline on one training fold and score the reported cases.

    The fold is split (stratified, seeded, :func:`inner_validation_split`) into inner-training cases,
    on which the grid search runs, and inner-validation cases, on which Youden's threshold is chosen.

    Returns:
        ``prob`` (reported cases, ``(n,)``), ``threshold``, ``best_params``, ``inner_cv_auc`` (the
        grid search's best mean AUC), ``n_features_kept`` (after the variance filter; all-missing
        columns are dropped by the imputer), ``n_inner_train``, ``n_inner_validation``.
    """
    X_train = np.asarray(X_train, dtype=np.float64)
    X_reported = np.asarray(X_reported, dtype=np.float64)
    y_train = np.asarray(y_train).astype(int)
    tr, val = inner_validation_split(y_train, inner_validation, seed)
    search = build_search(kind, settings, y_train[tr], seed, what)
    search.fit(X_train[tr], y_train[tr])
    threshold = youden_threshold(y_train[val], search.predict_proba(X_train[val])[:, 1])
    pipe = search.best_estimator_
    kept = int(pipe.named_steps["variance"].get_support().sum())
    return {
        "prob": search.predict_proba(X_reported)[:, 1],
        "threshold": float(threshold),
        "best_params": {k: (None if v is None else v) for k, v in search.best_params_.items()},
        "inner_cv_auc": float(search.best_score_),
        "n_features_kept": kept,
        "n_inner_train": int(tr.size),
        "n_inner_validation": int(val.size),
    }
