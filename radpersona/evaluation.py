"""Metrics: accuracy, sensitivity, specificity at a model's own threshold, AUC with a bootstrap CI.

The metrics table (``results/tables/metrics.csv``) has one row per experiment, model, task, split
and fold; ``threshold_from`` says on which cases the decision threshold was chosen (``inner`` = an
inner validation split of the training fold; ``reported (optimistic)`` = the reported cases
themselves, the paper's protocol, which overstates accuracy).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from .atomic import atomic_output, write_csv_atomic, write_text_atomic

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
]


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
                }
            )
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def summary_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean ± sd over cross-validation folds, and the valid row, per experiment, model and task."""
    out = []
    for (experiment, model, task), grp in metrics.groupby(["experiment", "model", "task"], sort=True):
        cv = grp[grp["split"] == "cv"]
        valid = grp[grp["split"] == "valid"]
        row = {"experiment": experiment, "model": model, "task": task}
        for metric in ("acc", "sen", "spe", "auc"):
            row[f"cv_{metric}"] = f"{cv[metric].mean():.3f} ± {cv[metric].std(ddof=1):.3f}" if len(cv) > 1 else "n/a"
            row[f"valid_{metric}"] = f"{valid[metric].iloc[0]:.3f}" if len(valid) else "n/a"
        out.append(row)
    return pd.DataFrame(out)


# ------------------------------------------------------------------------------ paired tests
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


# ------------------------------------------------------------------------- paper-layout tables
TEXTURE_FAMILIES = ("glcm", "glrlm", "glszm", "gldm", "ngtdm")
DESCRIPTOR_COLUMNS = ["N", "2nd RF", "UP", "Persona", "T", "Reg"]
YES, NO, NONE = "✓", "✗", "-"


def describe_experiment(experiment: Mapping[str, Any], radiomics_families: Sequence[str]) -> dict[str, str]:
    """The paper's descriptive columns of a fingerprint experiment (tables 5, 7, 8).

    Args:
        experiment: resolved experiment (``reg``, ``grid``, merged ``fingerprint`` settings), as
            :meth:`radpersona.settings.ExperimentSettings.to_config` gives it.
        radiomics_families: ``radiomics.families`` (what the wide table holds).

    Returns:
        ``N`` (``n*n*n``), ``2nd RF`` (texture families among the candidates), ``UP`` (usage
        predictor), ``Persona`` (persona or residual features), ``T`` and ``Reg``.
    """
    fp = experiment["fingerprint"]
    grid = int(experiment["grid"])
    families = fp.get("families") or list(radiomics_families)
    return {
        "N": f"{grid}*{grid}*{grid}",
        "2nd RF": YES if set(families) & set(TEXTURE_FAMILIES) else NO,
        "UP": YES if fp["usage_predictor"] else NO,
        "Persona": NO if fp["representation"] == "original" else YES,
        "T": f"{fp['usage_threshold']:g}" if fp["usage_predictor"] else NONE,
        "Reg": YES if experiment["reg"] == "reg" else NO,
    }


def describe_baseline(
    name: str, features_experiment: Mapping[str, Any] | None, radiomics_families: Sequence[str]
) -> dict[str, str]:
    """Descriptive columns of a baseline: classical models show their feature table's N, RF, Persona
    and Reg (no usage predictor, no T); the CNNs (``mrnet``, ``elnet``) read volumes: ``-`` everywhere."""
    if features_experiment is None:
        return dict.fromkeys(DESCRIPTOR_COLUMNS, NONE)
    row = describe_experiment(features_experiment, radiomics_families)
    row["UP"], row["T"] = NO, NONE
    return row


def _cell(values: pd.Series) -> str:
    values = values.dropna()
    if len(values) == 0:
        return "n/a"
    if len(values) == 1:
        return f"{values.iloc[0]:.2f}"
    return f"{values.mean():.2f}±{values.std(ddof=1):.2f}"


PAPER_METRICS = (("acc", "Acc"), ("sen", "Sen"), ("spe", "Spe"), ("auc", "AUC"))


def paper_table(
    metrics: pd.DataFrame, rows: Sequence[str], descriptors: Mapping[str, Mapping[str, str]], tasks: Sequence[str]
) -> pd.DataFrame:
    """A result table in the paper's layout: one row per method and task.

    Columns: ``Method``, the descriptors (:data:`DESCRIPTOR_COLUMNS`), ``Type`` (task), ``Acc``,
    ``Sen``, ``Spe``, ``AUC`` as ``mean±sd`` over the cross-validation folds (split ``cv``), then
    ``valid Acc`` … ``valid AUC`` of the model trained on all of train (``valid AUC`` with its
    bootstrap 95% CI), then numeric columns (``cv_{metric}_mean``, ``cv_{metric}_sd``,
    ``valid_{metric}``, ``valid_auc_ci_low/high``, ``n_folds``, ``threshold_from``).

    Raises:
        ValueError: a row has no metrics (names what exists).
    """
    out = []
    for name in rows:
        sub = metrics[metrics["experiment"] == name]
        if not len(sub):
            raise ValueError(
                f"result table row {name!r} has no metrics; metrics exist for {sorted(set(metrics['experiment']))}"
            )
        for task in tasks:
            grp = sub[sub["task"] == task]
            cv, valid = grp[grp["split"] == "cv"], grp[grp["split"] == "valid"]
            row: dict[str, Any] = {"Method": name, **descriptors[name], "Type": task}
            for key, label in PAPER_METRICS:
                row[label] = _cell(cv[key])
            for key, label in PAPER_METRICS:
                value = valid[key].iloc[0] if len(valid) else float("nan")
                text = "n/a" if not np.isfinite(value) else f"{value:.2f}"
                if key == "auc" and len(valid) and np.isfinite(valid["auc_ci_low"].iloc[0]):
                    text += f" [{valid['auc_ci_low'].iloc[0]:.2f}, {valid['auc_ci_high'].iloc[0]:.2f}]"
                row[f"valid {label}"] = text
            for key, _ in PAPER_METRICS:
                row[f"cv_{key}_mean"] = float(cv[key].mean()) if len(cv) else float("nan")
                row[f"cv_{key}_sd"] = float(cv[key].std(ddof=1)) if len(cv) > 1 else float("nan")
                row[f"valid_{key}"] = float(valid[key].iloc[0]) if len(valid) else float("nan")
            row["valid_auc_ci_low"] = float(valid["auc_ci_low"].iloc[0]) if len(valid) else float("nan")
            row["valid_auc_ci_high"] = float(valid["auc_ci_high"].iloc[0]) if len(valid) else float("nan")
            row["n_folds"] = int(len(cv))
            row["threshold_from"] = ", ".join(sorted(set(grp["threshold_from"].astype(str))))
            out.append(row)
    return pd.DataFrame(out)


TABLE_NOTE = (
    "Acc, Sen, Spe, AUC: mean±sd over the patient-level cross-validation folds of the train split (each fold's "
    "model reports the cases it held out). valid: the model trained on all of train, evaluated once on the valid "
    "split (MRNet's public tuning set for MRNet data, not the paper's hidden test set); valid AUC with a percentile "
    "bootstrap 95% CI. Thresholds: each model's own, Youden's J on an inner validation split of its training fold "
    "(column threshold_from). N: patches; 2nd RF: texture families among the candidates; UP: usage predictor; "
    "T: usage threshold; Reg: registration; '-': not applicable (CNN baselines read volumes)."
)


def markdown_table(frame: pd.DataFrame, columns: Sequence[str]) -> str:
    """A GitHub-flavoured Markdown table of ``columns`` of ``frame`` (cells as strings)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in frame[list(columns)].itertuples(index=False):
        lines.append("| " + " | ".join(_md_value(v) for v in row) + " |")
    return "\n".join(lines)


def _md_value(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if not np.isfinite(value) else f"{value:.3g}"
    return str(value)


def paper_table_markdown(table: pd.DataFrame, title: str) -> str:
    """Markdown of a :func:`paper_table` (display columns only) with its split note."""
    display = [
        "Method",
        *DESCRIPTOR_COLUMNS,
        "Type",
        *[label for _, label in PAPER_METRICS],
        *[f"valid {label}" for _, label in PAPER_METRICS],
    ]
    return f"## {title}\n\n{markdown_table(table, display)}\n\n{TABLE_NOTE}\n"


COMPARISON_NOTE = (
    "DeLong's test (fast DeLong, midranks) of the AUC difference and McNemar's test of accuracy (exact binomial "
    "below the configured number of discordant pairs, else chi-square with continuity correction), reference "
    "against each model on the same cases. split cv: the pooled out-of-fold predictions of train (each case "
    "reported by the fold that held it out); split valid: the models trained on all of train. p-values are "
    "unadjusted for multiple comparisons."
)


# ----------------------------------------------------------------------------------------- plots
def plot_roc(predictions: Mapping[str, pd.DataFrame], task: str, out: str | Path, *, split: str = "valid") -> None:
    """ROC curves of every model for ``task`` on ``split`` (``valid``, or ``cv`` = pooled out-of-fold).

    Models whose reported cases on that split lack a class are listed in the legend as ``n/a``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    fig, ax = plt.subplots(figsize=(5, 5), dpi=110)
    want = "train" if split == "cv" else "valid"
    for name, pred in predictions.items():
        sub = pred[(pred["task"] == task) & (pred["split"] == want)]
        y = sub["label"].to_numpy().astype(int)
        if len(np.unique(y)) < 2:
            ax.plot([], [], label=f"{name} (n/a: one class)")
            continue
        fpr, tpr, _ = roc_curve(y, sub["prob"].to_numpy())
        ax.plot(fpr, tpr, lw=1.5, label=f"{name} (AUC {auc(y, sub['prob'].to_numpy()):.2f}, n={len(y)})")
    ax.plot([0, 1], [0, 1], color="0.7", lw=1, ls="--")
    ax.set(
        xlabel="1 − specificity", ylabel="sensitivity", xlim=(0, 1), ylim=(0, 1.01), title=f"ROC, {task}, split {split}"
    )
    ax.legend(loc="lower right", fontsize=7)
    _save_figure(fig, out)


def calibration_bins(labels: np.ndarray, probs: np.ndarray, n_bins: int) -> pd.DataFrame:
    """Equal-width probability bins: ``bin``, ``n``, ``mean_prob``, ``observed`` (fraction positive)."""
    probs = np.clip(np.asarray(probs, dtype=float), 0, 1)
    labels = np.asarray(labels).astype(int)
    idx = np.minimum((probs * n_bins).astype(int), n_bins - 1)
    rows = []
    for b in range(n_bins):
        sel = idx == b
        if sel.any():
            rows.append(
                {
                    "bin": b,
                    "n": int(sel.sum()),
                    "mean_prob": float(probs[sel].mean()),
                    "observed": float(labels[sel].mean()),
                }
            )
    return pd.DataFrame(rows, columns=["bin", "n", "mean_prob", "observed"])


def plot_calibration(
    predictions: Mapping[str, pd.DataFrame],
    tasks: Sequence[str],
    out: str | Path,
    *,
    split: str = "valid",
    n_bins: int = 5,
) -> None:
    """Reliability diagram per task (one panel each): observed fraction positive against mean
    predicted probability in ``n_bins`` equal-width bins, every model, on ``split``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 4.2), dpi=110, squeeze=False)
    want = "train" if split == "cv" else "valid"
    for ax, task in zip(axes[0], tasks):
        for name, pred in predictions.items():
            sub = pred[(pred["task"] == task) & (pred["split"] == want)]
            if not len(sub):
                continue
            bins = calibration_bins(sub["label"].to_numpy(), sub["prob"].to_numpy(), n_bins)
            ax.plot(bins["mean_prob"], bins["observed"], marker="o", ms=3, lw=1.2, label=name)
        ax.plot([0, 1], [0, 1], color="0.7", lw=1, ls="--")
        ax.set(
            xlim=(0, 1),
            ylim=(-0.02, 1.02),
            xlabel="mean predicted probability",
            ylabel="fraction positive",
            title=f"{task}, split {split}",
        )
        ax.legend(loc="upper left", fontsize=7)
    _save_figure(fig, out)


def _save_figure(fig: Any, out: str | Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    try:
        with atomic_output(out) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)


# ---------------------------------------------------------------------------------------- stages
_write_text = write_text_atomic
_write_csv = write_csv_atomic


def read_predictions(paths: str | Path | Sequence[str | Path]) -> pd.DataFrame:
    """One prediction table from a path or several (e.g. one per task), concatenated."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not paths:
        raise ValueError("no prediction table given")
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)


def stage_tables(
    metrics_csv: str | Path,
    predictions: Mapping[str, str | Sequence[str]],
    tables: Mapping[str, Sequence[str]],
    descriptors: Mapping[str, Mapping[str, str]],
    tasks: Sequence[str],
    compare_to: str,
    mcnemar_exact_below: int,
    out_dir: str | Path,
) -> None:
    """Write ``{out_dir}/{table}.csv`` and ``.md`` per configured table in the paper's layout and
    ``comparisons.csv``/``.md`` (DeLong and McNemar of ``compare_to`` against every other model).

    Args:
        metrics_csv: ``results/tables/metrics.csv``.
        predictions: name (experiment or baseline) -> its prediction table path(s), e.g. one per task.
        tables: ``evaluation.tables``: table name -> row names.
        descriptors: name -> descriptive columns (:func:`describe_experiment`, :func:`describe_baseline`).
        tasks: tasks, in row order.
        compare_to: the reference experiment of the tests.
        mcnemar_exact_below: see :func:`mcnemar_test`.
        out_dir: ``results/tables``.
    """
    import logging

    logger = logging.getLogger("radpersona")
    metrics = pd.read_csv(metrics_csv)
    for name, rows in tables.items():
        table = paper_table(metrics, rows, descriptors, tasks)
        _write_csv(table, Path(out_dir) / f"{name}.csv")
        _write_text(Path(out_dir) / f"{name}.md", paper_table_markdown(table, name))
        logger.info(
            "table %s:\n%s",
            name,
            table[["Method", "Type", "Acc", "Sen", "Spe", "AUC", "valid AUC"]].to_string(index=False),
        )
    preds = {name: read_predictions(paths) for name, paths in predictions.items()}
    comp = comparisons_table(preds, compare_to, exact_below=mcnemar_exact_below)
    _write_csv(comp, Path(out_dir) / "comparisons.csv")
    shown = [
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
    _write_text(
        Path(out_dir) / "comparisons.md", f"## comparisons\n\n{markdown_table(comp, shown)}\n\n{COMPARISON_NOTE}\n"
    )
    logger.info("comparisons:\n%s", comp[shown].to_string(index=False))


def stage_plots(
    predictions: Mapping[str, str | Sequence[str]],
    tasks: Sequence[str],
    roc_out: Sequence[str],
    calibration_out: str | Path,
    split: str,
    n_bins: int,
) -> None:
    """ROC curves per task (``roc_out`` in ``tasks`` order) and one calibration figure."""
    preds = {name: read_predictions(paths) for name, paths in predictions.items()}
    for task, out in zip(tasks, roc_out):
        plot_roc(preds, task, out, split=split)
    plot_calibration(preds, tasks, calibration_out, split=split, n_bins=n_bins)
