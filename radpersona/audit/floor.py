"""The whole-volume first-order floor: what a model that ignores location can read from a case.

Per view, eight whole-volume statistics (:data:`FIRST_ORDER_STATS`); one row per case holds them for
every view (columns ``{view}.{stat}``). A standardised logistic regression is fitted on the training
cases and scored on the validation cases. A lesion that moves these statistics (effusion: much more
fluid) is found by this floor; a small local lesion (ACL, meniscal tear) should leave it near 1/2,
and any patch model worth its cost must beat it. Generalises ``benchmarks/synthetic_difficulty.py``
(``whole_volume_first_order(v, value_range=(0, 256))`` is its ``first_order`` for uint8 volumes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from radpersona.errors import InputDataError
from radpersona.evaluation import auc as roc_auc
from radpersona.evaluation import bootstrap_auc_ci

__all__ = ["FIRST_ORDER_STATS", "FloorResult", "first_order_floor", "first_order_table", "whole_volume_first_order"]

FIRST_ORDER_STATS: tuple[str, ...] = ("mean", "sd", "p10", "p50", "p90", "skewness", "kurtosis", "entropy")


def whole_volume_first_order(
    volume: np.ndarray,
    *,
    bins: int = 64,
    value_range: tuple[float, float] | None = None,
    case: str | None = None,
    view: str | None = None,
) -> dict[str, float]:
    """Whole-volume first-order statistics of ``volume``, keys in the order of :data:`FIRST_ORDER_STATS`.

    ``mean``; ``sd`` (population, ddof 0); ``p10``, ``p50``, ``p90`` (numpy's linear percentiles);
    ``skewness`` and ``kurtosis`` (Fisher's excess; scipy, biased); ``entropy`` ``-sum p_b log2 p_b``
    of a ``bins``-bin histogram over ``value_range`` (default: the volume's own min..max, so the
    statistic does not depend on the intensity unit; ``(0, 256)`` reproduces the uint8 benchmark).
    A constant volume has skewness and kurtosis 0 (scipy would return NaN) and entropy 0.

    Raises:
        InputDataError: an empty volume or non-finite values.
    """
    v = np.asarray(volume, dtype=np.float64).ravel()
    if v.size == 0 or not np.all(np.isfinite(v)):
        raise InputDataError(
            "whole-volume statistics need a non-empty, finite volume", case=case, view=view, value=v.size
        )
    p10, p50, p90 = np.percentile(v, [10, 50, 90])
    lo, hi = (float(v.min()), float(v.max())) if value_range is None else value_range
    constant = float(v.min()) == float(v.max())
    if constant:
        entropy = 0.0
    else:
        hist, _ = np.histogram(v, bins=bins, range=(lo, hi))
        prob = hist[hist > 0] / hist.sum()
        entropy = float(-(prob * np.log2(prob)).sum())
    return {
        "mean": float(v.mean()),
        "sd": float(v.std()),
        "p10": float(p10),
        "p50": float(p50),
        "p90": float(p90),
        "skewness": 0.0 if constant else float(stats.skew(v)),
        "kurtosis": 0.0 if constant else float(stats.kurtosis(v)),
        "entropy": entropy,
    }


def first_order_table(
    volumes: Mapping[str, Mapping[str, np.ndarray]],
    *,
    bins: int = 64,
    value_range: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """One row per case (index ``case``), columns ``{view}.{stat}`` from ``volumes[case][view]``.

    Raises:
        InputDataError: cases with different sets of views (names the case).
    """
    rows = {}
    views: list[str] | None = None
    for case, per_view in volumes.items():
        if views is None:
            views = list(per_view)
        elif list(per_view) != views:
            raise InputDataError(f"views {list(per_view)} differ from the first case's {views}", case=case)
        row = {}
        for view, volume in per_view.items():
            for name, value in whole_volume_first_order(
                volume, bins=bins, value_range=value_range, case=case, view=view
            ).items():
                row[f"{view}.{name}"] = value
        rows[case] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "case"
    return table


@dataclass(frozen=True)
class FloorResult:
    """Validation AUC of the whole-volume first-order logistic regression, with its bootstrap 95 % CI."""

    auc_valid: float
    ci_low: float
    ci_high: float
    n_train: int
    n_valid: int
    n_features: int


def first_order_floor(
    features: pd.DataFrame,
    labels: pd.Series,
    train: pd.Series,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> FloorResult:
    """Fit ``StandardScaler + LogisticRegression`` (L2, C = 1) on train, return the AUC on valid.

    Args:
        features: :func:`first_order_table` (index ``case``).
        labels: 0/1 label per case; ``train``: True for training cases (both indexed by case).

    Raises:
        ValueError: missing labels or split for a case, non-finite features, or a split with one class.
    """
    y = labels.reindex(features.index)
    tr = train.reindex(features.index)
    if y.isna().any() or tr.isna().any():
        raise ValueError(f"labels or split missing for cases {list(features.index[(y.isna() | tr.isna()).to_numpy()])}")
    x = features.to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("whole-volume features hold missing or infinite values")
    y_arr, tr_arr = y.to_numpy(dtype=int), tr.to_numpy(dtype=bool)
    for name, sel in (("train", tr_arr), ("valid", ~tr_arr)):
        if len(np.unique(y_arr[sel])) < 2:
            raise ValueError(f"the {name} split needs positives and negatives")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    model.fit(x[tr_arr], y_arr[tr_arr])
    prob = model.predict_proba(x[~tr_arr])[:, 1]
    lo, hi = bootstrap_auc_ci(y_arr[~tr_arr], prob, n_boot=n_boot, seed=seed)
    return FloorResult(
        auc_valid=roc_auc(y_arr[~tr_arr], prob),
        ci_low=lo,
        ci_high=hi,
        n_train=int(tr_arr.sum()),
        n_valid=int((~tr_arr).sum()),
        n_features=int(x.shape[1]),
    )
