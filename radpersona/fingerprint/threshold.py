"""Decision thresholds chosen by Youden's J statistic (paper, Sec. 5.2.4).

``J = sensitivity + specificity - 1 = TPR - FPR``, maximised over the thresholds of the ROC curve.
The decision rule that goes with a threshold ``t`` is ``pred = score >= t`` (the convention of
:func:`sklearn.metrics.roc_curve`); use :func:`apply_threshold` so that every caller (fingerprint,
baselines, evaluation) uses the same rule.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn.metrics import roc_curve


def youden_threshold(labels: ArrayLike, scores: ArrayLike) -> float:
    """Return the score threshold that maximises Youden's J on ``(labels, scores)``.

    Args:
        labels: binary labels (0/1), shape ``(n,)``; both classes must be present.
        scores: predicted scores or probabilities, shape ``(n,)``; higher means more likely positive.

    Returns:
        The threshold ``t`` among the ROC thresholds (the observed scores) at which
        ``TPR - FPR`` is largest; ties go to the highest such threshold. Predict positive when
        ``score >= t``.

    Raises:
        ValueError: shapes differ, a label is not 0/1, a score is not finite, or only one class is
            present (J is undefined then).
    """
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1 or y.shape != s.shape:
        raise ValueError(f"labels and scores must be 1-D of equal length, got {y.shape} and {s.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0/1, got values {sorted(set(np.unique(y).tolist()))}")
    if not np.isfinite(s).all():
        raise ValueError(f"scores must be finite, got {int((~np.isfinite(s)).sum())} non-finite values")
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == y.size:
        raise ValueError(f"Youden's J needs both classes, got {n_pos} positives among {y.size} cases")
    fpr, tpr, thresholds = roc_curve(y.astype(int), s, drop_intermediate=False)
    # thresholds[0] is +inf (nothing predicted positive, J = 0); the best J is >= 0 elsewhere too
    # because the last point (everything positive) also has J = 0, so skip the infinite one.
    j = (tpr - fpr)[1:]
    best = int(np.argmax(j)) + 1
    return float(thresholds[best])


def apply_threshold(scores: ArrayLike, threshold: float) -> np.ndarray:
    """Binary predictions ``score >= threshold`` as ``int64`` (the rule :func:`youden_threshold` assumes)."""
    return (np.asarray(scores, dtype=np.float64) >= float(threshold)).astype(np.int64)
