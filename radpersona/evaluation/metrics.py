"""Metrics: accuracy, sensitivity, specificity at a model's own threshold, AUC with a bootstrap CI.

The metrics table (``results/tables/metrics.csv``) has one row per experiment, model, task, split
and fold; ``threshold_from`` says on which cases the decision threshold was chosen (``inner`` = an
inner validation split of the training fold; ``reported (optimistic)`` = the reported cases
themselves, the paper's protocol, which overstates accuracy). For fingerprint models it also gives the
sparsity of the reported cases' fingerprints: ``median_n_used`` (median number of features a case
uses, ``z = 1``) and ``median_top10_share`` (median share of ``sum_n |beta_n z_n r_n|`` that a case's
10 largest terms carry), and the ``lambda_u`` and ``T`` its model chose on its inner validation split;
NaN for baselines. ``labels`` is ``true``, or ``permuted (seed s)`` for a negative-control run
(``fingerprint.permute_labels``); Markdown tables name such a run ``{experiment} [labels permuted (seed s)]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from radpersona.markdown import markdown_table

METRIC_COLUMNS = [
    "experiment",
    "model",
    "task",
    "split",
    "fold",
    "n",
    "acc",
    "sen",
    "spe",
    "auc",
    "auc_ci_low",
    "auc_ci_high",
    "threshold",
    "threshold_from",
    "median_n_used",
    "median_top10_share",
    "lambda_u",
    "usage_threshold",
    "labels",
]
SPARSITY_COLUMNS = {"n_used": "median_n_used", "top10_share": "median_top10_share"}
"""Per-case prediction columns of fingerprint models -> the metrics column of their median."""
CHOSEN_COLUMNS = ("lambda_u", "usage_threshold")
"""Per-fold prediction columns of fingerprint models: the values chosen on the inner validation split."""


def confusion_rates(labels: np.ndarray, pred: np.ndarray) -> tuple[float, float, float]:
    """Accuracy, sensitivity (TPR) and specificity (TNR); NaN where a class is absent."""
    labels = np.asarray(labels).astype(int)
    pred = np.asarray(pred).astype(int)
    pos, neg = labels == 1, labels == 0
    acc = float((pred == labels).mean()) if len(labels) else float("nan")
    sen = float((pred[pos] == 1).mean()) if pos.any() else float("nan")
    spe = float((pred[neg] == 0).mean()) if neg.any() else float("nan")
    return acc, sen, spe


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC (scikit-learn); NaN when only one class is present."""
    labels = np.asarray(labels).astype(int)
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(labels, scores))


def _rank_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """AUC by the Mann-Whitney statistic with average ranks for ties (equals roc_auc_score)."""
    from scipy.stats import rankdata

    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    ranks = rankdata(scores)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def bootstrap_auc_ci(
    labels: np.ndarray, scores: np.ndarray, *, n_boot: int, seed: int, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of the AUC (resampling cases with replacement, seeded).

    Resamples with a single class are skipped (their AUC is undefined).
    """
    labels = np.asarray(labels).astype(int)
    scores = np.asarray(scores, dtype=float)
    if n_boot <= 0 or len(np.unique(labels)) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    n = len(labels)
    stats = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        if labels[idx].min() == labels[idx].max():
            continue
        stats.append(_rank_auc(labels[idx], scores[idx]))
    if not stats:
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))


def metrics_table(predictions: Sequence[pd.DataFrame], *, n_boot: int, seed: int) -> pd.DataFrame:
    """Metrics rows from prediction tables (columns of the predictions contract plus ``experiment``
    and ``threshold_from``): one row per fold of the cross-validation and one for valid (fold -1)."""
    rows = []
    for pred in predictions:
        for (experiment, model, task, split, fold), grp in pred.groupby(
            ["experiment", "model", "task", "split", "fold"], sort=True
        ):
            labels = grp["label"].to_numpy().astype(int)
            acc, sen, spe = confusion_rates(labels, grp["pred"].to_numpy())
            lo, hi = (float("nan"), float("nan"))
            if split == "valid":
                lo, hi = bootstrap_auc_ci(labels, grp["prob"].to_numpy(), n_boot=n_boot, seed=seed)
            rows.append(
                {
                    "experiment": experiment,
                    "model": model,
                    "task": task,
                    "split": "cv" if split == "train" else split,
                    "fold": int(fold),
                    "n": int(len(grp)),
                    "acc": acc,
                    "sen": sen,
                    "spe": spe,
                    "auc": auc(labels, grp["prob"].to_numpy()),
                    "auc_ci_low": lo,
                    "auc_ci_high": hi,
                    "threshold": float(grp["threshold"].iloc[0]),
                    "threshold_from": str(grp["threshold_from"].iloc[0]),
                    **{
                        out: float(grp[col].median()) if col in grp else float("nan")
                        for col, out in SPARSITY_COLUMNS.items()
                    },
                    **{col: float(grp[col].iloc[0]) if col in grp else float("nan") for col in CHOSEN_COLUMNS},
                    "labels": str(grp["labels"].iloc[0]) if "labels" in grp else "true",
                }
            )
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def summary_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean ± sd over cross-validation folds, and the valid row, per experiment, model and task; for
    fingerprint models also the median features used and top-10 share (``n/a`` for other models)."""
    out = []
    for (experiment, model, task), grp in metrics.groupby(["experiment", "model", "task"], sort=True):
        cv = grp[grp["split"] == "cv"]
        valid = grp[grp["split"] == "valid"]
        row = {"experiment": labelled(experiment, grp), "model": model, "task": task}
        for metric in ("acc", "sen", "spe", "auc"):
            row[f"cv_{metric}"] = f"{cv[metric].mean():.3f} ± {cv[metric].std(ddof=1):.3f}" if len(cv) > 1 else "n/a"
            row[f"valid_{metric}"] = f"{valid[metric].iloc[0]:.3f}" if len(valid) else "n/a"
        if "median_n_used" in grp and grp["median_n_used"].notna().any():
            for split, rows in (("cv", cv), ("valid", valid)):
                row[f"{split}_features_used"] = _median_text(rows["median_n_used"], "{:.0f}")
                row[f"{split}_top10_share"] = _median_text(rows["median_top10_share"], "{:.2f}")
        out.append(row)
    return pd.DataFrame(out).fillna("n/a")


def labelled(name: str, metrics: pd.DataFrame) -> str:
    """``name``, with ``[labels permuted (seed s)]`` when its models were trained on permuted labels."""
    kinds = sorted(set(metrics["labels"].astype(str))) if "labels" in metrics else ["true"]
    return name if kinds == ["true"] else f"{name} [labels {', '.join(kinds)}]"


def _median_text(values: pd.Series, fmt: str) -> str:
    """The median of per-fold medians (one value for valid), or ``n/a``."""
    values = values.dropna()
    return fmt.format(float(values.median())) if len(values) else "n/a"


METRICS_NOTE = (
    "`cv` = mean ± sd over the patient-level cross-validation folds of train; `valid` = the model "
    "trained on all of train, evaluated on the valid split (MRNet's public tuning set for MRNet data). "
    "Fingerprint models: `features_used` = median number of features a case's fingerprint uses (z = 1; cv: "
    "median over folds of each fold's median), `top10_share` = median share of the fingerprint's "
    "sum |beta z r| that its 10 largest terms carry.\n"
)


def metrics_markdown(summary: pd.DataFrame) -> str:
    """``tables/metrics.md``: the :func:`summary_table` as Markdown, then :data:`METRICS_NOTE`."""
    return markdown_table(list(summary.columns), summary.itertuples(index=False)) + "\n\n" + METRICS_NOTE
