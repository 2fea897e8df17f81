"""Metrics against scikit-learn on fixed inputs; bootstrap CI covers the truth on a simulated case."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, recall_score, roc_auc_score

from radpersona.evaluation import auc, bootstrap_auc_ci, confusion_rates, metrics_table


def test_rates_and_auc_match_sklearn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = labels * 0.5 + rng.normal(0, 0.5, 200)
    pred = (scores > 0.3).astype(int)
    acc, sen, spe = confusion_rates(labels, pred)
    assert acc == pytest.approx(accuracy_score(labels, pred))
    assert sen == pytest.approx(recall_score(labels, pred))
    assert spe == pytest.approx(recall_score(1 - labels, 1 - pred))
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    assert np.isnan(auc(np.ones(5), np.arange(5)))


def test_bootstrap_ci_covers_the_population_auc():
    # scores ~ N(d, 1) for positives, N(0, 1) for negatives: AUC = Phi(d / sqrt(2))
    from scipy.stats import norm

    d, hits, trials = 1.0, 0, 40
    truth = norm.cdf(d / np.sqrt(2))
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        labels = np.r_[np.ones(60), np.zeros(60)].astype(int)
        scores = np.r_[rng.normal(d, 1, 60), rng.normal(0, 1, 60)]
        lo, hi = bootstrap_auc_ci(labels, scores, n_boot=300, seed=seed)
        hits += lo <= truth <= hi
    assert hits / trials >= 0.85  # nominal 95%; percentile bootstrap is slightly anti-conservative


def test_metrics_table_rows_per_fold_and_valid():
    rng = np.random.default_rng(3)
    rows = []
    for fold, split in [(0, "train"), (1, "train"), (-1, "valid")]:
        labels = rng.integers(0, 2, 30)
        prob = np.clip(labels * 0.3 + rng.uniform(0, 0.7, 30), 0, 1)
        rows.append(pd.DataFrame({"case": range(30), "task": "acl", "fold": fold, "split": split, "label": labels,
                                  "prob": prob, "threshold": 0.5, "pred": (prob >= 0.5).astype(int), "model": "fingerprint",
                                  "experiment": "proposed", "threshold_from": "inner"}))
    table = metrics_table([pd.concat(rows)], n_boot=50, seed=0)
    assert list(table["split"]) == ["valid", "cv", "cv"] or sorted(table["split"]) == ["cv", "cv", "valid"]
    valid = table[table["split"] == "valid"].iloc[0]
    assert valid["auc_ci_low"] <= valid["auc"] <= valid["auc_ci_high"]
    assert table[table["split"] == "cv"]["auc_ci_low"].isna().all()


def test_rank_auc_equals_sklearn_with_ties():
    from radpersona.evaluation import _rank_auc

    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 80)
    scores = rng.integers(0, 5, 80).astype(float)  # many ties
    assert _rank_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
