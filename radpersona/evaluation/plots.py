"""Figures of the evaluation: ROC curves per task and a reliability (calibration) diagram."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from radpersona.atomic import atomic_output
from radpersona.evaluation.metrics import auc


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
