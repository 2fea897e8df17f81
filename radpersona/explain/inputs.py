"""Reading one case's prediction, fingerprint and model from a results folder (the data contract).

Paths come from :class:`radpersona.layout.Layout` (docs/architecture.md): ``predictions/{experiment}_{task}.parquet``,
``fingerprints/{experiment}_{task}.parquet``, ``models/fingerprint/{experiment}_{task}_fold{k}.pt``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from radpersona.errors import InputDataError
from radpersona.layout import Layout

#: |sigmoid(intercept + sum contributions) - prob| allowed between fingerprint and prediction tables.
PROB_TOLERANCE = 1e-6


def as_layout(results: str | Path | Layout) -> Layout:
    """The layout of a results folder (a :class:`Layout` is returned as it is)."""
    return results if isinstance(results, Layout) else Layout(str(results))


def reporting_model(layout: Layout, experiment: str, task: str, fold: int) -> Path:
    """The fingerprint model that reported a case: ``fold{k}``, or ``foldall`` for ``fold == -1``."""
    name = "all" if int(fold) == -1 else str(int(fold))
    return Path(layout.fingerprint_model(experiment, task, name))


def sigmoid(x: float) -> float:
    """Numerically stable logistic function."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@dataclass(frozen=True)
class CasePrediction:
    """One case's reported prediction and its complete fingerprint (features with ``z = 1``).

    Attributes:
        features: every selected feature of the case, sorted by ``|contribution|`` (largest first),
            columns of the fingerprint table.
        intercept: the reporting model's intercept ``b``.
        logit: ``intercept + sum(features.contribution)`` (checked against ``prob``).
        n_dropped_unused: fingerprint rows of the case with ``z = 0`` (ignored; none in tables the
            pipeline writes).
    """

    case: str
    task: str
    experiment: str
    prob: float
    threshold: float
    pred: int
    label: int | None
    fold: int
    split: str
    intercept: float
    logit: float
    features: pd.DataFrame
    n_dropped_unused: int
    model_file: Path


def _one_row(table: pd.DataFrame, case: str, path: Path) -> pd.Series:
    rows = table[table["case"].astype(str) == case]
    if len(rows) != 1:
        raise InputDataError(f"expected one prediction row for the case, found {len(rows)}", case=case, path=path)
    return rows.iloc[0]


def load_case_prediction(results: str | Path | Layout, case: str, task: str, experiment: str) -> CasePrediction:
    """Read the prediction, fingerprint and model intercept of ``case`` and check that they agree.

    Checks: the case has exactly one prediction row; its fingerprint rows come from the same fold;
    each feature's ``beta`` equals the model's coefficient; ``sigmoid(intercept + sum contribution)``
    equals the reported ``prob`` within :data:`PROB_TOLERANCE`.

    Raises:
        InputDataError: a file is missing, or the tables disagree (the message names case and file).
    """
    from radpersona.fingerprint import TrainedFingerprint

    layout = as_layout(results)
    pred_file = Path(layout.predictions(experiment, task))
    fp_file = Path(layout.fingerprints(experiment, task))
    for path in (pred_file, fp_file):
        if not path.exists():
            raise InputDataError("results file not found", case=case, path=path)
    row = _one_row(pd.read_parquet(pred_file), case, pred_file)
    fp = pd.read_parquet(fp_file)
    fp = fp[fp["case"].astype(str) == case]
    fold = int(row["fold"])
    if "fold" in fp.columns and len(fp) and not (fp["fold"].astype(int) == fold).all():
        raise InputDataError(
            f"fingerprint rows come from folds {sorted(set(fp['fold'].astype(int)))}, the prediction from fold {fold}",
            case=case,
            path=fp_file,
        )
    used = fp["z"].astype(int) == 1
    features = fp[used].copy()
    features = features.iloc[np.argsort(-features["contribution"].abs().to_numpy(), kind="stable")].reset_index(
        drop=True
    )
    mfile = reporting_model(layout, experiment, task, fold)
    if not mfile.exists():
        raise InputDataError("fingerprint model not found", case=case, path=mfile)
    model = TrainedFingerprint.load(mfile)
    index = {name: n for n, name in enumerate(model.feature_names)}
    missing = [f for f in features["feature"] if f not in index]
    if missing:
        raise InputDataError(
            f"{len(missing)} fingerprint features are not in the model, e.g. {missing[0]!r}", case=case, path=mfile
        )
    beta = model.beta[[index[f] for f in features["feature"]]]
    bad = ~np.isclose(features["beta"].to_numpy(np.float64), beta, rtol=1e-6, atol=1e-9)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputDataError(
            f"fingerprint beta of {features['feature'].iloc[first]!r} differs from the model's",
            case=case,
            path=fp_file,
            value=(float(features["beta"].iloc[first]), float(beta[first])),
        )
    intercept = model.intercept
    logit = intercept + float(features["contribution"].sum())
    prob = float(row["prob"])
    if abs(sigmoid(logit) - prob) > PROB_TOLERANCE:
        raise InputDataError(
            f"intercept {intercept:.6g} + sum of {len(features)} contributions = logit {logit:.6g}, "
            f"probability {sigmoid(logit):.6g}, but the prediction table says {prob:.6g}",
            case=case,
            path=fp_file,
        )
    label = row.get("label")
    return CasePrediction(
        case=case,
        task=task,
        experiment=experiment,
        prob=prob,
        threshold=float(row["threshold"]),
        pred=int(row["pred"]) if "pred" in row and pd.notna(row["pred"]) else int(prob >= float(row["threshold"])),
        label=None if label is None or pd.isna(label) else int(label),
        fold=fold,
        split=str(row["split"]),
        intercept=intercept,
        logit=logit,
        features=features,
        n_dropped_unused=int((~used).sum()),
        model_file=mfile,
    )


def patch_contributions(features: pd.DataFrame) -> pd.DataFrame:
    """Highlighted patches: one row per (view, i, j, k) with a selected feature.

    Columns ``view, i, j, k, contribution`` (summed over the patch's selected features, all images),
    ``n_features`` and ``abs_contribution``; sorted by ``abs_contribution``, largest first.
    """
    if not len(features):
        return pd.DataFrame(columns=["view", "i", "j", "k", "contribution", "n_features", "abs_contribution"])
    grouped = (
        features.groupby(["view", "i", "j", "k"], sort=True)
        .agg(contribution=("contribution", "sum"), n_features=("feature", "size"))
        .reset_index()
    )
    grouped["abs_contribution"] = grouped["contribution"].abs()
    grouped = grouped.iloc[np.argsort(-grouped["abs_contribution"].to_numpy(), kind="stable")].reset_index(drop=True)
    for col in ("i", "j", "k", "n_features"):
        grouped[col] = grouped[col].astype(int)
    return grouped
