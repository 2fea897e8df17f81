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
        rows.append(
            pd.DataFrame(
                {
                    "case": range(30),
                    "task": "acl",
                    "fold": fold,
                    "split": split,
                    "label": labels,
                    "prob": prob,
                    "threshold": 0.5,
                    "pred": (prob >= 0.5).astype(int),
                    "model": "fingerprint",
                    "experiment": "proposed",
                    "threshold_from": "inner",
                }
            )
        )
    table = metrics_table([pd.concat(rows)], n_boot=50, seed=0)
    assert list(table["split"]) == ["valid", "cv", "cv"] or sorted(table["split"]) == ["cv", "cv", "valid"]
    valid = table[table["split"] == "valid"].iloc[0]
    assert valid["auc_ci_low"] <= valid["auc"] <= valid["auc_ci_high"]
    assert table[table["split"] == "cv"]["auc_ci_low"].isna().all()


def test_metrics_report_the_sparsity_of_fingerprints_and_not_of_baselines():
    from radpersona.evaluation import summary_table

    def frame(model: str, fold: int, split: str, extra: dict) -> pd.DataFrame:
        labels = np.array([0, 1, 0, 1, 1])
        return pd.DataFrame(
            {
                "case": range(5), "task": "acl", "fold": fold, "split": split, "label": labels,
                "prob": labels * 0.5 + 0.2, "threshold": 0.5, "pred": labels, "model": model,
                "experiment": model, "threshold_from": "inner", **extra,
            }
        )  # fmt: skip

    sparse = {"n_used": [3, 5, 40, 7, 9], "top10_share": [1.0, 1.0, 0.3, 1.0, 0.9], "lambda_u": 0.01}
    preds = [
        pd.concat([frame("proposed", 0, "train", {**sparse, "usage_threshold": 0.8}),
                   frame("proposed", 1, "train", {**sparse, "usage_threshold": 0.9}),
                   frame("proposed", -1, "valid", {**sparse, "usage_threshold": 0.9})]),
        frame("lr_l2", -1, "valid", {}),
    ]  # fmt: skip
    table = metrics_table(preds, n_boot=10, seed=0)
    fingerprint = table[table["model"] == "proposed"]
    assert (fingerprint["median_n_used"] == 7).all() and (fingerprint["median_top10_share"] == 1.0).all()
    assert sorted(fingerprint["usage_threshold"]) == [0.8, 0.9, 0.9] and (fingerprint["lambda_u"] == 0.01).all()
    baseline = table[table["model"] == "lr_l2"].iloc[0]
    assert np.isnan(baseline["median_n_used"]) and np.isnan(baseline["usage_threshold"])
    summary = summary_table(table).set_index("model")
    assert summary.loc["proposed", "valid_features_used"] == "7"
    assert summary.loc["proposed", "valid_top10_share"] == "1.00"
    assert summary.loc["lr_l2", "valid_features_used"] == "n/a"


def test_rank_auc_equals_sklearn_with_ties():
    from radpersona.evaluation.metrics import _rank_auc

    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 80)
    scores = rng.integers(0, 5, 80).astype(float)  # many ties
    assert _rank_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


# ------------------------------------------------------------------ DeLong, McNemar, tables, plots
from radpersona.evaluation import (  # noqa: E402
    comparisons_table,
    delong_covariance,
    delong_test,
    describe_experiment,
    mcnemar_test,
    midranks,
    paper_table,
    plot_calibration,
    plot_roc,
)


def _brute_force_delong(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong et al. (1988) from the definition: psi kernel over all positive-negative pairs, O(m n)."""
    pos, neg = scores[:, labels == 1], scores[:, labels == 0]
    m, n = pos.shape[1], neg.shape[1]
    psi = (pos[:, :, None] > neg[:, None, :]) + 0.5 * (pos[:, :, None] == neg[:, None, :])  # (k, m, n)
    v10, v01 = psi.mean(axis=2), psi.mean(axis=1)
    aucs = psi.mean(axis=(1, 2))
    s10 = np.array(
        [
            [np.sum((v10[a] - aucs[a]) * (v10[b] - aucs[b])) / (m - 1) for b in range(len(aucs))]
            for a in range(len(aucs))
        ]
    )
    s01 = np.array(
        [
            [np.sum((v01[a] - aucs[a]) * (v01[b] - aucs[b])) / (n - 1) for b in range(len(aucs))]
            for a in range(len(aucs))
        ]
    )
    return aucs, s10 / m + s01 / n


def test_midranks_equal_scipy_average_ranks():
    from scipy.stats import rankdata

    x = np.array([3.0, 1.0, 3.0, 2.0, 3.0, 0.5, 1.0])
    assert np.array_equal(midranks(x), rankdata(x))


@pytest.mark.parametrize("ties", [False, True])
def test_fast_delong_equals_brute_force_on_simulated_scores(ties):
    rng = np.random.default_rng(11)
    labels = np.r_[np.ones(37), np.zeros(51)].astype(int)
    base = labels * 0.8 + rng.normal(0, 1, labels.size)
    scores = np.vstack(
        [
            base + rng.normal(0, 0.5, labels.size),
            labels * 0.3 + rng.normal(0, 1, labels.size),
            rng.normal(0, 1, labels.size),
        ]
    )
    if ties:
        scores = np.round(scores * 2) / 2  # many ties
    aucs, cov = delong_covariance(labels, scores)
    ref_aucs, ref_cov = _brute_force_delong(labels, scores)
    assert np.allclose(aucs, ref_aucs, atol=1e-12)
    assert np.allclose(cov, ref_cov, atol=1e-12)
    assert np.allclose(aucs, [roc_auc_score(labels, s) for s in scores], atol=1e-12)


def test_delong_test_is_calibrated_under_the_null_and_detects_a_difference():
    # two equally good, correlated scores: the two-sided 5% test rejects about 5% of the time
    rejections, trials = 0, 300
    for seed in range(trials):
        rng = np.random.default_rng(seed)
        labels = np.r_[np.ones(40), np.zeros(60)].astype(int)
        shared = labels + rng.normal(0, 1, 100)
        a, b = shared + rng.normal(0, 0.7, 100), shared + rng.normal(0, 0.7, 100)
        rejections += delong_test(labels, a, b)["p"] < 0.05
    assert 0.02 <= rejections / trials <= 0.09
    rng = np.random.default_rng(1)
    labels = np.r_[np.ones(60), np.zeros(60)].astype(int)
    good, bad = labels * 2.0 + rng.normal(0, 1, 120), labels * 0.2 + rng.normal(0, 1, 120)
    result = delong_test(labels, good, bad)
    assert result["p"] < 1e-4 and result["diff"] > 0
    assert delong_test(labels, good, good * 2 + 1)["p"] == 1.0  # same ranking: no difference, zero variance


def test_mcnemar_exact_and_chi_square_branches():
    from scipy.stats import binomtest, chi2

    labels = np.zeros(40, dtype=int)
    pred_a = np.zeros(40, dtype=int)
    pred_b = np.zeros(40, dtype=int)
    pred_b[:7] = 1  # b = 7 (A right, B wrong)
    pred_a[7:9] = 1  # c = 2
    out = mcnemar_test(labels, pred_a, pred_b)
    assert (out["b"], out["c"], out["method"]) == (7, 2, "exact")
    assert out["p"] == pytest.approx(binomtest(7, 9, 0.5).pvalue)
    assert out["p"] == pytest.approx(2 * sum(__import__("math").comb(9, k) for k in range(3)) / 2**9)  # 0.1797
    out = mcnemar_test(labels, pred_a, pred_b, exact_below=5)
    assert out["method"] == "chi2_cc" and out["statistic"] == pytest.approx((5 - 1) ** 2 / 9)
    assert out["p"] == pytest.approx(chi2.sf(16 / 9, 1))
    assert mcnemar_test(labels, pred_a, pred_a)["p"] == 1.0


def _predictions(name, model, seed, strength):
    rng = np.random.default_rng(seed)
    rows = []
    for task in ("acl", "men"):
        for fold, split in [(0, "train"), (1, "train"), (-1, "valid")]:
            labels = np.random.default_rng(100 + fold + len(task)).integers(0, 2, 30)
            prob = 1 / (1 + np.exp(-(strength * (labels - 0.5) + rng.normal(0, 1, 30))))
            rows.append(
                pd.DataFrame(
                    {
                        "case": [f"{fold}_{i}" for i in range(30)],
                        "task": task,
                        "fold": fold,
                        "split": split,
                        "label": labels,
                        "prob": prob,
                        "threshold": 0.5,
                        "pred": (prob >= 0.5).astype(int),
                        "model": model,
                        "experiment": name,
                        "threshold_from": "inner",
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def test_comparisons_and_paper_table(tmp_path):
    preds = {
        "proposed": _predictions("proposed", "fingerprint", 1, 3.0),
        "lr_l2": _predictions("lr_l2", "lr_l2", 2, 0.5),
    }
    comp = comparisons_table(preds, "proposed")
    assert set(comp["split"]) == {"cv", "valid"} and set(comp["task"]) == {"acl", "men"}
    row = comp[(comp["task"] == "acl") & (comp["split"] == "cv")].iloc[0]
    assert row["n"] == 60
    cv = preds["proposed"][(preds["proposed"]["task"] == "acl") & (preds["proposed"]["split"] == "train")]
    assert row["auc_reference"] == pytest.approx(roc_auc_score(cv["label"], cv["prob"]))
    metrics = metrics_table(list(preds.values()), n_boot=50, seed=0)
    exp = {
        "reg": "reg",
        "grid": 2,
        "fingerprint": {
            "families": None,
            "usage_predictor": True,
            "representation": "path_persona",
            "usage_threshold": 0.4,
        },
    }
    desc = {
        "proposed": describe_experiment(exp, ["firstorder"]),
        "lr_l2": dict.fromkeys(["N", "2nd RF", "UP", "Persona", "T", "Reg"], "-"),
    }
    assert desc["proposed"] == {"N": "2*2*2", "2nd RF": "✗", "UP": "✓", "Persona": "✓", "T": "0.4", "Reg": "✓"}
    table = paper_table(metrics, ["proposed", "lr_l2"], desc, ["acl", "men"])
    assert list(table["Method"]) == ["proposed", "proposed", "lr_l2", "lr_l2"]
    fold_acc = metrics[(metrics["experiment"] == "proposed") & (metrics["task"] == "acl") & (metrics["split"] == "cv")][
        "acc"
    ]
    assert table.iloc[0]["Acc"] == f"{fold_acc.mean():.2f}±{fold_acc.std(ddof=1):.2f}"
    assert table.iloc[0]["cv_acc_mean"] == pytest.approx(fold_acc.mean())
    assert "[" in table.iloc[0]["valid AUC"]
    with pytest.raises(ValueError, match="no metrics"):
        paper_table(metrics, ["missing"], desc, ["acl"])
    plot_roc(preds, "acl", tmp_path / "roc_acl.png")
    plot_calibration(preds, ["acl", "men"], tmp_path / "calibration.png")
    import matplotlib.image

    for name in ("roc_acl.png", "calibration.png"):
        image = matplotlib.image.imread(tmp_path / name)  # a decodable PNG that draws something, not a blank canvas
        assert min(image.shape[:2]) > 100 and image[..., :3].std() > 0.05, (name, image.shape)
