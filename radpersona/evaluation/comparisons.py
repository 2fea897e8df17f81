"""Paired tests of two models on the same cases: DeLong's test of AUCs, McNemar's test of accuracies.

:func:`comparisons_table` tests the reference experiment (``evaluation.compare_to``) against every
other model per task and split (``results/tables/comparisons.csv``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from radpersona.evaluation.tables import frame_markdown


def midranks(x: np.ndarray) -> np.ndarray:
    """Midranks (1-based, ties get the mean of their ranks) of a 1-D array (Sun & Xu 2014, Alg. 1)."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    n = len(x)
    ranks_sorted = np.empty(n, dtype=float)
    i = 0
    while i < n:
        j = i
        while j < n and sorted_x[j] == sorted_x[i]:
            j += 1
        ranks_sorted[i:j] = 0.5 * (i + j - 1) + 1  # mean of ranks i+1..j
        i = j
    out = np.empty(n, dtype=float)
    out[order] = ranks_sorted
    return out


def delong_covariance(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of ``k`` score vectors on the same cases and DeLong's covariance matrix of them.

    Fast DeLong (Sun & Xu 2014, IEEE SPL 21:1389): with ``m`` positives and ``n`` negatives, the
    structural components are ``V10_i = (T_Z(x_i) - T_X(x_i)) / n`` for each positive and
    ``V01_j = 1 - (T_Z(y_j) - T_Y(y_j)) / m`` for each negative, where ``T`` are midranks within
    positives (X), negatives (Y) and all cases (Z). ``AUC = mean(V10)`` and
    ``Cov = S10 / m + S01 / n`` with ``S10``, ``S01`` the sample covariances (``ddof=1``) of the
    components over positives and negatives (DeLong, DeLong & Clarke-Pearson 1988, Biometrics 44:837).

    Args:
        labels: 0/1 labels, shape ``(N,)``; both classes needed, at least 2 of each.
        scores: shape ``(k, N)`` or ``(N,)``; higher means more likely positive.

    Returns:
        ``(aucs, cov)``: shapes ``(k,)`` and ``(k, k)``.

    Raises:
        ValueError: shapes disagree or a class has fewer than 2 cases.
    """
    y = np.asarray(labels).astype(int)
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    if s.shape[1] != y.shape[0]:
        raise ValueError(f"DeLong: scores have {s.shape[1]} cases, labels {y.shape[0]}")
    pos, neg = y == 1, y == 0
    m, n = int(pos.sum()), int(neg.sum())
    if m < 2 or n < 2:
        raise ValueError(f"DeLong needs at least 2 positives and 2 negatives, got {m} and {n}")
    k = s.shape[0]
    v10 = np.empty((k, m))
    v01 = np.empty((k, n))
    for r in range(k):
        x, yy = s[r, pos], s[r, neg]
        tx, ty, tz = midranks(x), midranks(yy), midranks(np.r_[x, yy])
        v10[r] = (tz[:m] - tx) / n
        v01[r] = 1.0 - (tz[m:] - ty) / m
    aucs = v10.mean(axis=1)
    cov = np.atleast_2d(np.cov(v10, ddof=1)) / m + np.atleast_2d(np.cov(v01, ddof=1)) / n
    return aucs, cov


def delong_test(labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray) -> dict[str, float]:
    """DeLong's two-sided test of ``AUC_a == AUC_b`` for two models scored on the same cases.

    Returns:
        ``auc_a``, ``auc_b``, ``diff`` (a − b), ``se`` (of the difference), ``z`` and ``p``
        (two-sided normal p-value; 1.0 when both score vectors order the cases identically, so that
        the difference has zero variance).
    """
    from scipy.stats import norm

    aucs, cov = delong_covariance(labels, np.vstack([scores_a, scores_b]))
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = float(aucs[0] - aucs[1])
    if var <= 1e-15:
        z, p = (0.0, 1.0) if abs(diff) < 1e-12 else (float("inf") * np.sign(diff), 0.0)
    else:
        z = diff / np.sqrt(var)
        p = float(2 * norm.sf(abs(z)))
    return {
        "auc_a": float(aucs[0]),
        "auc_b": float(aucs[1]),
        "diff": diff,
        "se": float(np.sqrt(max(var, 0.0))),
        "z": float(z),
        "p": p,
    }


def mcnemar_test(
    labels: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, *, exact_below: int = 25
) -> dict[str, Any]:
    """McNemar's test of equal accuracy of two classifiers on the same cases.

    ``b`` = cases A classifies correctly and B wrongly, ``c`` = the reverse. When ``b + c <
    exact_below`` the exact two-sided binomial test of ``b ~ Binomial(b + c, 1/2)`` is used
    (scipy's ``binomtest``); otherwise the chi-square statistic with continuity correction
    ``(|b − c| − 1)² / (b + c)`` on 1 degree of freedom.

    Returns:
        ``b``, ``c``, ``statistic`` (``b`` for the exact test), ``p`` and ``method``
        (``exact`` | ``chi2_cc``); ``p = 1`` when there is no discordant pair.
    """
    from scipy.stats import binomtest, chi2

    y = np.asarray(labels).astype(int)
    a_ok = np.asarray(pred_a).astype(int) == y
    b_ok = np.asarray(pred_b).astype(int) == y
    if not (len(y) == len(a_ok) == len(b_ok)):
        raise ValueError(f"McNemar: {len(y)} labels, {len(a_ok)} and {len(b_ok)} predictions")
    b = int((a_ok & ~b_ok).sum())
    c = int((~a_ok & b_ok).sum())
    if b + c == 0:
        return {"b": b, "c": c, "statistic": 0.0, "p": 1.0, "method": "exact"}
    if b + c < exact_below:
        return {"b": b, "c": c, "statistic": float(b), "p": float(binomtest(b, b + c, 0.5).pvalue), "method": "exact"}
    stat = (abs(b - c) - 1) ** 2 / (b + c)
    return {"b": b, "c": c, "statistic": float(stat), "p": float(chi2.sf(stat, 1)), "method": "chi2_cc"}


COMPARISON_COLUMNS = [
    "reference",
    "model",
    "task",
    "split",
    "n",
    "auc_reference",
    "auc_model",
    "auc_diff",
    "delong_z",
    "delong_p",
    "acc_reference",
    "acc_model",
    "mcnemar_b",
    "mcnemar_c",
    "mcnemar_p",
    "mcnemar_method",
]


def _paired(ref: pd.DataFrame, other: pd.DataFrame, split: str) -> pd.DataFrame:
    """Cases both tables report on ``split`` (``cv``: pooled out-of-fold cases of train; ``valid``)."""
    keep = (lambda d: d[d["split"] == "train"]) if split == "cv" else (lambda d: d[d["split"] == "valid"])
    a, b = keep(ref), keep(other)
    merged = a[["case", "label", "prob", "pred"]].merge(
        b[["case", "label", "prob", "pred"]], on="case", suffixes=("_a", "_b")
    )
    if len(merged) and not (merged["label_a"] == merged["label_b"]).all():
        bad = merged.loc[merged["label_a"] != merged["label_b"], "case"].iloc[0]
        raise ValueError(f"case {bad}: labels differ between the compared prediction tables")
    return merged


def comparisons_table(
    predictions: Mapping[str, pd.DataFrame], reference: str, *, exact_below: int = 25
) -> pd.DataFrame:
    """DeLong (AUC) and McNemar (accuracy) of ``reference`` against every other model, per task and split.

    Args:
        predictions: name -> prediction table (all tasks of that experiment or baseline).
        reference: the name compared with every other entry (the proposed fingerprint experiment).
        exact_below: see :func:`mcnemar_test`.

    Returns:
        Columns :data:`COMPARISON_COLUMNS`; ``split`` ``cv`` pools the out-of-fold predictions of the
        cross-validation (each training case is reported once, by the fold that held it out; the
        models differ between folds), ``valid`` is the models trained on all of train. A task
        where either class has fewer than 2 cases gets NaN DeLong values.
    """
    if reference not in predictions:
        raise ValueError(f"comparison reference {reference!r} has no predictions; known: {sorted(predictions)}")
    rows = []
    ref_all = predictions[reference]
    for name, other_all in predictions.items():
        if name == reference:
            continue
        for task in sorted(set(ref_all["task"]) & set(other_all["task"])):
            for split in ("cv", "valid"):
                pair = _paired(ref_all[ref_all["task"] == task], other_all[other_all["task"] == task], split)
                if not len(pair):
                    continue
                y = pair["label_a"].to_numpy().astype(int)
                try:
                    dl = delong_test(y, pair["prob_a"].to_numpy(), pair["prob_b"].to_numpy())
                except ValueError:
                    dl = {
                        "auc_a": float("nan"),
                        "auc_b": float("nan"),
                        "diff": float("nan"),
                        "z": float("nan"),
                        "p": float("nan"),
                    }
                mc = mcnemar_test(y, pair["pred_a"], pair["pred_b"], exact_below=exact_below)
                rows.append(
                    {
                        "reference": reference,
                        "model": name,
                        "task": task,
                        "split": split,
                        "n": int(len(pair)),
                        "auc_reference": dl["auc_a"],
                        "auc_model": dl["auc_b"],
                        "auc_diff": dl["diff"],
                        "delong_z": dl["z"],
                        "delong_p": dl["p"],
                        "acc_reference": float((pair["pred_a"] == y).mean()),
                        "acc_model": float((pair["pred_b"] == y).mean()),
                        "mcnemar_b": mc["b"],
                        "mcnemar_c": mc["c"],
                        "mcnemar_p": mc["p"],
                        "mcnemar_method": mc["method"],
                    }
                )
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


COMPARISON_NOTE = (
    "DeLong's test (fast DeLong, midranks) of the AUC difference and McNemar's test of accuracy (exact binomial "
    "below the configured number of discordant pairs, else chi-square with continuity correction), reference "
    "against each model on the same cases. split cv: the pooled out-of-fold predictions of train (each case "
    "reported by the fold that held it out); split valid: the models trained on all of train. p-values are "
    "unadjusted for multiple comparisons."
)

COMPARISON_SHOWN = [
    "reference",
    "model",
    "task",
    "split",
    "n",
    "auc_reference",
    "auc_model",
    "delong_p",
    "acc_reference",
    "acc_model",
    "mcnemar_b",
    "mcnemar_c",
    "mcnemar_p",
    "mcnemar_method",
]
"""Columns of ``comparisons.md`` (and of the log)."""


def comparisons_markdown(comparisons: pd.DataFrame) -> str:
    """``tables/comparisons.md``: :data:`COMPARISON_SHOWN` of a :func:`comparisons_table` and its note."""
    return f"## comparisons\n\n{frame_markdown(comparisons, COMPARISON_SHOWN)}\n\n{COMPARISON_NOTE}\n"
